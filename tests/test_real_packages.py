"""`qackage analyze` on real Debian packages installed on this machine, repacked as .apk files.

.ci/run installs them; on a machine without one of them the test says so and skips.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pkgfiles import debian_files, package_info

from qackage.apk.writer import write_apk
from qackage.cli.main import main


def _analyze(
    tmp_path: Path, debian: str, name: str, capsys: pytest.CaptureFixture[str], depends: tuple[str, ...] = ()
) -> dict[str, object]:
    apk = tmp_path / f"{name}.apk"
    write_apk(apk, package_info(name, depends=depends), debian_files(debian))
    assert main(["analyze", str(apk), "--json"]) == 0
    data: dict[str, object] = json.loads(capsys.readouterr().out)
    return data


def _kind(data: dict[str, object]) -> str:
    kind = data["kind"]
    assert isinstance(kind, dict)
    return str(kind["primary"])


def _facts(data: dict[str, object]) -> dict[str, list[dict[str, object]]]:
    facts = data["facts"]
    assert isinstance(facts, dict)
    return facts


def test_jq_is_a_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _analyze(tmp_path, "jq", "jq", capsys)
    assert _kind(data) == "cli"
    facts = _facts(data)
    (elf,) = facts["elf_files"]
    assert elf["path"] == "usr/bin/jq"
    assert "libjq.so.1" in elf["needed"]  # type: ignore[operator]
    assert any(d["kind"] == "man" for d in facts["documents"])


def test_libjq_is_a_shared_library(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _analyze(tmp_path, "libjq1", "libjq1", capsys)
    assert _kind(data) == "shared-library"
    (library,) = _facts(data)["shared_libraries"]
    assert library["soname"] == "libjq.so.1"
    elf = _facts(data)["elf_files"][0]
    assert "jq_init" in elf["exported_functions"]  # type: ignore[operator]


def test_expat_dev_is_a_dev_package(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _analyze(tmp_path, "libexpat1-dev", "expat-dev", capsys)
    assert _kind(data) == "dev"
    facts = _facts(data)
    assert {h["include_name"] for h in facts["headers"]} >= {"expat.h", "expat_external.h"}
    assert [p["module"] for p in facts["pkgconfig"]] == ["expat"]


def test_python_distro_is_python(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _analyze(tmp_path, "python3-distro", "py3-distro", capsys)
    assert _kind(data) == "python"
    assert "distro" in {m["name"] for m in _facts(data)["python_modules"]}


def test_perl_error_is_perl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _analyze(tmp_path, "liberror-perl", "perl-error", capsys)
    assert _kind(data) == "perl"
    assert {"Error", "Error::Simple"} <= {m["name"] for m in _facts(data)["perl_modules"]}


def test_commons_cli_is_java(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _analyze(tmp_path, "libcommons-cli-java", "commons-cli", capsys)
    assert _kind(data) == "java"
    assert _facts(data)["java_archives"]
