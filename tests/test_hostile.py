"""The hostile-input corpus: every case is refused with one line, exit code 2, nothing written."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import rawtar
from rawtar import apk, end, header, member, pax_member

from qackage.analyze.capture import capture
from qackage.apk.archive import ApkArchive
from qackage.apk.directory import DirectorySource
from qackage.apk.limits import MIB, Limits
from qackage.cli.main import main
from qackage.errors import CorruptArchiveError, InputError, SignatureError, UnsafeArchiveError


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], bytes]
    error: type[InputError]
    message: str  # a phrase the one-line error must contain


def _usr_tree(*members: bytes) -> bytes:
    return member("usr/", typeflag=b"5", mode=0o755) + b"".join(members) + end()


def _bomb(size: int) -> bytes:
    return _usr_tree(member("usr/zeros", bytes(size)))


def _truncated() -> bytes:
    whole = apk(_usr_tree(member("usr/file", b"x" * 100_000)))
    return whole[: len(whole) - 200]


def _tampered_data() -> bytes:
    good_data = gzip.compress(_usr_tree(member("usr/file", b"good")), mtime=0)
    evil_data = gzip.compress(_usr_tree(member("usr/file", b"evil")), mtime=0)
    info = rawtar.PKGINFO + f"datahash = {hashlib.sha256(good_data).hexdigest()}\n"
    return gzip.compress(member(".PKGINFO", info.encode()), mtime=0) + evil_data


def _trailing_garbage() -> bytes:
    return apk(_usr_tree(member("usr/file", b"x"))) + b"this is not gzip"


CASES = [
    Case(
        "absolute-path", lambda: apk(member("/etc/passwd", b"root::0:0") + end()), UnsafeArchiveError, "absolute path"
    ),
    Case("dotdot", lambda: apk(member("../../etc/cron.d/x", b"x") + end()), UnsafeArchiveError, "path traversal"),
    Case("dotdot-middle", lambda: apk(_usr_tree(member("usr/../../x", b"x"))), UnsafeArchiveError, "path traversal"),
    Case(
        "symlink-escape",
        lambda: apk(_usr_tree(header("usr/shadow", typeflag=b"2", linkname="../../../etc/shadow"))),
        UnsafeArchiveError,
        "escapes the package root",
    ),
    Case(
        "write-through-symlink",
        lambda: apk(_usr_tree(header("usr/lib", typeflag=b"2", linkname="/etc"), member("usr/lib/cron", b"x"))),
        UnsafeArchiveError,
        "through the symlink",
    ),
    Case(
        "hardlink-absolute",
        lambda: apk(_usr_tree(header("usr/pw", typeflag=b"1", linkname="/etc/passwd"))),
        UnsafeArchiveError,
        "absolute path",
    ),
    Case(
        "hardlink-missing",
        lambda: apk(_usr_tree(header("usr/pw", typeflag=b"1", linkname="usr/nothing"))),
        UnsafeArchiveError,
        "does not point at a file",
    ),
    Case("chardev", lambda: apk(_usr_tree(header("usr/null", typeflag=b"3"))), UnsafeArchiveError, "character device"),
    Case("blockdev", lambda: apk(_usr_tree(header("usr/sda", typeflag=b"4"))), UnsafeArchiveError, "block device"),
    Case("fifo", lambda: apk(_usr_tree(header("usr/pipe", typeflag=b"6"))), UnsafeArchiveError, "fifo"),
    Case("sparse", lambda: apk(_usr_tree(header("usr/sparse", typeflag=b"S"))), UnsafeArchiveError, "sparse"),
    Case("unknown-type", lambda: apk(_usr_tree(header("usr/odd", typeflag=b"Z"))), UnsafeArchiveError, "unknown"),
    Case("bomb-default-limits", lambda: apk(_bomb(80 * MIB)), UnsafeArchiveError, "decompression bomb"),
    Case("truncated-data", _truncated, CorruptArchiveError, "truncated"),
    Case(
        "truncated-control",
        lambda: apk(_usr_tree(member("usr/f", b"x")))[:20],
        CorruptArchiveError,
        "truncated",
    ),
    Case("not-gzip", lambda: b"#!/bin/sh\necho I am not an apk\n", CorruptArchiveError, "not a gzip stream"),
    Case("empty-file", lambda: b"", CorruptArchiveError, "empty file"),
    Case("gzip-not-tar", lambda: gzip.compress(b"hello world" * 100), CorruptArchiveError, "checksum mismatch"),
    Case(
        "bad-header-checksum",
        lambda: apk(_usr_tree(header("usr/f", corrupt_checksum=True))),
        CorruptArchiveError,
        "checksum mismatch",
    ),
    Case(
        "oversized-pkginfo",
        lambda: apk(end(), control=member(".PKGINFO", b"#" * (2 * MIB))),
        UnsafeArchiveError,
        "larger than",
    ),
    Case(
        "pkginfo-not-utf8",
        lambda: apk(end(), control=member(".PKGINFO", b"pkgname = \xff\xfe\npkgver = 1\n")),
        InputError,
        "not valid UTF-8",
    ),
    Case(
        "pkginfo-no-name",
        lambda: apk(end(), control=member(".PKGINFO", b"pkgver = 1.0-r0\n")),
        InputError,
        "no pkgname",
    ),
    Case(
        "no-pkginfo",
        lambda: apk(end(), control=member(".post-install", b"#!/bin/sh\n")),
        CorruptArchiveError,
        "no .PKGINFO",
    ),
    Case("datahash-mismatch", _tampered_data, CorruptArchiveError, "does not match datahash"),
    Case(
        "nul-in-pax-path",
        lambda: apk(_usr_tree(pax_member({"path": "usr/a\0b"}) + member("usr/x", b"x"))),
        UnsafeArchiveError,
        "NUL",
    ),
    Case(
        "name-not-utf8",
        lambda: apk(_usr_tree(member(b"usr/\xff\xfe", b"x"))),
        UnsafeArchiveError,
        "not valid UTF-8",
    ),
    Case(
        "duplicate-entry",
        lambda: apk(_usr_tree(member("usr/f", b"one"), member("usr/f", b"two"))),
        UnsafeArchiveError,
        "appears twice",
    ),
    Case(
        "oversized-pax",
        lambda: apk(_usr_tree(pax_member({"comment": "x" * (2 * MIB)}) + member("usr/f", b"x"))),
        UnsafeArchiveError,
        "oversized PAX header",
    ),
    Case(
        "below-a-file",
        lambda: apk(_usr_tree(member("usr/f", b"x"), member("usr/f/g", b"y"))),
        UnsafeArchiveError,
        "below the non-directory",
    ),
    Case(
        "symlink-over-implicit-dir",
        lambda: apk(_usr_tree(member("usr/x/file", b"x"), header("usr/x", typeflag=b"2", linkname="/etc"))),
        UnsafeArchiveError,
        "earlier members live below it",
    ),
    Case("trailing-garbage", _trailing_garbage, CorruptArchiveError, "not a gzip stream"),
    Case(
        "control-symlink",
        lambda: apk(end(), control=member(".PKGINFO", rawtar.PKGINFO.encode()) + header(".x", typeflag=b"2")),
        UnsafeArchiveError,
        "control segment holds",
    ),
    Case(
        "huge-size-field",
        lambda: apk(_usr_tree(header("usr/f", size_field=b"\x80" + b"\x00" * 6 + b"\x01" + b"\x00" * 4) + b"x" * 512)),
        CorruptArchiveError,
        "truncated",
    ),
    Case(
        "symlink-with-data",
        lambda: apk(_usr_tree(header("usr/l", typeflag=b"2", linkname="f", size=5) + rawtar.pad(b"hello"))),
        CorruptArchiveError,
        "claims 5 bytes",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cli_refuses_hostile_archive(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    package = tmp_path / "evil.apk"
    package.write_bytes(case.build())
    output = tmp_path / "out.json"
    code = main(["analyze", str(package), "--json", "-o", str(output)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    assert err.startswith("qackage: error: ")
    assert case.message in err
    assert "Traceback" not in err
    assert not output.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.apk"]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_library_raises_the_documented_error_class(case: Case, tmp_path: Path) -> None:
    package = tmp_path / "evil.apk"
    package.write_bytes(case.build())
    with pytest.raises(case.error, match=None), ApkArchive.open(package) as archive:
        capture(archive, [])
        _ = archive.check


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 20


def test_ratio_and_size_caps_are_configurable(tmp_path: Path) -> None:
    package = tmp_path / "zeros.apk"
    package.write_bytes(apk(_bomb(4 * MIB)))
    with ApkArchive.open(package) as archive:  # fine under the defaults
        capture(archive, [])
    tight_ratio = Limits(max_ratio=20, ratio_floor_bytes=1 * MIB)
    with pytest.raises(UnsafeArchiveError, match="ratio above 20:1"), ApkArchive.open(package, limits=tight_ratio) as a:
        capture(a, [])
    tight_size = Limits(max_unpacked_bytes=2 * MIB)
    with (
        pytest.raises(UnsafeArchiveError, match="more than 2097152 bytes"),
        ApkArchive.open(package, limits=tight_size) as a,
    ):
        capture(a, [])


def test_cli_limit_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    package = tmp_path / "zeros.apk"
    package.write_bytes(apk(_bomb(4 * MIB)))
    assert main(["analyze", str(package), "--max-unpacked-size", "1M"]) == 2
    assert "decompression bomb" in capsys.readouterr().err
    assert main(["analyze", str(package), "--max-unpacked-size", "lots"]) == 2
    assert "not a size" in capsys.readouterr().err


def test_entry_count_cap(tmp_path: Path) -> None:
    package = tmp_path / "many.apk"
    package.write_bytes(apk(_usr_tree(*(member(f"usr/f{i}", b"x") for i in range(20)))))
    with (
        pytest.raises(UnsafeArchiveError, match="more than 10 members"),
        ApkArchive.open(package, limits=Limits(max_entries=10)) as archive,
    ):
        capture(archive, [])


def test_extracted_folder_with_fifo_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "usr").mkdir(parents=True)
    import os

    os.mkfifo(root / "usr" / "pipe")
    with pytest.raises(UnsafeArchiveError, match="fifo"):
        capture(DirectorySource(root), [])


def test_extracted_folder_with_escaping_symlink_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "usr").mkdir(parents=True)
    (root / "usr" / "x").symlink_to("../../../../etc/shadow")
    with pytest.raises(UnsafeArchiveError, match="escapes the package root"):
        capture(DirectorySource(root), [])


def test_signature_required_with_keyring(tmp_path: Path) -> None:
    from qackage.apk.signature import Keyring
    from qackage.apk.writer import SigningKey

    key = SigningKey.generate("k.rsa.pub")
    keyring = Keyring.load(key.write_public(tmp_path / "keys").parent)
    package = tmp_path / "unsigned.apk"
    package.write_bytes(apk(end()))
    with pytest.raises(SignatureError, match="not signed"):
        ApkArchive.open(package, keyring=keyring)
