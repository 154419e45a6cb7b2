"""Published JSON Schemas of qackage's ``--json`` outputs.

Each schema is generated from the dataclasses the output is made of and committed as
``<name>.schema.json``; tests check the committed file is current and that real
outputs validate against it. Regenerate with ``python -m qackage.schema``.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from qackage.jsonout import json_schema
from qackage.model import Analysis
from qackage.validate.mutants import MutantManifest
from qackage.validate.report import TestReport
from qackage.validate.strength import StrengthReport

BASE_ID = "https://qackage.dev/schema/"
SCHEMAS: dict[str, tuple[type, str]] = {
    "analysis": (Analysis, "qackage analyze --json"),
    "validate-report": (TestReport, "qackage validate --json"),
    "strength-report": (StrengthReport, "qackage score --json"),
    "mutants": (MutantManifest, "qackage mutate --json"),
}


def published_schema(name: str) -> str:
    return resources.files(__name__).joinpath(f"{name}.schema.json").read_text(encoding="utf-8")


def generated_schema(name: str) -> str:
    root, title = SCHEMAS[name]
    return json.dumps(json_schema(root, f"{BASE_ID}{name}.schema.json", title), indent=2) + "\n"


def write_all(folder: Path | None = None) -> list[Path]:
    target = folder or Path(__file__).parent
    written = []
    for name in SCHEMAS:
        path = target / f"{name}.schema.json"
        path.write_text(generated_schema(name), encoding="utf-8")
        written.append(path)
    return written
