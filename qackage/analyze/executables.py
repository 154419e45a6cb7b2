"""Programs a user can run: on PATH (bin/sbin) or helpers under libexec."""

from __future__ import annotations

import posixpath
from typing import ClassVar

from qackage.analyze.base import PackageView
from qackage.model import Entry, EntryKind, Executable, Facts

PATH_DIRS = ("usr/bin", "usr/sbin", "bin", "sbin", "usr/local/bin", "usr/local/sbin")
LIBEXEC_DIRS = ("usr/libexec", "usr/lib/libexec")
SHEBANG_BYTES = 256


def shebang_interpreter(head: bytes) -> str | None:
    """``#!/usr/bin/env -S python3 -u`` -> ``python3``; ``#!/bin/sh -e`` -> ``/bin/sh``."""
    if not head.startswith(b"#!"):
        return None
    line = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    words = line.split()
    if not words:
        return None
    if posixpath.basename(words[0]) == "env":
        rest = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        return rest[0] if rest else None
    return words[0]


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
            return SHEBANG_BYTES
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
            if target.kind is EntryKind.HARDLINK:
                real = target.link_target or real
            mode_ok = bool(target.mode & 0o111)
            is_elf = real in elf_paths
            if not (mode_ok or is_elf):
                continue
            interpreter = shebang_interpreter(view.contents.get(real or "", b""))
            found.append(Executable(entry.path, entry.name, on_path, elf=is_elf, interpreter=interpreter))
        return Facts(executables=tuple(sorted(found, key=lambda e: e.path)))
