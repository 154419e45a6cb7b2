"""Java: the archives a package ships and what their manifests say.

A Wolfi maintainer checks jars with ``test/jar-check`` and runs the ones that declare a
``Main-Class``. The manifest (``META-INF/MANIFEST.MF``) is, by the convention every jar tool
follows, one of the first entries of the ZIP, so we keep only the head of each archive
and walk its local file headers instead of needing the central directory at the end.
A jar whose manifest is not in that head is still listed, with its fields unknown.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import ClassVar

from qackage.analyze.base import PackageView
from qackage.model import Entry, EntryKind, Facts, JavaArchive

KIB = 1024
MIB = 1024 * KIB
JAR_HEAD_CAPTURE = 1 * MIB
MANIFEST_MAX_BYTES = 1 * MIB  # inflated; real manifests are a few KiB, OSGi ones ~100 KiB
# Inflating an entry only to find where it ends: stop before a bomb costs real time.
SKIP_INFLATE_MAX_BYTES = 64 * MIB

ARCHIVE_SUFFIXES = (".jar", ".war")
MANIFEST_NAME = "meta-inf/manifest.mf"

_LOCAL_SIGNATURE = b"PK\x03\x04"
_DESCRIPTOR_SIGNATURE = b"PK\x07\x08"
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_ZIP64_EXTRA_ID = 0x0001
_FLAG_ENCRYPTED = 0x0001
_FLAG_DESCRIPTOR = 0x0008
_STORED, _DEFLATED = 0, 8
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
_SIZE_IN_ZIP64 = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class LocalEntry:
    """One ZIP local file header: where its data starts and, if known, where it ends."""

    name: str
    method: int
    flags: int
    data_start: int
    compressed_size: int | None  # None: written after the data (flag bit 3)
    zip64: bool

    @property
    def is_manifest(self) -> bool:
        return self.name.lower() == MANIFEST_NAME


def _zip64_compressed_size(extra: bytes, usize_in_zip64: bool) -> int | None:
    offset = 0
    while offset + 4 <= len(extra):
        header_id, size = struct.unpack_from("<HH", extra, offset)
        body = extra[offset + 4 : offset + 4 + size]
        if header_id == _ZIP64_EXTRA_ID:
            # The record holds the uncompressed size first, then the compressed one,
            # each only when its 32-bit field says 0xFFFFFFFF.
            position = 8 if usize_in_zip64 else 0
            if len(body) >= position + 8:
                return int.from_bytes(body[position : position + 8], "little")
            return None
        offset += 4 + size
    return None


def _read_local_header(data: bytes, offset: int) -> LocalEntry | None:
    if offset + _LOCAL_HEADER.size > len(data):
        return None
    fields = _LOCAL_HEADER.unpack_from(data, offset)
    signature, _version, flags, method, _time, _date, _crc, csize, usize, name_len, extra_len = fields
    if signature != _LOCAL_SIGNATURE:
        return None
    name_start = offset + _LOCAL_HEADER.size
    data_start = name_start + name_len + extra_len
    if data_start > len(data):
        return None
    name = data[name_start : name_start + name_len].decode("utf-8", errors="replace")
    zip64 = csize == _SIZE_IN_ZIP64
    size: int | None = csize
    if zip64:
        size = _zip64_compressed_size(data[name_start + name_len : data_start], usize == _SIZE_IN_ZIP64)
    if flags & _FLAG_DESCRIPTOR and not size:
        size = None  # streamed: the real size follows the data
    return LocalEntry(name, method, flags, data_start, size, zip64)


def _inflated_end(data: bytes, start: int) -> int | None:
    """Where a raw deflate stream starting at ``start`` ends, or None if not in ``data``."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    pending = data[start:]
    produced = 0
    try:
        while pending and not inflater.eof:
            produced += len(inflater.decompress(pending, MIB))
            if produced > SKIP_INFLATE_MAX_BYTES:
                return None
            pending = inflater.unconsumed_tail
    except zlib.error:
        return None
    return len(data) - len(inflater.unused_data) if inflater.eof else None


def _next_offset(data: bytes, entry: LocalEntry) -> int | None:
    """Offset of the header after ``entry``, or None when the data does not tell."""
    end: int | None
    if entry.compressed_size is not None:
        end = entry.data_start + entry.compressed_size
    elif entry.method == _DEFLATED:
        end = _inflated_end(data, entry.data_start)
    elif entry.method == _STORED and entry.name.endswith("/"):
        end = entry.data_start  # a directory: no data, then the descriptor
    else:
        return None
    if end is None:
        return None
    if entry.flags & _FLAG_DESCRIPTOR:
        signature = 4 if data[end : end + 4] == _DESCRIPTOR_SIGNATURE else 0
        end += signature + (20 if entry.zip64 else 12)
    return end


