"""Phase one of analysis: stream a package once and keep only what facets asked for."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from qackage.analyze.base import HEAD_BYTES, Facet, PackageView
from qackage.analyze.elfimage import ElfCapture, ElfImage
from qackage.apk.archive import SourceMember
from qackage.model import ArchiveCheck, Entry, EntryKind, PackageInfo

ELF_MAGIC = b"\x7fELF"


class PackageSource(Protocol):
    """An .apk, an extracted directory or an installed package: anything that streams."""

    @property
    def info(self) -> PackageInfo: ...

    def members(self) -> Iterator[SourceMember]: ...

    @property
    def check(self) -> ArchiveCheck: ...


class _Head:
    """Collect the first HEAD_BYTES of a chunk stream without losing the rest."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending: list[bytes] = []
        collected = bytearray()
        for chunk in chunks:
            self._pending.append(chunk)
            collected += chunk
            if len(collected) >= HEAD_BYTES:
                break
        self.head = bytes(collected[:HEAD_BYTES])

    def all_chunks(self) -> Iterator[bytes]:
        yield from self._pending
        yield from self._chunks


def _capture_file(
    entry: Entry, chunks: Iterator[bytes], facets: Sequence[Facet]
) -> tuple[bytes | None, bool, ElfImage | None]:
    """Return (kept prefix or None, prefix truncated?, ElfImage or None) for one file."""
    reader = _Head(chunks)
    head = reader.head
    wanted = max((facet.capture(entry, head) for facet in facets), default=0)
    is_elf = head.startswith(ELF_MAGIC)
    if not wanted and not is_elf:
        for _ in reader.all_chunks():
            pass  # drain so the archive stays in step; nothing kept
        return None, False, None
    elf = ElfCapture(entry.size) if is_elf else None
    kept = bytearray()
    for chunk in reader.all_chunks():
        if elf is not None:
            elf.feed(chunk)
        if len(kept) < wanted:
            kept += chunk[: wanted - len(kept)]
    prefix = bytes(kept) if wanted else None
    return prefix, wanted < entry.size, elf.image() if elf is not None else None


def capture(source: PackageSource, facets: Sequence[Facet]) -> PackageView:
    """Read every member of ``source`` once; return the view facets analyze."""
    entries: list[Entry] = []
    contents: dict[str, bytes] = {}
    truncated: set[str] = set()
    elf_images: dict[str, ElfImage] = {}
    for member in source.members():
        entry = member.entry
        entries.append(entry)
        if entry.kind is not EntryKind.FILE:
            continue
        prefix, cut, image = _capture_file(entry, member.chunks(), facets)
        if prefix is not None:
            contents[entry.path] = prefix
            if cut:
                truncated.add(entry.path)
        if image is not None:
            elf_images[entry.path] = image
    return PackageView(
        info=source.info,
        entries=tuple(entries),
        contents=contents,
        truncated=frozenset(truncated),
        elf_images=elf_images,
    )
