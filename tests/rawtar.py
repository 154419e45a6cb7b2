"""Byte-level tar and APK crafting for hostile-input tests.

`tarfile` (and our writer) refuse to produce many malformed archives, so hostile cases
are assembled here block by block.
"""

from __future__ import annotations

import gzip
import hashlib

BLOCK = 512


def _octal(value: int, width: int) -> bytes:
    return f"{value:0{width - 1}o}".encode() + b"\0"


def header(
    name: str | bytes,
    *,
    size: int = 0,
    typeflag: bytes = b"0",
    mode: int = 0o644,
    linkname: str | bytes = "",
    uid: int = 0,
    gid: int = 0,
    corrupt_checksum: bool = False,
    size_field: bytes | None = None,
) -> bytes:
    raw_name = name.encode() if isinstance(name, str) else name
    raw_link = linkname.encode() if isinstance(linkname, str) else linkname
    block = bytearray(BLOCK)
    block[0 : len(raw_name[:100])] = raw_name[:100]
    block[100:108] = _octal(mode, 8)
    block[108:116] = _octal(uid, 8)
    block[116:124] = _octal(gid, 8)
    block[124:136] = size_field if size_field is not None else _octal(size, 12)
    block[136:148] = _octal(0, 12)
    block[148:156] = b" " * 8
    block[156:157] = typeflag
    block[157 : 157 + len(raw_link[:100])] = raw_link[:100]
    block[257:265] = b"ustar\x0000"
    checksum = sum(block)
    if corrupt_checksum:
        checksum += 1
    block[148:156] = f"{checksum:06o}".encode() + b"\0 "
    return bytes(block)


def pad(data: bytes) -> bytes:
    return data + bytes((BLOCK - len(data) % BLOCK) % BLOCK)


def member(name: str | bytes, data: bytes = b"", **kwargs: object) -> bytes:
    return header(name, size=len(data), **kwargs) + pad(data)  # type: ignore[arg-type]


def pax_member(records: dict[str, str]) -> bytes:
    body = b""
    for key, value in records.items():
        line = f" {key}={value}\n".encode()
        length = len(line) + len(str(len(line)))
        if len(str(length)) != len(str(len(line))):
            length += 1
        body += str(length).encode() + line
    return header("PaxHeader", size=len(body), typeflag=b"x") + pad(body)


def end() -> bytes:
    return bytes(2 * BLOCK)


PKGINFO = "pkgname = evil\npkgver = 1.0-r0\narch = x86_64\norigin = evil\n"


def apk(data_tar: bytes, *, pkginfo: str = PKGINFO, datahash: bool = True, control: bytes | None = None) -> bytes:
    """Glue control + data segments as an APK v2 file, with a correct datahash."""
    data_gz = gzip.compress(data_tar, mtime=0)
    info = pkginfo
    if datahash:
        info += f"datahash = {hashlib.sha256(data_gz).hexdigest()}\n"
    control_tar = control if control is not None else member(".PKGINFO", info.encode())
    return gzip.compress(control_tar, mtime=0) + data_gz
