"""ELF, symlink and executable facts on real binaries compiled in the test."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from qackage.analyze.base import Facet, run_facets
from qackage.analyze.capture import capture
from qackage.analyze.elf import ElfFacet
from qackage.analyze.elfimage import WHOLE_FILE_LIMIT, ElfCapture
from qackage.analyze.elfparse import parse_elf
from qackage.analyze.executables import ExecutableFacet
from qackage.analyze.links import SymlinkFacet
from qackage.analyze.shebang import parse_shebang
from qackage.apk.archive import ApkArchive
from qackage.apk.writer import PlannedFile, write_apk
from qackage.model import ElfType, EntryKind, Facts, Language, PackageInfo

LIB_C = """
#include <string.h>
int foo_add(int a, int b) { return a + b + (int)strlen(""); }
size_t foo_len(const char *s) { return strlen(s); }
const char *foo_version(void) { return "1.2.3"; }
__attribute__((visibility("hidden"))) int foo_internal(void) { return 7; }
static int foo_private(void) { return 8; }
int foo_uses_private(void) { return foo_private(); }
"""

PROG_C = """
#include <stdio.h>
int foo_add(int, int);
int main(int argc, char **argv) { printf("%d\\n", foo_add(argc, 2)); return 0; }
"""

BIG_C = """
#include <stdio.h>
const char big_table[20 << 20] = {1, 2, 3};
int main(int argc, char **argv) { printf("%d\\n", big_table[argc]); return 0; }
"""


def _cc(tmp: Path, name: str, source: str, *args: str) -> Path:
    src = tmp / f"{name}.c"
    src.write_text(source)
    out = tmp / name
    subprocess.run(["gcc", "-O1", "-o", str(out), str(src), *args], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def binaries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("elf")
    lib = _cc(tmp, "libfoo.so.1.0.0", LIB_C, "-shared", "-fPIC", "-Wl,-soname,libfoo.so.1")
    (tmp / "libfoo.so").symlink_to(lib.name)
    built = {
        "lib": lib,
        "pie": _cc(
            tmp, "pie", PROG_C, "-fPIE", "-pie", f"-L{tmp}", "-lfoo", "-Wl,--enable-new-dtags,-rpath,/opt/foo/lib"
        ),
        "nopie": _cc(
            tmp, "nopie", PROG_C, "-no-pie", f"-L{tmp}", "-lfoo", "-Wl,--disable-new-dtags,-rpath,/usr/lib/foo"
        ),
        "static": _cc(tmp, "static", "int main(void){return 0;}", "-static"),
        "big": _cc(tmp, "big", BIG_C),
    }
    stripped = tmp / "pie-stripped"
    shutil.copy(built["pie"], stripped)
    subprocess.run(["strip", str(stripped)], check=True)
    built["stripped"] = stripped
    return built


def _image(path: Path, chunk: int = 65536) -> ElfCapture:
    capture_ = ElfCapture(path.stat().st_size)
    with path.open("rb") as handle:
        while data := handle.read(chunk):
            capture_.feed(data)
    return capture_


def test_shared_library_facts(binaries: dict[str, Path]) -> None:
    record = parse_elf("usr/lib/libfoo.so.1.0.0", _image(binaries["lib"]).image())
    assert record is not None
    assert record.elf_type is ElfType.SHARED_LIBRARY
    assert record.is_library
    assert record.soname == "libfoo.so.1"
    assert "libc.so.6" in record.needed
    assert {"foo_add", "foo_version", "foo_uses_private"} <= set(record.exported_functions)
    assert "foo_internal" not in record.exported_functions  # hidden visibility
    assert "foo_private" not in record.exported_functions  # static
    assert record.language is Language.C
    assert record.machine in ("x86_64", "aarch64")
    assert record.bits == 64


def test_pie_executable_with_runpath(binaries: dict[str, Path]) -> None:
    record = parse_elf("usr/bin/pie", _image(binaries["pie"]).image())
    assert record is not None
    assert record.elf_type is ElfType.EXECUTABLE
    assert record.pie and not record.static
    assert record.interpreter is not None and "ld-linux" in record.interpreter
    assert record.needed[0] == "libfoo.so.1"
    assert record.runpath == ("/opt/foo/lib",)
    assert record.rpath == ()
    assert record.stripped is False


def test_non_pie_with_rpath_and_stripping(binaries: dict[str, Path]) -> None:
    nopie = parse_elf("usr/bin/nopie", _image(binaries["nopie"]).image())
    assert nopie is not None and nopie.elf_type is ElfType.EXECUTABLE and not nopie.pie
    assert nopie.rpath == ("/usr/lib/foo",) and nopie.runpath == ()
    stripped = parse_elf("usr/bin/s", _image(binaries["stripped"]).image())
    assert stripped is not None and stripped.stripped


def test_static_executable(binaries: dict[str, Path]) -> None:
    record = parse_elf("usr/bin/static", _image(binaries["static"]).image())
    assert record is not None
    assert record.static
    assert record.interpreter is None and record.needed == ()


def test_large_file_is_captured_sparsely_with_full_facts(binaries: dict[str, Path]) -> None:
    big = binaries["big"]
    assert big.stat().st_size > WHOLE_FILE_LIMIT
    image = _image(big, chunk=100_000).image()
    assert not image.complete
    assert sum(len(c) for c in image.chunks) < 12 << 20
    record = parse_elf("usr/bin/big", image)
    assert record is not None
    assert record.needed == ("libc.so.6",)
    assert record.interpreter is not None
    assert record.stripped is False
    assert record.partial is False


def test_garbage_after_magic_is_not_an_elf() -> None:
    capture_ = ElfCapture(64)
    capture_.feed(b"\x7fELF" + b"\xff" * 60)
    assert parse_elf("usr/bin/bad", capture_.image()) is None


def test_truncated_elf_never_raises(binaries: dict[str, Path]) -> None:
    data = binaries["pie"].read_bytes()
    for cut in (16, 64, 700, len(data) // 2, len(data) - 10):
        capture_ = ElfCapture(cut)
        capture_.feed(data[:cut])
        parse_elf("usr/bin/cut", capture_.image())  # a record or None, never an exception


@pytest.mark.skipif(shutil.which("go") is None, reason="go toolchain not installed (.ci/run installs golang-go)")
def test_go_binary_build_info(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module example.com/hellogo\n\ngo 1.19\n")
    (tmp_path / "main.go").write_text('package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hi") }\n')
    env = {
        **os.environ,
        "GOCACHE": str(tmp_path / "cache"),
        "GOFLAGS": "-mod=mod",
        "GOPROXY": "off",
        "CGO_ENABLED": "0",
    }
    subprocess.run(["go", "build", "-o", "hellogo", "."], cwd=tmp_path, env=env, check=True, capture_output=True)
    record = parse_elf("usr/bin/hellogo", _image(tmp_path / "hellogo").image())
    assert record is not None
    assert record.language is Language.GO
    assert record.go is not None
    assert record.go.go_version.startswith("go1.")
    assert record.go.main_module == "example.com/hellogo"
    assert record.go.path == "example.com/hellogo"
    assert record.static


def _rustc() -> str | None:
    return shutil.which("rustc") or next((str(p) for p in [Path.home() / ".cargo/bin/rustc"] if p.exists()), None)


@pytest.mark.skipif(_rustc() is None, reason="rustc not installed")
def test_rust_binary_is_recognised(tmp_path: Path) -> None:
    rustc = _rustc()
    assert rustc is not None
    (tmp_path / "main.rs").write_text(
        'fn main() { let v: Vec<u32> = std::env::args().map(|a| a.len() as u32).collect(); println!("{}", v[5]); }\n'
    )
    subprocess.run(
        [rustc, "-O", "-o", str(tmp_path / "hellors"), str(tmp_path / "main.rs")], check=True, capture_output=True
    )
    record = parse_elf("usr/bin/hellors", _image(tmp_path / "hellors").image())
    assert record is not None
    assert record.language is Language.RUST


def test_facets_over_a_real_package(binaries: dict[str, Path], tmp_path: Path) -> None:
    files = [
        PlannedFile("usr/lib/libfoo.so.1.0.0", source=binaries["lib"], mode=0o755),
        PlannedFile("usr/lib/libfoo.so.1", EntryKind.SYMLINK, 0o777, link_target="libfoo.so.1.0.0"),
        PlannedFile("usr/lib/libfoo.so", EntryKind.SYMLINK, 0o777, link_target="/usr/lib/libfoo.so.1"),
        PlannedFile("usr/bin/foo", source=binaries["pie"], mode=0o755),
        PlannedFile("usr/bin/foo-hard", EntryKind.HARDLINK, 0o755, link_target="usr/bin/foo"),
        PlannedFile("usr/bin/foo-alias", EntryKind.SYMLINK, 0o777, link_target="foo"),
        PlannedFile("usr/bin/vi", EntryKind.SYMLINK, 0o777, link_target="/usr/bin/busybox"),
        PlannedFile("usr/bin/loop-a", EntryKind.SYMLINK, 0o777, link_target="loop-b"),
        PlannedFile("usr/bin/loop-b", EntryKind.SYMLINK, 0o777, link_target="loop-a"),
        PlannedFile("usr/bin/foo-report", data=b"#!/usr/bin/env python3\nprint('hi')\n", mode=0o755),
        PlannedFile("usr/libexec/foo/helper", data=b"#!/bin/sh -e\necho help\n", mode=0o755),
        PlannedFile("usr/share/foo/readme.txt", data=b"not executable\n", mode=0o644),
        PlannedFile("usr/lib/libfoo.a", data=b"!<arch>\n" + b"\0" * 60),
    ]
    apk = tmp_path / "foo-1.0-r0.apk"
    write_apk(apk, PackageInfo(name="foo", version="1.0-r0", arch="x86_64"), files)
    facets: list[Facet] = [ElfFacet(), SymlinkFacet(), ExecutableFacet()]
    with ApkArchive.open(apk) as archive:
        view = capture(archive, facets)
        assert archive.check.datahash_verified
    facts = run_facets(view, facets)
    assert [f.path for f in facts.elf_files] == ["usr/bin/foo", "usr/lib/libfoo.so.1.0.0"]
    (library,) = facts.shared_libraries
    assert library.soname == "libfoo.so.1"
    assert library.aliases == ("usr/lib/libfoo.so", "usr/lib/libfoo.so.1")
    assert facts.static_libraries == ("usr/lib/libfoo.a",)
    links = {s.path: s for s in facts.symlinks}
    assert links["usr/lib/libfoo.so"].resolved == "usr/lib/libfoo.so.1.0.0"
    assert links["usr/lib/libfoo.so"].chain == ("usr/lib/libfoo.so.1", "usr/lib/libfoo.so.1.0.0")
    assert links["usr/lib/libfoo.so"].absolute
    assert links["usr/bin/vi"].dangling and not links["usr/bin/vi"].loop
    assert links["usr/bin/loop-a"].loop and links["usr/bin/loop-a"].dangling
    executables = {e.path: e for e in facts.executables}
    assert set(executables) == {
        "usr/bin/foo",
        "usr/bin/foo-hard",
        "usr/bin/foo-alias",
        "usr/bin/vi",
        "usr/bin/foo-report",
        "usr/libexec/foo/helper",
    }
    assert executables["usr/bin/foo"].elf and executables["usr/bin/foo-alias"].elf
    assert executables["usr/bin/foo-hard"].elf
    assert executables["usr/bin/foo-report"].interpreter == "python3"
    assert executables["usr/libexec/foo/helper"].interpreter == "/bin/sh"
    assert not executables["usr/libexec/foo/helper"].on_path
    assert not executables["usr/bin/vi"].elf


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"#!/bin/sh\n", "/bin/sh"),
        (b"#! /usr/bin/perl -w\n", "/usr/bin/perl"),
        (b"#!/usr/bin/env -S python3 -u\n", "python3"),
        (b"#!/usr/bin/env LC_ALL=C bash\n", "bash"),
        (b"#!\n", None),
        (b"\x7fELF", None),
    ],
)
def test_shebang_interpreter(head: bytes, expected: str | None) -> None:
    shebang = parse_shebang(head)
    assert (shebang.interpreter if shebang else None) == expected


def test_facts_default_is_empty() -> None:
    assert Facts().elf_files == ()


@pytest.mark.parametrize("split", [1, 3, 6])
def test_marker_split_across_chunks_is_found(split: int) -> None:
    data = b"\x7fELF" + b"\0" * 1000 + b"panicked at /rustc/abc123/library/std/src/rt.rs" + b"\0" * 1000
    at = data.index(b"library/std/src/") + split
    capture_ = ElfCapture(len(data))
    capture_.feed(data[:at])
    capture_.feed(data[at:])
    assert "rust-panic-path" in capture_.image().markers


def test_tiny_chunks_still_find_markers() -> None:
    data = b"\x7fELF" + b"x" * 50 + b"/rustc/0f1e/library/std/src/panicking.rs" + b"y" * 50
    capture_ = ElfCapture(len(data))
    for index in range(len(data)):
        capture_.feed(data[index : index + 1])
    assert "rust-panic-path" in capture_.image().markers
