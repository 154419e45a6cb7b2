"""`qackage suggest` end to end: proposals are proven in the sandbox before they are printed."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from repoenv import cli_environment

from qackage.apk.writer import PlannedFile, write_apk
from qackage.build import RepositoryBuild
from qackage.cli.main import main
from qackage.model import Analysis, Candidate, CheckKind, PackageInfo, ProbeCommand, ProbeResult, Step
from qackage.suggest import SuggestRequest, suggest
from qackage.validate.bubblewrap import Bubblewrap
from qackage.validate.session import ValidateRequest


def _request(repo: RepositoryBuild, package: Path, cache: Path) -> ValidateRequest:
    return ValidateRequest(
        package=package,
        repositories=(str(repo.root),),
        keyring=repo.keyring,
        append_packages=("wolfi-base",),
        cache_dir=cache,
    )


@pytest.mark.parametrize("name", ["hello", "libgreet", "hello-dev", "hello-doc", "py3-pyfoo", "tinyd", "shtools"])
def test_suggested_stanza_passes_when_validated_again(
    fixture_repo: RepositoryBuild, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    apk = fixture_repo.package(name).path
    out = tmp_path / "stanza.yaml"
    assert (
        main(["suggest", str(apk), "--no-strength", "-o", str(out), *cli_environment(fixture_repo, tmp_path / "c")])
        == 0
    )
    stanza = yaml.safe_load(out.read_text())
    assert stanza["test"]["pipeline"], out.read_text()
    capsys.readouterr()
    code = main(["validate", str(apk), "--test", str(out), *cli_environment(fixture_repo, tmp_path / "c")])
    assert code == 0, capsys.readouterr().out


def test_output_is_formatted_like_yam(
    fixture_repo: RepositoryBuild, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    apk = fixture_repo.package("hello").path
    assert main(["suggest", str(apk), "--no-strength", *cli_environment(fixture_repo, tmp_path)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("test:\n  pipeline:\n    - uses: ")
    assert text.endswith("\n")
    assert not text.endswith("\n\n")
    assert "\n\n" not in text  # no blank lines between test steps
    assert all(line == line.rstrip() for line in text.splitlines())


def test_packages_of_one_origin_are_keyed_by_name(
    fixture_repo: RepositoryBuild, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    apks = [str(fixture_repo.package(n).path) for n in ("hello", "hello-dev")]
    assert main(["suggest", *apks, "--no-strength", *cli_environment(fixture_repo, tmp_path)]) == 0
    data = yaml.safe_load(capsys.readouterr().out)
    assert set(data) == {"hello", "hello-dev"}
    dev_steps = [s.get("uses") for s in data["hello-dev"]["test"]["pipeline"]]
    assert "test/pkgconf" in dev_steps
    assert "test/tw/devpackage" in dev_steps


def test_no_validate_says_so(fixture_repo: RepositoryBuild, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    apk = fixture_repo.package("hello-doc").path
    assert main(["suggest", str(apk), "--no-validate"]) == 0
    captured = capsys.readouterr()
    assert "test/docs" in captured.out
    assert "not validated" in captured.err


def test_steps_that_fail_on_the_good_package_are_dropped_with_a_reason(
    fixture_repo: RepositoryBuild, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A program linked against a library nobody ships: ldd-check and the version probe
    cannot pass, so they are reported as skipped, never printed."""
    (tmp_path / "libghost.c").write_text("int ghost(void) { return 1; }\n")
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\nint ghost(void);\nint main(void) { printf("ghost %d\\n", ghost()); return 0; }\n'
    )
    subprocess.run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-Wl,-soname,libghost.so.1",
            "-o",
            str(tmp_path / "libghost.so.1"),
            str(tmp_path / "libghost.c"),
        ],
        check=True,
    )
    subprocess.run(
        ["gcc", "-o", str(tmp_path / "ghost"), str(tmp_path / "main.c"), str(tmp_path / "libghost.so.1")], check=True
    )
    apk = tmp_path / "ghost-1.0-r0.apk"
    write_apk(
        apk,
        PackageInfo(name="ghost", version="1.0-r0", arch=fixture_repo.arch),
        [PlannedFile("usr/bin/ghost", source=tmp_path / "ghost", mode=0o755)],
    )
    assert main(["suggest", str(apk), "--no-strength", *cli_environment(fixture_repo, tmp_path / "c")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no proposed step passed" in captured.err
    assert "skipped 'test/tw/ldd-check'" in captured.err
    assert "libghost.so.1" in captured.err


class _NeedsMake:
    """A proposer (test data, not a stand-in for qackage code) whose step forgets its tool."""

    name: ClassVar[str] = "needs-make"

    def probes(self, analysis: Analysis, seen: Mapping[str, ProbeResult]) -> tuple[ProbeCommand, ...]:
        return ()

    def candidates(self, analysis: Analysis, seen: Mapping[str, ProbeResult]) -> tuple[Candidate, ...]:
        step = Step(name="Make knows its version", runs="make --version\n")
        return (Candidate(step=step, kind=CheckKind.FUNCTIONAL, rationale="test"),)


def test_missing_tool_is_repaired_from_the_repositories(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    request = SuggestRequest(
        validate=_request(fixture_repo, fixture_repo.package("hello").path, tmp_path),
        strength=False,
        proposers=(_NeedsMake(),),
    )
    result = suggest(request, sandbox=Bubblewrap())
    (kept,) = result.kept
    assert kept.candidate.packages == ("make",)
    assert "added make" in kept.note
    assert result.stanza.environment.packages == ("make",)


def test_strength_compares_first_draft_and_final(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    request = SuggestRequest(validate=_request(fixture_repo, fixture_repo.package("hello").path, tmp_path))
    result = suggest(request, sandbox=Bubblewrap())
    assert result.strength is not None
    draft, final = result.strength.draft, result.strength.final
    assert draft.baseline_passed
    assert final.baseline_passed
    assert final.killed >= draft.killed
    assert final.applicable == draft.applicable


@pytest.mark.parametrize(
    "name", ["hello", "libgreet", "hello-dev", "hello-static", "hello-doc", "py3-pyfoo", "tinyd", "shtools"]
)
def test_suggested_stanza_kills_every_mutant(fixture_repo: RepositoryBuild, tmp_path: Path, name: str) -> None:
    """Issue 5's promise: the proposal is strong, and never weaker than its first draft."""
    request = SuggestRequest(validate=_request(fixture_repo, fixture_repo.package(name).path, tmp_path))
    result = suggest(request, sandbox=Bubblewrap())
    assert result.strength is not None
    final = result.strength.final
    assert final.verdict.value == "strong", [(m.operator, m.target) for m in final.survivors]
    assert final.killed == final.applicable > 0
    assert result.strength.draft.killed <= final.killed
