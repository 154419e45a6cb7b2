"""What every mutation operator shares: the spec it emits, the subject it reads, the edit it plans.

An operator is two pure functions over a `Subject` (the analysis of the good package plus
the data-file references found in it): ``find`` lists the targets it makes sense for, most
important first, and ``plan`` turns one target into an `Edit` - plain data naming which
members to delete, replace, move aside, retarget, truncate, re-mode or rewrite. Writing the broken
``.apk`` is a separate, streaming step (`qackage.validate.mutators.rewrite`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from qackage.model import Analysis, Entry, EntryKind, Executable, Symlink

# --------------------------------------------------------------------------- specs


@dataclass(frozen=True, slots=True)
class MutantSpec:
    """One broken copy of a package: which operator, what it breaks, in a maintainer's words."""

    operator: str  # e.g. "delete-executable"
    target: str  # the path or name it breaks ("usr/bin/hello", "libgreet.so.1", "pyfoo")
    description: str  # "usr/bin/hello replaced by a script that exits 1"

    @property
    def key(self) -> str:
        """Stable identifier: the same package always yields the same keys."""
        return f"{self.operator}:{self.target}"


@dataclass(frozen=True, slots=True)
class DataReferences:
    """Data files of a package that its own programs, scripts or configuration name by path."""

    # (data file, the package files that name it), both sorted.
    named_by: tuple[tuple[str, tuple[str, ...]], ...] = ()


# --------------------------------------------------------------------------- edits


@dataclass(frozen=True, slots=True)
class Delete:
    path: str


@dataclass(frozen=True, slots=True)
class Replace:
    """The member becomes a regular file with this content and mode."""

    path: str
    data: bytes
    mode: int


@dataclass(frozen=True, slots=True)
class Relocate:
    """The file moves to ``to`` (same mode and owner) in a folder of its own, which the
    mutant adds; ``path`` becomes a regular file with this content and mode."""

    path: str
    to: str
    data: bytes
    mode: int


@dataclass(frozen=True, slots=True)
class Retarget:
    """A symlink that now points at ``target``."""

    path: str
    target: str


@dataclass(frozen=True, slots=True)
class Truncate:
    """Keep only the first ``keep`` bytes of a file."""

    path: str
    keep: int


@dataclass(frozen=True, slots=True)
class Chmod:
    path: str
    mode: int


class HeadRewrite(Protocol):
    """A change to the start of a small text file (a .pc file, a #! line)."""

    def apply(self, head: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Rewrite:
    """Rewrite the first `REWRITE_WINDOW` bytes of a file; the rest streams unchanged."""

    path: str
    rewrite: HeadRewrite


@dataclass(frozen=True, slots=True)
class RenameSymbol:
    """Rename a defined dynamic symbol of an ELF file so lookups by its name fail."""

    path: str
    symbol: str


Change = Delete | Replace | Relocate | Retarget | Truncate | Chmod | Rewrite | RenameSymbol

# Files a head rewrite sees at once: far more than any .pc file or #! line needs.
REWRITE_WINDOW = 1 << 20


@dataclass(frozen=True, slots=True)
class Edit:
    """Every change one mutant makes. ``drop_all`` removes every member (dirs included)."""

    changes: tuple[Change, ...] = ()
    drop_all: bool = False

    def by_path(self) -> dict[str, Change]:
        return {change.path: change for change in self.changes}


# --------------------------------------------------------------------------- the subject


@dataclass(frozen=True)
class Subject:
    """The good package as operators see it: analysis facts plus indexes built once."""

    analysis: Analysis
    references: DataReferences = DataReferences()
    by_path: Mapping[str, Entry] = field(init=False)
    links: Mapping[str, Symlink] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_path", {e.path: e for e in self.analysis.entries})
        object.__setattr__(self, "links", {s.path: s for s in self.analysis.facts.symlinks})

    @property
    def name(self) -> str:
        return self.analysis.package.name

    @property
    def main_names(self) -> frozenset[str]:
        """Command names the package is about: its own name and the cmd: it provides."""
        info = self.analysis.package
        return frozenset({info.name, *info.cmd_provides})

    def entry(self, path: str) -> Entry | None:
        return self.by_path.get(path)

    def is_regular(self, path: str) -> bool:
        entry = self.by_path.get(path)
        return entry is not None and entry.kind in (EntryKind.FILE, EntryKind.HARDLINK)

    def is_symlink(self, path: str) -> bool:
        entry = self.by_path.get(path)
        return entry is not None and entry.kind is EntryKind.SYMLINK

    @property
    def shell_paths(self) -> frozenset[str]:
        """``bin/sh`` and what it resolves to, when this package ships the shell.

        Operators that put a ``#!/bin/sh`` script in a program's place skip these: the
        script would name itself as its interpreter and fail to exec at all."""
        found: set[str] = set()
        for path in ("bin/sh", "usr/bin/sh"):
            if path not in self.by_path:
                continue
            found.add(path)
            link = self.links.get(path)
            if link is not None and link.resolved is not None:
                found.add(link.resolved)
                found.update(link.chain)
        return frozenset(found)

    def executable_rank(self, executable: Executable) -> tuple[bool, bool, bool, bool, str]:
        """Main programs first: named after the package, then the provided commands, on
        PATH before libexec helpers, real files before links, then by path."""
        return (
            executable.name != self.name,
            executable.name not in self.main_names,
            not executable.on_path,
            self.is_symlink(executable.path),
            executable.path,
        )

    def ranked_executables(self) -> list[Executable]:
        return sorted(self.analysis.facts.executables, key=self.executable_rank)

    def files_in(self, directory: str) -> tuple[str, ...]:
        """Regular files directly inside ``directory``, sorted."""
        return tuple(
            sorted(
                e.path
                for e in self.analysis.entries
                if e.kind in (EntryKind.FILE, EntryKind.HARDLINK) and posixpath.dirname(e.path) == directory
            )
        )


# --------------------------------------------------------------------------- operators


@dataclass(frozen=True, slots=True)
class Operator:
    """A named way of breaking a package.

    ``find`` lists every target it applies to, most important first (callers cap the
    list); ``plan`` turns one of those specs into the change to write."""

    name: str
    summary: str
    find: Callable[[Subject], Iterable[MutantSpec]]
    plan: Callable[[Subject, MutantSpec], Edit]


def size_of(subject: Subject, path: str) -> int:
    """The size of the file behind ``path`` (a hardlink has none of its own)."""
    entry = subject.by_path[path]
    if entry.kind is EntryKind.HARDLINK and entry.link_target is not None:
        entry = subject.by_path[entry.link_target]
    return entry.size


def mode_of(subject: Subject, path: str) -> int:
    """The permission bits of the file behind ``path`` (a hardlink shares its file's)."""
    entry = subject.by_path[path]
    if entry.kind is EntryKind.HARDLINK and entry.link_target is not None:
        entry = subject.by_path[entry.link_target]
    return entry.mode & 0o7777


def shell_script(spec_text: str, body: str) -> bytes:
    """A busybox-sh script that says which mutant it is, then does ``body``."""
    return f"#!/bin/sh\n# qackage mutant: {spec_text}\n{body}\n".encode()
