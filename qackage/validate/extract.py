"""An extraction cache: each .apk unpacked once, then copied into as many test roots as need it.

    cache = ExtractCache()                 # $XDG_CACHE_HOME/qackage/extracted
    package = cache.get(Path("hello-2.12.1-r1.apk"))
    package.tree, package.info, package.record, package.entries

An entry is keyed by the package's control checksum (``C:``, which also covers the
``datahash`` line) plus its ``datahash``, so a rebuilt package with the same name and
version gets its own entry. Layout of the cache folder::

    <folder>/v1-<control digest>-<datahash>/
        tree/            the package's files
        PKGINFO          its .PKGINFO (as parsed, re-written)
        installed        its record for lib/apk/db/installed
        entries.json     every member as the archive declared it (modes, owners, links)

The archive streams through `ApkArchive`, so every safety check of `qackage.apk.safety`
applies, and members are written with descriptor-relative calls that never follow a
symlink. An entry is unpacked into a private ``.partial-*`` folder and renamed into
place in one step; when two processes unpack the same package at once, the second
rename fails and that process drops its copy and uses the winner's. A package that turns
out corrupt or hostile raises and leaves nothing behind.

The tree is a store of content, not an installed system: files are kept owner-readable
and folders owner-writable whatever the package says, set-user/group-ID bits are never
stored (a set-uid binary lying in a home folder is an escalation risk, and nothing ever
runs from the cache) and nothing is chowned (a file owned by a package's uid could be
changed by whoever holds that uid, poisoning every later root). The package's real
modes and owners are in ``entries.json``; `qackage.validate.rootfs` applies them to the
root it builds.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import posixpath
import re
import shutil
import stat
import tempfile
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from qackage.apk.archive import ApkArchive
from qackage.apk.index import checksum_digest, package_checksum
from qackage.apk.installed import InstalledRecord, parse_installed_db, record_for_archive, write_installed_db
from qackage.apk.limits import DEFAULT_LIMITS, Limits
from qackage.apk.pkginfo import format_pkginfo, parse_pkginfo
from qackage.apk.safety import normalize_member_path
from qackage.errors import CorruptArchiveError, EnvironmentProblem, InputError, QackageError, UnsafeArchiveError
from qackage.model import Entry, EntryKind, PackageInfo

FORMAT = "v1"  # bump when the layout of an entry changes: old entries are then ignored
TREE = "tree"
PKGINFO = "PKGINFO"
INSTALLED = "installed"
ENTRIES = "entries.json"
PARTIAL_PREFIX = ".partial-"
IMPLICIT_DIR_MODE = 0o755  # a folder the archive implies without declaring (apk makes them 0755)
_DATAHASH = re.compile(r"^[0-9a-f]{64}$")
_COPY_CHUNK = 1 << 20
_OPEN_DIRS = 64  # descriptors kept open while unpacking one package
_SPECIAL_BITS = stat.S_ISUID | stat.S_ISGID


def default_cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qackage" / "extracted"


def stored_file_mode(mode: int) -> int:
    """A file's mode in the cache: no set-uid/gid, always owner-readable (see the module doc)."""
    return (stat.S_IMODE(mode) & ~_SPECIAL_BITS) | stat.S_IRUSR


def stored_dir_mode(mode: int) -> int:
    """A folder's mode in the cache: no set-uid/gid, always owner-rwx, so it can be read and removed."""
    return (stat.S_IMODE(mode) & ~_SPECIAL_BITS) | stat.S_IRWXU


# --------------------------------------------------------------------------- entries


@dataclass(frozen=True, slots=True)
class CachedPackage:
    """One package as the cache holds it."""

    key: str
    folder: Path
    info: PackageInfo  # from the package's .PKGINFO
    record: InstalledRecord  # what apk writes to lib/apk/db/installed for it
    entries: tuple[Entry, ...]  # parents before children; implied folders included

    @property
    def tree(self) -> Path:
        return self.folder / TREE

    @property
    def label(self) -> str:
        return f"{self.info.name}-{self.info.version}"


def _entries_json(entries: Iterable[Entry]) -> str:
    rows = [[e.path, e.kind.value, e.mode, e.size, e.link_target, e.uid, e.gid] for e in entries]
    return json.dumps(rows, separators=(",", ":"))


