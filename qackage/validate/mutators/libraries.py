"""Operators that break libraries: a SONAME's file gone, an exported function hidden,
a symlink left dangling, a static archive cut short."""

from __future__ import annotations

import posixpath
import random
from collections.abc import Iterator

from qackage.model import ElfFile, SharedLibrary, Symlink
from qackage.validate.mutators.base import (
    Delete,
    Edit,
    MutantSpec,
    Operator,
    RenameSymbol,
    Retarget,
    Subject,
    Truncate,
    size_of,
)

MISSING_SUFFIX = ".qackage-missing"


def _ranked_libraries(subject: Subject) -> list[SharedLibrary]:
    """Libraries other packages depend on (provided so: names, in .PKGINFO order) first."""
    provided = subject.analysis.package.so_provides

    def rank(library: SharedLibrary) -> tuple[int, str]:
        soname = library.soname or ""
        return (provided.index(soname) if soname in provided else len(provided), library.path)

    return sorted(subject.analysis.facts.shared_libraries, key=rank)


# --------------------------------------------------------------------------- delete-soname


def _find_deleted_soname(subject: Subject) -> Iterator[MutantSpec]:
    seen: set[str] = set()
    for library in _ranked_libraries(subject):
        soname = library.soname
        if soname is None or soname in seen or not subject.is_regular(library.path):
            continue
        seen.add(soname)
        yield MutantSpec("delete-soname", soname, f"{library.path} deleted: nothing provides {soname} any more")


def _plan_deleted_soname(subject: Subject, spec: MutantSpec) -> Edit:
    paths = sorted({lib.path for lib in subject.analysis.facts.shared_libraries if lib.soname == spec.target})
    return Edit(tuple(Delete(path) for path in paths))


# --------------------------------------------------------------------------- strip-export


def hidden_name(symbol: str, taken: frozenset[str]) -> str | None:
    """``symbol`` with the case of one ASCII letter flipped (same length, so the string
    table keeps its layout), avoiding names the file already defines; None if impossible."""
    for index, char in enumerate(symbol):
        if not (char.isascii() and char.isalpha()):
            continue
        renamed = symbol[:index] + char.swapcase() + symbol[index + 1 :]
        if renamed not in taken:
            return renamed
    return None


def _public_first(elf: ElfFile) -> list[str]:
    """The exported functions a user of the library most likely calls, in a fixed
    pseudo-random order: names carrying the library's stem (``greet_*`` of libgreet),
    then other public names, then ``_reserved`` ones; each group shuffled with a seed
    derived from the file, so the choice is arbitrary but never changes."""
    stem = posixpath.basename(elf.soname or elf.path).split(".", 1)[0].removeprefix("lib").lower()
    groups: tuple[list[str], list[str], list[str]] = ([], [], [])
    exported = frozenset(elf.exported_functions)
    for name in sorted(exported):
        if hidden_name(name, exported) is None:
            continue  # no letter to flip, or every flip is another export
        if name.startswith("_"):
            groups[2].append(name)
        elif stem and stem in name.lower():
            groups[0].append(name)
        else:
            groups[1].append(name)
    shuffler = random.Random(f"strip-export:{elf.path}")  # noqa: S311 - a fixed order, not security
    ordered: list[str] = []
    for group in groups:
        shuffler.shuffle(group)
        ordered += group
    return ordered


def _find_stripped_export(subject: Subject) -> Iterator[MutantSpec]:
    order = {lib.path: position for position, lib in enumerate(_ranked_libraries(subject))}
    # libc.so.6 has a PT_INTERP (it runs as a program too) and is a library all the same.
    libraries = sorted(
        (
            elf
            for elf in subject.analysis.facts.elf_files
            if (elf.is_library or elf.path in order) and subject.is_regular(elf.path)
        ),
        key=lambda elf: (order.get(elf.path, len(order)), elf.path),
    )
    queues = [(elf, _public_first(elf)) for elf in libraries]
    # Round robin: one function of each library before a second one of any.
    depth = max((len(names) for _elf, names in queues), default=0)
    for round_index in range(depth):
        for elf, names in queues:
            if round_index >= len(names):
                continue
            symbol = names[round_index]
            yield MutantSpec(
                "strip-export",
                f"{elf.path}:{symbol}",
                f"{symbol} renamed in the dynamic symbols of {elf.path}: dlsym and programs that call it fail",
            )


