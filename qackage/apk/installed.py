"""apk's installed database (``lib/apk/db/installed``) and installed packages as sources.

The database holds one record per installed package: the APKINDEX lines
(`qackage.apk.index`) followed by its files, ``F:`` naming a folder (``M:`` its
``uid:gid:mode`` when not root 0755) and each ``R:`` a file in the folder just named
(``a:`` its owner and mode when not root 0644, ``Z:`` its checksum: ``Q1`` + base64
sha1 of the content, or of the target for a symlink).

`InstalledSource` reads one installed package out of a root filesystem with the same
interface as `qackage.apk.archive.ApkArchive`. The root is untrusted: paths resolve
with chroot semantics (``lib -> usr/lib`` or ``/usr/lib`` lands in the root, never on
the host), a final symlink is reported, never followed, and files are opened component
by component with ``O_NOFOLLOW`` so that nothing swapped in meanwhile leads outside.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import posixpath
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from qackage.apk import chroot
from qackage.apk.archive import ApkArchive, SourceMember
from qackage.apk.index import (
    IndexEntry,
    RecordLine,
    checksum_digest,
    entry_from_record,
    format_entry_lines,
    index_view,
    package_checksum,
    split_records,
)
from qackage.apk.limits import DEFAULT_LIMITS, Limits
from qackage.apk.safety import normalize_member_path
from qackage.errors import InputError, UnsafeArchiveError
from qackage.model import ArchiveCheck, Entry, EntryKind, PackageInfo, SourceKind

DB_PATHS = ("lib/apk/db/installed", "usr/lib/apk/db/installed")
READ_CHUNK = 256 * 1024
MAX_DB_BYTES = 512 * 1024 * 1024
_FILE_KEYS = frozenset("FMRaZ")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Acl:
    uid: int = 0
    gid: int = 0
    mode: int = 0o644
    xattrs: str = ""  # apk's checksum of the extended attributes, kept verbatim

    def format(self) -> str:
        text = f"{self.uid}:{self.gid}:{self.mode:o}"
        return f"{text}:{self.xattrs}" if self.xattrs else text


DEFAULT_DIR_ACL = Acl(mode=0o755)
DEFAULT_FILE_ACL = Acl(mode=0o644)


@dataclass(frozen=True, slots=True)
class InstalledFile:
    name: str  # inside its folder: no "/"
    acl: Acl = DEFAULT_FILE_ACL
    checksum: str = ""  # Z: "Q1..." (or "Q2..."), empty when the database has none


@dataclass(frozen=True, slots=True)
class InstalledDir:
    path: str  # relative to the root, "" for the root itself
    acl: Acl = DEFAULT_DIR_ACL
    files: tuple[InstalledFile, ...] = ()


@dataclass(frozen=True, slots=True)
class InstalledRecord:
    entry: IndexEntry
    dirs: tuple[InstalledDir, ...] = ()

    @property
    def info(self) -> PackageInfo:
        return self.entry.info

    def paths(self) -> Iterator[str]:
        for folder in self.dirs:
            for file in folder.files:
                yield posixpath.join(folder.path, file.name) if folder.path else file.name


def check_relative_path(path: str, label: str) -> str:
    """A database path must stay inside the root, like an archive member's."""
    return normalize_member_path(path, label)


def _acl(line: RecordLine, label: str) -> Acl:
    parts = line.value.split(":", 3)
    try:
        uid, gid, mode = int(parts[0], 10), int(parts[1], 10), int(parts[2], 8)
    except (ValueError, IndexError):
        raise InputError(f"{label}: line {line.line}: {line.key}: is not uid:gid:mode") from None
    if min(uid, gid, mode) < 0 or mode > 0o7777:
        raise InputError(f"{label}: line {line.line}: {line.key}: out of range")
    return Acl(uid, gid, mode, parts[3] if len(parts) > 3 else "")


class _DirBuilder:
    def __init__(self, path: str) -> None:
        self.path = path
        self.acl = DEFAULT_DIR_ACL
        self.files: list[InstalledFile] = []

    def build(self) -> InstalledDir:
        return InstalledDir(self.path, self.acl, tuple(self.files))


