"""What the module introspection probes printed, read into plain records.

The probes run the package's own Python and Perl in the sandbox (templates
``func-py-introspect.sh.j2`` and ``func-perl-introspect.sh.j2``); this module only
parses their output, defensively: a probe's stdout is whatever the package made of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PYTHON_MARK = "qackage-python: "


@dataclass(frozen=True, slots=True)
class PublicName:
    name: str
    kind: str  # class | function | module | other
    defined: bool  # defined by the module itself, not imported into it
    listed: bool  # the module has __all__ (so the name is deliberately public)


@dataclass(frozen=True, slots=True)
class PythonModuleReport:
    name: str
    ok: bool
    namespace: bool
    names: tuple[PublicName, ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DocExamples:
    origin: str  # "pyfoo metadata", "pyfoo.slugify", "pyfoo"
    text: str  # doctest text: ">>> " sources and their wanted output
    examples: int
    checks: int  # examples with an expected output or exception


@dataclass(frozen=True, slots=True)
class ObservedCall:
    module: str
    function: str
    argument: str
    result: str  # Python: repr(); Perl: the string


@dataclass(frozen=True, slots=True)
class ObservedQuery:
    """An argument-free function that returned the same non-empty text twice; what it
    returned may describe the host, so only that shape is recorded."""

    module: str
    function: str


@dataclass(frozen=True, slots=True)
class PythonReport:
    modules: tuple[PythonModuleReport, ...]
    doctests: tuple[DocExamples, ...]
    calls: tuple[ObservedCall, ...]
    queries: tuple[ObservedQuery, ...] = ()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _records(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def read_python_report(stdout: str) -> PythonReport | None:
    """The report line of the Python probe; None when there is none or it is malformed."""
    line = next((line for line in reversed(stdout.splitlines()) if line.startswith(PYTHON_MARK)), None)
    if line is None:
        return None
    try:
        data = json.loads(line[len(PYTHON_MARK) :])
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("modules"), dict):
        return None
    modules = tuple(
        PythonModuleReport(
            name=name,
            ok=entry.get("ok") is True,
            namespace=entry.get("namespace") is True,
            names=tuple(
                PublicName(
                    _text(n.get("name")), _text(n.get("kind")), n.get("defined") is True, n.get("listed") is True
                )
                for n in _records(entry.get("names"))
                if _text(n.get("name"))
            ),
            error=_text(entry.get("error")) or None,
        )
        for name, entry in data["modules"].items()
        if isinstance(entry, dict)
    )
    doctests = tuple(
        DocExamples(_text(d.get("origin")), _text(d.get("text")), _count(d.get("examples")), _count(d.get("checks")))
        for d in _records(data.get("doctests"))
        if _text(d.get("text"))
    )
    calls = tuple(
        ObservedCall(_text(c.get("module")), _text(c.get("name")), _text(c.get("argument")), _text(c.get("result")))
        for c in _records(data.get("calls"))
        if _text(c.get("name")) and _text(c.get("result"))
    )
    queries = tuple(
        ObservedQuery(_text(q.get("module")), _text(q.get("name")))
        for q in _records(data.get("queries"))
        if _text(q.get("module")) and _text(q.get("name"))
    )
    return PythonReport(modules, doctests, calls, queries)


@dataclass(frozen=True, slots=True)
class PerlReport:
    loaded: tuple[str, ...]
    exports: tuple[tuple[str, str], ...]  # (module, function)
    calls: tuple[ObservedCall, ...]


def read_perl_report(stdout: str, argument: str) -> PerlReport:
    loaded: list[str] = []
    exports: list[tuple[str, str]] = []
    calls: list[ObservedCall] = []
    for line in stdout.splitlines():
        fields = line.split("\t")
        if fields[0] == "loaded" and len(fields) == 2:
            loaded.append(fields[1])
        elif fields[0] == "export" and len(fields) == 3:
            exports.append((fields[1], fields[2]))
        elif fields[0] == "call" and len(fields) == 4:
            calls.append(ObservedCall(fields[1], fields[2], argument, fields[3]))
    return PerlReport(tuple(loaded), tuple(exports), tuple(calls))
