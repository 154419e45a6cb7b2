"""Writing command output: JSON or text, to stdout or atomically to a file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from qackage.errors import InputError


def dump_json(data: Any, *, pretty: bool = True) -> str:
    """Indented for people; compact (and several times faster: only the compact form
    uses json's C encoder) for machines and big documents."""
    if pretty:
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n"


def for_terminal(output: str | None) -> bool:
    """True when the text goes to an interactive terminal."""
    return (output is None or output == "-") and sys.stdout.isatty()


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