def record_from_lines(record: Sequence[RecordLine], label: str) -> InstalledRecord:
    package_lines = [line for line in record if line.key not in _FILE_KEYS]
    entry = entry_from_record(package_lines, label, InputError)
    dirs: list[_DirBuilder] = []
    current: _DirBuilder | None = None
    for line in record:
        if line.key not in _FILE_KEYS:
            continue
        if line.key == "F":
            current = _DirBuilder(check_relative_path(line.value, label))
            dirs.append(current)
            continue
        if current is None:
            raise InputError(f"{label}: line {line.line}: {line.key}: before any F: line")
        if line.key == "M":
            current.acl = _acl(line, label)
        elif line.key == "R":
            name = line.value
            if not name or "/" in name or name in (".", "..") or "\0" in name:
                raise UnsafeArchiveError(f"{label}: line {line.line}: refusing the file name {name!r}")
            current.files.append(InstalledFile(name))
        elif not current.files:
            raise InputError(f"{label}: line {line.line}: {line.key}: before any R: line")
        elif line.key == "a":
            current.files[-1] = dataclasses.replace(current.files[-1], acl=_acl(line, label))
        else:  # Z
            try:
                checksum_digest(line.value)
            except ValueError as exc:
                raise InputError(f"{label}: line {line.line}: {exc}") from None
            current.files[-1] = dataclasses.replace(current.files[-1], checksum=line.value)
    return InstalledRecord(entry, tuple(d.build() for d in dirs))


def parse_installed_db(text: str, label: str = "lib/apk/db/installed") -> tuple[InstalledRecord, ...]:
    return tuple(record_from_lines(record, label) for record in split_records(text.splitlines(), label, InputError))


def format_record_lines(record: InstalledRecord) -> list[str]:
    lines = format_entry_lines(record.entry)
    for folder in record.dirs:
        lines.append(f"F:{folder.path}")
        if folder.acl != DEFAULT_DIR_ACL:
            lines.append(f"M:{folder.acl.format()}")
        for file in folder.files:
            lines.append(f"R:{file.name}")
            if file.acl != DEFAULT_FILE_ACL:
                lines.append(f"a:{file.acl.format()}")
            if file.checksum:
                lines.append(f"Z:{file.checksum}")
    return lines


def write_installed_db(records: Iterable[InstalledRecord]) -> str:
    """The database text for ``records``, in the given order (apk appends as it installs)."""
    return "".join("\n".join(format_record_lines(record)) + "\n\n" for record in records)


# --------------------------------------------------------------------------- from an archive


def _q1(data: bytes) -> str:
    return "Q1" + base64.b64encode(hashlib.sha1(data).digest()).decode()


def record_for_archive(path: Path, *, limits: Limits = DEFAULT_LIMITS) -> InstalledRecord:
    """The record apk would write after installing the package at ``path``."""
    folders: dict[str, _DirBuilder] = {}
    sums: dict[str, str] = {}

    def folder(name: str) -> _DirBuilder:
        if name not in folders:
            parent = posixpath.dirname(name)
            if name and parent not in folders:
                folder(parent)
            folders[name] = _DirBuilder(name)
        return folders[name]

    with ApkArchive.open(path, limits=limits) as apk:
        for member in apk.members():
            item = member.entry
            acl = Acl(item.uid, item.gid, item.mode)
            if item.kind is EntryKind.DIR:
                folder(item.path).acl = acl
                continue
            if item.kind is EntryKind.FILE:
                digest = hashlib.sha1()
                for chunk in member.chunks():
                    digest.update(chunk)
                checksum = "Q1" + base64.b64encode(digest.digest()).decode()
            elif item.kind is EntryKind.SYMLINK:
                checksum, acl = _q1((item.link_target or "").encode()), Acl(item.uid, item.gid, 0o777)
            else:  # a hardlink has its first file's content
                checksum = sums.get(item.link_target or "", "")
            sums[item.path] = checksum
            folder(posixpath.dirname(item.path)).files.append(InstalledFile(item.name, acl, checksum))
        entry = IndexEntry(index_view(apk.info), package_checksum(path, limits), path.stat().st_size)
    ordered = [folders[name] for name in folders if name or folders[name].files]
    return InstalledRecord(entry, tuple(d.build() for d in ordered))


# --------------------------------------------------------------------------- the root


