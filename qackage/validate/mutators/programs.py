"""Operators that break the programs a package ships: gone, failing, silent, not executable,
pointing at a missing interpreter, a daemon that does not stay up, a truncated ELF file."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from qackage.model import Executable
from qackage.validate.mutators.base import (
    Chmod,
    Delete,
    Edit,
    MutantSpec,
    Operator,
    Replace,
    Rewrite,
    Subject,
    Truncate,
    mode_of,
    shell_script,
    size_of,
)

# A directory no system has: an interpreter below it can never be found.
MISSING_ROOT = "/qackage-missing"
_SHEBANG_START = re.compile(rb"^#![ \t]*")


def script_mode(subject: Subject, path: str) -> int:
    """Keep the program's own permissions; a link in its place gets the usual 0755."""
    if subject.is_symlink(path):
        return 0o755
    return mode_of(subject, path) | 0o111


def replaceable(subject: Subject) -> Iterator[Executable]:
    """Programs a ``#!/bin/sh`` script can stand in for (not the shell itself)."""
    shell = subject.shell_paths
    for executable in subject.ranked_executables():
        if executable.path not in shell:
            yield executable


# --------------------------------------------------------------------------- delete-executable


def _find_deleted(subject: Subject) -> Iterator[MutantSpec]:
    for executable in subject.ranked_executables():
        if executable.on_path:
            yield MutantSpec(
                "delete-executable",
                executable.path,
                f"{executable.path} deleted: the {executable.name} command is missing",
            )


def _plan_delete(_subject: Subject, spec: MutantSpec) -> Edit:
    return Edit((Delete(spec.target),))


# --------------------------------------------------------------------------- exec-exit-1 / -0-silent


def _find_exit_1(subject: Subject) -> Iterator[MutantSpec]:
    for executable in replaceable(subject):
        yield MutantSpec("exec-exit-1", executable.path, f"{executable.path} replaced by a script that exits 1")


def _find_exit_0(subject: Subject) -> Iterator[MutantSpec]:
    # A daemon's exit-0 stand-in is `daemon-exits`: the same file, named for what it breaks.
    daemons = {d.path for d in subject.analysis.facts.daemons}
    for executable in replaceable(subject):
        if executable.path not in daemons:
            yield MutantSpec(
                "exec-exit-0-silent",
                executable.path,
                f"{executable.path} replaced by a script that exits 0 and prints nothing",
            )


def _plan_exit_1(subject: Subject, spec: MutantSpec) -> Edit:
    script = shell_script(spec.description, "exit 1")
    return Edit((Replace(spec.target, script, script_mode(subject, spec.target)),))


def _plan_exit_0(subject: Subject, spec: MutantSpec) -> Edit:
    script = shell_script(spec.description, "exit 0")
    return Edit((Replace(spec.target, script, script_mode(subject, spec.target)),))


# --------------------------------------------------------------------------- exec-not-executable


def _find_not_executable(subject: Subject) -> Iterator[MutantSpec]:
    for executable in subject.ranked_executables():
        path = executable.path
        if not subject.is_regular(path):
            continue  # a link has no permissions of its own
        mode = mode_of(subject, path)
        if not mode & 0o111:
            continue  # an ELF file found by content, already not executable
        yield MutantSpec(
            "exec-not-executable",
            path,
            f"{path} loses its execute permission (mode {mode & ~0o111:04o})",
        )


def _plan_not_executable(subject: Subject, spec: MutantSpec) -> Edit:
    return Edit((Chmod(spec.target, mode_of(subject, spec.target) & ~0o111),))


# --------------------------------------------------------------------------- break-shebang


@dataclass(frozen=True, slots=True)
class MissingInterpreter:
    """Move a script's interpreter below `MISSING_ROOT` (``#!/usr/bin/env python3`` ->
    ``#!/qackage-missing/usr/bin/env python3``): the kernel cannot exec it."""

    def apply(self, head: bytes) -> bytes:
        match = _SHEBANG_START.match(head)
        if match is None:
            raise ValueError("not a script: no #! line")
        rest = head[match.end() :]
        separator = b"" if rest.startswith(b"/") else b"/"
        return head[: match.end()] + MISSING_ROOT.encode() + separator + rest


