"""Read an APK v2 file as a stream: signature, control (``.PKGINFO``), data.

    with ApkArchive.open("foo.apk") as apk:
        apk.info                  # PackageInfo from .PKGINFO
        for member in apk.members():
            member.entry          # a checked, normalised Entry
            member.chunks()       # file content, streamed (valid until the next member)
        apk.check                 # ArchiveCheck: datahash verified, signer ...

The data segment's ``datahash`` is checked when the stream ends; a mismatch raises,
so callers must not act on results before `members()` is exhausted.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from qackage.apk.gzstream import CompressedInput, Member, PrefetchingMember
from qackage.apk.limits import DEFAULT_LIMITS, Limits
from qackage.apk.pkginfo import parse_pkginfo
from qackage.apk.safety import TreePolicy
from qackage.apk.signature import Keyring, SignatureBlock, signature_from_member
from qackage.apk.tarstream import TarReader, TarType
from qackage.errors import CorruptArchiveError, InputError, UnsafeArchiveError
from qackage.model import ArchiveCheck, Entry, EntryKind, PackageInfo, SourceKind


@dataclass(slots=True)
class SourceMember:
    """An entry plus a way to stream its content (files only)."""

    entry: Entry
    _body: Iterator[bytes] | None = field(default=None, repr=False)

    def chunks(self) -> Iterator[bytes]:
        if self._body is None:
            return iter(())
        body, self._body = self._body, None
        return body


def q1_checksum(sha1_digest: bytes) -> str:
    """apk's checksum notation: ``Q1`` + base64(sha1)."""
    return "Q1" + base64.b64encode(sha1_digest).decode()


class ApkArchive:
    def __init__(
        self, stream: BinaryIO, label: str, *, keyring: Keyring | None = None, limits: Limits = DEFAULT_LIMITS
    ) -> None:
        self._stream = stream
        self.label = label
        self._limits = limits
        self._input = CompressedInput(stream, limits, label)
        self._keyring = keyring
        self.signatures: tuple[SignatureBlock, ...] = ()
        self.control_files: tuple[str, ...] = ()
        self._signed_by: str | None = None
        self._control_sha1 = b""
        self._data_checked = False
        self._datahash_ok = False
        self._consumed = False
        self._data_member: PrefetchingMember | None = None
        self.info = self._read_head()

    @classmethod
    def open(cls, path: str | Path, *, keyring: Keyring | None = None, limits: Limits = DEFAULT_LIMITS) -> ApkArchive:
        label = str(path)
        try:
            stream = Path(path).open("rb")  # noqa: SIM115 - closed by __exit__/close
        except OSError as exc:
            raise InputError(f"{label}: cannot open: {exc.strerror or exc}") from exc
        try:
            return cls(stream, label, keyring=keyring, limits=limits)
        except BaseException:
            stream.close()
            raise

    def close(self) -> None:
        if self._data_member is not None:
            self._data_member.close()
        self._stream.close()

    def __enter__(self) -> ApkArchive:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- signature and control ---------------------------------------------------------

    def _read_control_like(self, segment: Member) -> list[tuple[str, bytes]]:
        files: list[tuple[str, bytes]] = []
        reader = TarReader(segment, self._limits, self.label)
        for member in reader:
            if member.type is not TarType.FILE:
                raise UnsafeArchiveError(f"{self.label}: control segment holds a {member.type.value} ({member.name!r})")
            cap = self._limits.max_pkginfo_bytes if member.name == ".PKGINFO" else self._limits.max_control_bytes
            if member.size > cap:
                raise UnsafeArchiveError(f"{self.label}: {member.name} is larger than {cap} bytes")
            files.append((member.name, reader.read_body(cap)))
        segment.drain()
        return files

    def _read_head(self) -> PackageInfo:
        first = Member(self._input, cap=self._limits.max_control_bytes)
        files = self._read_control_like(first)
        if not first.started:
            raise CorruptArchiveError(f"{self.label}: empty file")
        if files and files[0][0].startswith(".SIGN."):
            blocks = [signature_from_member(name, data) for name, data in files]
            self.signatures = tuple(b for b in blocks if b is not None)
            control = Member(self._input, cap=self._limits.max_control_bytes)
            files = self._read_control_like(control)
            if not control.started:
                raise CorruptArchiveError(f"{self.label}: truncated (signature but no control segment)")
        else:
            control = first
        names = [name for name, _ in files]
        if ".PKGINFO" not in names:
            raise CorruptArchiveError(f"{self.label}: no .PKGINFO in the control segment (not an APK?)")
        self._control_sha1 = control.sha1()
        if self._keyring is not None:
            self._signed_by = self._keyring.verify(
                self.signatures, {"sha1": control.sha1(), "sha256": control.sha256()}, self.label
            )
        self.control_files = tuple(n for n in names if n != ".PKGINFO")
        return parse_pkginfo(dict(files)[".PKGINFO"], self.label)

    # -- data --------------------------------------------------------------------------

    def members(self) -> Iterator[SourceMember]:
        if self._consumed:
            raise RuntimeError("members() can be iterated once")
        self._consumed = True
        data = PrefetchingMember(self._input, multi=True, sha1=False)
        self._data_member = data
        reader = TarReader(data, self._limits, self.label)
        policy = TreePolicy(self.label, self._limits)
        for member in reader:
            entry = policy.admit(member)
            if entry is None:
                continue
            body = reader.body() if entry.kind is EntryKind.FILE else None
            yield SourceMember(entry, body)
        data.drain()
        if not data.started:
            raise CorruptArchiveError(f"{self.label}: truncated (no data segment)")
        expected = self.info.datahash
        if expected:
            actual = data.sha256().hex()
            if actual != expected:
                raise CorruptArchiveError(
                    f"{self.label}: data segment does not match datahash (expected {expected[:16]}..., "
                    f"got {actual[:16]}...): corrupt or tampered"
                )
            self._datahash_ok = True
        self._data_checked = True

    @property
    def check(self) -> ArchiveCheck:
        if not self._data_checked:
            raise RuntimeError("check is known only after members() was read to the end")
        return ArchiveCheck(
            source=SourceKind.ARCHIVE,
            datahash_verified=self._datahash_ok,
            signed_by=self._signed_by,
            signature_present=bool(self.signatures),
            control_checksum=q1_checksum(self._control_sha1),
            compressed_size=self._input.compressed_total,
            unpacked_size=self._input.unpacked_total,
        )
