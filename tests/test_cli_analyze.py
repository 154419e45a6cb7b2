"""`qackage analyze` end to end: text, JSON against the published schema, sources, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from qackage.apk.repository import Repository
from qackage.apk.writer import PlannedFile, SigningKey, write_apk
from qackage.build import RepositoryBuild
from qackage.cli.main import main
from qackage.model import EntryKind, PackageInfo
from qackage.schema import SCHEMAS, generated_schema, published_schema
from qackage.validate.extract import ExtractCache
from qackage.validate.rootfs import build_root

PC = b"""prefix=/usr
libdir=${prefix}/lib
includedir=${prefix}/include

Name: demo
Description: demo library
Version: 2.1
Libs: -L${libdir} -ldemo
Cflags: -I${includedir}
"""


@pytest.fixture(scope="module")
def demo_apk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("demo")
    src = tmp / "demo.c"
    src.write_text('#include <stdio.h>\nint demo_hello(void){ return puts("hi"); }\n')
    lib = tmp / "libdemo.so.2"
    subprocess.run(["gcc", "-shared", "-fPIC", "-Wl,-soname,libdemo.so.2", "-o", str(lib), str(src)], check=True)
    files = [
        PlannedFile("usr/lib/libdemo.so.2", source=lib, mode=0o755),
        PlannedFile("usr/lib/libdemo.so", EntryKind.SYMLINK, 0o777, link_target="libdemo.so.2"),
        PlannedFile("usr/lib/pkgconfig/demo.pc", data=PC),
        PlannedFile("usr/include/demo.h", data=b"int demo_hello(void);\n"),
        PlannedFile("usr/bin/demo-config", data=b"#!/bin/sh\necho -ldemo\n", mode=0o755),
    ]
    info = PackageInfo(name="demo-dev", version="2.1-r0", arch="x86_64", origin="demo", license="MIT")
    apk = tmp / "demo-dev-2.1-r0.apk"
    write_apk(apk, info, files)
    return apk


def test_json_output_validates_against_published_schema(demo_apk: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(demo_apk), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    jsonschema.validate(data, json.loads(published_schema("analysis")))
    assert data["package"]["name"] == "demo-dev"
    assert data["check"]["datahash_verified"] is True
    assert [lib["soname"] for lib in data["facts"]["shared_libraries"]] == ["libdemo.so.2"]
    assert data["facts"]["pkgconfig"][0]["module"] == "demo"
    assert data["facts"]["headers"][0]["include_name"] == "demo.h"
    assert data["kind"]["primary"] == "dev"


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_published_schemas_are_current(name: str) -> None:
    assert published_schema(name) == generated_schema(name), "stale: regenerate with python -m qackage.schema"


def test_schema_rejects_wrong_output() -> None:
    schema = json.loads(published_schema("analysis"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"package": {"name": "x"}}, schema)


def test_text_output(demo_apk: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(demo_apk)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("demo-dev 2.1-r0 (x86_64), origin demo\n")
    assert "  kind: dev" in out
    assert "datahash verified" in out
    assert "usr/lib/libdemo.so.2 (libdemo.so.2) <- usr/lib/libdemo.so" in out


def test_output_file_is_written_whole(demo_apk: Path, tmp_path: Path) -> None:
    out = tmp_path / "analysis.json"
    assert main(["analyze", str(demo_apk), "--json", "-o", str(out)]) == 0
    assert json.loads(out.read_text())["package"]["version"] == "2.1-r0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["analysis.json"]


def test_output_to_dev_null_does_not_replace_it(demo_apk: Path) -> None:
    assert main(["analyze", str(demo_apk), "-o", "/dev/null"]) == 0
    assert Path("/dev/null").is_char_device()


def test_extracted_directory_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "pkg"
    (root / "usr/bin").mkdir(parents=True)
    (root / ".PKGINFO").write_text("pkgname = tool\npkgver = 3.0-r1\narch = x86_64\n")
    tool = root / "usr/bin/tool"
    shutil.copy(shutil.which("true") or "/bin/true", tool)
    (root / "usr/bin/tool2").symlink_to("tool")
    assert main(["analyze", str(root), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["check"]["source"] == "directory"
    assert data["package"]["version"] == "3.0-r1"
    assert {e["path"] for e in data["facts"]["executables"]} == {"usr/bin/tool", "usr/bin/tool2"}
    assert all(e["elf"] for e in data["facts"]["executables"])


def test_signed_package_with_keyring(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = SigningKey.generate("ci.rsa.pub")
    other = SigningKey.generate("other.rsa.pub")
    keyring = tmp_path / "keys"
    key.write_public(keyring)
    apk = tmp_path / "signed.apk"
    write_apk(apk, PackageInfo(name="signed", version="1-r0"), [PlannedFile("usr/share/x", data=b"x")], signing_key=key)
    assert main(["analyze", str(apk), "--keyring", str(keyring)]) == 0
    assert "signature by ci.rsa.pub verified" in capsys.readouterr().out
    stranger = tmp_path / "stranger.apk"
    write_apk(
        stranger, PackageInfo(name="s", version="1-r0"), [PlannedFile("usr/share/x", data=b"x")], signing_key=other
    )
    assert main(["analyze", str(stranger), "--keyring", str(keyring)]) == 2
    assert "not in the keyring" in capsys.readouterr().err


def test_missing_file_and_missing_argument(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(tmp_path / "nope.apk")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["analyze"]) == 2
    assert "PKG is required" in capsys.readouterr().err


def test_console_script_runs_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.apk"
    bad.write_bytes(b"garbage")
    result = subprocess.run(
        [sys.executable, "-m", "qackage", "analyze", str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert result.stderr == f"qackage: error: {bad}: not a gzip stream\n"


def test_installed_package_in_a_root(
    fixture_repo: RepositoryBuild, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Build a real root (packages installed, apk db written), then analyze from it."""
    root = tmp_path / "root"
    root.mkdir()
    repository = Repository.open(str(fixture_repo.root), fixture_repo.arch)
    build_root(
        root,
        package_under_test=None,
        packages=["hello"],
        repositories=[repository],
        cache=ExtractCache(tmp_path / "cache"),
        arch=fixture_repo.arch,
    )
    assert main(["analyze", "--root", str(root), "libgreet", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["check"]["source"] == "installed"
    assert data["check"]["datahash_verified"] is True  # every file matched its Z: checksum
    assert [lib["soname"] for lib in data["facts"]["shared_libraries"]] == ["libgreet.so.1"]
    assert main(["analyze", "--root", str(root), "not-installed"]) == 2
    assert "not-installed" in capsys.readouterr().err
