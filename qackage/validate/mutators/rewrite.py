"""Write a mutant: stream the good .apk, apply an `Edit` member by member, write a real .apk.

The package never sits in memory: each member's content passes through on its way from
the old data segment to the new one, small files as bytes, larger ones through a temporary
file (the tar writer reads a file twice: once for its checksum, once for the body).
Member order, modes and owners are kept; every mtime is 0 (`write_data_segment`), so the
same input and edit always give the same bytes. The ``.PKGINFO`` is the good package's,
with only ``size`` and ``datahash`` recomputed; install scripts are copied; the mutant is
unsigned (no key of ours may sign a broken package).

Hardlinks share one file. A change applies to the path it names only: when that path is
the file other names link to, the first remaining name becomes a regular file with the
original content (kept in a temporary file) and the later ones link to it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import posixpath
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from qackage.apk.archive import ApkArchive, SourceMember
from qackage.apk.limits import DEFAULT_LIMITS, Limits
from qackage.apk.pkginfo import format_pkginfo
from qackage.apk.writer import COPY_CHUNK, PlannedFile, gzip_bytes, tar_without_trailer, write_data_segment
from qackage.model import Entry, EntryKind, PackageInfo
from qackage.validate.mutators.base import (
    REWRITE_WINDOW,
    Change,
    Chmod,
    Delete,
    Edit,
    Relocate,
    RenameSymbol,
    Replace,
    Retarget,
    Rewrite,
    Truncate,
)
from qackage.validate.mutators.control import read_control_scripts
from qackage.validate.mutators.elfsymbols import rename_dynamic_symbol

# Files up to this size pass through memory; larger ones through a temporary file.
SMALL_FILE = 1 << 20


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(COPY_CHUNK):
            yield chunk


def _truncated(chunks: Iterable[bytes], keep: int) -> Iterator[bytes]:
    remaining = keep
    for chunk in chunks:
        if remaining <= 0:
            break
        piece = chunk[:remaining]
        remaining -= len(piece)
        yield piece


def _rewritten(chunks: Iterable[bytes], rewrite: Rewrite) -> Iterator[bytes]:
    iterator = iter(chunks)
    head = bytearray()
    for chunk in iterator:
        head += chunk
        if len(head) >= REWRITE_WINDOW:
            break
    window, rest = bytes(head[:REWRITE_WINDOW]), bytes(head[REWRITE_WINDOW:])
    yield rewrite.rewrite.apply(window)
    if rest:
        yield rest
    yield from iterator


class _Workspace:
    """Temporary files of one mutant, in a private directory removed afterwards."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._count = 0
        self.kept: set[Path] = set()  # originals hardlinks still need

    def new_path(self) -> Path:
        self._count += 1
        return self._root / f"member-{self._count}"

    def spool(self, chunks: Iterable[bytes]) -> Path:
        path = self.new_path()
        with path.open("wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
        return path

    def collect(self, chunks: Iterable[bytes]) -> tuple[bytes | None, Path | None]:
        """(bytes, None) for a small file, (None, temporary file) for a large one."""
        iterator = iter(chunks)
        held = bytearray()
        for chunk in iterator:
            held += chunk
            if len(held) > SMALL_FILE:
                path = self.new_path()
                with path.open("wb") as handle:
                    handle.write(held)
                    for more in iterator:
                        handle.write(more)
                return None, path
        return bytes(held), None

    def release(self, planned: PlannedFile) -> None:
        if planned.source is not None and planned.source not in self.kept:
            planned.source.unlink(missing_ok=True)


class _Mutator:
    """Turns the good package's members into the mutant's, one at a time."""

    def __init__(self, entries: Sequence[Entry], edit: Edit, work: _Workspace, label: str) -> None:
        self._edit = edit
        self._changes = edit.by_path()
        self._work = work
        self._label = label
        self._entries = {e.path: e for e in entries}
        links: dict[str, list[str]] = {}
        for entry in entries:
            if entry.kind is EntryKind.HARDLINK and entry.link_target is not None:
                links.setdefault(entry.link_target, []).append(entry.path)
        # Files whose original content a hardlink will still need after the file changed.
        self._keep = {
            first for first, names in links.items() if first in self._changes or any(n in self._changes for n in names)
        }
        self._originals: dict[str, Path] = {}
        self._holder: dict[str, str] = {}  # file -> the output path holding its original content

    def members(self, source: Iterable[SourceMember]) -> Iterator[PlannedFile]:
        for member in source:
            if self._edit.drop_all:
                continue  # read on so the datahash is still verified; bodies are skipped
            entry = member.entry
            change = self._changes.get(entry.path)
            planned_all: Sequence[PlannedFile | None]
            if isinstance(change, Relocate):
                planned_all = self._relocated(entry, change, member.chunks())
            elif entry.kind is EntryKind.FILE:
                planned_all = [self._file(entry, member.chunks())]
            elif entry.kind is EntryKind.HARDLINK:
                planned_all = [self._hardlink(entry)]
            else:
                planned_all = [self._other(entry)]
            for planned in planned_all:
                if planned is not None:
                    yield planned
                    self._work.release(planned)

    # -- members -----------------------------------------------------------------------

    def _file(self, entry: Entry, chunks: Iterator[bytes]) -> PlannedFile | None:
        change = self._changes.get(entry.path)
        if entry.path in self._keep:
            original = self._work.spool(chunks)
            self._work.kept.add(original)
            self._originals[entry.path] = original
            if change is None:
                self._holder[entry.path] = entry.path
                return _regular(entry, source=original)
            return self._changed(entry, change, _file_chunks(original))
        if change is None:
            self._holder[entry.path] = entry.path
            data, source = self._work.collect(chunks)
            return _regular(entry, data=data, source=source)
        return self._changed(entry, change, chunks)

    def _relocated(self, entry: Entry, change: Relocate, chunks: Iterator[bytes]) -> list[PlannedFile]:
        """The new folder, the file under its new name, and what takes its place."""
        if entry.kind is not EntryKind.FILE or entry.path in self._keep:
            # Another name shares the file: which of them would move is not well defined.
            raise ValueError(f"cannot move the {entry.kind.value} {entry.path}: only a file with one name can move")
        data, source = self._work.collect(chunks)
        return [
            PlannedFile(posixpath.dirname(change.to), EntryKind.DIR, 0o755),
            _regular(dataclasses.replace(entry, path=change.to), data=data, source=source),
            PlannedFile(entry.path, mode=change.mode, data=change.data, uid=entry.uid, gid=entry.gid),
        ]

    def _hardlink(self, entry: Entry) -> PlannedFile | None:
        first = entry.link_target or ""
        change = self._changes.get(entry.path)
        file_entry = self._entries[first]
        # A hardlink has the permissions and owner of the file it names.
        as_file = dataclasses.replace(
            entry, kind=EntryKind.FILE, mode=file_entry.mode, uid=file_entry.uid, gid=file_entry.gid
        )
        if change is not None:
            if isinstance(change, Delete | Replace):
                return self._changed(as_file, change, iter(()))
            return self._changed(as_file, change, _file_chunks(self._originals[first]))
        holder = self._holder.get(first)
        if holder is not None:
            return PlannedFile(
                entry.path, EntryKind.HARDLINK, entry.mode, link_target=holder, uid=entry.uid, gid=entry.gid
            )
        # The file this name shared was changed or deleted: this name keeps the original.
        self._holder[first] = entry.path
        return _regular(as_file, source=self._originals[first])

    def _other(self, entry: Entry) -> PlannedFile | None:
        change = self._changes.get(entry.path)
        if change is None:
            return PlannedFile(
                entry.path, entry.kind, entry.mode, link_target=entry.link_target, uid=entry.uid, gid=entry.gid
            )
        if isinstance(change, Delete):
            return None
        if isinstance(change, Replace):
            return self._changed(entry, change, iter(()))
        if isinstance(change, Retarget) and entry.kind is EntryKind.SYMLINK:
            return PlannedFile(
                entry.path, EntryKind.SYMLINK, entry.mode, link_target=change.target, uid=entry.uid, gid=entry.gid
            )
        raise ValueError(f"cannot apply {type(change).__name__} to the {entry.kind.value} {entry.path}")

    # -- changes -----------------------------------------------------------------------

    def _changed(self, entry: Entry, change: Change, chunks: Iterator[bytes]) -> PlannedFile | None:
        """The member ``entry`` becomes after ``change``, reading its content from ``chunks``."""
        if isinstance(change, Delete):
            return None
        if isinstance(change, Replace):
            return PlannedFile(entry.path, mode=change.mode, data=change.data, uid=entry.uid, gid=entry.gid)
        if isinstance(change, Truncate):
            data, source = self._work.collect(_truncated(chunks, change.keep))
            return _regular(entry, data=data, source=source)
        if isinstance(change, Chmod):
            data, source = self._work.collect(chunks)
            return _regular(dataclasses.replace(entry, mode=change.mode), data=data, source=source)
        if isinstance(change, Rewrite):
            data, source = self._work.collect(_rewritten(chunks, change))
            return _regular(entry, data=data, source=source)
        if isinstance(change, RenameSymbol):
            whole = self._work.spool(chunks)
            out = self._work.new_path()
            try:
                rename_dynamic_symbol(whole, out, change.symbol, f"{self._label}: {entry.path}")
            finally:
                whole.unlink(missing_ok=True)
            return _regular(entry, source=out)
        raise ValueError(f"cannot apply {type(change).__name__} to the file {entry.path}")


def _regular(entry: Entry, *, data: bytes | None = None, source: Path | None = None) -> PlannedFile:
    return PlannedFile(entry.path, EntryKind.FILE, entry.mode, data=data, source=source, uid=entry.uid, gid=entry.gid)


def _assemble(out: Path, info: PackageInfo, scripts: Sequence[tuple[str, bytes]], data_path: Path) -> str:
    """Control segment + data segment -> ``out`` (atomically); returns the file's sha256."""
    control = gzip_bytes(tar_without_trailer([(".PKGINFO", format_pkginfo(info).encode()), *scripts]))
    digest = hashlib.sha256(control)
    partial = out.with_name(out.name + ".partial")
    with partial.open("wb") as handle:
        handle.write(control)
        with data_path.open("rb") as data:
            while chunk := data.read(COPY_CHUNK):
                digest.update(chunk)
                handle.write(chunk)
    partial.replace(out)
    return digest.hexdigest()


def write_mutant(apk: Path, entries: Sequence[Entry], edit: Edit, out: Path, *, limits: Limits = DEFAULT_LIMITS) -> str:
    """Write the mutant of ``apk`` that ``edit`` describes to ``out``; return its sha256.

    ``entries`` are the good package's members (from its analysis): hardlinks need to be
    known before the file they name streams past."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".qackage-mutant-") as temporary:
        folder = Path(temporary)
        data_path = folder / "data.tar.gz"
        with ApkArchive.open(apk, limits=limits) as archive:
            scripts = read_control_scripts(apk, limits=limits)
            mutator = _Mutator(entries, edit, _Workspace(folder), str(apk))
            with data_path.open("wb") as data_out:
                datahash, installed = write_data_segment(mutator.members(archive.members()), data_out)
            info = dataclasses.replace(archive.info, size=installed, datahash=datahash)
        return _assemble(out, info, scripts, data_path)