def local_entries(data: bytes) -> Iterator[LocalEntry]:
    """The local file headers from the start of ``data`` while they can be followed.

    The first header may come after a prefix (executable jars start with a shell script).
    """
    offset = data.find(_LOCAL_SIGNATURE)
    while offset >= 0:
        entry = _read_local_header(data, offset)
        if entry is None:
            return
        yield entry
        following = _next_offset(data, entry)
        if following is None or following <= offset:
            return
        offset = following


def _inflate_manifest(data: bytes, entry: LocalEntry) -> bytes | None:
    if entry.flags & _FLAG_ENCRYPTED:
        return None
    if entry.method == _STORED:
        if entry.compressed_size is None:
            return None  # a stored entry of unknown length: nothing says where it ends
        end = entry.data_start + entry.compressed_size
        raw = data[entry.data_start : end][:MANIFEST_MAX_BYTES]
        return raw if end <= len(data) and entry.compressed_size <= MANIFEST_MAX_BYTES else _complete_lines(raw)
    if entry.method != _DEFLATED:
        return None
    end = len(data) if entry.compressed_size is None else entry.data_start + entry.compressed_size
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        text = inflater.decompress(data[entry.data_start : end], MANIFEST_MAX_BYTES)
    except zlib.error:
        return None
    return text if inflater.eof else _complete_lines(text)


def _complete_lines(text: bytes) -> bytes:
    """A manifest cut short: keep only the logical lines known to be whole.

    A line is whole once the next line starts with something other than the space that
    marks a continuation, so the last line before the cut is dropped, never half a value.
    """
    starts = [0]
    for match in _LINE_BREAK.finditer(text):
        if match.start() == starts[-1]:
            return text  # a blank line: the main section ended before the cut
        starts.append(match.end())
    for start in reversed(starts[1:]):
        if text[start : start + 1] not in (b"", b" "):
            return text[:start]
    return b""


def find_manifest(data: bytes) -> bytes | None:
    """The manifest's bytes when its entry is among the headers ``data`` holds."""
    for entry in local_entries(data):
        if entry.is_manifest:
            return _inflate_manifest(data, entry)
    return None


def parse_manifest(text: str) -> dict[str, str]:
    """The main section of a manifest, keys lower-cased, continuation lines joined."""
    attributes: dict[str, str] = {}
    logical: list[str] = []
    for line in re.split(r"\r\n|\r|\n", text):
        if not line:
            break  # the main section ends at the first blank line
        if line.startswith(" ") and logical:
            logical[-1] += line[1:]
        else:
            logical.append(line)
    for line in logical:
        key, sep, value = line.partition(":")
        if sep and key.strip():
            attributes.setdefault(key.strip().lower(), value.strip())
    return attributes


def _first(attributes: Mapping[str, str], *keys: str) -> str | None:
    for key in keys:
        value = attributes.get(key)
        # OSGi headers may name a localisation key ("%bundle.name") instead of a value.
        if value and not value.startswith("%"):
            return value
    return None


def describe_archive(path: str, data: bytes | None) -> JavaArchive:
    manifest = find_manifest(data) if data else None
    attributes = parse_manifest(manifest.decode("utf-8", errors="replace")) if manifest else {}
    # OSGi bundles and specification jars often carry only Bundle-*/Specification-* names.
    return JavaArchive(
        path=path,
        main_class=_first(attributes, "main-class"),
        title=_first(attributes, "implementation-title", "bundle-name", "specification-title"),
        version=_first(attributes, "implementation-version", "bundle-version", "specification-version"),
        automatic_module_name=_first(attributes, "automatic-module-name"),
    )


def find_archives(view: PackageView) -> tuple[JavaArchive, ...]:
    archives = []
    for entry in view.files():
        if not entry.path.lower().endswith(ARCHIVE_SUFFIXES):
            continue
        content_path = entry.link_target if entry.kind is EntryKind.HARDLINK and entry.link_target else entry.path
        archives.append(describe_archive(entry.path, view.contents.get(content_path)))
    return tuple(sorted(archives, key=lambda a: a.path))


def capture_size(head: bytes, size: int) -> int:
    """How much of an archive to keep, judged from its first bytes.

    Exactly up to the end of the manifest when the head shows where that is; nothing when
    the head shows entries outside ``META-INF/`` first (the manifest is then not near the
    start, and a bounded head would not find it); otherwise the capped head.
    """
    cap = min(size, JAR_HEAD_CAPTURE)
    for entry in local_entries(head):
        if entry.is_manifest:
            end = _next_offset(head, entry)  # inflates a manifest of unstated length
            return cap if end is None else min(cap, end)
        if not entry.name.upper().startswith("META-INF/"):
            return 0
    return cap


class JavaFacet:
    """Jar and war archives with their manifest's main attributes."""

    name: ClassVar[str] = "java"

    def capture(self, entry: Entry, head: bytes) -> int:
        if not entry.path.lower().endswith(ARCHIVE_SUFFIXES):
            return 0
        return capture_size(head, entry.size)

    def analyze(self, view: PackageView, earlier: Facts) -> Facts:
        return Facts(java_archives=find_archives(view))
