"""The one interface every analysis facet implements.

Analysis runs in two phases so that facets stay pure:

1. *Capture* (streaming, in `qackage.analyze.capture`): while the package streams past,
   each facet's ``capture(entry, head)`` says how many leading bytes of a regular file it
   needs (0 = none). ``head`` is the file's first bytes (up to `HEAD_BYTES`). ELF files
   are captured separately into sparse `ElfImage`s.
2. *Analyze* (pure): facets run in registry order; each gets a `PackageView` (metadata,
   entries, captured bytes) and the `Facts` found by the facets before it, and returns a
   `Facts` holding only the fields it owns.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from qackage.analyze.elfimage import ElfImage
from qackage.model import Entry, EntryKind, Facts, PackageInfo

HEAD_BYTES = 4096


@dataclass(frozen=True)
class PackageView:
    info: PackageInfo
    entries: tuple[Entry, ...]
    # Captured leading bytes of regular files (possibly the whole file).
    contents: Mapping[str, bytes] = field(default_factory=dict)
    # Paths whose capture stopped before the end of the file.
    truncated: frozenset[str] = frozenset()
    elf_images: Mapping[str, ElfImage] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_path", {e.path: e for e in self.entries})

    @property
    def by_path(self) -> Mapping[str, Entry]:
        by_path: Mapping[str, Entry] = object.__getattribute__(self, "_by_path")
        return by_path

    def files(self) -> tuple[Entry, ...]:
        return tuple(e for e in self.entries if e.kind in (EntryKind.FILE, EntryKind.HARDLINK))

    def text(self, path: str) -> str | None:
        """Captured content decoded as UTF-8 (errors replaced), or None if not captured."""
        data = self.contents.get(path)
        return None if data is None else data.decode("utf-8", errors="replace")

    def under(self, prefix: str) -> tuple[Entry, ...]:
        prefix = prefix.rstrip("/") + "/"
        return tuple(e for e in self.entries if e.path.startswith(prefix))

    def resolve(self, path: str, max_depth: int = 40) -> str | None:
        """Follow symlinks inside the package (chroot semantics); None if it leaves the
        package, dangles or loops."""
        current = path
        for _ in range(max_depth):
            entry = self.by_path.get(current)
            if entry is None:
                return None
            if entry.kind is not EntryKind.SYMLINK:
                return current
            target = entry.link_target or ""
            base = "" if target.startswith("/") else posixpath.dirname(current)
            current = posixpath.normpath(posixpath.join("/", base, target)).lstrip("/")
        return None


class Facet(Protocol):
    name: ClassVar[str]

    def capture(self, entry: Entry, head: bytes) -> int:
        """How many leading bytes of this regular file to keep (0: none)."""
        ...

    def analyze(self, view: PackageView, earlier: Facts) -> Facts:
        """Facts for the fields this facet owns; every other field left at its default."""
        ...
