"""APKINDEX: parse, read (``APKINDEX.tar.gz``, streamed and optionally verified) and write.

An index is text records of ``K:value`` lines separated by blank lines, one record per
package (``C:`` checksum, ``P:`` name, ``V:`` version, ``D:`` depends ...). On disk it
is ``APKINDEX.tar.gz``: an optional signature segment (``.SIGN.RSA.<key>`` or
``.SIGN.RSA256.<key>``, signing the *compressed* bytes of what follows, as for a
package) and a gzip'd tar holding ``DESCRIPTION`` and ``APKINDEX``.

The installed database (`qackage.apk.installed`) uses the same records with extra
file lines, so the record splitting and the package fields live here for both.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import dataclasses
import io
import shutil
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from qackage.apk.archive import ApkArchive, q1_checksum
from qackage.apk.gzstream import CompressedInput, Member
from qackage.apk.limits import DEFAULT_LIMITS, GIB, KIB, MIB, Limits
from qackage.apk.pkginfo import parse_atom
from qackage.apk.signature import Keyring, SignatureBlock, signature_from_member
from qackage.apk.tarstream import TarMember, TarReader, TarType
from qackage.apk.version import version_key
from qackage.apk.writer import SigningKey, gzip_bytes, tar_without_trailer
from qackage.errors import CorruptArchiveError, InputError, RepositoryError, UnsafeArchiveError
from qackage.model import Dependency, PackageInfo

INDEX_NAME = "APKINDEX.tar.gz"
# A whole distribution's index is tens of MiB of text with lines of a few KiB; far
# beyond these we assume a hostile or broken file.
MAX_INDEX_TEXT_BYTES = 2 * GIB
MAX_LINE_BYTES = 1 * MIB
MAX_DESCRIPTION_BYTES = 64 * KIB
MAX_SIGNATURES = 16

# Single-valued package keys, as apk writes them.
_SINGLE_KEYS = frozenset("CPVASITULomtck")
_ATOM_KEYS = frozenset("Dpi")
_LIST_KEYS = _ATOM_KEYS | {"r"}


@dataclass(frozen=True, slots=True)
class RecordLine:
    key: str
    value: str
    line: int  # 1-based line number in the file, for messages


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One package as an index lists it."""

    info: PackageInfo
    checksum: str  # C: "Q1" + base64(sha1 of the package's control segment)
    file_size: int  # S: size of the .apk file in bytes

    @property
    def filename(self) -> str:
        return f"{self.info.name}-{self.info.version}.apk"

    @property
    def checksum_hex(self) -> str:
        """The checksum's digest as hex, safe for file names."""
        return checksum_digest(self.checksum).hex()


@dataclass(frozen=True, slots=True)
class Index:
    entries: tuple[IndexEntry, ...]
    description: str = ""
    signed_by: str | None = None  # key name when a keyring verified the signature
    signature_present: bool = False


def checksum_digest(checksum: str) -> bytes:
    """Decode apk's ``Q1<base64 sha1>`` / ``Q2<base64 sha256>`` notation."""
    prefix, body = checksum[:2], checksum[2:]
    expected = {"Q1": 20, "Q2": 32}.get(prefix)
    if expected is None:
        raise ValueError(f"checksum {checksum!r} does not start with Q1 or Q2")
    try:
        digest = base64.b64decode(body, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"checksum {checksum!r} is not valid base64") from exc
    if len(digest) != expected:
        raise ValueError(f"checksum {checksum!r} has {len(digest)} bytes, expected {expected}")
    return digest


# --------------------------------------------------------------------------- records


def split_records(
    lines: Iterable[str], label: str, error: type[InputError] = RepositoryError
) -> Iterator[tuple[RecordLine, ...]]:
    """Group ``K:value`` lines into records; blank lines separate records."""
    record: list[RecordLine] = []
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            if record:
                yield tuple(record)
                record = []
            continue
        if len(line) < 2 or line[1] != ":":
            raise error(f"{label}: line {number} is not 'K:value': {line[:60]!r}")
        record.append(RecordLine(line[0], line[2:], number))
    if record:
        yield tuple(record)


