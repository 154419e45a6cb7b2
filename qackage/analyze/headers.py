"""C and C++ headers under ``usr/include``: what ``#include`` names them, what they pull in.

A header is a ``.h``/``.hh``/``.hpp``/``.hxx``/``.h++``/``.H`` file under ``usr/include``,
or an extension-less file there whose text reads like C++ (``<vector>``, ``<QString>``).
Its include name is its path below the directory a compiler searches: ``usr/include``,
or the multiarch and libstdc++ roots inside it (``usr/include/x86_64-linux-gnu``,
``usr/include/c++/14``). Language: C++ for C++ extensions and extension-less headers;
for ``.h`` C++ when the code outside ``#ifdef __cplusplus`` blocks uses C++ only syntax.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from qackage.analyze.base import HEAD_BYTES, PackageView
from qackage.model import Entry, EntryKind, Facts, Header

INCLUDE_ROOT = "usr/include/"
# Enough for the include block of any real header; generated giants get a partial scan.
HEADER_CAP = 256 * 1024
CXX_EXTENSIONS = frozenset({".hh", ".hpp", ".hxx", ".h++", ".H"})
HEADER_EXTENSIONS = CXX_EXTENSIONS | {".h"}
# Extension-less files under usr/include that are documentation or build files.
_NOT_HEADERS = frozenset({"README", "LICENSE", "COPYING", "Makefile", "ChangeLog", "NEWS", "AUTHORS"})

# Multiarch directories: x86_64-linux-gnu, x86_64-pc-linux-gnu, aarch64-unknown-linux-musl ...
MULTIARCH_TRIPLET = re.compile(
    r"^(?:x86_64|i[3-6]86|aarch64(?:_be)?|arm[a-z0-9_]*|riscv(?:32|64)|p(?:ower)?pc(?:64)?(?:le)?|s390x?"
    r"|mips[a-z0-9_]*|loongarch64|sparc(?:64)?)(?:-[a-z0-9_]+)?-linux-(?:gnu|musl|uclibc|android)[a-z0-9_]*$"
)
_VERSION = re.compile(r"^\d+(?:\.\d+)*$")
# Comments go, string and character literals stay (a "/*" inside a string is not a comment).
_LEXEME = re.compile(
    r"//[^\n]*|/\*.*?(?:\*/|\Z)|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'",
    re.DOTALL,
)
_LITERAL = re.compile(r"\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'")
_DIRECTIVE = re.compile(r"^[ \t]*#[ \t]*([a-z_]+)[ \t]*(.*)$")
_INCLUDE_OPERAND = re.compile(r'^(?:<([^<>\n]+)>|"([^"\n]+)")')
_CPLUSPLUS = re.compile(r"\b__cplusplus\b")
_NEGATED_CPLUSPLUS = re.compile(r"!\s*(?:defined\s*\(?\s*)?__cplusplus\b")
_CXX_SYNTAX = re.compile(
    r"\bnamespace\s+[A-Za-z_][\w:]*\s*\{|\bnamespace\s*\{|\btemplate\s*<|\busing\s+namespace\b"
    r"|\bclass\s+[A-Za-z_]\w*\s*(?:final\s*)?[:{]|\b(?:public|private|protected)\s*:(?!:)"
    r"|\bstd::|\bextern\s+\"C\+\+\""
)
# Preprocessor lines in the first bytes of an extension-less file that make it a header.
_HEADER_START = re.compile(rb"^[ \t]*#[ \t]*(?:include|pragma|ifndef|if|define)\b", re.MULTILINE)


def include_name(path: str) -> str | None:
    """``usr/include/foo/bar.h`` -> ``foo/bar.h``; multiarch and libstdc++ roots stripped."""
    if not path.startswith(INCLUDE_ROOT):
        return None
    parts = path[len(INCLUDE_ROOT) :].split("/")
    if len(parts) > 2 and parts[0] == "c++" and _VERSION.match(parts[1]):
        parts = parts[2:]
    if len(parts) > 1 and MULTIARCH_TRIPLET.match(parts[0]):
        parts = parts[1:]
    name = "/".join(parts)
    return name or None


def _extension(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:] if dot > 0 else ""


def is_header_path(path: str) -> bool:
    """By name alone: a header extension under usr/include."""
    return path.startswith(INCLUDE_ROOT) and _extension(posixpath.basename(path)) in HEADER_EXTENSIONS


def looks_like_extensionless_header(path: str, head: bytes) -> bool:
    """An extension-less file under usr/include whose first bytes are C preprocessor text."""
    name = posixpath.basename(path)
    if not path.startswith(INCLUDE_ROOT) or _extension(name) or name in _NOT_HEADERS:
        return False
    return b"\0" not in head and _HEADER_START.search(head) is not None


@dataclass(frozen=True, slots=True)
class HeaderText:
    """What parsing one header's text found."""

    includes: tuple[tuple[str, bool], ...]  # (name as written, quoted?) in order
    uses_cxx: bool  # C++ syntax outside __cplusplus-guarded blocks
    includes_extensionless: bool  # names a header like <vector>: only C++ has those


