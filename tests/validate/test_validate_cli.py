"""`qackage validate` end to end: real fixture packages, real repository, real bubblewrap."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from bundles import greetkit_files, greetkit_info, shared_greetkit, write_bundle
from repoenv import cli_environment

from qackage.apk.writer import PlannedFile
from qackage.build import RepositoryBuild
from qackage.cli.main import main
from qackage.schema import published_schema

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

# A wolfi-dev/os-style stanza for a package that ships a program, its library and a .pc.
GREETKIT_STANZA = """\
test:
  environment:
    contents:
      packages:
        - pkgconf
  pipeline:
    - uses: test/tw/ldd-check
    - uses: test/tw/ver-check
      with:
        bins: hello
    - uses: test/pkgconf
    - name: Greets through the library
      runs: |
        out=$(hello greet wolfi)
        test "$out" = "Hello, wolfi!"
"""


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    captured = capsys.readouterr()
    assert captured.out, captured.err
    result: dict[str, Any] = json.loads(captured.out)
    return result


@pytest.fixture(scope="module")
def greetkit(fixture_repo: RepositoryBuild, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`greetkit` (hello and its subpackages in one package) and broken copies of it."""
    tmp = tmp_path_factory.mktemp("greetkit-broken")
    files = greetkit_files(fixture_repo)
    info = greetkit_info(fixture_repo)

    def build(name: str, changed: list[PlannedFile]) -> Path:
        return write_bundle(tmp / f"{name}.apk", info, changed)

    pc = next(f for f in files if f.path.endswith(".pc"))
    broken_pc = dataclasses.replace(pc, data=(pc.data or b"") + b"Requires: no-such-module-anywhere\n")
    return {
        "good": shared_greetkit(fixture_repo, tmp_path_factory),
        "missing-library": build(
            "missing-library", [f for f in files if not f.path.startswith("usr/lib/libgreet.so.1")]
        ),
        "stub-binary": build(
            "stub-binary",
            [
                PlannedFile(f.path, mode=0o755, data=b"#!/bin/sh\nexit 0\n") if f.path == "usr/bin/hello" else f
                for f in files
            ],
        ),
        "broken-pc": build("broken-pc", [broken_pc if f is pc else f for f in files]),
        "stanza": _write(tmp / "greetkit-test.yaml", GREETKIT_STANZA),
    }


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_bundled_example_passes(
    fixture_repo: RepositoryBuild, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    apk = fixture_repo.package("hello").path
    code = main(
        ["validate", str(apk), "--test", str(FIXTURES / "hello/melange.yaml"), *cli_environment(fixture_repo, tmp_path)]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("hello: PASSED")
    assert "test/tw/ldd-check" in out


@pytest.mark.parametrize("name", ["libgreet", "hello-dev", "hello-static", "hello-doc", "hello-bash-completion"])
def test_every_hello_subpackage_passes_its_own_test(
    fixture_repo: RepositoryBuild, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    apk = fixture_repo.package(name).path
    code = main(
        ["validate", str(apk), "--test", str(FIXTURES / "hello/melange.yaml"), *cli_environment(fixture_repo, tmp_path)]
    )
    out = capsys.readouterr().out
    assert code == 0, out


def test_wolfi_style_stanza_passes_on_the_good_package(
    fixture_repo: RepositoryBuild, greetkit: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "validate",
            str(greetkit["good"]),
            "--test",
            str(greetkit["stanza"]),
            "--json",
            *cli_environment(fixture_repo, tmp_path),
        ]
    )
    report = _json(capsys)
    jsonschema.validate(report, json.loads(published_schema("validate-report")))
    assert code == 0, report
    assert report["passed"] is True
    assert report["environment"]["mode"] == "repository"
    installed = {p["name"]: p["source"] for p in report["environment"]["installed"]}
    assert installed["greetkit"] == "package under test"
    assert {"pkgconf", "wolfi-base", "glibc", "busybox"} <= set(installed)
    assert [s["status"] for s in report["steps"]] == ["passed"] * len(report["steps"])


@pytest.mark.parametrize(
    ("broken", "failing_uses"),
    [
        ("missing-library", "test/tw/ldd-check"),
        ("stub-binary", "test/tw/ver-check"),
        ("broken-pc", "test/pkgconf"),
    ],
)
def test_wolfi_style_stanza_fails_on_broken_copies(
    fixture_repo: RepositoryBuild,
    greetkit: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    broken: str,
    failing_uses: str,
) -> None:
    code = main(
        [
            "validate",
            str(greetkit[broken]),
            "--test",
            str(greetkit["stanza"]),
            "--json",
            "--keep-going",
            *cli_environment(fixture_repo, tmp_path),
        ]
    )
    report = _json(capsys)
    assert code == 1
    assert report["passed"] is False
    failed = {s["uses"] for s in report["steps"] if s["status"] == "failed"}
    assert failing_uses in failed, report["steps"]


def test_first_failure_stops_the_test_like_melange(
    fixture_repo: RepositoryBuild, greetkit: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "validate",
            str(greetkit["stub-binary"]),
            "--test",
            str(greetkit["stanza"]),
            "--json",
            *cli_environment(fixture_repo, tmp_path),
        ]
    )
    steps = _json(capsys)["steps"]
    assert code == 1
    statuses = [s["status"] for s in steps]
    first_failure = statuses.index("failed")
    assert set(statuses[first_failure + 1 :]) <= {"not-run", "skipped"}


def test_host_base_mode_without_repository(
    greetkit: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stanza = _write(
        tmp_path / "t.yaml",
        "test:\n  pipeline:\n    - runs: |\n        hello greet host\n"
        "        test -x /usr/bin/hello\n        grep -q '^P:greetkit' /lib/apk/db/installed\n",
    )
    code = main(["validate", str(greetkit["good"]), "--test", str(stanza), "--cache-dir", str(tmp_path / "c")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "host-base root" in out
    assert "weaker" in out


def test_repeat_runs_every_attempt(
    fixture_repo: RepositoryBuild, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stanza = _write(
        tmp_path / "flaky.yaml",
        "test:\n  pipeline:\n    - name: Flaky\n      runs: |\n"
        "        n=$(od -An -N1 -tu1 /dev/urandom)\n        test $((n % 2)) -eq 0\n",
    )
    apk = fixture_repo.package("hello").path
    main(
        [
            "validate",
            str(apk),
            "--test",
            str(stanza),
            "--repeat",
            "12",
            "--json",
            *cli_environment(fixture_repo, tmp_path),
        ]
    )
    report = _json(capsys)
    assert report["attempts"] == 12
    assert report["flaky_steps"] == ["Flaky"]  # 12 coin flips all equal: 1 in 2048
    assert report["passed"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--test", "/nonexistent.yaml"], "nonexistent.yaml"),
        (["--repeat", "0"], "--repeat must be at least 1"),
        (["--timeout", "-1"], "--timeout must be positive"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    fixture_repo: RepositoryBuild, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    apk = fixture_repo.package("hello").path
    full = ["validate", str(apk), "--test", str(FIXTURES / "hello/melange.yaml"), *args]
    assert main(full) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err


def test_unknown_pipeline_and_undefined_input(
    tmp_path: Path, fixture_repo: RepositoryBuild, capsys: pytest.CaptureFixture[str]
) -> None:
    apk = fixture_repo.package("hello").path
    unknown = _write(tmp_path / "u.yaml", "test:\n  pipeline:\n    - uses: test/no-such-pipeline\n")
    assert main(["validate", str(apk), "--test", str(unknown)]) == 2
    assert "test/no-such-pipeline" in capsys.readouterr().err
    bad_input = _write(
        tmp_path / "b.yaml",
        "test:\n  pipeline:\n    - uses: test/tw/ver-check\n      with:\n        bins: hello\n        colour: blue\n",
    )
    assert main(["validate", str(apk), "--test", str(bad_input)]) == 2
    assert 'undefined input "colour"' in capsys.readouterr().err


def test_unresolvable_test_package_is_reported(
    tmp_path: Path, fixture_repo: RepositoryBuild, capsys: pytest.CaptureFixture[str]
) -> None:
    apk = fixture_repo.package("hello").path
    stanza = _write(
        tmp_path / "t.yaml",
        "test:\n  environment:\n    contents:\n      packages:\n"
        "        - no-such-tool\n  pipeline:\n    - runs: hello --version\n",
    )
    assert main(["validate", str(apk), "--test", str(stanza), *cli_environment(fixture_repo, tmp_path)]) == 2
    assert "no-such-tool" in capsys.readouterr().err


def test_step_limits_are_reported(
    tmp_path: Path, fixture_repo: RepositoryBuild, capsys: pytest.CaptureFixture[str]
) -> None:
    apk = fixture_repo.package("hello").path
    stanza = _write(tmp_path / "t.yaml", "test:\n  pipeline:\n    - name: Sleeps forever\n      runs: sleep 1000\n")
    code = main(
        ["validate", str(apk), "--test", str(stanza), "--timeout", "2", *cli_environment(fixture_repo, tmp_path)]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "timed out after 2 s" in out