def _plan_stripped_export(_subject: Subject, spec: MutantSpec) -> Edit:
    path, symbol = spec.target.rsplit(":", 1)
    return Edit((RenameSymbol(path, symbol),))


# --------------------------------------------------------------------------- dangle-symlink


def dangling_target(target: str) -> str:
    """A target next to the old one that does not exist: ``libfoo.so.1.2`` ->
    ``libfoo.so.1.2.qackage-missing`` (same directory, so it cannot escape the root)."""
    # A target of only slashes ("/") has no name to extend: give it one.
    return (target.rstrip("/") or "/qackage") + MISSING_SUFFIX


def _symlink_rank(subject: Subject) -> dict[str, int]:
    """0: names a library (libfoo.so.1, libfoo.so); 1: a command; 2: resolves inside the
    package; 3: points elsewhere (satisfied by a dependency, or not at all)."""
    aliases = {alias for lib in subject.analysis.facts.shared_libraries for alias in lib.aliases}
    commands = {e.path for e in subject.analysis.facts.executables}
    ranks: dict[str, int] = {}
    for link in subject.analysis.facts.symlinks:
        name = posixpath.basename(link.path)
        if link.path in aliases or (name.startswith("lib") and ".so" in name):
            ranks[link.path] = 0
        elif link.path in commands:
            ranks[link.path] = 1
        elif not link.dangling:
            ranks[link.path] = 2
        else:
            ranks[link.path] = 3
    return ranks


def _find_dangling(subject: Subject) -> Iterator[MutantSpec]:
    ranks = _symlink_rank(subject)
    command_order = {e.path: position for position, e in enumerate(subject.ranked_executables())}

    def key(link: Symlink) -> tuple[int, int, str]:
        return (ranks[link.path], command_order.get(link.path, 0), link.path)

    for link in sorted(subject.analysis.facts.symlinks, key=key):
        if link.loop:
            continue
        new = dangling_target(link.target)
        yield MutantSpec(
            "dangle-symlink", link.path, f"{link.path} points at {new}, which does not exist (was {link.target})"
        )


def _plan_dangling(subject: Subject, spec: MutantSpec) -> Edit:
    return Edit((Retarget(spec.target, dangling_target(subject.links[spec.target].target)),))


# --------------------------------------------------------------------------- truncate-static-lib


def _find_truncated_archive(subject: Subject) -> Iterator[MutantSpec]:
    stem = subject.name.removesuffix("-static")

    def key(path: str) -> tuple[bool, str]:
        return (stem not in posixpath.basename(path), path)

    for path in sorted(subject.analysis.facts.static_libraries, key=key):
        if not subject.is_regular(path):
            continue
        size = size_of(subject, path)
        if size < 2:
            continue
        yield MutantSpec(
            "truncate-static-lib", path, f"{path} cut to half its size ({size // 2} of {size} bytes): not an archive"
        )


def _plan_truncated_archive(subject: Subject, spec: MutantSpec) -> Edit:
    return Edit((Truncate(spec.target, size_of(subject, spec.target) // 2),))


OPERATORS = (
    Operator(
        "delete-soname",
        "delete the real file behind a provided SONAME",
        _find_deleted_soname,
        _plan_deleted_soname,
    ),
    Operator(
        "strip-export",
        "rename an exported function in a library's dynamic symbols so lookups of it fail",
        _find_stripped_export,
        _plan_stripped_export,
    ),
    Operator(
        "dangle-symlink",
        "point a symlink at a path that does not exist",
        _find_dangling,
        _plan_dangling,
    ),
    Operator(
        "truncate-static-lib",
        "cut a static library (.a) to half its size",
        _find_truncated_archive,
        _plan_truncated_archive,
    ),
)