def _strip_comments(text: str) -> str:
    def keep_literals(match: re.Match[str]) -> str:
        lexeme = match.group(0)
        if lexeme.startswith(("//", "/*")):
            # Keep line structure so directives stay on their own lines.
            return "\n" * lexeme.count("\n") or " "
        return lexeme

    return _LEXEME.sub(keep_literals, text)


def _logical_lines(text: str) -> Iterator[str]:
    yield from _strip_comments(text.replace("\\\r\n", "").replace("\\\n", "")).splitlines()


class _CxxGuards:
    """Track ``#if`` nesting to know when a line is only seen by a C++ compiler."""

    def __init__(self) -> None:
        # Per open conditional: (current branch C++-only?, else branch C++-only?)
        self._stack: list[tuple[bool, bool]] = []

    def directive(self, keyword: str, condition: str) -> None:
        if keyword in ("if", "ifdef", "ifndef"):
            mentions = _CPLUSPLUS.search(condition) is not None
            simple = "||" not in condition and "&&" not in condition
            negated = keyword == "ifndef" or _NEGATED_CPLUSPLUS.search(condition) is not None
            positive = mentions and not negated and "||" not in condition
            else_cxx = mentions and negated and simple
            self._stack.append((positive, else_cxx))
        elif keyword in ("elif", "elifdef", "elifndef") and self._stack:
            self._stack[-1] = (False, False)
        elif keyword == "else" and self._stack:
            _, else_cxx = self._stack[-1]
            self._stack[-1] = (else_cxx, False)
        elif keyword == "endif" and self._stack:
            self._stack.pop()

    @property
    def cxx_only(self) -> bool:
        return any(branch for branch, _ in self._stack)


def parse_header_text(text: str) -> HeaderText:
    includes: list[tuple[str, bool]] = []
    uses_cxx = False
    extensionless = False
    guards = _CxxGuards()
    for line in _logical_lines(text):
        directive = _DIRECTIVE.match(line)
        if directive is None:
            if not uses_cxx and not guards.cxx_only and _CXX_SYNTAX.search(_LITERAL.sub("''", line)):
                uses_cxx = True
            continue
        keyword, rest = directive.group(1), directive.group(2).strip()
        if keyword in ("include", "include_next", "import"):
            operand = _INCLUDE_OPERAND.match(rest)
            if operand is not None:
                angled, quoted = operand.group(1), operand.group(2)
                name = (angled or quoted).strip()
                includes.append((name, quoted is not None))
                if not guards.cxx_only and not _extension(posixpath.basename(name)):
                    extensionless = True
        else:
            guards.directive(keyword, rest)
    return HeaderText(tuple(includes), uses_cxx, extensionless)


def _resolve_includes(path: str, parsed: HeaderText, view: PackageView) -> tuple[str, ...]:
    """Names as written; a quoted name that is a file of this package next to the header
    (the file a symlinked header points at) becomes that file's include name."""
    names: set[str] = set()
    directory = posixpath.dirname(view.resolve(path) or path)
    for written, quoted in parsed.includes:
        name = written
        if quoted and not written.startswith("/"):
            beside = posixpath.normpath(posixpath.join(directory, written))
            if beside in view.by_path:
                name = include_name(beside) or written
        names.add(name)
    return tuple(sorted(names))


def _language(path: str, parsed: HeaderText | None) -> str:
    extension = _extension(posixpath.basename(path))
    if extension in CXX_EXTENSIONS or not extension:
        return "c++"
    if parsed is not None and (parsed.uses_cxx or parsed.includes_extensionless):
        return "c++"
    return "c"


class HeadersFacet:
    name: ClassVar[str] = "headers"

    def capture(self, entry: Entry, head: bytes) -> int:
        if is_header_path(entry.path) or looks_like_extensionless_header(entry.path, head):
            return min(entry.size, HEADER_CAP)
        return 0

    def analyze(self, view: PackageView, earlier: Facts) -> Facts:
        headers: list[Header] = []
        for entry in view.entries:
            if entry.kind is EntryKind.DIR:
                continue
            name = include_name(entry.path)
            if name is None:
                continue
            data = view.captured(entry.path)
            if entry.kind is EntryKind.SYMLINK and data is None:
                continue  # dangling, or points at something that is not a header
            head = (data or b"")[:HEAD_BYTES]
            if not is_header_path(entry.path) and not looks_like_extensionless_header(entry.path, head):
                continue
            parsed = None if data is None else parse_header_text(data.decode("utf-8", errors="replace"))
            includes = () if parsed is None else _resolve_includes(entry.path, parsed, view)
            headers.append(Header(entry.path, name, includes, _language(entry.path, parsed)))
        return Facts(headers=tuple(sorted(headers, key=lambda h: h.path)))
