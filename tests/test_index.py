from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import pytest
from conftest_repo import ARCH, BUSYBOX_RECORD_HEAD, GLIBC_RECORD_HEAD, build_apk, build_repo, pkg

from qackage.apk.archive import ApkArchive
from qackage.apk.index import (
    INDEX_NAME,
    IndexEntry,
    build_repository,
    format_index,
    index_archive_bytes,
    package_checksum,
    parse_index_text,
    read_index,
    read_index_file,
    write_index,
)
from qackage.apk.pkginfo import parse_atoms
from qackage.apk.signature import Keyring
from qackage.apk.writer import SigningKey, gzip_bytes, tar_without_trailer
from qackage.errors import CorruptArchiveError, InputError, RepositoryError, SignatureError, UnsafeArchiveError
from qackage.model import ConstraintOp, Dependency

# A record as apk writes it, every key in apk's order.
BUSYBOX = (
    BUSYBOX_RECORD_HEAD
    + """\
m:Wolfi <maintainers@example.org>
t:1717000000
c:3f0d2c1b5e
k:100
D:so:ld-linux-x86-64.so.2 so:libc.so.6 !busybox-legacy
p:cmd:sh=1.36.1-r7 cmd:ls=1.36.1-r7 /bin/sh
i:busybox-base docs
r:coreutils
q:10
x:something newer apk knows
"""
)

GLIBC = GLIBC_RECORD_HEAD + "p:so:libc.so.6=6 so:ld-linux-x86-64.so.2=2\n"


def test_parse_every_key() -> None:
    (entry,) = parse_index_text(BUSYBOX)
    info = entry.info
    assert entry.checksum == "Q1kb4i6A6wVyuSgFxKj0Ll9UxKMjw="
    assert entry.file_size == 575312
    assert entry.filename == "busybox-1.36.1-r7.apk"
    assert len(entry.checksum_hex) == 40
    assert (info.name, info.version, info.arch) == ("busybox", "1.36.1-r7", "x86_64")
    assert info.size == 1052672
    assert info.description == "Swiss army knife of embedded Linux"
    assert info.url == "https://busybox.net"
    assert info.license == "GPL-2.0-only"
    assert info.origin == "busybox"
    assert info.maintainer == "Wolfi <maintainers@example.org>"
    assert info.build_date == 1717000000
    assert info.commit == "3f0d2c1b5e"
    assert info.provider_priority == 100
    assert info.depends == (
        Dependency("so:ld-linux-x86-64.so.2"),
        Dependency("so:libc.so.6"),
        Dependency("busybox-legacy", conflict=True),
    )
    assert info.provides[0] == Dependency("cmd:sh", ConstraintOp.EQ, "1.36.1-r7")
    assert info.cmd_provides == ("sh", "ls")
    assert info.install_if == parse_atoms("busybox-base docs")
    assert info.replaces == ("coreutils",)
    assert info.extra == (("q", "10"), ("x", "something newer apk knows"))


def test_several_records_and_round_trip() -> None:
    text = BUSYBOX + "\n" + GLIBC + "\n"
    entries = parse_index_text(text)
    assert [e.info.name for e in entries] == ["busybox", "glibc"]
    assert entries[1].info.so_provides == ("libc.so.6", "ld-linux-x86-64.so.2")
    assert entries[1].info.origin == "glibc"
    assert entries[1].info.provider_priority is None
    # what we write is what apk wrote, key for key
    assert format_index(entries) == text


def test_extra_blank_lines_and_crlf_are_tolerated() -> None:
    text = "\n\n" + GLIBC.replace("\n", "\r\n") + "\r\n\r\n\r\n"
    (entry,) = parse_index_text(text)
    assert entry.info.name == "glibc"
    assert entry.info.license == "LGPL-2.1-or-later"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("P:foo\nV:1.0\n", "no C: line"),
        ("C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nV:1.0\n", "no P: line"),
        ("C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nP:foo\nV:1.0\nP:bar\n", "a second P: line"),
        ("C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nP:foo\nV:1.0\nthis is not a record line\n", "line 4 is not"),
        ("C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nP:foo\nV:1.0\nS:big\n", "S: is not a number"),
        ("C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nP:foo\nV:1.0\nI:-4\n", "I: is negative"),
        ("C:nothex\nP:foo\nV:1.0\n", "does not start with Q1"),
        ("C:Q1AAAA\nP:foo\nV:1.0\n", "expected 20"),
        ("C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nP:foo\nV:1.0\nD:foo>=\n", "line 4"),
    ],
)
def test_malformed_records(text: str, message: str) -> None:
    with pytest.raises(RepositoryError, match=message):
        parse_index_text(text, "test-index")


