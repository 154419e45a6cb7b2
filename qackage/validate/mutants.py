"""Broken copies of a package ("mutants") that a strong test stanza must fail on.

    specs = applicable_mutants(analysis)                   # pure: what can be broken, and how
    build_mutant(Path("hello.apk"), specs[0], Path("m.apk"))  # one real, broken .apk
    references = data_references(Path("hello.apk"), analysis)  # what drop-data-file needs
    write_mutants(Path("hello.apk"), Path("mutants/"))     # all of them + mutants/mutants.json

Each operator (`OPERATORS`) applies only where the analysis says it makes sense - no
executable operators on a -doc package - and to at most ``per_operator`` targets, the most
important first (main programs before helpers, provided SONAMEs before private ones), so
scoring a stanza stays affordable. Everything is deterministic: the same package gives the
same specs in the same order and byte-identical mutants.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import tempfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from types import MappingProxyType

from qackage.analyze.engine import analyze_source
from qackage.apk.archive import ApkArchive
from qackage.apk.limits import DEFAULT_LIMITS, Limits
from qackage.errors import InputError
from qackage.jsonout import to_jsonable
from qackage.model import Analysis
from qackage.validate.mutators import REGISTRY
from qackage.validate.mutators.base import DataReferences, MutantSpec, Operator, Subject
from qackage.validate.mutators.references import find_references
from qackage.validate.mutators.rewrite import write_mutant

__all__ = [
    "DEFAULT_PER_OPERATOR",
    "MANIFEST_NAME",
    "OPERATORS",
    "DataReferences",
    "MutantManifest",
    "MutantSpec",
    "WrittenMutant",
    "analyze_apk",
    "applicable_mutants",
    "build_mutant",
    "data_references",
    "find_references",
    "load_mutants",
    "write_mutants",
]

DEFAULT_PER_OPERATOR = 3
MANIFEST_NAME = "mutants.json"
# Operators whose targets depend on file contents beyond the analysis (see DataReferences).
_NEEDS_REFERENCES = frozenset({"drop-data-file"})

_BY_NAME: dict[str, Operator] = {operator.name: operator for operator in REGISTRY}
OPERATORS: Mapping[str, str] = MappingProxyType({operator.name: operator.summary for operator in REGISTRY})


@dataclass(frozen=True, slots=True)
class WrittenMutant:
    """One mutant in ``mutants.json``: its spec and the .apk file that holds it."""

    key: str
    operator: str
    target: str
    description: str
    file: str  # name inside the output directory
    sha256: str

    @property
    def spec(self) -> MutantSpec:
        return MutantSpec(self.operator, self.target, self.description)


@dataclass(frozen=True, slots=True)
class MutantManifest:
    """``mutants.json``: the good package and every mutant written from it."""

    package: str
    version: str
    arch: str
    source: str  # the good .apk's file name
    source_sha256: str
    mutants: tuple[WrittenMutant, ...]


# --------------------------------------------------------------------------- choosing


def _chosen(operators: Collection[str] | None) -> tuple[Operator, ...]:
    if operators is None:
        return REGISTRY
    unknown = sorted(set(operators) - _BY_NAME.keys())
    if unknown:
        raise InputError(f"unknown mutation operator {', '.join(unknown)} (see `qackage mutate --list`)")
    wanted = set(operators)
    return tuple(operator for operator in REGISTRY if operator.name in wanted)


def applicable_mutants(
    analysis: Analysis,
    *,
    operators: Collection[str] | None = None,
    per_operator: int = DEFAULT_PER_OPERATOR,
    references: DataReferences | None = None,
) -> tuple[MutantSpec, ...]:
    """The mutants that make sense for this package, in operator order, the most important
    targets of each first, at most ``per_operator`` each. Pure and deterministic.

    ``drop-data-file`` needs to know which data files the package's own files name; pass
    ``references`` (`data_references`; `write_mutants` does) or it finds no targets."""
    if per_operator < 1:
        raise InputError("at least one target per operator is needed")
    subject = Subject(analysis, references or DataReferences())
    specs: list[MutantSpec] = []
    for operator in _chosen(operators):
        specs.extend(islice(_unique(operator.find(subject)), per_operator))
    return tuple(specs)


def _unique(specs: Iterable[MutantSpec]) -> Iterable[MutantSpec]:
    seen: set[str] = set()
    for spec in specs:
        if spec.key not in seen:
            seen.add(spec.key)
            yield spec


# --------------------------------------------------------------------------- building


def analyze_apk(apk: Path, *, limits: Limits = DEFAULT_LIMITS) -> Analysis:
    """Analyze an .apk file (a folder or an installed package cannot be mutated)."""
    if not apk.exists():
        raise InputError(f"{apk}: no such file")
    if not apk.is_file():
        raise InputError(f"{apk}: not a regular file (mutants are made from .apk files)")
    with ApkArchive.open(apk, limits=limits) as archive:
        return analyze_source(archive)


def data_references(
    apk: Path,
    analysis: Analysis,
    *,
    operators: Collection[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> DataReferences:
    """What the chosen operators (all by default) need to know beyond ``analysis``: the
    data files the package's own files name. Finding them reads the whole package once,
    so when no chosen operator needs them this reads nothing and returns none."""
    wanted = _NEEDS_REFERENCES if operators is None else _NEEDS_REFERENCES & set(operators)
    return find_references(apk, analysis, limits=limits) if wanted else DataReferences()


def _build(apk: Path, subject: Subject, spec: MutantSpec, out: Path, limits: Limits) -> str:
    operator = _BY_NAME.get(spec.operator)
    if operator is None:
        raise InputError(f"unknown mutation operator {spec.operator!r}")
    if all(found.key != spec.key for found in operator.find(subject)):
        raise InputError(f"{spec.key} does not apply to {subject.name} ({apk})")
    edit = operator.plan(subject, spec)
    return write_mutant(apk, subject.analysis.entries, edit, out, limits=limits)


def build_mutant(
    apk: Path,
    spec: MutantSpec,
    out: Path,
    *,
    limits: Limits = DEFAULT_LIMITS,
    analysis: Analysis | None = None,
    references: DataReferences | None = None,
) -> Path:
    """Stream ``apk``, apply ``spec`` and write the broken package to ``out`` (a real .apk:
    the same .PKGINFO with its datahash and size recomputed). InputError when the spec
    does not apply to this package.

    Callers building many mutants of one package may pass its ``analysis`` (and, for
    ``drop-data-file``, its ``references``) to save a streaming pass per mutant."""
    if analysis is None:
        analysis = analyze_apk(apk, limits=limits)
    if references is None:
        references = data_references(apk, analysis, operators=(spec.operator,), limits=limits)
    _build(apk, Subject(analysis, references), spec, out, limits)
    return out


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def mutant_file_name(index: int, spec: MutantSpec) -> str:
    """``03-exec-exit-1-usr_bin_hello.apk``: ordered like the specs, readable, unique."""
    target = _UNSAFE_NAME.sub("_", spec.target).strip("_.")[:60] or "package"
    return f"{index:02d}-{spec.operator}-{target}.apk"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _place(built: Path, out_dir: Path, scratch: Path) -> None:
    """Move the finished folder to ``out_dir``. An existing ``out_dir`` (empty, or the output
    of an earlier run: `_check_out_dir`) moves into ``scratch`` first and goes with it."""
    if out_dir.exists():
        out_dir.replace(scratch / "previous")
    built.replace(out_dir)


def _check_out_dir(out_dir: Path) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a directory")
    contents = list(out_dir.iterdir())
    if contents and not (out_dir / MANIFEST_NAME).is_file():
        raise InputError(f"{out_dir}: not empty and not an earlier `qackage mutate` output; choose another -o")


def write_mutants(
    apk: Path,
    out_dir: Path,
    *,
    operators: Collection[str] | None = None,
    per_operator: int = DEFAULT_PER_OPERATOR,
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[tuple[MutantSpec, Path], ...]:
    """Analyze ``apk``, write every applicable mutant into ``out_dir`` plus
    ``out_dir/mutants.json`` (`MutantManifest`). Built in a temporary folder next to
    ``out_dir`` and moved into place at the end: on any error nothing is written."""
    chosen = _chosen(operators)
    _check_out_dir(out_dir)
    names = [operator.name for operator in chosen]
    analysis = analyze_apk(apk, limits=limits)
    subject = Subject(analysis, data_references(apk, analysis, operators=names, limits=limits))
    specs = applicable_mutants(analysis, operators=names, per_operator=per_operator, references=subject.references)
    # Folders this call creates go again if it fails: on error, nothing is left behind.
    created = [folder for folder in (out_dir.parent, *out_dir.parent.parents) if not folder.exists()]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}.partial-") as temporary:
            building = Path(temporary) / "mutants"
            building.mkdir()
            written = _write_all(apk, subject, specs, building, limits)
            info = analysis.package
            manifest = MutantManifest(info.name, info.version, info.arch, apk.name, _sha256(apk), written)
            (building / MANIFEST_NAME).write_text(manifest_json(manifest), encoding="utf-8")
            _place(building, out_dir, Path(temporary))
    except BaseException:
        for folder in created:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return tuple((m.spec, out_dir / m.file) for m in written)


def _write_all(
    apk: Path, subject: Subject, specs: Sequence[MutantSpec], folder: Path, limits: Limits
) -> tuple[WrittenMutant, ...]:
    written: list[WrittenMutant] = []
    for index, spec in enumerate(specs, start=1):
        name = mutant_file_name(index, spec)
        digest = _build(apk, subject, spec, folder / name, limits)
        written.append(WrittenMutant(spec.key, spec.operator, spec.target, spec.description, name, digest))
    return tuple(written)


def manifest_json(manifest: MutantManifest) -> str:
    return json.dumps(to_jsonable(manifest), indent=2, ensure_ascii=False) + "\n"


def load_mutants(out_dir: Path) -> MutantManifest:
    """Read the ``mutants.json`` that `write_mutants` wrote."""
    path = out_dir / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        mutants = tuple(WrittenMutant(**item) for item in raw["mutants"])
        return MutantManifest(**{**raw, "mutants": mutants})
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise InputError(f"{path}: not a mutants manifest: {exc}") from exc
