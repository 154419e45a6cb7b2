"""Capture what ELF analysis needs from a file that streams past only once.

Small files are kept whole. For large files we keep a sparse image: the head (ELF and
program headers, and in practice ``.dynsym``/``.dynstr``, which linkers place at the
start of the first segment), the ``PT_INTERP``/``PT_DYNAMIC``/``PT_NOTE`` ranges, the
start of every ``PT_LOAD`` segment (Go's build info sits at the start of the data
segment, where ``debug/buildinfo`` looks for it too) and the section header table with
what precedes it (``.shstrtab``, ``.comment``). While streaming we also scan every byte
for a few language markers. Memory stays bounded whatever the file size.
"""

from __future__ import annotations

import bisect
import io
import struct
from collections.abc import Iterable
from dataclasses import dataclass

WHOLE_FILE_LIMIT = 16 << 20
HEAD_KEEP = 8 << 20
SEGMENT_HEAD = 64 << 10
RANGE_CAP = 1 << 20
SHT_LOOKBEHIND = 256 << 10
PLAN_AFTER = 64 << 10  # bytes needed before the program headers can be planned

PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE = 1, 2, 3, 4

# Byte strings whose presence anywhere in the file tells us about its toolchain. Rust
# programs embed panic locations ("/rustc/<commit>/library/std/src/...") even when
# stripped; the longer needle is also the faster search. Go is recognised from captured
# regions instead (its build info and build-ID note live in ranges we keep), so the
# full-file scan costs one pass.
MARKERS = {
    "rust-panic-path": b"library/std/src/",
}
# Searched only in the captured image.
CAPTURED_MARKERS = {
    "go-buildinfo": b"\xff Go buildinf:",
    "go-buildid": b"Go build ID: ",
    "rustc-comment": b"rustc version ",
}
_LONGEST_MARKER = max(len(m) for m in MARKERS.values())


class MissingRegion(Exception):
    """A read touched bytes we did not capture."""


@dataclass(frozen=True)
class ElfImage:
    size: int
    starts: tuple[int, ...]
    chunks: tuple[bytes, ...]
    markers: frozenset[str]

    @property
    def complete(self) -> bool:
        return len(self.chunks) == 1 and self.starts[0] == 0 and len(self.chunks[0]) == self.size

    def read(self, offset: int, size: int) -> bytes:
        index = bisect.bisect_right(self.starts, offset) - 1
        if index >= 0:
            start, chunk = self.starts[index], self.chunks[index]
            if offset + size <= start + len(chunk):
                return chunk[offset - start : offset - start + size]
            if offset < start + len(chunk) and offset + size > self.size:
                return chunk[offset - start :]  # a read past EOF returns what there is
        if offset >= self.size:
            return b""
        raise MissingRegion(f"bytes {offset}..{offset + size} were not captured")

    def stream(self) -> SparseStream:
        return SparseStream(self)


class SparseStream(io.RawIOBase):
    """A seekable file over an ElfImage for pyelftools; reads of missing bytes raise."""

    def __init__(self, image: ElfImage) -> None:
        self._image = image
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._image.size}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self._image.size - self._pos
        data = self._image.read(self._pos, size)
        self._pos += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _merge(ranges: Iterable[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted((max(0, s), min(size, e)) for s, e in ranges):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def plan_ranges(head: bytes, size: int) -> list[tuple[int, int]]:
    """Which byte ranges of a large ELF to keep, from its first bytes."""
    ranges = [(0, HEAD_KEEP)]
    if len(head) < 52 or head[:4] != b"\x7fELF":
        return _merge(ranges, size)
    is64 = head[4] == 2
    endian = "<" if head[5] == 1 else ">"
    if is64:
        phoff, shoff = struct.unpack_from(endian + "QQ", head, 32)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(endian + "HHHH", head, 54)
    else:
        phoff, shoff = struct.unpack_from(endian + "II", head, 28)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(endian + "HHHH", head, 42)
    if shoff:
        ranges.append((shoff - SHT_LOOKBEHIND, shoff + shentsize * max(shnum, 1)))
    for index in range(phnum):
        offset = phoff + index * phentsize
        if offset + phentsize > len(head):
            break
        if is64:
            p_type, _flags, p_offset, _va, _pa, p_filesz = struct.unpack_from(endian + "IIQQQQ", head, offset)
        else:
            p_type, p_offset, _va, _pa, p_filesz = struct.unpack_from(endian + "IIIII", head, offset)
        if p_type in (PT_INTERP, PT_DYNAMIC, PT_NOTE):
            ranges.append((p_offset, p_offset + min(p_filesz, RANGE_CAP)))
        elif p_type == PT_LOAD:
            ranges.append((p_offset, p_offset + min(p_filesz, SEGMENT_HEAD)))
    return _merge(ranges, size)


class ElfCapture:
    """Feed the chunks of one file; `image()` returns what was kept."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._whole = size <= WHOLE_FILE_LIMIT
        self._buffer = bytearray()
        self._pos = 0
        self._plan: list[tuple[int, int]] | None = None
        self._kept: dict[int, bytearray] = {}
        self._markers: set[str] = set()
        self._overlap = b""

    def _scan(self, chunk: bytes) -> None:
        # Search the chunk itself, plus a small seam with the previous chunk's tail so a
        # marker split across chunks is found without copying whole chunks.
        seam = self._overlap + chunk[: _LONGEST_MARKER - 1]
        for name, marker in MARKERS.items():
            if name not in self._markers and (marker in chunk or marker in seam):
                self._markers.add(name)
        tail = _LONGEST_MARKER - 1
        self._overlap = chunk[-tail:] if len(chunk) >= tail else (self._overlap + chunk)[-tail:]

    def feed(self, chunk: bytes) -> None:
        if len(self._markers) < len(MARKERS):
            self._scan(chunk)
        start = self._pos
        self._pos += len(chunk)
        if self._whole:
            self._buffer += chunk
            return
        if self._plan is None:
            self._buffer += chunk
            if len(self._buffer) < PLAN_AFTER and self._pos < self._size:
                return
            self._plan = plan_ranges(bytes(self._buffer), self._size)
            chunk, start = bytes(self._buffer), 0
            self._buffer = bytearray()
        end = start + len(chunk)
        for low, high in self._plan:
            if high <= start or low >= end:
                continue
            part = chunk[max(low, start) - start : min(high, end) - start]
            self._kept.setdefault(low, bytearray()).extend(part)

    def image(self) -> ElfImage:
        if self._whole or self._plan is None:
            starts: tuple[int, ...] = (0,)
            chunks: tuple[bytes, ...] = (bytes(self._buffer),)
        else:
            starts = tuple(sorted(self._kept))
            chunks = tuple(bytes(self._kept[s]) for s in starts)
        found = {name for name, marker in CAPTURED_MARKERS.items() if any(marker in c for c in chunks)}
        return ElfImage(self._size, starts, chunks, frozenset(self._markers | found))
