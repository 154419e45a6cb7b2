"""pkg-config modules: ``.pc`` files where pkgconf looks for them.

The format, as pkgconf reads it: ``name=value`` lines define variables, ``Key: value``
lines set fields, ``#`` starts a comment (``\\#`` is a literal ``#``), a trailing ``\\``
joins the next line (without its leading blanks), ``${name}`` expands a variable defined
earlier (unknown ones expand to nothing; any other ``$`` is kept), and ``pcfiledir`` is the
directory of the file.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping
from typing import ClassVar

from qackage.analyze.base import PackageView
from qackage.analyze.headers import MULTIARCH_TRIPLET
from qackage.model import Entry, EntryKind, Facts, PkgConfig

PC_CAP = 64 * 1024
# A value that expands past this is hostile (each line can double the previous one).
MAX_VALUE_CHARS = 16 * 1024
PC_DIRS = ("usr/lib/pkgconfig", "usr/lib64/pkgconfig", "usr/share/pkgconfig")

_KEY = re.compile(r"^([A-Za-z0-9_.]+)[ \t]*([:=])[ \t]*(.*)$")
_REFERENCE = re.compile(r"\$\{([A-Za-z0-9_.]*)\}")
# A dependency list item: a module name, or a comparison operator and the version after it.
_REQUIRES_TOKEN = re.compile(r"[<>!=]=?|[^\s,<>!=]+")
_FIELDS = {
    "name": "name",
    "version": "version",
    "description": "description",
    "libs": "libs",
    "libs.private": "libs_private",
    "cflags": "cflags",
    "requires": "requires",
    "requires.private": "requires_private",
}


def is_pc_path(path: str) -> bool:
    if not path.endswith(".pc"):
        return False
    directory = posixpath.dirname(path)
    if directory in PC_DIRS:
        return True
    # Debian-style multiarch: usr/lib/x86_64-linux-gnu/pkgconfig.
    parts = directory.split("/")
    return (
        len(parts) == 4
        and parts[:2] == ["usr", "lib"]
        and parts[3] == "pkgconfig"
        and MULTIARCH_TRIPLET.match(parts[2]) is not None
    )


def _logical_lines(text: str) -> Iterator[str]:
    """Lines with continuations joined and comments removed."""
    pending = ""
    for raw in text.splitlines():
        line = pending + (raw.lstrip() if pending else raw)
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending = line[:-1]
            continue
        pending = ""
        yield _strip_comment(line)
    if pending:
        yield _strip_comment(pending)


def _strip_comment(line: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(line):
        char = line[index]
        if char == "\\" and line.startswith("#", index + 1):
            out.append("#")
            index += 2
            continue
        if char == "#":
            break
        out.append(char)
        index += 1
    return "".join(out)


def expand(value: str, variables: Mapping[str, str]) -> str:
    """Replace each ``${name}`` with the (already expanded) variable."""
    return _REFERENCE.sub(lambda match: variables.get(match.group(1), ""), value)[:MAX_VALUE_CHARS]


def module_names(requires: str) -> tuple[str, ...]:
    """``glib-2.0 >= 2.50, gobject-2.0 libffi`` -> ``('glib-2.0', 'gobject-2.0', 'libffi')``."""
    names: list[str] = []
    skip_version = False
    for token in _REQUIRES_TOKEN.findall(requires):
        if token[0] in "<>!=":
            skip_version = True
        elif skip_version:
            skip_version = False
        elif token not in names:
            names.append(token)
    return tuple(names)


def link_libraries(libs: str) -> tuple[str, ...]:
    """``-L/usr/lib -lfoo -l bar -pthread`` -> ``('foo', 'bar')``."""
    names: list[str] = []
    words = [w.strip("'\"") for w in libs.split()]
    for index, word in enumerate(words):
        name = ""
        if word == "-l" and index + 1 < len(words):
            name = words[index + 1]
        elif word.startswith("-l") and len(word) > 2:
            name = word[2:]
        if name and not name.startswith("-") and name not in names:
            names.append(name)
    return tuple(names)


def parse_pc(path: str, text: str) -> PkgConfig:
    """Parse one ``.pc`` file's text; never raises on odd input."""
    variables: dict[str, str] = {"pcfiledir": "/" + posixpath.dirname(path)}
    declared: dict[str, str] = {}
    fields: dict[str, str] = {}
    for line in _logical_lines(text):
        match = _KEY.match(line.strip())
        if match is None:
            continue
        key, operator, raw = match.groups()
        value = expand(raw.strip(), variables)
        if operator == "=":
            variables[key] = value
            declared[key] = value
        else:
            field = _FIELDS.get(key.lower())
            if field is not None and field not in fields:
                fields[field] = value
    libs = fields.get("libs", "")
    return PkgConfig(
        path=path,
        module=posixpath.basename(path).removesuffix(".pc"),
        name=fields.get("name", ""),
        version=fields.get("version", ""),
        description=fields.get("description", ""),
        libs=libs,
        libs_private=fields.get("libs_private", ""),
        cflags=fields.get("cflags", ""),
        requires=module_names(fields.get("requires", "")),
        requires_private=module_names(fields.get("requires_private", "")),
        link_libraries=link_libraries(libs),
        variables=tuple(declared.items()),
    )


class PkgConfigFacet:
    name: ClassVar[str] = "pkgconfig"

    def capture(self, entry: Entry, head: bytes) -> int:
        return min(entry.size, PC_CAP) if is_pc_path(entry.path) else 0

    def analyze(self, view: PackageView, earlier: Facts) -> Facts:
        found: list[PkgConfig] = []
        for entry in view.entries:
            if entry.kind is EntryKind.DIR or not is_pc_path(entry.path):
                continue
            data = view.captured(entry.path)
            if data is None:
                continue  # a dangling symlink: pkgconf could not read it either
            found.append(parse_pc(entry.path, data.decode("utf-8", errors="replace")))
        return Facts(pkgconfig=tuple(sorted(found, key=lambda p: p.path)))
