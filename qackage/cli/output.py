"""Writing command output: JSON or text, to stdout or atomically to a file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from qackage.errors import InputError


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def emit(text: str, output: str | None = None) -> None:
    """Print ``text``, or write it to ``output`` all at once (never a partial file)."""
    if output is None or output == "-":
        sys.stdout.write(text)
        return
    path = Path(output)
    if path.exists() and not path.is_file():
        # /dev/null, a FIFO, a terminal: write through; renaming over it would replace it.
        try:
            with path.open("w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            raise InputError(f"{output}: cannot write: {exc.strerror or exc}") from exc
        return
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise InputError(f"{output}: cannot write: {exc.strerror or exc}") from exc
