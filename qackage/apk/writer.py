"""Write real APK v2 files: the fixture builder, the benchmark and (later) mutants use it.

The layout matches what melange produces: an optional ``.SIGN.RSA256.<key>`` segment,
a control segment holding ``.PKGINFO`` (tar without end-of-archive blocks), and a
gzip'd PAX data tar whose compressed bytes ``datahash`` names. Regular files carry an
``APK-TOOLS.checksum.SHA1`` PAX record like melange's.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import posixpath
import shutil
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from qackage.apk.archive import ApkArchive
from qackage.apk.pkginfo import format_pkginfo
from qackage.model import EntryKind, PackageInfo

COPY_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class PlannedFile:
    """One member to write. Exactly one of ``data``/``source`` for files."""

    path: str
    kind: EntryKind = EntryKind.FILE
    mode: int = 0o644
    data: bytes | None = None
    source: Path | None = None
    link_target: str | None = None
    uid: int = 0
    gid: int = 0

    def size(self) -> int:
        if self.kind is not EntryKind.FILE:
            return 0
        if self.data is not None:
            return len(self.data)
        assert self.source is not None
        return self.source.stat().st_size


@dataclass(frozen=True)
class SigningKey:
    name: str  # becomes the key file name in keyrings: e.g. "qackage-test.rsa.pub"
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls, name: str, bits: int = 2048) -> SigningKey:
        return cls(name, rsa.generate_private_key(public_exponent=65537, key_size=bits))

    @classmethod
    def load(cls, path: Path, name: str | None = None) -> SigningKey:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path}: not an RSA private key")
        return cls(name or path.name.removesuffix(".rsa") + ".rsa.pub", key)

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def write_public(self, keyring_dir: Path) -> Path:
        keyring_dir.mkdir(parents=True, exist_ok=True)
        path = keyring_dir / self.name
        path.write_bytes(self.public_pem())
        return path

    def sign(self, payload: bytes, algorithm: str = "sha256") -> bytes:
        chosen: hashes.HashAlgorithm = hashes.SHA256() if algorithm == "sha256" else hashes.SHA1()  # noqa: S303 - the APK v2 format mandates it
        return self.private_key.sign(payload, padding.PKCS1v15(), chosen)


class _HashingWriter(io.RawIOBase):
    def __init__(self, target: BinaryIO) -> None:
        self._target = target
        self.sha256 = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.sha256.update(data)
        return self._target.write(data)


def tar_without_trailer(members: Iterable[tuple[str, bytes]]) -> bytes:
    """A tar of small files with the end-of-archive blocks cut, as APK control segments are."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        written = buffer.tell()
    return buffer.getvalue()[:written]


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)


def with_parent_dirs(files: Iterable[PlannedFile]) -> list[PlannedFile]:
    """Add directory members for every parent that is not listed, parents first."""
    planned = list(files)
    listed = {f.path for f in planned}
    dirs: list[PlannedFile] = []
    for item in planned:
        parent = posixpath.dirname(item.path)
        missing: list[str] = []
        while parent and parent not in listed:
            missing.append(parent)
            listed.add(parent)
            parent = posixpath.dirname(parent)
        dirs.extend(PlannedFile(p, EntryKind.DIR, 0o755) for p in reversed(missing))
    all_dirs = dirs + [f for f in planned if f.kind is EntryKind.DIR]
    # Directories first, shallow before deep; everything else in the caller's order so a
    # hardlink still follows the file it names.
    return sorted(all_dirs, key=lambda f: (f.path.count("/"), f.path)) + [
        f for f in planned if f.kind is not EntryKind.DIR
    ]


def _tarinfo(item: PlannedFile) -> tarfile.TarInfo:
    info = tarfile.TarInfo(item.path)
    info.mode = item.mode
    info.uid, info.gid = item.uid, item.gid
    info.mtime = 0
    if item.kind is EntryKind.DIR:
        info.type = tarfile.DIRTYPE
    elif item.kind is EntryKind.SYMLINK:
        info.type = tarfile.SYMTYPE
        info.linkname = item.link_target or ""
    elif item.kind is EntryKind.HARDLINK:
        info.type = tarfile.LNKTYPE
        info.linkname = item.link_target or ""
    else:
        info.size = item.size()
    return info


def _file_sha1(item: PlannedFile) -> str:
    digest = hashlib.sha1()
    if item.data is not None:
        digest.update(item.data)
    else:
        assert item.source is not None
        with item.source.open("rb") as handle:
            while chunk := handle.read(COPY_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def write_data_segment(files: Iterable[PlannedFile], out: BinaryIO, compresslevel: int = 6) -> tuple[str, int]:
    """Write the gzip'd data tar; return (datahash hex, installed size)."""
    hashing = _HashingWriter(out)
    installed = 0
    with (
        gzip.GzipFile(fileobj=hashing, mode="wb", compresslevel=compresslevel, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        for item in files:
            info = _tarinfo(item)
            if item.kind is EntryKind.FILE:
                info.pax_headers = {"APK-TOOLS.checksum.SHA1": _file_sha1(item)}
                installed += info.size
                if item.data is not None:
                    tar.addfile(info, io.BytesIO(item.data))
                else:
                    assert item.source is not None
                    with item.source.open("rb") as handle:
                        tar.addfile(info, handle)
            else:
                tar.addfile(info)
    return hashing.sha256.hexdigest(), installed


def write_apk(
    out_path: Path,
    info: PackageInfo,
    files: Iterable[PlannedFile],
    *,
    signing_key: SigningKey | None = None,
    scripts: dict[str, bytes] | None = None,
    compresslevel: int = 6,
) -> PackageInfo:
    """Write ``out_path``; return the PackageInfo as written (size and datahash filled)."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=out_path.parent) as data_file:
        datahash, installed = write_data_segment(with_parent_dirs(files), data_file, compresslevel)
        final = dataclasses.replace(info, size=installed, datahash=datahash)
        control_members = [(".PKGINFO", format_pkginfo(final).encode())]
        control_members += sorted((scripts or {}).items())
        control = gzip_bytes(tar_without_trailer(control_members))
        partial = out_path.with_name(out_path.name + ".partial")
        with partial.open("wb") as out:
            if signing_key is not None:
                signature = signing_key.sign(control)
                out.write(gzip_bytes(tar_without_trailer([(f".SIGN.RSA256.{signing_key.name}", signature)])))
            out.write(control)
            data_file.seek(0)
            shutil.copyfileobj(data_file, out, COPY_CHUNK)
        partial.replace(out_path)
    return final


def read_package(apk: Path) -> tuple[PackageInfo, list[PlannedFile]]:
    """An existing package as its PackageInfo and PlannedFiles (folders left out), to write
    a changed copy. File contents are held in memory: for small packages (tests, fixtures,
    benchmarks); mutants of real packages stream instead (`qackage.validate.mutators`)."""
    files: list[PlannedFile] = []
    with ApkArchive.open(apk) as archive:
        info = archive.info
        for member in archive.members():
            entry = member.entry
            if entry.kind is EntryKind.DIR:
                continue
            data = b"".join(member.chunks()) if entry.kind is EntryKind.FILE else None
            files.append(PlannedFile(entry.path, entry.kind, entry.mode, data=data, link_target=entry.link_target))
    return info, files