def _entries_from_json(text: str, label: str) -> tuple[Entry, ...]:
    entries: list[Entry] = []
    for row in json.loads(text):
        path, kind, mode, size, link_target, uid, gid = row
        if normalize_member_path(path, label) != path or not path:
            raise ValueError(f"{label}: entry path {path!r} is not normalised")
        if not all(isinstance(n, int) and n >= 0 for n in (mode, size, uid, gid)):
            raise ValueError(f"{label}: bad numbers for {path!r}")
        if link_target is not None and not isinstance(link_target, str):
            raise ValueError(f"{label}: bad link target for {path!r}")
        entries.append(Entry(path, EntryKind(kind), mode, size, link_target, uid, gid))
    return tuple(entries)


# --------------------------------------------------------------------------- unpacking


class DirectoryHandles:
    """Descriptors of folders below a root, opened one component at a time with
    ``O_NOFOLLOW`` so that no symlink is ever followed, and kept in a small LRU.

    A descriptor returned by `open` stays valid until ``capacity`` other folders were
    opened after it (at least two are always usable at once, for ``link``)."""

    def __init__(self, root_fd: int, capacity: int = _OPEN_DIRS) -> None:
        self._root = root_fd
        self._capacity = max(capacity, 2)
        self._open: OrderedDict[str, int] = OrderedDict()

    def open(self, path: str) -> int:
        if not path:
            return self._root
        if path in self._open:
            self._open.move_to_end(path)
            return self._open[path]
        parent, name = posixpath.split(path)
        parent_fd = self.open(parent)
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        self._open[path] = fd
        while len(self._open) > self._capacity:
            _, old = self._open.popitem(last=False)
            os.close(old)
        return fd

    def close(self) -> None:
        while self._open:
            os.close(self._open.popitem()[1])


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Unpacker:
    """Lays one archive's members under ``tree``; returns the entries it laid."""

    def __init__(self, tree: Path) -> None:
        self._root_fd = os.open(tree, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        self._dirs = DirectoryHandles(self._root_fd)
        self.entries: dict[str, Entry] = {}

    def close(self) -> None:
        self._dirs.close()
        os.close(self._root_fd)

    def _make_parents(self, path: str) -> None:
        """Folders the archive implies by naming a path below them, as apk creates them."""
        parent = posixpath.dirname(path)
        missing: list[str] = []
        while parent and parent not in self.entries:
            missing.append(parent)
            parent = posixpath.dirname(parent)
        for folder in reversed(missing):
            self._mkdir(folder)
            self.entries[folder] = Entry(folder, EntryKind.DIR, stat.S_IFDIR | IMPLICIT_DIR_MODE)

    def _mkdir(self, path: str) -> None:
        parent, name = posixpath.split(path)
        # Owner-only while unpacking; the stored mode is applied once every child is in.
        os.mkdir(name, 0o700, dir_fd=self._dirs.open(parent))

    def add(self, entry: Entry, chunks: Iterator[bytes]) -> None:
        self._make_parents(entry.path)
        parent, name = posixpath.split(entry.path)
        if entry.kind is EntryKind.DIR:
            if entry.path not in self.entries:  # declared twice, or implied first: one folder
                self._mkdir(entry.path)
            self.entries[entry.path] = entry
            return
        parent_fd = self._dirs.open(parent)
        if entry.kind is EntryKind.FILE:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(name, flags, 0o600, dir_fd=parent_fd)
            try:
                for chunk in chunks:
                    write_all(fd, chunk)
                os.fchmod(fd, stored_file_mode(entry.mode))
            finally:
                os.close(fd)
        elif entry.kind is EntryKind.SYMLINK:
            os.symlink(entry.link_target or "", name, dir_fd=parent_fd)
        else:  # a hardlink: the policy made sure its target is a file this archive wrote
            target_parent, target_name = posixpath.split(entry.link_target or "")
            target_fd = self._dirs.open(target_parent)
            parent_fd = self._dirs.open(parent)  # re-fetch: opening the target may have evicted it
            os.link(target_name, name, src_dir_fd=target_fd, dst_dir_fd=parent_fd, follow_symlinks=False)
        self.entries[entry.path] = entry

    def finish(self) -> tuple[Entry, ...]:
        """Apply folder modes, deepest first, so that a read-only folder is filled before it is closed."""
        for entry in reversed(list(self.entries.values())):
            if entry.kind is EntryKind.DIR:
                parent, name = posixpath.split(entry.path)
                fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=self._dirs.open(parent))
                try:
                    os.fchmod(fd, stored_dir_mode(entry.mode))
                finally:
                    os.close(fd)
        return tuple(self.entries.values())


