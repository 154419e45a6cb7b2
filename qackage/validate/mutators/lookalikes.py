"""Operators whose broken program still looks healthy from outside: it answers ``--version``
and ``--help`` as the real one does, so only a test that uses the program catches it.

``exec-version-only`` puts a ``#!/bin/sh`` script in the program's place that prints the
version banner and a usage text and fails on every other use: a program broken except
for its banner. ``exec-output-garbled`` keeps the real program (moved aside) and runs it
with every argument, its input, error output and exit status, but rotates the letters and
digits of what it prints: a program that runs but gives wrong answers. Version and help
requests reach the real program untouched. A stanza that only asks for versions survives
both; one that checks what the program does kills the first, and one that also checks
what it prints kills the second.

Both scripts recognise a version or help request by the same words as the step
classifier (`qackage.validate.checkkind`): every other argument that is not an option
makes it real use.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Iterator

from qackage.model import EntryKind, Executable
from qackage.validate.mutators.base import Edit, MutantSpec, Operator, Relocate, Replace, Subject, shell_script
from qackage.validate.mutators.programs import replaceable, script_mode

# Kept here rather than imported from checkkind: the operators' code fingerprints the
# cached outcomes, so what the scripts answer must change only when this file does.
VERSION_REQUESTS = ("--version", "-version", "-V", "-v", "version")
HELP_REQUESTS = ("--help", "-help", "-h", "help", "--usage", "-?")
# Where the real program of a garbled one goes: a sibling of its folder, at the same depth,
# so paths it finds relative to itself ($ORIGIN/../lib, "$0"/../share) still resolve.
REAL_SUFFIX = ".qackage-real"
# rot13 for letters, rot5 for digits: every word and number changes, the length does not.
GARBLE_FROM = "A-Za-z0-9"
GARBLE_TO = "N-ZA-Mn-za-m5-90-4"
# The filter the garbled script runs: that program itself cannot be garbled.
_FILTER = "tr"


def upstream_version(version: str) -> str:
    """``2.12.1`` for ``2.12.1-r1``: what the program itself reports (melange's package.version)."""
    head, _, release = version.rpartition("-r")
    return head if head and release.isdigit() else version


def _words(requests: tuple[str, ...]) -> str:
    return "|".join(shlex.quote(word) for word in requests)


def request_kind_script() -> str:
    """Shell that sets ``asked`` to ``version``, ``help`` or nothing (real use): version and
    help words with any options, as long as no other word is given."""
    return "\n".join(
        (
            "asked=",
            'for argument in "$@"; do',
            "\tcase $argument in",
            f"\t\t{_words(VERSION_REQUESTS)}) asked=version ;;",
            f'\t\t{_words(HELP_REQUESTS)}) [ "$asked" = version ] || asked=help ;;',
            "\t\t-*) ;;",
            "\t\t*) asked=; break ;;",
            "\tesac",
            "done",
        )
    )


# --------------------------------------------------------------------------- exec-version-only


def _banner(subject: Subject, executable: Executable) -> str:
    return f"{executable.name} {upstream_version(subject.analysis.package.version)}"


def _usage(name: str) -> tuple[str, ...]:
    return (
        f"Usage: {name} [OPTION]... [ARGUMENT]...",
        "",
        "Options:",
        "  -h, --help     show this help and exit",
        "  -V, --version  show the version and exit",
    )


def _find_version_only(subject: Subject) -> Iterator[MutantSpec]:
    for executable in replaceable(subject):
        if not executable.on_path:
            continue  # a libexec helper is not asked for its version
        yield MutantSpec(
            "exec-version-only",
            executable.path,
            f"{executable.path} replaced by a script that prints {_banner(subject, executable)!r} for --version "
            "and a usage text for --help, and exits 1 on any other use",
        )


def version_only_script(spec_text: str, banner: str, usage: tuple[str, ...]) -> bytes:
    printed = " ".join(shlex.quote(line) for line in usage)
    body = "\n".join(
        (
            request_kind_script(),
            "case $asked in",
            f"\tversion) printf '%s\\n' {shlex.quote(banner)} ;;",
            f"\thelp) printf '%s\\n' {printed} ;;",
            "\t*) exit 1 ;;",
            "esac",
        )
    )
    return shell_script(spec_text, body)


def _plan_version_only(subject: Subject, spec: MutantSpec) -> Edit:
    executable = next(e for e in subject.analysis.facts.executables if e.path == spec.target)
    script = version_only_script(spec.description, _banner(subject, executable), _usage(executable.name))
    return Edit((Replace(spec.target, script, script_mode(subject, spec.target)),))


# --------------------------------------------------------------------------- exec-output-garbled


def real_path(path: str) -> str:
    """``usr/bin.qackage-real/hello`` for ``usr/bin/hello``."""
    folder, name = posixpath.split(path)
    return posixpath.join(folder + REAL_SUFFIX, name)


def _linked(subject: Subject) -> frozenset[str]:
    """Files other names of the package lead to. Such a program may act on the name it is
    called by (busybox, xz and unxz): moved aside, it could act differently, not just garble."""
    found: set[str] = set()
    for entry in subject.analysis.entries:
        if entry.kind is EntryKind.HARDLINK and entry.link_target is not None:
            found.add(entry.link_target)
    for link in subject.analysis.facts.symlinks:
        found.update(link.chain)
        if link.resolved is not None:
            found.add(link.resolved)
    return frozenset(found)


def _paths_and_folders(subject: Subject) -> frozenset[str]:
    """Every path of the package and every folder above one, declared or not."""
    found: set[str] = set()
    for path in subject.by_path:
        step = path
        while step and step not in found:
            found.add(step)
            step = posixpath.dirname(step)
    return frozenset(found)


def _find_garbled(subject: Subject) -> Iterator[MutantSpec]:
    # A daemon's output is its log; tests talk to it over sockets. Its stand-in would also
    # keep the real daemon out of reach of the signals meant for it.
    daemons = {d.path for d in subject.analysis.facts.daemons}
    linked = _linked(subject)
    taken = _paths_and_folders(subject)
    for executable in replaceable(subject):
        path = executable.path
        entry = subject.entry(path)
        if (
            not executable.on_path
            or entry is None
            or entry.kind is not EntryKind.FILE
            or path in daemons
            or path in linked
            or executable.name == _FILTER
            or "/" not in path
        ):
            continue
        moved = real_path(path)
        if posixpath.dirname(moved) in taken:
            continue
        yield MutantSpec(
            "exec-output-garbled",
            path,
            f"{path} runs the real program (moved to {moved}) with its standard output garbled: "
            "letters and digits rotated; version and help requests answer unchanged",
        )


def garbled_script(spec_text: str, real: str) -> bytes:
    """Run ``real`` with the caller's arguments, input and error output; pass its standard
    output through `GARBLE_FROM` -> `GARBLE_TO` and exit with its status.

    The status comes back over descriptor 9 of a command substitution while the output goes
    out on 8 (a copy of the caller's standard output): POSIX sh has no pipefail. The real
    program gets neither descriptor, so a child it leaves running cannot hold the script up."""
    body = "\n".join(
        (
            f"real={shlex.quote(real)}",
            request_kind_script(),
            'if [ -n "$asked" ]; then',
            '\texec "$real" "$@"',
            "fi",
            "exec 8>&1",
            "status=$(",
            "\t{",
            f'\t\t{{ "$real" "$@" 8>&- 9>&-; echo "$?" >&9; }} | {_FILTER} {GARBLE_FROM} {GARBLE_TO} >&8 9>&-',
            "\t} 9>&1",
            ")",
            'exit "${status:-1}"',
        )
    )
    return shell_script(spec_text, body)


def _plan_garbled(subject: Subject, spec: MutantSpec) -> Edit:
    moved = real_path(spec.target)
    script = garbled_script(spec.description, "/" + moved)
    return Edit((Relocate(spec.target, moved, script, script_mode(subject, spec.target)),))


OPERATORS = (
    Operator(
        "exec-version-only",
        "replace a program by a #!/bin/sh script that answers --version and --help like it and exits 1 otherwise",
        _find_version_only,
        _plan_version_only,
    ),
    Operator(
        "exec-output-garbled",
        "run a program with its standard output garbled (letters and digits rotated); version and help unchanged",
        _find_garbled,
        _plan_garbled,
    ),
)
