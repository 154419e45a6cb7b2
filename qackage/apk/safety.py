"""Decide whether an archive member may be part of a package tree.

A package is installed into a root filesystem, so every member must land inside that
root: no absolute or ``..`` names, no member reached through a symlink the archive
itself planted, no relative symlink that climbs above the root, no hardlink to
something the archive did not ship, no device nodes or FIFOs, no duplicates.
Absolute symlink *targets* are fine: they resolve inside the root (``/bin/sh ->
/bin/busybox`` is everyday Wolfi).
"""

from __future__ import annotations

import posixpath

from qackage.apk.limits import DEFAULT_LIMITS, Limits
from qackage.apk.tarstream import TarMember, TarType
from qackage.errors import UnsafeArchiveError
from qackage.model import Entry, EntryKind

_KIND = {
    TarType.FILE: EntryKind.FILE,
    TarType.DIR: EntryKind.DIR,
    TarType.SYMLINK: EntryKind.SYMLINK,
    TarType.HARDLINK: EntryKind.HARDLINK,
}


def normalize_member_path(name: str, label: str, limits: Limits = DEFAULT_LIMITS) -> str:
    """``./usr//bin/x`` -> ``usr/bin/x``; refuse anything that could leave the root."""
    if "\0" in name:
        raise UnsafeArchiveError(f"{label}: path contains a NUL byte: {name!r}")
    if len(name.encode()) > limits.max_path_bytes:
        raise UnsafeArchiveError(f"{label}: path longer than {limits.max_path_bytes} bytes")
    if name.startswith("/"):
        raise UnsafeArchiveError(f"{label}: absolute path {name!r}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{label}: path traversal ('..') in {name!r}")
    return "/".join(parts)


def symlink_escapes(link_path: str, target: str) -> bool:
    """True when a relative target climbs above the root from the link's directory."""
    if target.startswith("/"):
        return False
    depth = link_path.count("/")  # directories above the link: usr/bin/x -> 2
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


class TreePolicy:
    """Stateful checker over one archive's members, in archive order."""

    def __init__(self, label: str, limits: Limits) -> None:
        self._label = label
        self._limits = limits
        self._seen: dict[str, EntryKind] = {}
        self._symlinks: set[str] = set()
        # Directories already proven to be plain directories all the way up. A path
        # cannot change kind later (duplicates are refused), so the proof holds.
        self._checked_dirs: set[str] = set()
        self._implicit_dirs: set[str] = set()

    def admit(self, member: TarMember) -> Entry | None:
        """The member as an `Entry`, None for the root directory itself, or an error."""
        label = self._label
        if member.type not in _KIND:
            raise UnsafeArchiveError(f"{label}: {member.type.value} {member.name!r} is not allowed in a package")
        path = normalize_member_path(member.name, label, self._limits)
        if not path:
            if member.type is TarType.DIR:
                return None
            raise UnsafeArchiveError(f"{label}: member with an empty name")
        if len(self._seen) >= self._limits.max_entries:
            raise UnsafeArchiveError(f"{label}: more than {self._limits.max_entries} members")
        self._check_parents(path)
        kind = _KIND[member.type]
        previous = self._seen.get(path)
        if previous is not None and not (previous is EntryKind.DIR and kind is EntryKind.DIR):
            raise UnsafeArchiveError(f"{label}: {path!r} appears twice in the archive")
        if kind is not EntryKind.DIR and path in self._implicit_dirs:
            raise UnsafeArchiveError(f"{label}: {path!r} is a {kind.value} but earlier members live below it")
        target: str | None = None
        if kind is EntryKind.SYMLINK:
            target = member.linkname
            if not target or "\0" in target:
                raise UnsafeArchiveError(f"{label}: symlink {path!r} has an empty target")
            if symlink_escapes(path, target):
                raise UnsafeArchiveError(f"{label}: symlink {path!r} -> {target!r} escapes the package root")
            self._symlinks.add(path)
        elif kind is EntryKind.HARDLINK:
            target = normalize_member_path(member.linkname, label, self._limits)
            if self._seen.get(target) is not EntryKind.FILE:
                raise UnsafeArchiveError(
                    f"{label}: hardlink {path!r} -> {member.linkname!r} does not point at a file in the package"
                )
        self._seen[path] = kind
        return Entry(
            path=path,
            kind=kind,
            mode=member.mode,
            size=member.size,
            link_target=target,
            uid=member.uid,
            gid=member.gid,
        )

    def _check_parents(self, path: str) -> None:
        parent = posixpath.dirname(path)
        climbed: list[str] = []
        while parent and parent not in self._checked_dirs:
            if parent in self._symlinks:
                raise UnsafeArchiveError(f"{self._label}: {path!r} would be written through the symlink {parent!r}")
            if self._seen.get(parent, EntryKind.DIR) is not EntryKind.DIR:
                raise UnsafeArchiveError(f"{self._label}: {path!r} is below the non-directory {parent!r}")
            climbed.append(parent)
            parent = posixpath.dirname(parent)
        # Only directories the archive declared are cached: an undeclared parent could
        # still be declared later as a symlink.
        self._implicit_dirs.update(climbed)
        self._checked_dirs.update(p for p in climbed if self._seen.get(p) is EntryKind.DIR)
