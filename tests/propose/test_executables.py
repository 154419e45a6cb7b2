"""Version and help checks: which programs get probed, and what the probes must show."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from qackage.analyze.engine import analyze_source
from qackage.apk.archive import ApkArchive
from qackage.apk.signature import Keyring
from qackage.apk.writer import PlannedFile, write_apk
from qackage.build import RepositoryBuild
from qackage.model import Analysis, Candidate, CheckKind, EntryKind, PackageInfo, ProbeResult
from qackage.propose.executables import (
    HELP_FLAGS,
    MAX_PROGRAMS,
    PROBE_TIMEOUT,
    VERSION_FLAGS,
    ExecutablesProposer,
    probe_key,
    programs,
    shows_help,
    shows_version,
    upstream_version,
)
from qackage.validate.mutants import OPERATORS


def script(path: str, body: str = "echo hi") -> PlannedFile:
    return PlannedFile(path, data=f"#!/bin/sh\n{body}\n".encode(), mode=0o755)


def link(path: str, target: str) -> PlannedFile:
    return PlannedFile(path, EntryKind.SYMLINK, 0o777, link_target=target)


def analyzed(tmp_path: Path, name: str, files: Sequence[PlannedFile], version: str = "2.12.1-r1") -> Analysis:
    info = PackageInfo(name=name, version=version, arch="x86_64", origin=name, description="demo")
    path = tmp_path / f"{name}.apk"
    write_apk(path, info, files)
    with ApkArchive.open(path) as archive:
        return analyze_source(archive)


@pytest.fixture(scope="module")
def elf_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("elf")
    (folder / "main.c").write_text("int main(void) { return 0; }\n")
    subprocess.run(["gcc", "-o", "prog", "main.c"], cwd=folder, check=True, capture_output=True)
    return folder / "prog"


def answered(
    key: str, output: str, exit_code: int | None = 0, *, stderr: str = "", reason: str | None = None
) -> ProbeResult:
    return ProbeResult(key=key, exit_code=exit_code, stdout=output, stderr=stderr, reason=reason)


def observations(*results: ProbeResult) -> dict[str, ProbeResult]:
    return {result.key: result for result in results}


def check(candidates: Sequence[Candidate]) -> list[tuple[str, dict[str, str]]]:
    for candidate in candidates:
        assert candidate.rationale
        assert set(candidate.targets) <= set(OPERATORS)
    return [(c.step.uses or "", dict(c.step.with_)) for c in candidates]


# --------------------------------------------------------------------------- which programs


def test_programs_main_ones_first_one_name_per_file(tmp_path: Path, elf_program: Path) -> None:
    analysis = analyzed(
        tmp_path,
        "demo",
        [
            script("usr/bin/demo-helper"),
            script("usr/sbin/demod"),
            script("usr/bin/demo"),
            PlannedFile("usr/bin/zz", source=elf_program, mode=0o755),
            link("usr/bin/aa-alias", "zz"),  # the same binary: probed once, by its shorter name
            link("usr/bin/alt", "/usr/bin/elsewhere"),  # not shipped: nothing to probe
            script("usr/bin/we ird"),  # a name bins: could not carry
            script("usr/libexec/demo/helper"),  # not on PATH
        ],
    )
    chosen = programs(analysis)
    assert [(p.name, p.path, p.elf) for p in chosen] == [
        ("demo", "usr/bin/demo", False),
        ("zz", "usr/bin/zz", True),
        ("demo-helper", "usr/bin/demo-helper", False),
        ("demod", "usr/sbin/demod", False),
    ]


def test_one_program_per_name_the_one_path_finds_first(tmp_path: Path) -> None:
    analysis = analyzed(tmp_path, "demo", [script("sbin/demo", "echo old"), script("usr/bin/demo")])
    assert [(p.name, p.path) for p in programs(analysis)] == [("demo", "usr/bin/demo")]
    assert len({p.key for p in ExecutablesProposer().probes(analysis, {})}) == len(VERSION_FLAGS + HELP_FLAGS)


def test_programs_are_capped(tmp_path: Path) -> None:
    analysis = analyzed(tmp_path, "tools", [script(f"usr/bin/tool{n:02}") for n in range(MAX_PROGRAMS + 3)])
    assert [p.name for p in programs(analysis)] == [f"tool{n:02}" for n in range(MAX_PROGRAMS)]


def test_probes_run_each_flag_with_stdin_closed(tmp_path: Path) -> None:
    analysis = analyzed(tmp_path, "demo", [script("usr/bin/demo")])
    probes = ExecutablesProposer().probes(analysis, {})
    assert [p.key for p in probes] == [probe_key("demo", flag) for flag in VERSION_FLAGS + HELP_FLAGS]
    assert [p.script for p in probes] == [f"/usr/bin/demo {flag} </dev/null" for flag in VERSION_FLAGS + HELP_FLAGS]
    assert all(p.timeout == PROBE_TIMEOUT and p.packages == () for p in probes)
    seen = observations(answered(probe_key("demo", "--version"), "demo 2.12.1"))
    assert probe_key("demo", "--version") not in {p.key for p in ExecutablesProposer().probes(analysis, seen)}


def test_probe_script_quotes_odd_paths(tmp_path: Path) -> None:
    analysis = analyzed(tmp_path, "demo", [script("usr/bin/c++filt")])
    assert (
        ExecutablesProposer().probes(analysis, {})[0].script
        == f"{shlex.quote('/usr/bin/c++filt')} --version </dev/null"
    )


# --------------------------------------------------------------------------- what counts as an answer


def test_upstream_version() -> None:
    assert upstream_version("2.12.1-r1") == "2.12.1"
    assert upstream_version("1.0_rc1-r10") == "1.0_rc1"
    assert upstream_version("20240101") == "20240101"


@pytest.mark.parametrize(
    ("result", "shown"),
    [
        (answered("k", "hello 2.12.1\n"), True),
        (answered("k", "", stderr="hello version v2.12.1 (built today)\n"), True),
        (answered("k", "hello 2.12.10\n"), False),  # another version that merely starts the same
        (answered("k", "hello 12.12.1\n"), False),
        (answered("k", "hello 2.12.1\n", 1), False),  # ver-check with a named flag wants exit 0
        (answered("k", "hello 2.12.1\n", None, reason="timed out after 5 s"), False),
        (answered("k", "no version here\n"), False),
    ],
)
def test_shows_version(result: ProbeResult, shown: bool) -> None:
    assert shows_version(result, "2.12.1") is shown


def test_a_version_too_short_to_mean_anything_is_never_shown() -> None:
    assert not shows_version(answered("k", "tool 1\n"), "1")
    assert not shows_version(None, "2.12.1")


@pytest.mark.parametrize(
    ("result", "shown"),
    [
        (answered("k", "Usage: demo [OPTIONS] FILE\n"), True),
        (answered("k", "", 1, stderr="usage: demo [-h] {run}\n"), True),
        (answered("k", "demo - does things\n\n  -v  be verbose\n  -q  be quiet\n"), True),
        (answered("k", "", 1, stderr="demo: invalid option -- 'h'\nUsage: demo [-v] FILE\n"), True),
        (answered("k", "Usage: demo FILE\n", 2), False),  # help-check accepts exit 0 or 1 only
        (answered("k", "", 1, stderr="demo: unknown option --help\n"), False),
        (answered("k", "", 1, stderr="demo: help: No such file or directory\n"), False),
        (answered("k", "", 0), False),
        (answered("k", "help\n", 0), False),  # echoed its argument back
        (answered("k", "Usage: demo\n", None, reason="timed out after 5 s"), False),
    ],
)
def test_shows_help(result: ProbeResult, shown: bool) -> None:
    assert shows_help(result) is shown


# --------------------------------------------------------------------------- candidates


def test_bins_grouped_by_the_flag_that_worked(tmp_path: Path, elf_program: Path) -> None:
    analysis = analyzed(
        tmp_path,
        "demo",
        [
            script("usr/bin/demo"),
            PlannedFile("usr/bin/demo-bin", source=elf_program, mode=0o755),
            script("usr/bin/old"),
        ],
    )
    k = probe_key
    seen = observations(
        answered(k("demo", "--version"), "demo 2.12.1"),
        answered(k("demo", "-V"), "demo 2.12.1"),
        answered(k("demo-bin", "--version"), "demo-bin (demo) 2.12.1"),
        answered(k("demo-bin", "-V"), "demo-bin 2.12.1"),
        answered(k("old", "--version"), "", 1, stderr="old: unknown option --version"),
        answered(k("old", "version"), "old 2.12.1"),
        answered(k("demo", "--help"), "Usage: demo [--version] CMD"),
        answered(k("demo-bin", "--help"), "", 2, stderr="demo-bin: bad flag"),
        answered(k("demo-bin", "-h"), "usage: demo-bin [-h]"),
        answered(k("old", "--help"), "", 1, stderr="old: unknown option --help"),
    )
    candidates = ExecutablesProposer().candidates(analysis, seen)
    assert check(candidates) == [
        ("test/tw/ver-check", {"bins": "demo\ndemo-bin\n"}),
        ("test/tw/ver-check", {"bins": "old", "version-flag": "version"}),
        ("test/tw/help-check", {"bins": "demo"}),
        ("test/tw/help-check", {"bins": "demo-bin", "help-flag": "-h"}),
    ]
    grouped = candidates[0]
    assert grouped.kind is CheckKind.VERSION
    assert [dict(f.with_) for f in grouped.fallbacks] == [{"bins": "demo\ndemo-bin\n", "version-flag": "-V"}]
    assert grouped.targets == (
        "delete-executable",
        "exec-exit-1",
        "exec-exit-0-silent",
        "exec-not-executable",
        "truncate-elf",
        "break-shebang",
    )
    assert candidates[1].fallbacks == ()
    assert candidates[3].kind is CheckKind.HELP
    assert "truncate-elf" in candidates[3].targets and "break-shebang" not in candidates[3].targets
    assert "break-shebang" in candidates[2].targets and "truncate-elf" not in candidates[2].targets
    assert "2.12.1" not in repr([c.step for c in candidates])  # no version string of our own


def test_nothing_without_answers(tmp_path: Path) -> None:
    analysis = analyzed(tmp_path, "demo", [script("usr/bin/demo")])
    assert ExecutablesProposer().candidates(analysis, {}) == ()
    silent = observations(*(answered(probe_key("demo", f), "", 0) for f in VERSION_FLAGS + HELP_FLAGS))
    assert ExecutablesProposer().candidates(analysis, silent) == ()


def test_probes_in_the_sandbox_then_candidates(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    """End to end on a real package: the probe scripts run as written and the checks
    proposed from their answers are the catalog's for a CLI."""
    from qackage.validate.bubblewrap import Bubblewrap
    from qackage.validate.probe import run_probes
    from qackage.validate.session import ValidateRequest, extract_cache, open_repositories, probe_root_factory

    built = fixture_repo.package("hello")
    keyring = Keyring.load(fixture_repo.keyring)
    with ApkArchive.open(built.path, keyring=keyring) as archive:
        analysis = analyze_source(archive)
    request = ValidateRequest(
        package=built.path,
        repositories=(str(fixture_repo.root),),
        keyring=fixture_repo.keyring,
        append_packages=("wolfi-base",),
        cache_dir=tmp_path / "cache",
    )
    make_root = probe_root_factory(request, open_repositories(request, keyring), extract_cache(request))
    proposer = ExecutablesProposer()
    seen = run_probes(proposer.probes(analysis, {}), make_root=make_root, sandbox=Bubblewrap())
    assert proposer.probes(analysis, seen) == ()  # one round is all it asks for
    assert check(proposer.candidates(analysis, seen)) == [
        ("test/tw/ver-check", {"bins": "hello"}),
        ("test/tw/help-check", {"bins": "hello"}),
    ]
