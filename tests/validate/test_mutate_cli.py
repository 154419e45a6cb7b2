"""`qackage mutate`: the command over `write_mutants`, its output, and its refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from qackage.apk.archive import ApkArchive
from qackage.build import RepositoryBuild
from qackage.cli.main import main
from qackage.jsonout import json_schema
from qackage.validate.mutants import MANIFEST_NAME, OPERATORS, MutantManifest


def _manifest(out_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    return data


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("qackage: error: ")
    return lines[0]


def test_list_prints_every_operator(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mutate", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(OPERATORS)
    for line, summary in zip(lines, OPERATORS.values(), strict=True):
        assert line.endswith(summary)


def test_writes_mutants_and_prints_one_line_each(
    fixture_repo: RepositoryBuild, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "hello-dev"
    assert main(["mutate", str(fixture_repo.package("hello-dev").path), "-o", str(out_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    mutants = _manifest(out_dir)["mutants"]
    assert len(lines) == len(mutants) == 4
    for line, mutant in zip(lines, mutants, strict=True):
        file, operator, target = line.split()[:3]
        assert (file, operator, target) == (str(out_dir / mutant["file"]), mutant["operator"], mutant["target"])
        assert line.endswith(mutant["description"])
        with ApkArchive.open(Path(file)) as archive:
            for _member in archive.members():
                pass
            assert archive.check.datahash_verified


def test_operator_option_selects_operators(
    fixture_repo: RepositoryBuild, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "busybox"
    argv = ["mutate", str(fixture_repo.package("busybox").path), "-o", str(out_dir)]
    assert main([*argv, "--operator", "dangle-symlink", "--operator", "delete-executable"]) == 0
    operators = [m["operator"] for m in _manifest(out_dir)["mutants"]]
    assert operators == ["delete-executable"] * 3 + ["dangle-symlink"] * 3
    capsys.readouterr()
    assert main([*argv, "--operator", "exec-exit-1", "--max-per-operator", "1"]) == 0
    assert [m["key"] for m in _manifest(out_dir)["mutants"]] == ["exec-exit-1:usr/bin/["]
    # The earlier run's files went with it.
    assert sorted(p.name for p in out_dir.iterdir()) == sorted([MANIFEST_NAME, "01-exec-exit-1-usr_bin.apk"])


def test_json_prints_the_manifest(
    fixture_repo: RepositoryBuild, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "tinyd"
    assert main(["mutate", str(fixture_repo.package("tinyd").path), "-o", str(out_dir), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == _manifest(out_dir)
    schema = json_schema(MutantManifest, "https://qackage.dev/schema/mutants.schema.json", "qackage mutate --json")
    jsonschema.validate(printed, schema)
    assert {m["operator"] for m in printed["mutants"]} >= {"daemon-exits", "missing-config"}


def test_look_alike_programs_of_hello(
    fixture_repo: RepositoryBuild, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "hello"
    argv = ["mutate", str(fixture_repo.package("hello").path), "-o", str(out_dir), "--json"]
    assert main([*argv, "--operator", "exec-output-garbled", "--operator", "exec-version-only"]) == 0
    mutants = json.loads(capsys.readouterr().out)["mutants"]
    assert [m["key"] for m in mutants] == ["exec-version-only:usr/bin/hello", "exec-output-garbled:usr/bin/hello"]
    assert "prints 'hello 2.12.1' for --version" in mutants[0]["description"]
    assert "moved to usr/bin.qackage-real/hello" in mutants[1]["description"]
    with ApkArchive.open(out_dir / mutants[1]["file"]) as archive:
        paths = {member.entry.path for member in archive.members()}
        assert archive.check.datahash_verified
    assert {"usr/bin/hello", "usr/bin.qackage-real", "usr/bin.qackage-real/hello"} <= paths


def test_package_without_applicable_operators(
    fixture_repo: RepositoryBuild, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "meta"
    assert main(["mutate", str(fixture_repo.package("hello-meta").path), "-o", str(out_dir)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no mutation operator applies" in captured.err
    assert _manifest(out_dir)["mutants"] == []


def test_missing_package_is_refused_and_nothing_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "out"
    assert main(["mutate", str(tmp_path / "nope.apk"), "-o", str(out_dir)]) == 2
    assert "nope.apk: no such file" in _error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_package_is_refused_and_nothing_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.apk"
    bad.write_bytes(b"this is not a gzip stream at all\n" * 20)
    out_dir = tmp_path / "nested" / "out"
    assert main(["mutate", str(bad), "-o", str(out_dir)]) == 2
    _error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.apk"]


def test_folder_is_not_a_package(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "extracted"
    folder.mkdir()
    assert main(["mutate", str(folder), "-o", str(tmp_path / "out")]) == 2
    assert "not a regular file" in _error_line(capsys)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--operator", "no-such-operator"], "unknown mutation operator no-such-operator"),
        (["--max-per-operator", "0"], "--max-per-operator must be at least 1"),
    ],
)
def test_bad_options_are_refused(
    fixture_repo: RepositoryBuild, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    out_dir = tmp_path / "out"
    assert main(["mutate", str(fixture_repo.package("hello").path), "-o", str(out_dir), *extra]) == 2
    assert message in _error_line(capsys)
    assert not out_dir.exists()


def test_output_is_required(fixture_repo: RepositoryBuild, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mutate", str(fixture_repo.package("hello").path)]) == 2
    assert "-o DIR is required" in _error_line(capsys)


def test_output_that_is_not_ours_is_left_alone(
    fixture_repo: RepositoryBuild, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = str(fixture_repo.package("hello").path)
    a_file = tmp_path / "a-file"
    a_file.write_text("keep me\n")
    assert main(["mutate", package, "-o", str(a_file)]) == 2
    assert "is not a directory" in _error_line(capsys)
    assert a_file.read_text() == "keep me\n"
    someone_elses = tmp_path / "project"
    someone_elses.mkdir()
    (someone_elses / "notes.txt").write_text("mine\n")
    assert main(["mutate", package, "-o", str(someone_elses)]) == 2
    assert "not empty" in _error_line(capsys)
    assert [p.name for p in someone_elses.iterdir()] == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["mutate", package, "-o", str(empty)]) == 0
    assert (empty / MANIFEST_NAME).is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary folder left behind"