# --------------------------------------------------------------------------- write + read


def test_write_index_describes_each_package_from_its_file(tmp_path: Path) -> None:
    arch_dir = tmp_path / "repo" / ARCH
    key = SigningKey.generate("packager.rsa.pub")
    signed = build_apk(arch_dir, pkg("signed", "2.0-r1", provides="cmd:signed=2.0-r1"), signing_key=key)
    plain = build_apk(arch_dir, pkg("plain", "0.9_rc1-r0", depends="signed>=2"))
    path = write_index(arch_dir, [signed, plain], description="local build")
    assert path == arch_dir / INDEX_NAME

    index = read_index_file(path)
    assert index.description == "local build"
    assert index.signed_by is None and not index.signature_present
    assert [e.info.name for e in index.entries] == ["plain", "signed"]  # sorted by name
    for entry, (info, apk_path) in zip(index.entries, [plain, signed], strict=True):
        # The checksum must be what a full read of the package reports (an independent path).
        with ApkArchive.open(apk_path) as apk:
            for _ in apk.members():
                pass
            assert entry.checksum == apk.check.control_checksum
        assert entry.file_size == apk_path.stat().st_size
        assert entry.info.depends == info.depends
        assert entry.info.provides == info.provides
        assert entry.info.size == info.size  # installed size from .PKGINFO
        assert entry.filename == apk_path.name


def test_package_checksum_skips_the_signature_segment(tmp_path: Path) -> None:
    info = pkg("same")
    key = SigningKey.generate("k.rsa.pub")
    _, unsigned = build_apk(tmp_path / "a", info)
    _, signed = build_apk(tmp_path / "b", info, signing_key=key)
    assert unsigned.read_bytes() != signed.read_bytes()
    # same control segment bytes -> same apk checksum, signed or not
    assert package_checksum(unsigned) == package_checksum(signed)


def test_write_index_refuses_packages_outside_the_folder(tmp_path: Path) -> None:
    elsewhere = build_apk(tmp_path / "elsewhere", pkg("foo"))
    with pytest.raises(InputError, match="must be"):
        write_index(tmp_path / "repo" / ARCH, [elsewhere])


def test_write_index_refuses_a_mismatched_info(tmp_path: Path) -> None:
    arch_dir = tmp_path / ARCH
    _, path = build_apk(arch_dir, pkg("foo", "1.0-r0"))
    with pytest.raises(InputError, match=re.escape("holds foo-1.0-r0, not foo-2.0-r0")):
        write_index(arch_dir, [(pkg("foo", "2.0-r0"), path)])


def test_build_repository_copies_and_indexes(tmp_path: Path) -> None:
    _, first = build_apk(tmp_path / "out", pkg("first"))
    _, second = build_apk(tmp_path / "out", pkg("second", "3"))
    arch_dir = tmp_path / "repo" / ARCH
    index_path = build_repository(arch_dir, [first, second])
    assert (arch_dir / "first-1.0-r0.apk").read_bytes() == first.read_bytes()
    assert (arch_dir / "second-3.apk").is_file()
    names = [(e.info.name, e.info.version) for e in read_index_file(index_path).entries]
    assert names == [("first", "1.0-r0"), ("second", "3")]
    # adding one more later keeps the ones already there
    _, third = build_apk(tmp_path / "out", pkg("third"))
    build_repository(arch_dir, [third])
    assert len(read_index_file(index_path).entries) == 3


def test_large_index_streams_across_chunks(tmp_path: Path) -> None:
    entries = [
        IndexEntry(pkg(f"p{n:05d}", f"1.{n}-r0", depends=f"p{n + 1:05d} so:libc.so.6"), "Q1" + "A" * 27 + "=", n)
        for n in range(6000)
    ]
    data = index_archive_bytes(entries, "big", None)
    index = read_index(io.BytesIO(data), "big-index")
    assert len(index.entries) == 6000
    assert index.entries[4321] == entries[4321]


# --------------------------------------------------------------------------- signatures


def _keyring(tmp_path: Path, key: SigningKey) -> Keyring:
    key.write_public(tmp_path / "keys")
    return Keyring.load(tmp_path / "keys")


