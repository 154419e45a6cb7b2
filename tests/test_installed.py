from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest_repo import BUSYBOX_RECORD_HEAD, GLIBC_RECORD_HEAD, build_apk, install_into, pkg

from qackage.apk.archive import ApkArchive
from qackage.apk.installed import (
    DEFAULT_FILE_ACL,
    Acl,
    InstalledSource,
    parse_installed_db,
    read_installed_db,
    record_for_archive,
    write_installed_db,
)
from qackage.apk.writer import PlannedFile
from qackage.errors import InputError, UnsafeArchiveError
from qackage.model import Entry, EntryKind, SourceKind

DB = (
    BUSYBOX_RECORD_HEAD
    + """\
t:1717000000
c:3f0d2c1b5e
D:so:libc.so.6
p:cmd:sh=1.36.1-r7
r:coreutils
q:10
s:local
f:S
F:bin
R:busybox
a:0:0:755
Z:Q1jo8hMbLmK+v7iqRnY4H2JRdL2Uk=
R:sh
a:0:0:777
Z:Q1ZwlvWyqJ/WLzQ3F7dsMgGmwYLDU=
F:etc
M:0:42:2750:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=
R:busybox.conf
F:var/empty

"""
    + GLIBC_RECORD_HEAD
    + """\
p:so:libc.so.6=6

"""
)


