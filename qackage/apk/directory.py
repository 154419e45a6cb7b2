"""An already-extracted package tree as a package source (same interface as ApkArchive).

The tree is walked without following symlinks, and every member passes the same
`TreePolicy` as archive members, so an extracted hostile package is refused exactly
like the archive it came from. ``.PKGINFO`` at the top names the package; without it
the folder name is used and the version is unknown.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from qackage.apk.archive import SourceMember
from qackage.apk.limits import DEFAULT_LIMITS, Limits
from qackage.apk.pkginfo import parse_pkginfo
from qackage.apk.safety import TreePolicy
from qackage.apk.tarstream import TarMember, TarType
from qackage.errors import InputError
from qackage.model import ArchiveCheck, EntryKind, PackageInfo, SourceKind

READ_CHUNK = 256 * 1024
# Top-level names apk keeps in the control segment, never installed.
CONTROL_NAMES = (
    ".PKGINFO",
    ".pre-install",
    ".post-install",
    ".pre-upgrade",
    ".post-upgrade",
    ".pre-deinstall",
    ".post-deinstall",
    ".trigger",
    ".melange.yaml",
)


def _tar_type(mode: int) -> TarType:
    if stat.S_ISREG(mode):
        return TarType.FILE
    if stat.S_ISDIR(mode):
        return TarType.DIR
    if stat.S_ISLNK(mode):
        return TarType.SYMLINK
    if stat.S_ISCHR(mode):
        return TarType.CHARDEV
    if stat.S_ISBLK(mode):
        return TarType.BLOCKDEV
    if stat.S_ISFIFO(mode):
        return TarType.FIFO
    return TarType.UNKNOWN


def read_file_chunks(path: Path, label: str) -> Iterator[bytes]:
    """Stream a file opened without following a final symlink."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise InputError(f"{label}: cannot read {path}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            yield chunk


class DirectorySource:
    def __init__(self, root: str | Path, *, limits: Limits = DEFAULT_LIMITS) -> None:
        self.root = Path(root)
        self.label = str(root)
        self._limits = limits
        if not self.root.is_dir():
            raise InputError(f"{root}: not a directory")
        pkginfo = self.root / ".PKGINFO"
        if pkginfo.is_file() and not pkginfo.is_symlink():
            size = pkginfo.stat().st_size
            if size > limits.max_pkginfo_bytes:
                raise InputError(f"{root}: .PKGINFO is larger than {limits.max_pkginfo_bytes} bytes")
            self.info: PackageInfo = parse_pkginfo(pkginfo.read_bytes(), f"{root}/.PKGINFO")
            self.has_pkginfo = True
        else:
            self.info = PackageInfo(name=self.root.resolve().name, version="")
            self.has_pkginfo = False
        self._total = 0

    def _walk(self, folder: Path, relative: str) -> Iterator[tuple[Path, str, os.stat_result]]:
        try:
            with os.scandir(folder) as scan:
                children = sorted(scan, key=lambda e: e.name)
        except OSError as exc:
            raise InputError(f"{self.label}: cannot list {folder}: {exc.strerror or exc}") from exc
        for child in children:
            rel = f"{relative}/{child.name}" if relative else child.name
            if not relative and (child.name in CONTROL_NAMES or child.name.startswith(".SIGN.")):
                continue
            info = child.stat(follow_symlinks=False)
            yield Path(child.path), rel, info
            if stat.S_ISDIR(info.st_mode):
                yield from self._walk(Path(child.path), rel)

    def members(self) -> Iterator[SourceMember]:
        policy = TreePolicy(self.label, self._limits)
        for path, rel, info in self._walk(self.root, ""):
            kind = _tar_type(info.st_mode)
            member = TarMember(
                name=rel,
                type=kind,
                size=info.st_size if kind is TarType.FILE else 0,
                mode=stat.S_IMODE(info.st_mode),
                uid=info.st_uid,
                gid=info.st_gid,
                linkname=str(path.readlink()) if kind is TarType.SYMLINK else "",
            )
            entry = policy.admit(member)
            if entry is None:
                continue
            self._total += entry.size
            body = read_file_chunks(path, self.label) if entry.kind is EntryKind.FILE else None
            yield SourceMember(entry, body)

    @property
    def check(self) -> ArchiveCheck:
        return ArchiveCheck(source=SourceKind.DIRECTORY, unpacked_size=self._total)