def test_signed_index_verifies(tmp_path: Path) -> None:
    key = SigningKey.generate("repo.rsa.pub")
    root = build_repo(tmp_path / "repo", [pkg("foo")], signing_key=key)
    index = read_index_file(root / ARCH / INDEX_NAME, keyring=_keyring(tmp_path, key))
    assert index.signed_by == "repo.rsa.pub"
    assert index.signature_present
    assert [e.info.name for e in index.entries] == ["foo"]


def test_sha1_signature_of_older_indexes_verifies(tmp_path: Path) -> None:
    key = SigningKey.generate("old.rsa.pub")
    index_part = index_archive_bytes([IndexEntry(pkg("foo"), "Q1" + "B" * 27 + "=", 1)], "", None)
    signature = tar_without_trailer([(f".SIGN.RSA.{key.name}", key.sign(index_part, "sha1"))])
    data = gzip_bytes(signature) + index_part
    index = read_index(io.BytesIO(data), "old", keyring=_keyring(tmp_path, key))
    assert index.signed_by == "old.rsa.pub"


def test_unsigned_index_with_a_keyring_is_refused(tmp_path: Path) -> None:
    root = build_repo(tmp_path / "repo", [pkg("foo")])
    keyring = _keyring(tmp_path, SigningKey.generate("trusted.rsa.pub"))
    with pytest.raises(SignatureError, match="not signed"):
        read_index_file(root / ARCH / INDEX_NAME, keyring=keyring)


def test_index_signed_by_an_unknown_key_is_refused(tmp_path: Path) -> None:
    root = build_repo(tmp_path / "repo", [pkg("foo")], signing_key=SigningKey.generate("stranger.rsa.pub"))
    keyring = _keyring(tmp_path, SigningKey.generate("trusted.rsa.pub"))
    with pytest.raises(SignatureError, match=re.escape("stranger.rsa.pub, which is not in the keyring")):
        read_index_file(root / ARCH / INDEX_NAME, keyring=keyring)


def test_forged_signature_is_refused(tmp_path: Path) -> None:
    trusted = SigningKey.generate("trusted.rsa.pub")
    impostor = SigningKey(trusted.name, SigningKey.generate("x").private_key)
    root = build_repo(tmp_path / "repo", [pkg("foo")], signing_key=impostor)
    with pytest.raises(SignatureError, match="does not verify"):
        read_index_file(root / ARCH / INDEX_NAME, keyring=_keyring(tmp_path, trusted))


def test_tampered_index_is_refused(tmp_path: Path) -> None:
    key = SigningKey.generate("repo.rsa.pub")
    entries = [IndexEntry(pkg("foo"), "Q1" + "C" * 27 + "=", 1)]
    signed = index_archive_bytes(entries, "", key)
    signature_len = len(signed) - len(index_archive_bytes(entries, "", None))
    assert signature_len > 0
    # keep the genuine signature segment, swap what it signs
    evil = index_archive_bytes([IndexEntry(pkg("foo", "6.6.6"), "Q1" + "C" * 27 + "=", 1)], "", None)
    forged = signed[:signature_len] + evil
    with pytest.raises(SignatureError, match="does not verify"):
        read_index(io.BytesIO(forged), "forged", keyring=_keyring(tmp_path, key))
    # without a keyring the same bytes read fine: verification is what caught it
    assert read_index(io.BytesIO(forged), "forged").entries[0].info.version == "6.6.6"


# --------------------------------------------------------------------------- broken files


def _tar_gz(members: list[tuple[str, bytes]]) -> bytes:
    """An index archive: a whole tar (the trailer's two zero blocks included), gzipped."""
    return gzip_bytes(tar_without_trailer(members) + bytes(2 * tarfile.BLOCKSIZE))


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"", CorruptArchiveError, "empty file"),
        (b"C:Q1...\nP:foo\n", CorruptArchiveError, "not a gzip stream"),
        (_tar_gz([("DESCRIPTION", b"x")]), RepositoryError, "no APKINDEX file inside"),
        (_tar_gz([("APKINDEX", b"\xff\xfe not utf-8")]), RepositoryError, "not valid UTF-8"),
        (_tar_gz([("APKINDEX", GLIBC.encode())]) + b"junk", CorruptArchiveError, "unexpected data"),
        (_tar_gz([("APKINDEX", GLIBC.encode())])[:-12], CorruptArchiveError, "truncated"),
        (_tar_gz([("APKINDEX", b"T:" + b"x" * (1024 * 1024 + 10))]), UnsafeArchiveError, "line longer"),
    ],
)
def test_broken_index_files(data: bytes, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        read_index(io.BytesIO(data), "broken")


def test_missing_index_file(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="no such index"):
        read_index_file(tmp_path / INDEX_NAME)