def _int(line: RecordLine, label: str, error: type[InputError]) -> int:
    try:
        value = int(line.value)
    except ValueError:
        raise error(f"{label}: line {line.line}: {line.key}: is not a number: {line.value[:40]!r}") from None
    if value < 0:
        raise error(f"{label}: line {line.line}: {line.key}: is negative")
    return value


def _atoms(line: RecordLine, label: str, error: type[InputError]) -> tuple[Dependency, ...]:
    try:
        return tuple(parse_atom(word) for word in line.value.split())
    except InputError as exc:
        raise error(f"{label}: line {line.line}: {exc.message}") from exc


def entry_from_record(
    record: Sequence[RecordLine], label: str, error: type[InputError] = RepositoryError
) -> IndexEntry:
    """Turn one record's package lines into an IndexEntry. Keys this module does not
    know are kept, in order, in ``PackageInfo.extra`` under their one-letter name."""
    single: dict[str, RecordLine] = {}
    atoms: dict[str, list[Dependency]] = {key: [] for key in _ATOM_KEYS}
    replaces: list[str] = []
    extra: list[tuple[str, str]] = []
    start = record[0].line if record else 0
    for line in record:
        if line.key in _SINGLE_KEYS:
            if line.key in single:
                raise error(f"{label}: line {line.line}: a second {line.key}: line in one record")
            single[line.key] = line
        elif line.key in _ATOM_KEYS:
            atoms[line.key].extend(_atoms(line, label, error))
        elif line.key == "r":
            replaces.extend(line.value.split())
        else:
            extra.append((line.key, line.value))
    for required in "PVC":
        if required not in single or not single[required].value:
            raise error(f"{label}: the record at line {start} has no {required}: line")
    checksum = single["C"].value
    try:
        checksum_digest(checksum)
    except ValueError as exc:
        raise error(f"{label}: line {single['C'].line}: {exc}") from None

    def text(key: str) -> str:
        return single[key].value if key in single else ""

    def number(key: str) -> int:
        return _int(single[key], label, error) if key in single else 0

    name = text("P")
    info = PackageInfo(
        name=name,
        version=text("V"),
        arch=text("A"),
        origin=text("o") or name,
        description=text("T"),
        url=text("U"),
        license=text("L"),
        maintainer=text("m"),
        commit=text("c"),
        build_date=number("t"),
        size=number("I"),
        depends=tuple(atoms["D"]),
        provides=tuple(atoms["p"]),
        install_if=tuple(atoms["i"]),
        replaces=tuple(replaces),
        provider_priority=number("k") if "k" in single else None,
        extra=tuple(extra),
    )
    return IndexEntry(info=info, checksum=checksum, file_size=number("S"))


def parse_index_text(text: str, label: str = "APKINDEX") -> tuple[IndexEntry, ...]:
    return tuple(entry_from_record(record, label) for record in split_records(text.splitlines(), label))


def format_entry_lines(entry: IndexEntry) -> list[str]:
    """The package lines of a record, in the order apk writes them."""
    info = entry.info
    lines = [f"C:{entry.checksum}", f"P:{info.name}", f"V:{info.version}"]
    if info.arch:
        lines.append(f"A:{info.arch}")
    lines += [
        f"S:{entry.file_size}",
        f"I:{info.size}",
        f"T:{info.description}",
        f"U:{info.url}",
        f"L:{info.license}",
    ]
    if info.origin:
        lines.append(f"o:{info.origin}")
    if info.maintainer:
        lines.append(f"m:{info.maintainer}")
    if info.build_date:
        lines.append(f"t:{info.build_date}")
    if info.commit:
        lines.append(f"c:{info.commit}")
    if info.provider_priority is not None:
        lines.append(f"k:{info.provider_priority}")
    for key, atoms in (("D", info.depends), ("p", info.provides), ("i", info.install_if)):
        if atoms:
            lines.append(f"{key}:" + " ".join(str(atom) for atom in atoms))
    if info.replaces:
        lines.append("r:" + " ".join(info.replaces))
    # One-letter keys came from an index and go back verbatim; .PKGINFO's long names
    # have no index line except the few in _PKGINFO_TO_INDEX.
    lines += [f"{key}:{value}" for key, value in index_view(info).extra]
    for line in lines:
        if "\n" in line or "\r" in line:
            raise InputError(f"{info.name}: a line break inside the index line {line[:40]!r}")
    return lines


