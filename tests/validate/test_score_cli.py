"""`qackage score` end to end: fixture repository, real mutants, real bubblewrap."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from bundles import build_greetkit

from qackage.build import RepositoryBuild
from qackage.cli.main import main
from qackage.schema import published_schema

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
VER_CHECK_ONLY = "test:\n  pipeline:\n    - uses: test/tw/ver-check\n      with:\n        bins: hello\n"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shared by the module: extraction and score caches (later runs of a score reuse them)."""
    return tmp_path_factory.mktemp("score-cli-cache")


def _common(repo: RepositoryBuild, cache: Path) -> list[str]:
    return [
        "-r", str(repo.root), "--keyring", str(repo.keyring), "--test-package-append", "wolfi-base",
        "--cache-dir", str(cache),
    ]  # fmt: skip


def _score(repo: RepositoryBuild, cache: Path, test: Path, *extra: str, apk: Path | None = None) -> list[str]:
    package = apk or repo.package("hello").path
    return ["score", str(package), "--test", str(test), *_common(repo, cache), *extra]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    captured = capsys.readouterr()
    assert captured.out, captured.err
    data: dict[str, Any] = json.loads(captured.out)
    return data


def test_superficial_stanza_json_follows_the_schema_and_exits_1(
    fixture_repo: RepositoryBuild, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """hello, libgreet and its -dev, -static, -doc and completion files in one package."""
    stanza = _write(tmp_path / "weak.yaml", VER_CHECK_ONLY)
    greetkit = build_greetkit(fixture_repo, tmp_path)
    code = main(_score(fixture_repo, cache_dir, stanza, "--json", apk=greetkit))
    report = _json(capsys)
    jsonschema.validate(report, json.loads(published_schema("strength-report")))
    assert code == 1
    assert report["verdict"] == "superficial"
    assert report["baseline_passed"] is True
    assert report["checks"] == [{"title": "test/tw/ver-check", "kind": "version"}]
    assert report["package"] == "greetkit"
    survivors = {(s["operator"], s["target"]) for s in report["survivors"]}
    assert ("drop-completion", "usr/share/bash-completion/completions/hello") in survivors
    assert all(s["description"] for s in report["survivors"])


def test_text_report_names_survivors_and_kills(
    fixture_repo: RepositoryBuild, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(_score(fixture_repo, cache_dir, FIXTURES / "hello/melange.yaml", "-o", str(tmp_path / "out.txt")))
    assert capsys.readouterr().out == ""
    text = (tmp_path / "out.txt").read_text()
    first = text.splitlines()[0]
    assert first.startswith("hello 2.12.1-r1: ")
    assert "mutants killed" in first
    assert "  baseline: passed on the good package" in text
    assert "    functional  Greets through libgreet" in text
    assert "  killed:" in text
    assert "  why:" in text
    assert code == (0 if ": strong," in first else 1)
    if "survivors" in text:
        assert code == 1


def test_strong_score_exits_0(
    fixture_repo: RepositoryBuild, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Limited to operators whose every mutant the bundled stanza kills, the verdict is strong."""
    main(_score(fixture_repo, cache_dir, FIXTURES / "hello/melange.yaml", "--json"))
    outcomes = _json(capsys)["outcomes"]
    operators = {o["operator"] for o in outcomes}
    caught = sorted(op for op in operators if all(o["killed"] for o in outcomes if o["operator"] == op))
    assert caught, outcomes
    chosen = [arg for op in caught for arg in ("--operator", op)]
    command = _score(fixture_repo, cache_dir, FIXTURES / "hello/melange.yaml", "--json", *chosen)
    code = main(command)
    text = capsys.readouterr().out
    report = json.loads(text)
    assert code == 0, report
    assert report["verdict"] == "strong"
    assert report["kill_rate"] == 1.0
    assert all(o["cached"] for o in report["outcomes"])  # the first run scored them all
    assert main(command) == 0
    assert capsys.readouterr().out == text  # a re-run reports exactly the same
    assert main([*command, "--no-cache"]) == 0
    fresh = _json(capsys)
    assert not fresh["baseline"]["cached"]
    assert not any(o["cached"] for o in fresh["outcomes"])
    assert [(o["operator"], o["target"], o["killed"]) for o in fresh["outcomes"]] == [
        (o["operator"], o["target"], o["killed"]) for o in report["outcomes"]
    ]


def test_failing_baseline_exits_1_and_says_why(
    fixture_repo: RepositoryBuild, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stanza = _write(
        tmp_path / "wrong.yaml",
        "test:\n  pipeline:\n    - name: Wrong greeting\n      runs: |\n"
        "        echo 'looking for a greeting' >&2\n        hello greet world | grep -qx 'Goodbye, world!'\n",
    )
    code = main(_score(fixture_repo, cache_dir, stanza))
    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith("hello 2.12.1-r1: baseline-failed, nothing scored")
    assert "  baseline: FAILED on the good package" in out
    assert "    failed step: Wrong greeting" in out
    assert "    | looking for a greeting" in out
    assert "killed:" not in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--workers", "0"], "workers must be at least 1"),
        (["--repeat", "0"], "--repeat must be at least 1"),
    ],
)
def test_bad_options_exit_2(
    fixture_repo: RepositoryBuild,
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    code = main(_score(fixture_repo, cache_dir, FIXTURES / "hello/melange.yaml", *extra))
    assert code == 2
    assert message in capsys.readouterr().err


def test_unknown_operator_exits_2(
    fixture_repo: RepositoryBuild, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(_score(fixture_repo, cache_dir, FIXTURES / "hello/melange.yaml", "--operator", "no-such-thing"))
    assert code == 2
    assert "no-such-thing" in capsys.readouterr().err


def test_missing_test_file_exits_2(
    fixture_repo: RepositoryBuild, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(_score(fixture_repo, cache_dir, tmp_path / "absent.yaml"))
    assert code == 2
    assert "absent.yaml" in capsys.readouterr().err


def test_a_stanza_for_another_package_exits_2(
    fixture_repo: RepositoryBuild, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bundled file builds hello; scoring libgreet-dev's test against hello is refused."""
    code = main(_score(fixture_repo, cache_dir, FIXTURES / "hello/melange.yaml", "--package", "hello-dev"))
    assert code == 2
    assert "hello-dev" in capsys.readouterr().err