def test_parse_files_folders_and_acls() -> None:
    busybox, glibc = parse_installed_db(DB)
    assert busybox.info.name == "busybox"
    assert busybox.info.replaces == ("coreutils",)
    assert busybox.info.extra == (("q", "10"), ("s", "local"), ("f", "S"))
    assert busybox.entry.checksum == "Q1kb4i6A6wVyuSgFxKj0Ll9UxKMjw="
    bin_dir, etc, empty = busybox.dirs
    assert bin_dir.path == "bin"
    assert [f.name for f in bin_dir.files] == ["busybox", "sh"]
    assert bin_dir.files[0].acl == Acl(0, 0, 0o755)
    assert bin_dir.files[1].checksum == "Q1ZwlvWyqJ/WLzQ3F7dsMgGmwYLDU="
    assert etc.acl == Acl(0, 42, 0o2750, "Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    assert etc.files[0].acl == DEFAULT_FILE_ACL
    assert etc.files[0].checksum == ""
    assert (empty.path, empty.files) == ("var/empty", ())
    assert list(busybox.paths()) == ["bin/busybox", "bin/sh", "etc/busybox.conf"]
    assert glibc.dirs == ()
    assert glibc.info.so_provides == ("libc.so.6",)


def test_write_is_the_inverse_of_parse() -> None:
    records = parse_installed_db(DB)
    assert write_installed_db(records) == DB
    assert parse_installed_db(write_installed_db(records)) == records


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("P:x\nV:1\nC:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nR:orphan\n", InputError, "R: before any F: line"),
        (
            "P:x\nV:1\nC:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nF:usr\nZ:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
            InputError,
            "before any R:",
        ),
        ("P:x\nV:1\nC:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nF:usr\nM:root:root:755\n", InputError, "not uid:gid:mode"),
        ("P:x\nV:1\nC:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nF:usr\nR:a\nZ:md5:abc\n", InputError, "Q1 or Q2"),
        ("P:x\nV:1\nC:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nF:usr/../../etc\n", UnsafeArchiveError, "path traversal"),
        ("P:x\nV:1\nC:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nF:/etc\n", UnsafeArchiveError, "absolute path"),
        ("P:x\nV:1\nC:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nF:etc\nR:..\n", UnsafeArchiveError, "file name"),
        ("P:x\nV:1\nC:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nF:etc\nR:a/b\n", UnsafeArchiveError, "file name"),
        ("P:x\nV:1\nF:etc\n", InputError, "no C: line"),
    ],
)
def test_malformed_db(text: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        parse_installed_db(text, "db")


# --------------------------------------------------------------------------- installed roots

BUSYBOX_FILES = [
    PlannedFile("bin/busybox", mode=0o755, data=b"\x7fELF pretend busybox" * 100),
    PlannedFile("bin/sh", EntryKind.SYMLINK, 0o777, link_target="busybox"),
    PlannedFile("usr/bin/bb", EntryKind.HARDLINK, 0o755, link_target="bin/busybox"),
    PlannedFile("etc/busybox.conf", data=b"verbose=1\n"),
    PlannedFile("usr/share/doc/busybox/README", data=b"read me\n"),
    PlannedFile("var/empty", EntryKind.DIR, 0o700),
]


@pytest.fixture
def busybox_apk(tmp_path: Path) -> Path:
    return build_apk(tmp_path / "pkgs", pkg("busybox", "1.36.1-r7"), BUSYBOX_FILES)[1]


def _read(source: InstalledSource) -> dict[str, tuple[Entry, bytes]]:
    return {m.entry.path: (m.entry, b"".join(m.chunks())) for m in source.members()}


def _archive_tree(path: Path) -> dict[str, tuple[Entry, bytes]]:
    with ApkArchive.open(path) as apk:
        return {m.entry.path: (m.entry, b"".join(m.chunks())) for m in apk.members()}


def test_installed_package_reads_like_its_archive(tmp_path: Path, busybox_apk: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/lib").mkdir(parents=True)
    (root / "lib").symlink_to("usr/lib")  # merged /usr: the db lives behind a symlink
    install_into(root, [busybox_apk])
    archive = _archive_tree(busybox_apk)
    with InstalledSource(root, "busybox") as source:
        assert source.info.name == "busybox"
        with pytest.raises(RuntimeError):
            _ = source.check
        installed = _read(source)
        check = source.check
    assert set(installed) == set(archive)
    for path, (entry, data) in installed.items():
        original, original_data = archive[path]
        assert entry.mode == original.mode, path
        if original.kind is EntryKind.HARDLINK:  # installed, a hardlink is just a file
            assert (entry.kind, entry.size) == (EntryKind.FILE, len(archive["bin/busybox"][1]))
            assert data == archive["bin/busybox"][1]
        else:
            assert data == original_data, path
            assert (entry.kind, entry.size, entry.link_target) == (original.kind, original.size, original.link_target)
    assert check.source is SourceKind.INSTALLED
    assert check.datahash_verified
    assert check.control_checksum == record_for_archive(busybox_apk).entry.checksum
    assert check.unpacked_size == sum(len(d) for _, d in installed.values())


def test_record_for_archive_matches_apk_conventions(busybox_apk: Path) -> None:
    record = record_for_archive(busybox_apk)
    by_path = {f"{d.path}/{f.name}": f for d in record.dirs for f in d.files}
    assert by_path["bin/busybox"].acl == Acl(0, 0, 0o755)
    assert by_path["bin/sh"].acl == Acl(0, 0, 0o777)
    assert by_path["usr/bin/bb"].checksum == by_path["bin/busybox"].checksum
    assert [d.path for d in record.dirs if d.path == "var/empty"] == ["var/empty"]
    assert next(d for d in record.dirs if d.path == "var/empty").acl == Acl(0, 0, 0o700)
    text = write_installed_db([record])
    assert "a:0:0:777" in text and "M:0:0:700" in text
    assert parse_installed_db(text) == (record,)


def test_apk3_database_location(tmp_path: Path, busybox_apk: Path) -> None:
    root = tmp_path / "root"
    install_into(root, [busybox_apk], db_path="usr/lib/apk/db/installed")
    assert [r.info.name for r in read_installed_db(root)] == ["busybox"]


def _root_with_db(tmp_path: Path, files: str) -> Path:
    root = tmp_path / "root"
    db = root / "lib/apk/db/installed"
    db.parent.mkdir(parents=True)
    db.write_text(f"C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nP:thing\nV:1.0-r0\n{files}\n", encoding="utf-8")
    return root


def test_absolute_parent_symlink_resolves_inside_the_root(tmp_path: Path) -> None:
    root = _root_with_db(tmp_path, "F:hostetc\nR:hostname\n")
    (root / "etc").mkdir()
    (root / "etc/hostname").write_text("inside-the-root\n")
    (root / "hostetc").symlink_to("/etc")  # on the host this would be the host's /etc
    with InstalledSource(root, "thing") as source:
        members = _read(source)
    assert members["hostetc/hostname"][1] == b"inside-the-root\n"


def test_final_symlink_is_reported_not_followed(tmp_path: Path) -> None:
    root = _root_with_db(tmp_path, "F:etc\nR:shadow\n")
    (root / "etc").mkdir()
    (root / "etc/shadow").symlink_to("/etc/shadow")
    with InstalledSource(root, "thing") as source:
        folder, member = source.members()
        assert (folder.entry.path, folder.entry.kind) == ("etc", EntryKind.DIR)
        assert member.entry.kind is EntryKind.SYMLINK
        assert member.entry.link_target == "/etc/shadow"
        assert list(member.chunks()) == []


def _climbing_symlink(root: Path) -> None:
    (root / "etc").mkdir()
    (root / "evil").symlink_to("../../../../../../../etc")  # ".." stops at the root
    assert Path("/etc/passwd").exists()  # on the host, it would be found


def _symlink_loop(root: Path) -> None:
    (root / "a").symlink_to("b")
    (root / "b").symlink_to("a")


def _fifo(root: Path) -> None:
    (root / "run").mkdir()
    os.mkfifo(root / "run/pipe")


def _device_node(root: Path) -> None:
    (root / "dev").mkdir()
    try:
        os.mknod(root / "dev/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating device nodes needs CAP_MKNOD")


def _socket(root: Path) -> None:
    (root / "run").mkdir()
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(root / "run/sock"))  # the socket stays in the folder once closed


def _folder_without_the_file(root: Path) -> None:
    (root / "usr/bin").mkdir(parents=True)


@pytest.mark.parametrize(
    ("files", "make", "error", "message"),
    [
        pytest.param("F:evil\nR:passwd\n", _climbing_symlink, InputError, "/evil/passwd is missing", id="climb"),
        pytest.param("F:a\nR:x\n", _symlink_loop, UnsafeArchiveError, "too many symlinks", id="loop"),
        pytest.param("F:run\nR:pipe\n", _fifo, UnsafeArchiveError, "FIFO", id="fifo"),
        pytest.param("F:dev\nR:null\n", _device_node, UnsafeArchiveError, "device", id="device"),
        pytest.param("F:run\nR:sock\n", _socket, UnsafeArchiveError, "socket", id="socket"),
        pytest.param("F:usr/bin\nR:gone\n", _folder_without_the_file, InputError, "usr/bin/gone is missing", id="gone"),
    ],
)
def test_what_cannot_be_read_safely_is_refused(
    tmp_path: Path, files: str, make: Callable[[Path], None], error: type[Exception], message: str
) -> None:
    root = _root_with_db(tmp_path, files)
    make(root)
    with InstalledSource(root, "thing") as source, pytest.raises(error, match=message):
        _read(source)


def test_modified_file_is_reported(tmp_path: Path, busybox_apk: Path) -> None:
    root = tmp_path / "root"
    install_into(root, [busybox_apk])
    (root / "etc/busybox.conf").write_text("verbose=0\n")
    with InstalledSource(root, "busybox") as source:
        _read(source)
        assert source.modified == ("etc/busybox.conf",)
        assert not source.check.datahash_verified


def test_unread_bodies_are_not_verified(tmp_path: Path, busybox_apk: Path) -> None:
    root = tmp_path / "root"
    install_into(root, [busybox_apk])
    with InstalledSource(root, "busybox") as source:
        entries = [m.entry.path for m in source.members()]  # bodies never read
        assert "bin/busybox" in entries
        assert not source.check.datahash_verified
        assert source.check.unpacked_size == 0


def test_package_not_installed(tmp_path: Path, busybox_apk: Path) -> None:
    root = tmp_path / "root"
    install_into(root, [busybox_apk])
    with pytest.raises(InputError, match="curl is not installed \\(installed: busybox\\)"):
        InstalledSource(root, "curl")


def test_root_without_a_database(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    with pytest.raises(InputError, match="no apk database"):
        InstalledSource(tmp_path / "root", "busybox")
