"""Programs a user can run: on PATH (bin/sbin) or helpers under libexec."""

from __future__ import annotations

import posixpath
from typing import ClassVar

from qackage.analyze.base import PackageView
from qackage.analyze.shebang import SHEBANG_CAP, parse_shebang
from qackage.model import Entry, EntryKind, Executable, Facts

PATH_DIRS = ("usr/bin", "usr/sbin", "bin", "sbin", "usr/local/bin", "usr/local/sbin")
LIBEXEC_DIRS = ("usr/libexec", "usr/lib/libexec")


def _location(path: str) -> bool | None:
    """True: on PATH; False: libexec helper; None: not a program location."""
    directory = posixpath.dirname(path)
    if directory in PATH_DIRS:
        return True
    if any(directory == d or directory.startswith(d + "/") for d in LIBEXEC_DIRS):
        return False
    return None


class ExecutableFacet:
    name: ClassVar[str] = "executables"

    def capture(self, entry: Entry, head: bytes) -> int:
        if entry.is_executable and head.startswith(b"#!"):
            return SHEBANG_CAP
        return 0

    def analyze(self, view: PackageView, earlier: Facts) -> Facts:
        elf_paths = {f.path for f in earlier.elf_files}
        found = []
        for entry in view.entries:
            on_path = _location(entry.path)
            if on_path is None or entry.kind is EntryKind.DIR:
                continue
            _chain, real, looped = view.follow(entry.path)
            if looped:
                continue
            target = view.by_path.get(real) if real else None
            if entry.kind is EntryKind.SYMLINK and target is None:
                # A link to a program the package does not ship (e.g. an alternative):
                # still a command on PATH, but nothing we can inspect.
                found.append(Executable(entry.path, entry.name, on_path, elf=False))
                continue
            if target is None or target.kind not in (EntryKind.FILE, EntryKind.HARDLINK):
                continue
            mode_ok = bool(target.mode & 0o111)
            if target.kind is EntryKind.HARDLINK:
                real = target.link_target  # ELF images are keyed by the file the link names
            is_elf = real in elf_paths
            if not (mode_ok or is_elf):
                continue
            shebang = parse_shebang(view.captured(entry.path) or b"")
            found.append(
                Executable(
                    entry.path, entry.name, on_path, elf=is_elf, interpreter=shebang.interpreter if shebang else None
                )
            )
        return Facts(executables=tuple(sorted(found, key=lambda e: e.path)))
