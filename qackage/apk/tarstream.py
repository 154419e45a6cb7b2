"""A strict, streaming tar reader.

We do not use ``tarfile``: it accepts far more than an APK needs (sparse files,
devices, arbitrary PAX keys) and hides where it trusts its input. This reader parses
ustar/GNU/PAX headers itself, verifies header checksums, caps meta-header sizes and
reports every member type; `qackage.apk.safety` decides what to refuse.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field

from qackage.apk.gzstream import Member
from qackage.apk.limits import Limits
from qackage.errors import CorruptArchiveError, UnsafeArchiveError

BLOCK = 512


class TarType(enum.Enum):
    FILE = "file"
    HARDLINK = "hardlink"
    SYMLINK = "symlink"
    CHARDEV = "character device"
    BLOCKDEV = "block device"
    DIR = "directory"
    FIFO = "fifo"
    SPARSE = "sparse file"
    UNKNOWN = "unknown member type"


_TYPES = {
    b"0": TarType.FILE,
    b"\0": TarType.FILE,
    b"7": TarType.FILE,  # contiguous file: a regular file for our purposes
    b"1": TarType.HARDLINK,
    b"2": TarType.SYMLINK,
    b"3": TarType.CHARDEV,
    b"4": TarType.BLOCKDEV,
    b"5": TarType.DIR,
    b"6": TarType.FIFO,
    b"S": TarType.SPARSE,
}


@dataclass(slots=True)
class TarMember:
    name: str
    type: TarType
    size: int
    mode: int
    uid: int
    gid: int
    linkname: str
    pax: dict[str, str] = field(default_factory=dict)
    raw_type: bytes = b"0"


def _octal(field_bytes: bytes, what: str, label: str) -> int:
    if field_bytes and field_bytes[0] & 0x80:
        # GNU base-256 for values that do not fit in octal.
        if field_bytes[0] == 0xFF:
            raise CorruptArchiveError(f"{label}: negative {what} in tar header")
        value = field_bytes[0] & 0x7F
        for byte in field_bytes[1:]:
            value = (value << 8) | byte
        return value
    text = field_bytes.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise CorruptArchiveError(f"{label}: bad {what} field in tar header") from None


def _decode(raw: bytes, what: str, label: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafeArchiveError(f"{label}: {what} is not valid UTF-8: {raw!r:.80}") from None


def _cstring(raw: bytes) -> bytes:
    return raw.split(b"\0", 1)[0]


def _checksum_ok(header: bytes) -> bool:
    stored = header[148:156]
    try:
        expected = int(_cstring(stored).strip(b" ") or b"-1", 8)
    except ValueError:
        return False
    # The checksum treats its own field as eight spaces.
    unsigned = sum(header) - sum(stored) + 8 * 0x20
    if expected == unsigned:
        return True
    # Some old tars summed signed chars; only computed when the common form fails.
    high = sum(1 for b in header[:148] + header[156:] if b > 127)
    return expected == unsigned - 256 * high


def parse_pax(data: bytes, label: str) -> dict[str, str]:
    """Parse PAX records ``"<len> key=value\\n"``."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos:].strip(b"\0") == b"":
            break
        space = data.find(b" ", pos)
        if space < 0:
            raise CorruptArchiveError(f"{label}: malformed PAX header")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise CorruptArchiveError(f"{label}: malformed PAX record length") from None
        if length <= space - pos or pos + length > len(data):
            raise CorruptArchiveError(f"{label}: malformed PAX record length")
        record = data[space + 1 : pos + length]
        if not record.endswith(b"\n") or b"=" not in record:
            raise CorruptArchiveError(f"{label}: malformed PAX record")
        key, value = record[:-1].split(b"=", 1)
        records[_decode(key, "PAX key", label)] = _decode(value, "PAX value", label)
        pos += length
    return records


def _padding(size: int) -> int:
    return (BLOCK - size % BLOCK) % BLOCK