def format_index(entries: Iterable[IndexEntry]) -> str:
    return "".join("\n".join(format_entry_lines(entry)) + "\n\n" for entry in entries)


# --------------------------------------------------------------------------- reading


class _LineSplitter:
    """UTF-8 chunks in, complete lines out; caps line length and total size."""

    def __init__(self, label: str) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._partial = ""
        self._label = label
        self._total = 0

    def feed(self, chunk: bytes, final: bool = False) -> list[str]:
        self._total += len(chunk)
        if self._total > MAX_INDEX_TEXT_BYTES:
            raise UnsafeArchiveError(f"{self._label}: index text larger than {MAX_INDEX_TEXT_BYTES} bytes")
        try:
            text = self._partial + self._decoder.decode(chunk, final)
        except UnicodeDecodeError as exc:
            raise RepositoryError(f"{self._label}: the index is not valid UTF-8") from exc
        lines = text.split("\n")
        self._partial = "" if final else lines.pop()
        if len(self._partial) > MAX_LINE_BYTES:
            raise UnsafeArchiveError(f"{self._label}: an index line longer than {MAX_LINE_BYTES} bytes")
        return lines


def _index_lines(chunks: Iterable[bytes], label: str) -> Iterator[str]:
    splitter = _LineSplitter(label)
    for chunk in chunks:
        yield from splitter.feed(chunk)
    yield from splitter.feed(b"", final=True)


def _read_signatures(reader: TarReader, first_name: str, first_body: bytes, label: str) -> list[SignatureBlock]:
    first = signature_from_member(first_name, first_body)
    blocks: list[SignatureBlock] = [] if first is None else [first]
    for member in reader:
        if member.type is not TarType.FILE:
            raise UnsafeArchiveError(f"{label}: signature segment holds a {member.type.value}")
        if len(blocks) >= MAX_SIGNATURES:
            raise UnsafeArchiveError(f"{label}: more than {MAX_SIGNATURES} signatures")
        block = signature_from_member(member.name, reader.read_body(MAX_DESCRIPTION_BYTES))
        if block is not None:
            blocks.append(block)
    return blocks