def _unpack(apk: ApkArchive, tree: Path) -> tuple[Entry, ...]:
    unpacker = _Unpacker(tree)
    try:
        for member in apk.members():
            unpacker.add(member.entry, member.chunks())
        return unpacker.finish()
    finally:
        unpacker.close()


def remove_tree(path: Path) -> None:
    """Remove a folder we wrote, even where a package made sub-folders read-only: each
    folder is made owner-rwx before it is listed, so that nothing is left unreachable."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or not path.is_dir():
        path.unlink()
        return
    pending = [str(path)]
    while pending:
        folder = pending.pop()
        with contextlib.suppress(OSError):
            mode = os.lstat(folder).st_mode
            if not stat.S_ISDIR(mode):
                continue
            if (mode & stat.S_IRWXU) != stat.S_IRWXU:
                Path(folder).chmod(stat.S_IMODE(mode) | stat.S_IRWXU)
            with os.scandir(folder) as children:
                pending += [child.path for child in children if child.is_dir(follow_symlinks=False)]
    shutil.rmtree(path)


def _make_key(control_checksum: str, datahash: str, apk_path: Path) -> str:
    """``v1-q1<control digest hex>-<datahash>``: nothing in it comes from the archive unchecked."""
    digest = checksum_digest(control_checksum).hex()
    if datahash:
        if not _DATAHASH.match(datahash):
            raise CorruptArchiveError(f"{apk_path}: datahash {datahash[:80]!r} is not a sha256 hex digest")
        content = datahash
    else:
        # Nothing in the control segment binds the data: key on the whole file instead.
        content = "file-" + _file_sha256(apk_path)
    return f"{FORMAT}-{control_checksum[:2].lower()}{digest}-{content}"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_COPY_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- the cache


class ExtractCache:
    """Packages unpacked once, keyed by content. Counters tell what this object did:
    ``extractions`` (packages it unpacked), ``hits`` (packages it found unpacked) and
    ``lost_races`` (packages another process published first while it was unpacking).

    Within one object, keys are remembered per file identity (device, inode, size and
    modification time) and loaded entries per key, so building many roots in one process
    reads each package's head and each entry's metadata once."""

    def __init__(self, folder: Path | None = None, *, limits: Limits = DEFAULT_LIMITS) -> None:
        self.folder = folder if folder is not None else default_cache_folder()
        self.limits = limits
        self.extractions = 0
        self.hits = 0
        self.lost_races = 0
        self._keys: dict[tuple[str, int, int, int, int], str] = {}
        self._loaded: dict[str, CachedPackage] = {}

    def __repr__(self) -> str:
        return f"ExtractCache({str(self.folder)!r})"

    # -- keys ----------------------------------------------------------------------------

    def key_for(self, apk_path: Path) -> str:
        """The entry name for the package at ``apk_path`` (reads only its control segment,
        or the whole file for a package without a datahash)."""
        try:
            status = apk_path.stat()
        except OSError as exc:
            raise InputError(f"{apk_path}: cannot open: {exc.strerror or exc}") from exc
        identity = (str(apk_path), status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)
        if identity not in self._keys:
            self._keys[identity] = self._compute_key(apk_path)
        return self._keys[identity]

    def _compute_key(self, apk_path: Path) -> str:
        with ApkArchive.open(apk_path, limits=self.limits) as apk:
            datahash = apk.info.datahash
        return _make_key(package_checksum(apk_path, self.limits), datahash, apk_path)

    # -- lookups -------------------------------------------------------------------------

    def get(self, apk_path: Path) -> CachedPackage:
        """The package at ``apk_path``, unpacked (now, or by an earlier call)."""
        key = self.key_for(apk_path)
        found = self.lookup(key)
        if found is not None:
            self.hits += 1
            return found
        return self._extract(apk_path, key)

    def lookup(self, key: str) -> CachedPackage | None:
        """The entry named ``key``, or None. A damaged entry is removed, so that the next
        `get` unpacks the package again."""
        folder = self.folder / key
        if not folder.is_dir():
            self._loaded.pop(key, None)
            return None
        if key in self._loaded:
            return self._loaded[key]
        try:
            package = self._load(key, folder)
        except (OSError, ValueError, TypeError, KeyError, QackageError):
            self.discard(key)
            return None
        self._loaded[key] = package
        return package

    def _load(self, key: str, folder: Path) -> CachedPackage:
        label = str(folder)
        info = parse_pkginfo((folder / PKGINFO).read_bytes(), f"{label}/{PKGINFO}")
        records = parse_installed_db((folder / INSTALLED).read_text(encoding="utf-8"), f"{label}/{INSTALLED}")
        entries = _entries_from_json((folder / ENTRIES).read_text(encoding="utf-8"), label)
        if len(records) != 1 or records[0].info.name != info.name or not (folder / TREE).is_dir():
            raise ValueError(f"{label}: incomplete cache entry")
        return CachedPackage(key, folder, info, records[0], entries)

    def discard(self, key: str) -> None:
        """Remove one entry. It is renamed away first, so other processes see it whole or not at all."""
        self._loaded.pop(key, None)
        folder = self.folder / key
        if not folder.is_dir():
            return
        doomed = Path(tempfile.mkdtemp(prefix=f"{PARTIAL_PREFIX}discard-", dir=self.folder))
        with contextlib.suppress(FileNotFoundError):  # another process removed it first
            folder.rename(doomed / "entry")
        remove_tree(doomed)

    def remove_stale_partials(self, older_than: float = 24 * 3600.0) -> int:
        """Remove unpacking folders that a killed process left behind; how many went."""
        if not self.folder.is_dir():
            return 0
        removed = 0
        limit = time.time() - older_than
        for child in self.folder.iterdir():
            if child.name.startswith(PARTIAL_PREFIX) and child.lstat().st_mtime < limit:
                remove_tree(child)
                removed += 1
        return removed

    # -- unpacking -----------------------------------------------------------------------

    def _extract(self, apk_path: Path, key: str) -> CachedPackage:
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            partial = Path(tempfile.mkdtemp(prefix=PARTIAL_PREFIX, dir=self.folder))
        except OSError as exc:
            raise EnvironmentProblem(f"{self.folder}: cannot create the extraction cache: {exc.strerror}") from exc
        try:
            package = self._fill(apk_path, key, partial)
            return self._publish(package, partial)
        except OSError as exc:
            raise _translate(exc, apk_path, self.folder) from exc
        finally:
            remove_tree(partial)  # gone after a successful rename; our copy after a failure or a lost race

    def _fill(self, apk_path: Path, key: str, partial: Path) -> CachedPackage:
        tree = partial / TREE
        tree.mkdir(mode=0o700)
        with ApkArchive.open(apk_path, limits=self.limits) as apk:
            entries = _unpack(apk, tree)  # members() checks the datahash at its end
            check, info = apk.check, apk.info
        # What was unpacked must be what the key names (the file may have been replaced since).
        if _make_key(check.control_checksum, info.datahash, apk_path) != key:
            raise CorruptArchiveError(f"{apk_path}: the file changed while it was being unpacked")
        record = record_for_archive(apk_path, limits=self.limits)  # a second pass, datahash checked again
        if record.entry.checksum != check.control_checksum:
            raise CorruptArchiveError(f"{apk_path}: the file changed while it was being unpacked")
        (partial / PKGINFO).write_text(format_pkginfo(info), encoding="utf-8")
        (partial / INSTALLED).write_text(write_installed_db([record]), encoding="utf-8")
        (partial / ENTRIES).write_text(_entries_json(entries), encoding="utf-8")
        self.extractions += 1
        return CachedPackage(key, self.folder / key, info, record, entries)

    def _publish(self, package: CachedPackage, partial: Path) -> CachedPackage:
        try:
            partial.rename(package.folder)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            # Another process published the same package first: use its copy, drop ours.
            self.lost_races += 1
            winner = self.lookup(package.key)
            if winner is None:
                raise EnvironmentProblem(
                    f"{package.folder}: another process keeps replacing this cache entry; try again"
                ) from exc
            return winner
        self._loaded[package.key] = package
        return package


def _translate(exc: OSError, apk_path: Path, folder: Path) -> QackageError:
    if exc.errno == errno.ENAMETOOLONG:
        return UnsafeArchiveError(f"{apk_path}: a member name is longer than the file system allows")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return EnvironmentProblem(f"{folder}: no space left for the extraction cache (free some, or move it)")
    if exc.errno == errno.EEXIST:
        # The safety policy refuses duplicates; a clash here means a case-folding or
        # otherwise unusual file system under the cache.
        return InputError(f"{apk_path}: two members land on the same file in {folder}: {exc.filename}")
    return EnvironmentProblem(f"{folder}: cannot unpack {apk_path.name}: {exc.strerror or exc}")


__all__ = [
    "CachedPackage",
    "DirectoryHandles",
    "ExtractCache",
    "default_cache_folder",
    "remove_tree",
    "stored_dir_mode",
    "stored_file_mode",
    "write_all",
]
