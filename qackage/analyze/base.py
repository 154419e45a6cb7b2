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

import dataclasses
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from qackage.analyze.elfimage import ElfImage
from qackage.apk import chroot
from qackage.model import Entry, EntryKind, Facts, PackageInfo

HEAD_BYTES = 4096
MAX_SYMLINK_HOPS = chroot.MAX_HOPS


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
        # A package need not list the folders its files sit in: they exist all the same.
        folders: set[str] = set()
        for entry in self.entries:
            parent = posixpath.dirname(entry.path)
            while parent and parent not in folders:
                folders.add(parent)
                parent = posixpath.dirname(parent)
        object.__setattr__(self, "_folders", frozenset(folders))

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

    def captured(self, path: str) -> bytes | None:
        """What capture kept of the file behind ``path``, following symlinks inside the
        package and hardlinks to the file they name."""
        real = self.resolve(path)
        entry = self.by_path.get(real) if real is not None else None
        if entry is None:
            return None
        if entry.kind is EntryKind.HARDLINK and entry.link_target is not None:
            return self.contents.get(entry.link_target)
        return self.contents.get(entry.path)

    def under(self, prefix: str) -> tuple[Entry, ...]:
        prefix = prefix.rstrip("/") + "/"
        return tuple(e for e in self.entries if e.path.startswith(prefix))

    def follow(self, path: str) -> tuple[tuple[str, ...], str | None, bool]:
        """Follow symlinks inside the package with chroot semantics (every component,
        see `qackage.apk.chroot`): (the paths walked after ``path``, the package path the
        chain ends at - "" for the package root - or None, whether it loops)."""
        walked = chroot.walk(path, self._lookup, max_hops=MAX_SYMLINK_HOPS)
        return walked.chain, walked.resolved, walked.looped

    def _lookup(self, path: str) -> chroot.Found:
        entry = self.by_path.get(path)
        implied: frozenset[str] = object.__getattribute__(self, "_folders")
        return chroot.FOLDER if entry is None and path in implied else chroot.entry_found(entry)

    def resolve(self, path: str) -> str | None:
        """Where ``path`` ends inside the package; None if it dangles or loops."""
        return self.follow(path)[1]


class Facet(Protocol):
    name: ClassVar[str]

    def capture(self, entry: Entry, head: bytes) -> int:
        """How many leading bytes of this regular file to keep (0: none)."""
        ...

    def analyze(self, view: PackageView, earlier: Facts) -> Facts:
        """Facts for the fields this facet owns; every other field left at its default."""
        ...


_DEFAULT_FACTS = Facts()


def run_facets(view: PackageView, facets: Sequence[Facet]) -> Facts:
    """Each facet sees what the ones before it found; the fields it leaves at their
    defaults keep what earlier facets set."""
    facts = Facts()
    for facet in facets:
        found = facet.analyze(view, facts)
        changes = {
            f.name: getattr(found, f.name)
            for f in dataclasses.fields(Facts)
            if getattr(found, f.name) != getattr(_DEFAULT_FACTS, f.name)
        }
        facts = dataclasses.replace(facts, **changes)
    return facts