def read_index(
    stream: BinaryIO, label: str, *, keyring: Keyring | None = None, limits: Limits = DEFAULT_LIMITS
) -> Index:
    """Read an ``APKINDEX.tar.gz`` stream. With a keyring the index must carry a
    signature by one of its keys (SignatureError otherwise); entries are returned only
    after the signature verified."""
    source = CompressedInput(stream, limits, label)
    segment = Member(source, cap=MAX_INDEX_TEXT_BYTES)
    reader = TarReader(segment, limits, label)
    members = iter(reader)
    first = next(members, None)
    if first is None:
        segment.drain()
        raise CorruptArchiveError(f"{label}: empty file" if not segment.started else f"{label}: empty index")
    signatures: list[SignatureBlock] = []
    if first.name.startswith(".SIGN."):
        if first.type is not TarType.FILE:
            raise UnsafeArchiveError(f"{label}: signature segment holds a {first.type.value}")
        signatures = _read_signatures(reader, first.name, reader.read_body(MAX_DESCRIPTION_BYTES), label)
        segment.drain()
        segment = Member(source, cap=MAX_INDEX_TEXT_BYTES)
        reader = TarReader(segment, limits, label)
        members = iter(reader)
        first = next(members, None)
        if first is None:
            raise CorruptArchiveError(f"{label}: truncated (signature but no index)")
    entries: list[IndexEntry] | None = None
    description = ""
    member: TarMember | None = first
    while member is not None:
        if member.type is TarType.FILE and member.name == "APKINDEX":
            if entries is not None:
                raise CorruptArchiveError(f"{label}: two APKINDEX members")
            records = split_records(_index_lines(reader.body(), label), label)
            entries = [entry_from_record(record, label) for record in records]
        elif member.type is TarType.FILE and member.name == "DESCRIPTION":
            description = reader.read_body(MAX_DESCRIPTION_BYTES).decode("utf-8", errors="replace").strip()
        member = next(members, None)
    segment.drain()
    if not source.at_end():
        raise CorruptArchiveError(f"{label}: unexpected data after the index")
    if entries is None:
        raise RepositoryError(f"{label}: no APKINDEX file inside (not an apk index?)")
    signed_by = None
    if keyring is not None:
        signed_by = keyring.verify(tuple(signatures), {"sha1": segment.sha1(), "sha256": segment.sha256()}, label)
    return Index(tuple(entries), description, signed_by, bool(signatures))


def read_index_file(path: Path, *, keyring: Keyring | None = None, limits: Limits = DEFAULT_LIMITS) -> Index:
    label = str(path)
    try:
        handle = path.open("rb")
    except FileNotFoundError as exc:
        raise RepositoryError(f"{label}: no such index") from exc
    except OSError as exc:
        raise RepositoryError(f"{label}: cannot open: {exc.strerror or exc}") from exc
    with handle:
        return read_index(handle, label, keyring=keyring, limits=limits)


# --------------------------------------------------------------------------- packages


def _segment_names(segment: Member, limits: Limits, label: str) -> list[str]:
    names = [member.name for member in TarReader(segment, limits, label)]
    segment.drain()
    return names