class TarReader:
    """Iterate a tar stream held in a `Member`. After each member is yielded the caller
    may read its body with `body()`; unread bodies are skipped."""

    def __init__(self, member_stream: Member, limits: Limits, label: str) -> None:
        self._stream = member_stream
        self._limits = limits
        self._label = label
        self._unread = 0
        self._pad = 0
        self._global_pax: dict[str, str] = {}

    def _read_block(self) -> bytes | None:
        """The next header block, or None at the end of the stream (with or without the
        two zero blocks: APK control segments omit them)."""
        if self._stream.at_eof():
            return None
        block = self._stream.read_exact(BLOCK)
        if block == bytes(BLOCK):
            return None
        if not _checksum_ok(block):
            raise CorruptArchiveError(f"{self._label}: tar header checksum mismatch (corrupt or not a tar)")
        return block

    def _read_meta(self, size: int, what: str) -> bytes:
        if size > self._limits.max_meta_header_bytes:
            raise UnsafeArchiveError(f"{self._label}: oversized {what} ({size} bytes)")
        data = self._stream.read_exact(size)
        self._stream.skip(_padding(size))
        return data

    def _finish_body(self) -> None:
        if self._unread:
            self._stream.skip(self._unread)
            self._unread = 0
        if self._pad:
            self._stream.skip(self._pad)
            self._pad = 0

    def body(self) -> Iterator[bytes]:
        """The current member's content, in chunks."""
        size, self._unread = self._unread, 0
        remaining = size
        for chunk in self._stream.iter_exact(size):
            remaining -= len(chunk)
            self._unread = remaining
            yield chunk
        self._unread = 0

    def read_body(self, cap: int) -> bytes:
        if self._unread > cap:
            raise UnsafeArchiveError(f"{self._label}: member larger than {cap} bytes")
        return b"".join(self.body())

    def __iter__(self) -> Iterator[TarMember]:
        while True:
            self._finish_body()
            member = self._next_member()
            if member is None:
                return
            self._unread = member.size if member.type is TarType.FILE else 0
            self._pad = _padding(self._unread)
            yield member

    def _next_member(self) -> TarMember | None:
        long_name: str | None = None
        long_link: str | None = None
        pax: dict[str, str] = {}
        while True:
            block = self._read_block()
            if block is None:
                if long_name is not None or long_link is not None or pax:
                    raise CorruptArchiveError(f"{self._label}: tar stream ends inside a member")
                return None
            typeflag = block[156:157]
            size = _octal(block[124:136], "size", self._label)
            if typeflag == b"x":
                pax.update(parse_pax(self._read_meta(size, "PAX header"), self._label))
                continue
            if typeflag == b"g":
                self._global_pax.update(parse_pax(self._read_meta(size, "PAX header"), self._label))
                continue
            if typeflag == b"L":
                long_name = _decode(_cstring(self._read_meta(size, "GNU long name")), "path", self._label)
                continue
            if typeflag == b"K":
                long_link = _decode(_cstring(self._read_meta(size, "GNU long link")), "link", self._label)
                continue
            return self._member(block, typeflag, size, long_name, long_link, pax)

    def _member(
        self,
        block: bytes,
        typeflag: bytes,
        size: int,
        long_name: str | None,
        long_link: str | None,
        pax: dict[str, str],
    ) -> TarMember:
        label = self._label
        name = _cstring(block[0:100])
        magic = block[257:263]
        if magic.startswith(b"ustar"):
            prefix = _cstring(block[345:500])
            if prefix and magic == b"ustar\x00":
                name = prefix + b"/" + name
        merged = {**self._global_pax, **pax}
        path = merged.get("path") or long_name or _decode(name, "path", label)
        linkname = merged.get("linkpath") or long_link or _decode(_cstring(block[157:257]), "link", label)
        if "size" in merged:
            try:
                size = int(merged["size"])
            except ValueError:
                raise CorruptArchiveError(f"{label}: bad PAX size") from None
        kind = _TYPES.get(typeflag, TarType.UNKNOWN)
        if kind is TarType.FILE and path.endswith("/") and typeflag == b"\0":
            kind = TarType.DIR  # old-style directory entries
        if size < 0:
            raise CorruptArchiveError(f"{label}: negative size")
        if size and kind in (TarType.SYMLINK, TarType.HARDLINK, TarType.DIR):
            # POSIX says these carry no data; a size here would desynchronise the stream.
            raise CorruptArchiveError(f"{label}: {kind.value} {path!r} claims {size} bytes of data")
        return TarMember(
            name=path,
            type=kind,
            size=size if kind is TarType.FILE else 0,
            mode=_octal(block[100:108], "mode", label) & 0o7777,
            uid=_octal(block[108:116], "uid", label),
            gid=_octal(block[116:124], "gid", label),
            linkname=linkname,
            pax=pax,
            raw_type=typeflag,
        )