class RootFS:
    """Read-only access to paths inside a root folder with chroot semantics."""

    def __init__(self, root: Path, limits: Limits = DEFAULT_LIMITS) -> None:
        self.root = root
        self.label = str(root)
        self._limits = limits
        try:
            self._fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise InputError(f"{root}: cannot open the root folder: {exc.strerror or exc}") from exc

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def lstat(self, resolved: str) -> os.stat_result | None:
        """The resolved path's own status (a symlink is not followed); None if missing."""
        try:
            return os.stat(resolved or ".", dir_fd=self._fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InputError(f"{self.label}: cannot read /{resolved}: {exc.strerror or exc}") from exc

    def readlink(self, resolved: str) -> str:
        try:
            return os.readlink(resolved, dir_fd=self._fd)
        except OSError as exc:
            raise InputError(f"{self.label}: cannot read the symlink /{resolved}: {exc.strerror or exc}") from exc

    def resolve(self, path: str, *, follow_last: bool = True) -> str:
        """The real path of ``path`` inside the root: symlinks in every component (and
        the last one only with ``follow_last``) followed, ``..`` never above the root.
        Every component before the last must be a folder. Missing parts are an
        InputError."""
        walked = chroot.walk(path, self._lookup, follow_last=follow_last, max_hops=self._limits.max_symlink_depth)
        if walked.outcome is chroot.Outcome.MISSING:
            raise InputError(f"{self.label}: /{walked.path} does not exist (listed in the database)")
        if walked.outcome is chroot.Outcome.NOT_A_FOLDER:
            raise InputError(f"{self.label}: /{walked.path} is not a folder")
        if walked.outcome is chroot.Outcome.LOOP:
            raise UnsafeArchiveError(f"{self.label}: too many symlinks resolving /{path}")
        return walked.path

    def _lookup(self, resolved: str) -> chroot.Found:
        info = self.lstat(resolved)
        if info is None:
            return chroot.MISSING
        if stat.S_ISLNK(info.st_mode):
            return chroot.Found.symlink(self.readlink(resolved))
        return chroot.FOLDER if stat.S_ISDIR(info.st_mode) else chroot.OTHER

    def open_dir(self, resolved: str) -> int:
        """A file descriptor for an already resolved folder, opened component by
        component without following any symlink."""
        fd = os.dup(self._fd)
        try:
            for part in chroot.split_path(resolved):
                next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                os.close(fd)
                fd = next_fd
        except OSError as exc:
            os.close(fd)
            raise UnsafeArchiveError(f"{self.label}: /{resolved} changed while reading it ({exc.strerror})") from exc
        return fd

    def read_small(self, path: str, cap: int) -> bytes:
        """A whole regular file (symlinks in the path resolved inside the root)."""
        real = self.resolve(path)
        parent, name = posixpath.split(real)
        dir_fd = self.open_dir(parent)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
        except OSError as exc:
            raise InputError(f"{self.label}: cannot open /{real}: {exc.strerror or exc}") from exc
        finally:
            os.close(dir_fd)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise UnsafeArchiveError(f"{self.label}: /{real} is not a regular file")
            data = handle.read(cap + 1)
        if len(data) > cap:
            raise UnsafeArchiveError(f"{self.label}: /{real} is larger than {cap} bytes")
        return data


def find_installed_db(rootfs: RootFS) -> str:
    for candidate in DB_PATHS:
        try:
            rootfs.resolve(candidate)
        except InputError:
            continue
        return candidate
    raise InputError(f"{rootfs.label}: no apk database ({' or '.join(DB_PATHS)}): not an apk root?")


def _read_db(rootfs: RootFS) -> tuple[InstalledRecord, ...]:
    db = find_installed_db(rootfs)
    label = f"{rootfs.label}/{db}"
    try:
        text = rootfs.read_small(db, MAX_DB_BYTES).decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{label}: not valid UTF-8") from None
    return parse_installed_db(text, label)


def read_installed_db(root: Path, limits: Limits = DEFAULT_LIMITS) -> tuple[InstalledRecord, ...]:
    """Every record of the apk database inside ``root``."""
    rootfs = RootFS(root, limits)
    try:
        return _read_db(rootfs)
    finally:
        rootfs.close()


# --------------------------------------------------------------------------- the source


@dataclass(slots=True)
class _Tally:
    unpacked: int = 0
    unverified: int = 0  # files with a checksum whose content was not (fully) read
    modified: list[str] = field(default_factory=list)


class InstalledSource:
    """An installed package inside ``root`` as a package source:

    with InstalledSource(root, "busybox") as pkg:
        pkg.info
        for member in pkg.members():
            member.entry, member.chunks()
        pkg.check            # source=INSTALLED; datahash_verified: every Z: matched
        pkg.modified         # paths whose content differs from the database

    Entries carry the modes the root holds and the owners the database records (a root
    unpacked without privileges cannot hold the owners). Files stream lazily: a body
    that is never read is never opened, and is then not counted as verified.
    """

    def __init__(self, root: Path, name: str, limits: Limits = DEFAULT_LIMITS) -> None:
        self.label = f"{root} ({name})"
        self._root = RootFS(root, limits)
        try:
            records = _read_db(self._root)
        except BaseException:
            self._root.close()
            raise
        found = [r for r in records if r.info.name == name]
        if not found:
            self._root.close()
            names = ", ".join(sorted(r.info.name for r in records)[:10]) or "nothing"
            raise InputError(f"{root}: {name} is not installed (installed: {names})")
        self.record = found[-1]
        self.info = self.record.info
        self._tally = _Tally()
        self._consumed = False
        self._done = False

    def close(self) -> None:
        self._root.close()

    def __enter__(self) -> InstalledSource:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- members -------------------------------------------------------------------------

    def members(self) -> Iterator[SourceMember]:
        if self._consumed:
            raise RuntimeError("members() can be iterated once")
        self._consumed = True
        for folder in self.record.dirs:
            if folder.path:
                yield SourceMember(self._dir_entry(folder))
            for file in folder.files:
                path = posixpath.join(folder.path, file.name) if folder.path else file.name
                yield self._file_member(path, file, folder)
        self._done = True

    def _dir_entry(self, folder: InstalledDir) -> Entry:
        real = self._root.resolve(folder.path)
        info = self._root.lstat(real)
        if info is None or not stat.S_ISDIR(info.st_mode):
            raise InputError(f"{self._root.label}: /{folder.path} is not a folder (listed in the database)")
        return Entry(folder.path, EntryKind.DIR, stat.S_IMODE(info.st_mode), uid=folder.acl.uid, gid=folder.acl.gid)

    def _file_member(self, path: str, file: InstalledFile, folder: InstalledDir) -> SourceMember:
        parent = self._root.resolve(folder.path)
        real = posixpath.join(parent, file.name) if parent else file.name
        info = self._root.lstat(real)
        if info is None:
            raise InputError(f"{self._root.label}: /{path} is missing (listed in the database)")
        mode = stat.S_IMODE(info.st_mode)
        uid, gid = file.acl.uid, file.acl.gid
        if stat.S_ISLNK(info.st_mode):
            target = self._root.readlink(real)
            self._verify(path, file.checksum, target.encode())
            return SourceMember(Entry(path, EntryKind.SYMLINK, mode, link_target=target, uid=uid, gid=gid))
        if stat.S_ISREG(info.st_mode):
            if file.checksum:
                self._tally.unverified += 1
            entry = Entry(path, EntryKind.FILE, mode, size=info.st_size, uid=uid, gid=gid)
            return SourceMember(entry, self._body(path, parent, file, info))
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"{self._root.label}: /{path} is a folder, the database lists a file")
        raise UnsafeArchiveError(f"{self._root.label}: /{path} is a device, FIFO or socket; refusing to read it")

    def _verify(self, path: str, expected: str, data: bytes) -> None:
        if expected and _digest_of(expected, [data]) != expected:
            self._tally.modified.append(path)

    def _body(self, path: str, parent: str, file: InstalledFile, seen: os.stat_result) -> Iterator[bytes]:
        """Open lazily (a consumer may skip the body), refusing anything that is no longer
        the regular file we saw."""
        dir_fd = self._root.open_dir(parent)
        try:
            fd = os.open(file.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
        except OSError as exc:
            raise InputError(f"{self._root.label}: cannot open /{path}: {exc.strerror or exc}") from exc
        finally:
            os.close(dir_fd)
        hasher = _hasher_for(file.checksum)
        with os.fdopen(fd, "rb") as handle:
            now = os.fstat(handle.fileno())
            if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (seen.st_dev, seen.st_ino):
                raise UnsafeArchiveError(f"{self._root.label}: /{path} changed while reading it")
            while chunk := handle.read(READ_CHUNK):
                self._tally.unpacked += len(chunk)
                hasher.update(chunk)
                yield chunk
        if file.checksum:
            self._tally.unverified -= 1
            if _format_digest(file.checksum, hasher.digest()) != file.checksum:
                self._tally.modified.append(path)

    # -- results -------------------------------------------------------------------------

    @property
    def modified(self) -> tuple[str, ...]:
        return tuple(self._tally.modified)

    @property
    def check(self) -> ArchiveCheck:
        if not self._done:
            raise RuntimeError("check is known only after members() was read to the end")
        verified = not self._tally.modified and not self._tally.unverified
        return ArchiveCheck(
            source=SourceKind.INSTALLED,
            datahash_verified=verified,
            control_checksum=self.record.entry.checksum,
            unpacked_size=self._tally.unpacked,
        )


def _hasher_for(checksum: str) -> hashlib._Hash:
    return hashlib.sha256() if checksum.startswith("Q2") else hashlib.sha1()


def _format_digest(checksum: str, digest: bytes) -> str:
    return checksum[:2] + base64.b64encode(digest).decode()


def _digest_of(checksum: str, chunks: Iterable[bytes]) -> str:
    hasher = _hasher_for(checksum)
    for chunk in chunks:
        hasher.update(chunk)
    return _format_digest(checksum, hasher.digest())


__all__ = [
    "DEFAULT_DIR_ACL",
    "DEFAULT_FILE_ACL",
    "Acl",
    "InstalledDir",
    "InstalledFile",
    "InstalledRecord",
    "InstalledSource",
    "RootFS",
    "parse_installed_db",
    "read_installed_db",
    "record_for_archive",
    "write_installed_db",
]
