"""Shared harness of the functional-check proposer tests: probe for real, then prove.

Probes run through `qackage.validate.probe.run_probes` in the package's test root (the
fixture repository, wolfi-base appended), round after round as the orchestrator does;
proposed steps are written as a `test:` YAML file and run by
`qackage.validate.session.validate`, on the good package and on broken copies of it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from qackage.analyze.engine import analyze_source
from qackage.apk.archive import ApkArchive
from qackage.apk.pkginfo import parse_atoms
from qackage.apk.signature import Keyring
from qackage.apk.writer import PlannedFile, read_package, write_apk
from qackage.build import RepositoryBuild
from qackage.model import (
    Analysis,
    ArchiveCheck,
    Candidate,
    Entry,
    Facts,
    KindSummary,
    PackageInfo,
    PackageKind,
    ProbeResult,
    SourceKind,
    Step,
)
from qackage.propose.base import MAX_PROBE_ROUNDS, Proposer
from qackage.validate.bubblewrap import Bubblewrap
from qackage.validate.probe import run_probes
from qackage.validate.report import StepStatus, TestReport
from qackage.validate.runner import RunOptions
from qackage.validate.session import (
    ValidateRequest,
    extract_cache,
    open_repositories,
    probe_root_factory,
    validate,
)


def analysis_of(apk: Path) -> Analysis:
    with ApkArchive.open(apk) as archive:
        return analyze_source(archive)


def request_for(repo: RepositoryBuild, apk: Path, cache: Path, test_file: Path | None = None) -> ValidateRequest:
    return ValidateRequest(
        package=apk,
        test_file=test_file,
        repositories=(str(repo.root),),
        keyring=repo.keyring,
        append_packages=("wolfi-base",),
        cache_dir=cache,
        run=RunOptions(keep_going=True),
    )


def gather(proposer: Proposer, analysis: Analysis, request: ValidateRequest) -> dict[str, ProbeResult]:
    """Probe rounds until the proposer wants nothing new (what the orchestrator does)."""
    repositories = open_repositories(request, Keyring.load(request.keyring) if request.keyring else None)
    make_root = probe_root_factory(request, repositories, extract_cache(request))
    seen: dict[str, ProbeResult] = {}
    for _ in range(MAX_PROBE_ROUNDS):
        wanted = [c for c in proposer.probes(analysis, seen) if c.key not in seen]
        if not wanted:
            break
        seen.update(run_probes(wanted, make_root=make_root, sandbox=Bubblewrap()))
    return seen


class _Literal(str):
    """A string YAML should write as a literal block."""


def _literal(dumper: yaml.SafeDumper, value: _Literal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style="|")


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Literal, _literal)


def _step(step: Step) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if step.name:
        data["name"] = step.name
    if step.uses:
        data["uses"] = step.uses
    if step.with_:
        data["with"] = {k: _Literal(v) if "\n" in v else v for k, v in step.with_}
    if step.runs:
        data["runs"] = _Literal(step.runs)
    return data


def stanza_yaml(candidates: Sequence[Candidate]) -> str:
    packages = sorted({p for c in candidates for p in c.packages})
    test: dict[str, Any] = {}
    if packages:
        test["environment"] = {"contents": {"packages": packages}}
    test["pipeline"] = [_step(c.step) for c in candidates]
    return yaml.dump({"test": test}, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def prove(repo: RepositoryBuild, apk: Path, candidates: Sequence[Candidate], folder: Path) -> TestReport:
    """Run ``candidates`` as one stanza on ``apk`` (every step, even after a failure)."""
    folder.mkdir(parents=True, exist_ok=True)
    test_file = folder / f"{apk.stem}-test.yaml"
    test_file.write_text(stanza_yaml(candidates), encoding="utf-8")
    return validate(request_for(repo, apk, folder / "cache", test_file), sandbox=Bubblewrap())


def failures(report: TestReport) -> dict[int, str]:
    """Failed steps by their number in the stanza (1-based), with what they printed.

    A step that uses a pipeline fails through one of the pipeline's own steps; the
    report's trail says which stanza step that belongs to.
    """
    found: dict[int, str] = {}
    for step in report.steps:
        if step.status is StepStatus.FAILED:
            number = int(step.trail[0].split()[-1]) if step.trail else step.number
            found[number] = f"{step.title}: {step.reason}\n{step.stdout_tail[-1500:]}\n{step.stderr_tail[-1500:]}"
    return found


def assert_every_step_fails(report: TestReport, candidates: Sequence[Candidate]) -> None:
    """On a broken package, each proposed step must fail (each kills the mutation)."""
    assert set(failures(report)) == set(range(1, len(candidates) + 1)), failures(report)


def members(apk: Path) -> tuple[PackageInfo, list[PlannedFile]]:
    return read_package(apk)


def rewrite(
    apk: Path,
    dest: Path,
    change: Callable[[list[PlannedFile]], Iterable[PlannedFile]],
    **info_changes: Any,
) -> Path:
    """A copy of ``apk`` with its files changed (the same name and version)."""
    info, files = members(apk)
    write_apk(dest, dataclasses.replace(info, **info_changes), list(change(files)))
    return dest


def replace_file(path: str, data: bytes, mode: int = 0o755) -> Callable[[list[PlannedFile]], list[PlannedFile]]:
    def change(files: list[PlannedFile]) -> list[PlannedFile]:
        return [PlannedFile(f.path, mode=mode, data=data) if f.path == path else f for f in files]

    return change


def drop_files(predicate: Callable[[str], bool]) -> Callable[[list[PlannedFile]], list[PlannedFile]]:
    def change(files: list[PlannedFile]) -> list[PlannedFile]:
        return [f for f in files if not predicate(f.path)]

    return change


def outputs(seen: Mapping[str, ProbeResult], prefix: str) -> dict[str, str]:
    """Probe stdout by key, for those under ``prefix`` (debugging aid in messages)."""
    return {k: v.stdout[:300] for k, v in seen.items() if k.startswith(prefix)}


def analysis_with(
    facts: Facts, *, name: str = "pkg", version: str = "1.2.3-r0", depends: str = "", entries: Sequence[Entry] = ()
) -> Analysis:
    """An analysis made by hand, for tests of proposers on data alone."""
    info = PackageInfo(name=name, version=version, arch="x86_64", origin=name, depends=parse_atoms(depends))
    return Analysis(
        package=info,
        check=ArchiveCheck(SourceKind.ARCHIVE),
        entries=tuple(entries),
        facts=facts,
        kind=KindSummary(PackageKind.CLI, (PackageKind.CLI,)),
    )


def result(key: str, stdout: str, exit_code: int = 0, stderr: str = "") -> ProbeResult:
    return ProbeResult(key=key, exit_code=exit_code, stdout=stdout, stderr=stderr)


def synthetic_package(
    folder: Path,
    name: str,
    files: Mapping[str, tuple[bytes, int]],
    *,
    depends: str = "",
    description: str = "",
    version: str = "1.0.0-r0",
) -> Path:
    """A package made in the test: ``files`` maps paths to (content, mode)."""
    info = PackageInfo(
        name=name,
        version=version,
        arch="x86_64",
        origin=name,
        description=description or f"the {name} test package",
        license="MIT",
        depends=parse_atoms(depends),
    )
    path = folder / f"{name}-{version}.apk"
    write_apk(path, info, [PlannedFile(p, mode=mode, data=data) for p, (data, mode) in files.items()])
    return path
