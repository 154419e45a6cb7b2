"""Functional checks for Python and Perl modules: use what they export, for real.

One probe per language introspects the modules with the package's own interpreter:
their public names, the documented examples that pass (run twice in fresh globals),
and the functions that return the same plain value twice for one sample string.
Candidates import a public name (``from pkg import Name`` fails when ``__init__.py``
is gone, where ``import pkg`` still succeeds on the leftover namespace package), run
the documented examples, or repeat the observed call and compare.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import ClassVar

from qackage.model import (
    Analysis,
    Candidate,
    CheckKind,
    ProbeCommand,
    ProbeResult,
    PythonModule,
    PythonModuleKind,
    Step,
)
from qackage.propose.module_reports import (
    PYTHON_MARK,
    DocExamples,
    ObservedCall,
    PythonModuleReport,
    PythonReport,
    read_perl_report,
    read_python_report,
)
from qackage.propose.templates import render

SAMPLE = "Hello Wolfi"
MAX_MODULES = 8
MAX_PERL_MODULES = 10
MAX_IMPORTED_NAMES = 2
MAX_EXAMPLES = 12
INTROSPECT_SECONDS = 60.0
PERL_KEY = "perl:introspect"
PYTHON_TARGETS = ("delete-python-init", "delete-python-module")
PERL_TARGETS = ("delete-perl-module",)
# Function names that announce side effects: never called blindly.
UNSAFE_NAMES = (
    r"remove|delete|unlink|rmtree|write|save|dump|run|exec|call|spawn|system|popen|open|connect|send|post|"
    r"request|fetch|download|upload|install|kill|exit|quit|main|cli|shell|serve|start|stop|listen|input|"
    r"prompt|sleep|wait|seed|random|uuid|now|time|today"
)
# Argument-free functions worth calling blindly: names that read as pure queries.
QUERY_NAME = r"^(?:get_)?(?:[a-z]+_)?(?:id|name|version|codename|like|info)$"
_QUERY_PREFERENCE = {"id": 0, "name": 1, "version": 2}
TEXT_PARAMETER = r"^(text|s|string|value|name|title|data|word|words|line|source|content|message|msg|query|label|raw)$"
_SKIPPED_MODULES = re.compile(r"^(tests?|testing|docs?|examples?|setup|conftest|benchmarks?)$|^_")
_IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")


def python_key(version: str | None) -> str:
    return f"py:introspect:{version or 'python3'}"


def interpreter(version: str | None) -> str:
    return f"python{version}" if version else "python3"


def python_groups(analysis: Analysis) -> dict[str | None, list[PythonModule]]:
    """The importable top-level modules, by the Python version they were installed for."""
    groups: dict[str | None, list[PythonModule]] = {}
    for module in analysis.facts.python_modules:
        if module.kind is PythonModuleKind.NAMESPACE or "/debug/" in module.path:
            continue
        if not _IDENTIFIER.match(module.name) or _SKIPPED_MODULES.match(module.name):
            continue
        members = groups.setdefault(module.python_version, [])
        if len(members) < MAX_MODULES and module.name not in {m.name for m in members}:
            members.append(module)
    return groups


def _python_probe(analysis: Analysis, version: str | None, modules: Sequence[PythonModule]) -> ProbeCommand:
    wanted = {
        "modules": [m.name for m in modules],
        "distributions": [d.name for d in analysis.facts.python_distributions if d.python_version == version],
        "sample": SAMPLE,
        "unsafe": UNSAFE_NAMES,
        "text_parameter": TEXT_PARAMETER,
        "query_name": QUERY_NAME,
        "mark": PYTHON_MARK,
    }
    script = render("func-py-introspect.sh.j2", python=interpreter(version), wanted=repr(json.dumps(wanted)))
    return ProbeCommand(python_key(version), script, timeout=INTROSPECT_SECONDS)


def perl_modules(analysis: Analysis) -> list[str]:
    names = [m.name for m in analysis.facts.perl_modules if re.fullmatch(r"\w+(?:::\w+)*", m.name)]
    return list(dict.fromkeys(names))[:MAX_PERL_MODULES]


# --------------------------------------------------------------------------- Python candidates


def importable_names(module: PythonModuleReport) -> list[str]:
    """Names worth importing from ``module``: classes and functions it defines itself
    (those it lists in __all__ first); never submodules, which a namespace package
    would still provide."""
    chosen = [n for n in module.names if n.kind in ("class", "function") and not n.name.startswith("_")]
    chosen.sort(key=lambda n: (not n.listed, not n.defined, n.kind != "function"))
    return [n.name for n in chosen if n.defined][:MAX_IMPORTED_NAMES]


def _import_candidate(
    report: PythonReport, version: str | None, packages: set[str], *, explicit: bool
) -> Candidate | None:
    """python/import of public names; ``explicit`` names the interpreter (needed when the
    package installs for several Pythons: the pipeline's DEFAULT wants exactly one)."""
    imported = [(m.name, names) for m in report.modules if m.ok and not m.namespace and (names := importable_names(m))]
    if not imported:
        return None
    lines = [f"from {module} import {', '.join(names)}" for module, names in imported]
    with_: list[tuple[str, str]] = [("imports", "\n".join(lines) + "\n")]
    if explicit:
        with_.insert(0, ("python", interpreter(version)))
    return Candidate(
        step=Step(uses="python/import", with_=tuple(with_)),
        kind=CheckKind.IMPORT,
        rationale="probed: these public names import; a package without __init__.py would not provide them",
        targets=_targets({module for module, _ in imported}, packages),
    )


def _targets(modules: set[str], packages: set[str]) -> tuple[str, ...]:
    """A lost ``__init__.py`` matters only for packages; a lost module for any module."""
    return PYTHON_TARGETS if modules & packages else ("delete-python-module",)


def _clean_doctest(examples: DocExamples) -> str | None:
    """The examples as a doctest file, cut to a readable length; None when a line would
    not survive YAML formatting (trailing blanks, control characters)."""
    blocks: list[list[str]] = []
    for line in examples.text.rstrip("\n").split("\n"):
        if line.startswith(">>> "):
            blocks.append([])
        if not blocks or line != line.rstrip() or not line.isprintable():
            return None
        blocks[-1].append(line)
    kept = blocks[:MAX_EXAMPLES]
    if not any(not line.startswith((">>> ", "... ")) for block in kept for line in block):
        return None  # nothing left that checks an output
    text = "\n".join(line for block in kept for line in block) + "\n"
    return None if "\nEOF\n" in f"\n{text}" else text


def _origin_label(origin: str) -> str:
    if origin.endswith(" metadata"):
        return f"the examples from {origin.removesuffix(' metadata')}'s description"
    return f"the examples in the docstring of {origin}"


def _doctest_candidate(report: PythonReport, version: str | None, targets: tuple[str, ...]) -> Candidate | None:
    ranked = sorted(report.doctests, key=lambda d: (not d.origin.endswith(" metadata"), -d.checks, d.origin))
    for examples in ranked:
        text = _clean_doctest(examples)
        if text is None:
            continue
        stem = re.sub(r"[^A-Za-z0-9]+", "-", examples.origin.removesuffix(" metadata")).strip("-")
        script = render("func-py-doctest.sh.j2", python=interpreter(version), file=f"{stem}-examples.txt", text=text)
        return Candidate(
            step=Step(name=f"Runs {_origin_label(examples.origin)}", runs=script),
            kind=CheckKind.FUNCTIONAL,
            rationale=f"probed twice in the sandbox: {examples.checks} documented examples of {examples.origin} pass",
            targets=targets,
        )
    return None


def _python_call_candidate(report: PythonReport, version: str | None, targets: tuple[str, ...]) -> Candidate | None:
    for call in report.calls:
        if not (_IDENTIFIER.match(call.function) and re.fullmatch(r"[\w.]+", call.module)):
            continue
        script = render(
            "func-py-call.sh.j2",
            python=interpreter(version),
            module=call.module,
            function=call.function,
            argument=repr(call.argument),
            result=call.result,
        )
        return Candidate(
            step=Step(name=f"Calls {call.module}.{call.function}() on a sample string", runs=script),
            kind=CheckKind.FUNCTIONAL,
            rationale=f"probed twice in the sandbox: {call.function}({call.argument!r}) returned {call.result}",
            targets=targets,
        )
    return None


def _python_query_candidate(report: PythonReport, version: str | None, targets: tuple[str, ...]) -> Candidate | None:
    """Repeat an argument-free query; its value may describe the host, so the step checks
    only what the probe saw on every run: non-empty text, the same twice."""
    # The most identifying names first: id() says more about a broken copy than codename().
    ranked = sorted(
        report.queries, key=lambda q: (_QUERY_PREFERENCE.get(q.function, len(_QUERY_PREFERENCE)), q.function)
    )
    for query in ranked:
        if not (_IDENTIFIER.match(query.function) and re.fullmatch(r"[\w.]+", query.module)):
            continue
        script = render(
            "func-py-query.sh.j2", python=interpreter(version), module=query.module, function=query.function
        )
        return Candidate(
            step=Step(name=f"Calls {query.module}.{query.function}() twice for the same text", runs=script),
            kind=CheckKind.FUNCTIONAL,
            rationale=f"probed twice in the sandbox: {query.function}() returned the same non-empty str",
            targets=targets,
        )
    return None


# --------------------------------------------------------------------------- Perl candidates


def _perl_literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _perl_call_candidate(calls: Sequence[ObservedCall], package: str) -> Candidate | None:
    stem = re.sub(r"^perl-", "", package).replace("-", "::").lower()
    ranked = sorted(calls, key=lambda c: (c.module.lower() != stem, c.module, c.function))
    for call in ranked:
        script = render(
            "func-perl-call.sh.j2",
            module=call.module,
            function=call.function,
            argument=_perl_literal(call.argument),
            result=_perl_literal(call.result),
        )
        return Candidate(
            step=Step(name=f"Calls {call.module}::{call.function} on a sample string", runs=script),
            kind=CheckKind.FUNCTIONAL,
            rationale=f"probed twice in the sandbox: {call.function}({call.argument!r}) returned {call.result!r}",
            targets=PERL_TARGETS,
        )
    return None


# --------------------------------------------------------------------------- the proposer


class ModuleProposer:
    """Import-a-public-name, documented-example and sample-call checks for modules."""

    name: ClassVar[str] = "module-checks"

    def probes(self, analysis: Analysis, seen: Mapping[str, ProbeResult]) -> tuple[ProbeCommand, ...]:
        commands = [
            _python_probe(analysis, version, modules) for version, modules in python_groups(analysis).items() if modules
        ]
        modules = perl_modules(analysis)
        if modules:
            script = render("func-perl-introspect.sh.j2", modules=modules, unsafe=UNSAFE_NAMES)
            commands.append(ProbeCommand(PERL_KEY, script, timeout=INTROSPECT_SECONDS))
        return tuple(commands)

    def candidates(self, analysis: Analysis, seen: Mapping[str, ProbeResult]) -> tuple[Candidate, ...]:
        found: list[Candidate] = []
        groups = python_groups(analysis)
        for version in groups:
            result = seen.get(python_key(version))
            report = read_python_report(result.stdout) if result is not None and result.ok else None
            if report is None:
                continue
            packages = {m.name for m in groups[version] if m.kind is PythonModuleKind.PACKAGE}
            imports = _import_candidate(report, version, packages, explicit=len(groups) > 1)
            if imports is not None:
                found.append(imports)
            targets = _targets({m.name for m in report.modules}, packages)
            functional = (
                _doctest_candidate(report, version, targets)
                or _python_call_candidate(report, version, targets)
                or _python_query_candidate(report, version, targets)
            )
            if functional is not None:
                found.append(functional)
        perl = seen.get(PERL_KEY)
        if perl is not None and perl.ok:
            call = _perl_call_candidate(read_perl_report(perl.stdout, SAMPLE).calls, analysis.package.name)
            if call is not None:
                found.append(call)
        return tuple(found)
