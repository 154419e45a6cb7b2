"""Operators that break what a build of something else uses: pkg-config files and headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from qackage.model import PkgConfig
from qackage.validate.mutators.base import Delete, Edit, MutantSpec, Operator, Rewrite, Subject

MISSING_LIBRARY_PREFIX = "qackage_missing_"
_LIBS_LINE = re.compile(rb"^[ \t]*Libs[ \t]*:")


@dataclass(frozen=True, slots=True)
class AddLibrary:
    """Append ``-l<library>`` to a .pc file's ``Libs:`` (adding the line when there is none),
    so everything that links by the .pc asks the linker for a library nobody has."""

    library: str

    def apply(self, head: bytes) -> bytes:
        flag = b"-l" + self.library.encode()
        lines = head.split(b"\n")
        for index, line in enumerate(lines):
            if not _LIBS_LINE.match(line):
                continue
            last = index
            # A trailing backslash continues the field on the next line.
            while lines[last].rstrip(b"\r").endswith(b"\\") and last + 1 < len(lines):
                last += 1
            text = lines[last]
            ending = b"\r" if text.endswith(b"\r") else b""
            lines[last] = text.removesuffix(b"\r").rstrip(b" \t") + b" " + flag + ending
            return b"\n".join(lines)
        body = head if not head or head.endswith(b"\n") else head + b"\n"
        return body + b"Libs: " + flag + b"\n"


def _pc_rank(pc: PkgConfig) -> tuple[bool, str]:
    """.pc files that link a library first: breaking their Libs: is what a link test sees."""
    return (not pc.link_libraries, pc.path)


def missing_library(subject: Subject, path: str) -> str:
    """``qackage_missing_<n>``, n counting the package's .pc files (sorted) from 1."""
    paths = sorted(pc.path for pc in subject.analysis.facts.pkgconfig)
    return f"{MISSING_LIBRARY_PREFIX}{paths.index(path) + 1}"


def _find_broken_pc(subject: Subject) -> Iterator[MutantSpec]:
    for pc in sorted(subject.analysis.facts.pkgconfig, key=_pc_rank):
        if not subject.is_regular(pc.path):
            continue
        library = missing_library(subject, pc.path)
        yield MutantSpec(
            "break-pc-libs",
            pc.path,
            f"{pc.path}: Libs: also names -l{library}, a library that does not exist "
            f"(`pkgconf --libs {pc.module}` still works, linking fails)",
        )


def _plan_broken_pc(subject: Subject, spec: MutantSpec) -> Edit:
    return Edit((Rewrite(spec.target, AddLibrary(missing_library(subject, spec.target))),))


def _find_included_header(subject: Subject) -> Iterator[MutantSpec]:
    headers = subject.analysis.facts.headers
    includers: dict[str, list[str]] = {}
    for header in headers:
        for other in headers:
            if other.path != header.path and header.include_name in other.includes:
                includers.setdefault(header.path, []).append(other.include_name)
    # Headers many others pull in first: deleting one breaks the most.
    for path in sorted(includers, key=lambda p: (-len(includers[p]), p)):
        if not subject.is_regular(path):
            continue
        names = sorted(includers[path])
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        verb = "includes" if len(names) == 1 else "include"
        yield MutantSpec("delete-included-header", path, f"{path} deleted ({shown} {verb} it)")


def _plan_delete(_subject: Subject, spec: MutantSpec) -> Edit:
    return Edit((Delete(spec.target),))


OPERATORS = (
    Operator(
        "break-pc-libs",
        "make a .pc file's Libs: name a library that does not exist (-lqackage_missing_<n>)",
        _find_broken_pc,
        _plan_broken_pc,
    ),
    Operator(
        "delete-included-header",
        "delete a header that another header of the package includes",
        _find_included_header,
        _plan_delete,
    ),
)