def _find_broken_shebang(subject: Subject) -> Iterator[MutantSpec]:
    for executable in subject.ranked_executables():
        if executable.interpreter is None or executable.elf or not subject.is_regular(executable.path):
            continue
        yield MutantSpec(
            "break-shebang",
            executable.path,
            f"{executable.path}'s #! line points below {MISSING_ROOT}: "
            f"its interpreter ({executable.interpreter}) cannot be found",
        )


def _plan_broken_shebang(_subject: Subject, spec: MutantSpec) -> Edit:
    return Edit((Rewrite(spec.target, MissingInterpreter()),))


# --------------------------------------------------------------------------- daemon-exits


def _find_daemon_exits(subject: Subject) -> Iterator[MutantSpec]:
    shell = subject.shell_paths
    for daemon in subject.analysis.facts.daemons:
        if daemon.path in shell or subject.entry(daemon.path) is None:
            continue
        yield MutantSpec(
            "daemon-exits",
            daemon.path,
            f"{daemon.path} replaced by a script that exits 0 at once: the {daemon.name} daemon never stays up",
        )


# --------------------------------------------------------------------------- truncate-elf


def _elf_rank(subject: Subject) -> dict[str, tuple[int, str]]:
    """Programs people run first, then the libraries other packages link, then the rest."""
    ranks: dict[str, tuple[int, str]] = {}
    for position, executable in enumerate(subject.ranked_executables()):
        link = subject.links.get(executable.path)
        real = link.resolved if link is not None and link.resolved else executable.path
        ranks.setdefault(real, (position, real))
    provided = subject.analysis.package.so_provides
    offset = len(ranks)
    for library in subject.analysis.facts.shared_libraries:
        order = provided.index(library.soname) if library.soname in provided else len(provided)
        ranks.setdefault(library.path, (offset + order, library.path))
    return ranks


def _find_truncated_elf(subject: Subject) -> Iterator[MutantSpec]:
    ranks = _elf_rank(subject)
    last = len(ranks) + len(subject.analysis.package.so_provides) + 1
    elf_files = sorted(subject.analysis.facts.elf_files, key=lambda f: ranks.get(f.path, (last, f.path)))
    for elf in elf_files:
        size = size_of(subject, elf.path) if elf.path in subject.by_path else 0
        if size < 2:
            continue
        yield MutantSpec("truncate-elf", elf.path, f"{elf.path} cut to half its size ({size // 2} of {size} bytes)")


def _plan_truncate(subject: Subject, spec: MutantSpec) -> Edit:
    return Edit((Truncate(spec.target, size_of(subject, spec.target) // 2),))


OPERATORS = (
    Operator(
        "delete-executable",
        "delete a main program on PATH",
        _find_deleted,
        _plan_delete,
    ),
    Operator(
        "exec-exit-1",
        "replace a program by a #!/bin/sh script that exits 1",
        _find_exit_1,
        _plan_exit_1,
    ),
    Operator(
        "exec-exit-0-silent",
        "replace a program by a #!/bin/sh script that exits 0 and prints nothing",
        _find_exit_0,
        _plan_exit_0,
    ),
    Operator(
        "exec-not-executable",
        "drop a program's execute permission (installed 0644 instead of 0755)",
        _find_not_executable,
        _plan_not_executable,
    ),
    Operator(
        "break-shebang",
        "make a script's #! line name an interpreter that does not exist",
        _find_broken_shebang,
        _plan_broken_shebang,
    ),
    Operator(
        "daemon-exits",
        "replace a daemon by a script that exits 0 at once",
        _find_daemon_exits,
        _plan_exit_0,
    ),
    Operator(
        "truncate-elf",
        "cut an ELF program or library to half its size",
        _find_truncated_elf,
        _plan_truncate,
    ),
)