def package_checksum(path: Path, limits: Limits = DEFAULT_LIMITS) -> str:
    """The ``C:`` checksum of an .apk: Q1 + base64(sha1 of its compressed control segment).

    Only the (small) signature and control segments are read.
    """
    label = str(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(f"{label}: cannot open: {exc.strerror or exc}") from exc
    with handle:
        source = CompressedInput(handle, limits, label)
        control = Member(source, cap=limits.max_control_bytes)
        names = _segment_names(control, limits, label)
        if not control.started:
            raise CorruptArchiveError(f"{label}: empty file")
        if names and names[0].startswith(".SIGN."):
            control = Member(source, cap=limits.max_control_bytes)
            names = _segment_names(control, limits, label)
        if ".PKGINFO" not in names:
            raise CorruptArchiveError(f"{label}: no .PKGINFO in the control segment (not an APK?)")
    return q1_checksum(control.sha1())


# .PKGINFO keys that an index carries under a one-letter key.
_PKGINFO_TO_INDEX = {"replaces_priority": "q"}


def index_view(info: PackageInfo) -> PackageInfo:
    """``info`` as an index record can hold it: no datahash or triggers, and only the
    extra keys an index has a line for. Reading back a written record gives exactly this."""
    extra = tuple(
        (_PKGINFO_TO_INDEX.get(key, key), value)
        for key, value in info.extra
        if key in _PKGINFO_TO_INDEX or (len(key) == 1 and key not in _SINGLE_KEYS and key not in _LIST_KEYS)
    )
    return dataclasses.replace(info, origin=info.origin or info.name, datahash="", triggers=(), extra=extra)


def index_entry_for(path: Path, limits: Limits = DEFAULT_LIMITS) -> IndexEntry:
    """Describe one .apk file as an index would."""
    with ApkArchive.open(path, limits=limits) as apk:
        info = index_view(apk.info)
    return IndexEntry(info=info, checksum=package_checksum(path, limits), file_size=path.stat().st_size)


# --------------------------------------------------------------------------- writing


def _tar_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    member = tarfile.TarInfo(name)
    member.size = len(data)
    member.mode = 0o644
    member.mtime = 0
    tar.addfile(member, io.BytesIO(data))


def index_archive_bytes(entries: Sequence[IndexEntry], description: str, signing_key: SigningKey | None) -> bytes:
    """The bytes of an ``APKINDEX.tar.gz`` for these entries, signed when a key is given."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        _tar_file(tar, "DESCRIPTION", description.encode())
        _tar_file(tar, "APKINDEX", format_index(entries).encode())
    index = gzip_bytes(buffer.getvalue())
    if signing_key is None:
        return index
    signature = signing_key.sign(index)
    return gzip_bytes(tar_without_trailer([(f".SIGN.RSA256.{signing_key.name}", signature)])) + index


def _sorted_entries(entries: Iterable[IndexEntry]) -> list[IndexEntry]:
    return sorted(entries, key=lambda e: (e.info.name, version_key(e.info.version), e.checksum))


def write_index(
    arch_dir: Path,
    packages: Sequence[tuple[PackageInfo, Path]],
    *,
    signing_key: SigningKey | None = None,
    description: str = "",
) -> Path:
    """Write ``arch_dir/APKINDEX.tar.gz`` for packages that already sit in ``arch_dir``
    under their canonical names (``<name>-<version>.apk``).

    Each record is read back from the .apk itself (so the index cannot disagree with
    the file); the PackageInfo given must name the same package.
    """
    entries: list[IndexEntry] = []
    folder = arch_dir.resolve()
    for expected, path in packages:
        entry = index_entry_for(path)
        if (entry.info.name, entry.info.version) != (expected.name, expected.version):
            raise InputError(
                f"{path}: holds {entry.info.name}-{entry.info.version}, not {expected.name}-{expected.version}"
            )
        if path.resolve() != folder / entry.filename:
            raise InputError(f"{path}: must be {arch_dir / entry.filename} for the index to find it")
        entries.append(entry)
    names = [e.filename for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"{arch_dir}: listed twice: {', '.join(duplicates)}")
    data = index_archive_bytes(_sorted_entries(entries), description, signing_key)
    target = arch_dir / INDEX_NAME
    partial = target.with_name(target.name + ".partial")
    try:
        partial.write_bytes(data)
        partial.replace(target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise InputError(f"{target}: cannot write: {exc.strerror or exc}") from exc
    return target


def build_repository(arch_dir: Path, apk_paths: Iterable[Path], signing_key: SigningKey | None = None) -> Path:
    """Copy packages into ``arch_dir`` under their canonical names and index them all
    (packages already there are kept). Returns the index path."""
    arch_dir.mkdir(parents=True, exist_ok=True)
    for path in apk_paths:
        with ApkArchive.open(path) as apk:
            info = apk.info
        target = arch_dir / f"{info.name}-{info.version}.apk"
        if target.exists() and target.samefile(path):
            continue
        partial = target.with_name(target.name + ".partial")
        try:
            shutil.copyfile(path, partial)
            partial.replace(target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise InputError(f"{target}: cannot write: {exc.strerror or exc}") from exc
    packages: list[tuple[PackageInfo, Path]] = []
    for path in sorted(arch_dir.glob("*.apk")):
        with ApkArchive.open(path) as apk:
            packages.append((apk.info, path))
    return write_index(arch_dir, packages, signing_key=signing_key, description=arch_dir.name)


__all__ = [
    "INDEX_NAME",
    "Index",
    "IndexEntry",
    "RecordLine",
    "build_repository",
    "checksum_digest",
    "entry_from_record",
    "format_entry_lines",
    "format_index",
    "index_archive_bytes",
    "index_entry_for",
    "index_view",
    "package_checksum",
    "parse_index_text",
    "read_index",
    "read_index_file",
    "split_records",
    "write_index",
]
