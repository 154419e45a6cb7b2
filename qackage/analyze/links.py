"""Symlinks: where each chain ends, whether it dangles, loops or is absolute."""

from __future__ import annotations

from typing import ClassVar

from qackage.analyze.base import PackageView
from qackage.model import Entry, EntryKind, Facts, Symlink


class SymlinkFacet:
    name: ClassVar[str] = "symlinks"

    def capture(self, entry: Entry, head: bytes) -> int:
        return 0

    def analyze(self, view: PackageView, earlier: Facts) -> Facts:
        links = []
        for entry in view.entries:
            if entry.kind is not EntryKind.SYMLINK:
                continue
            chain, resolved, looped = view.follow(entry.path)
            target = entry.link_target or ""
            links.append(
                Symlink(
                    path=entry.path,
                    target=target,
                    absolute=target.startswith("/"),
                    resolved=resolved,
                    chain=chain,
                    dangling=resolved is None,
                    loop=looped,
                )
            )
        return Facts(symlinks=tuple(sorted(links, key=lambda s: s.path)))
