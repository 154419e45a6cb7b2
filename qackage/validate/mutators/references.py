"""Which data files a package's own programs, scripts and configuration name by path.

`drop-data-file` only deletes data a program is known to read: ``/usr/share/foo/words``
inside ``usr/bin/foo`` (a script, or a string compiled into an ELF program), a service
unit or a configuration file. Finding that needs the files' content, so it is a streaming
pass of its own over the archive; the matching itself is pure (`PathScanner`).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from pathlib import Path

from qackage.apk.archive import ApkArchive
from qackage.apk.limits import DEFAULT_LIMITS, Limits
from qackage.model import Analysis, EntryKind, Facts
from qackage.validate.mutators.base import DataReferences

# Longest path a reference can be; a chunk keeps this much of its end for the next one.
MAX_REFERENCE = 4096
_PATH_CHARS = rb"[A-Za-z0-9_.+@%,=~/-]"


def path_pattern(paths: Iterable[str]) -> re.Pattern[bytes]:
    """Absolute paths below the top directories of ``paths`` (``/usr/...`` for usr/share/x):
    anchoring on them keeps the scan of a large binary fast."""
    tops = sorted({path.split("/", 1)[0] for path in paths})
    alternatives = b"|".join(re.escape(top.encode()) for top in tops)
    return re.compile(rb"(?<!" + _PATH_CHARS + rb")/(?:" + alternatives + rb")/" + _PATH_CHARS + rb"+")


class PathScanner:
    """Collect the paths ``pattern`` finds in a byte stream fed in arbitrary chunks."""

    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        self._pattern = pattern
        self._tail = b""
        self._found: set[bytes] = set()

    def feed(self, chunk: bytes) -> None:
        buffer = self._tail + chunk
        for match in self._pattern.finditer(buffer):
            # A match touching the end may go on in the next chunk: the kept tail finds it whole.
            if match.end() < len(buffer):
                self._found.add(match.group())
        self._tail = buffer[-MAX_REFERENCE:]

    def paths(self) -> frozenset[str]:
        """Everything found, as package paths (``usr/share/foo/words``)."""
        for match in self._pattern.finditer(self._tail):
            self._found.add(match.group())
        decoded = (raw.decode("utf-8", errors="replace") for raw in self._found)
        return frozenset(posixpath.normpath(path).lstrip("/") for path in decoded)


def reading_files(facts: Facts) -> frozenset[str]:
    """Files whose content may name a data file: programs (ELF or script), scripts,
    service definitions and configuration files."""
    readers: set[str] = {f.path for f in facts.elf_files}
    readers.update(e.path for e in facts.executables)
    readers.update(s.path for s in facts.scripts)
    readers.update(s.path for s in facts.services)
    readers.update(c.path for c in facts.config_files)
    return frozenset(readers)


def find_references(apk: Path, analysis: Analysis, *, limits: Limits = DEFAULT_LIMITS) -> DataReferences:
    """Stream ``apk`` once and record which of its data files its other files name."""
    data = frozenset(analysis.facts.data_files)
    if not data:
        return DataReferences()
    readers = reading_files(analysis.facts) - data
    # A hardlink's content is its file's: scan the file, credit every name it has.
    names: dict[str, list[str]] = {}
    for entry in analysis.entries:
        if entry.path not in readers:
            continue
        if entry.kind is EntryKind.FILE:
            names.setdefault(entry.path, []).append(entry.path)
        elif entry.kind is EntryKind.HARDLINK and entry.link_target is not None:
            names.setdefault(entry.link_target, []).append(entry.path)
    pattern = path_pattern(data)
    named: dict[str, set[str]] = {}
    with ApkArchive.open(apk, limits=limits) as archive:
        for member in archive.members():
            readers_here = names.get(member.entry.path)
            if member.entry.kind is not EntryKind.FILE or readers_here is None:
                continue
            scanner = PathScanner(pattern)
            for chunk in member.chunks():
                scanner.feed(chunk)
            for path in scanner.paths() & data:
                named.setdefault(path, set()).update(readers_here)
    return DataReferences(tuple((path, tuple(sorted(users))) for path, users in sorted(named.items())))
