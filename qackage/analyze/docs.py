"""Documentation, translations and plain data files.

Documents are man pages (``usr/share/man/[<lang>/]man<N>/<name>.<N>[.gz]``), info
manuals (``usr/share/info/<name>.info[-<part>][.gz]``; the ``dir`` index is not one),
anything under ``usr/share/doc/`` and ``usr/share/licenses/``, and HTML books
(``usr/share/gtk-doc/html/``, ``usr/share/devhelp/books/``). Man and info links count:
``man foo`` works through them. Locale files are ``usr/share/locale/*/LC_MESSAGES/*.mo``.

This facet runs last, because a *data file* is defined by what the others did not
claim. It is a regular file (or hardlink) that is

- not a document or locale file,
- not claimed by an earlier facet: an ELF file, executable, static library, header,
  pkg-config file, service definition, configuration file, script, completion, or a file
  of a Python, Ruby, Perl, Java, Lua or Node package,
- not executable (a program nothing recognised is still code),
- not in a tree that holds code or tooling whatever the facets found: ``etc/``
  (configuration), ``usr/include/``, ``usr/lib/debug/``, systemd units and generators
  (``usr/lib/systemd/``, ``lib/systemd/``), the SBOM melange adds under
  ``var/lib/db/sbom/``, language trees (`LANGUAGE_TREES`), build metadata
  (`is_build_metadata`: CMake and pkg-config directories, aclocal macros, libtool
  ``.la`` files, GObject introspection and Vala API files).

Everything else is data: ``usr/share/<pkg>/...``, icons, fonts, zoneinfo, firmware,
``.desktop`` files, tmpfiles.d snippets.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from typing import ClassVar

from qackage.analyze.base import PackageView
from qackage.model import DocKind, Document, Entry, EntryKind, Facts

_COMPRESSED = r"(?:\.(?:gz|bz2|xz|zst|lz|lzma|Z))?"
_MAN_PAGE = re.compile(
    r"^usr/share/man/(?:(?P<lang>[a-z]{2,3}(?:_[A-Z]{2})?(?:\.[\w-]+)?(?:@\w+)?)/)?"
    r"man(?P<dir>[0-9n][a-z0-9]*)/(?P<name>[^/]+)\.(?P<section>[0-9n][a-z0-9]*)" + _COMPRESSED + "$"
)
_INFO_PAGE = re.compile(r"^usr/share/info/(?P<name>[^/]+?)\.info(?:-\d+)?" + _COMPRESSED + "$")
_INFO_INDEX = re.compile(r"^usr/share/info/dir(?:\.old)?" + _COMPRESSED + "$")
_DOC_TREE = re.compile(r"^usr/share/(?:doc|licenses)/(?:(?P<topic>[^/]+)/)?")
_HTML_BOOK = re.compile(r"^usr/share/(?:gtk-doc/html|devhelp/books)/(?P<topic>[^/]+)/")
_HTML_EXTENSIONS = (".html", ".htm", ".xhtml")
_LOCALE_FILE = re.compile(r"^usr/share/locale/[^/]+/LC_MESSAGES/[^/]+\.mo$")

# Trees that hold one language's code; a file there is that language's, never data.
LANGUAGE_TREES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("python", re.compile(r"^usr/lib(?:64)?/python[23][^/]*/")),
    ("ruby", re.compile(r"^usr/lib/ruby/")),
    ("perl", re.compile(r"^usr/(?:lib|share)/perl5?/|^usr/lib/[^/]+/perl5?/")),
    ("lua", re.compile(r"^usr/(?:lib|share)/lua/")),
    ("node", re.compile(r"(?:^|/)node_modules/")),
    ("java", re.compile(r"^usr/lib/jvm/|^usr/share/java/|\.jar$")),
)
_BUILD_METADATA = re.compile(
    r"^usr/(?:lib|lib64|share)/(?:[^/]+/)?cmake/|^usr/share/aclocal/|/pkgconfig/"
    r"|^usr/share/gir-1\.0/|^usr/share/vala/|^(?:usr/)?lib(?:64)?/(?:[^/]+/)?[^/]+\.la$"
)
_CODE_TREES = ("etc/", "usr/include/", "usr/lib/debug/", "var/lib/db/sbom/", "usr/lib/systemd/", "lib/systemd/")


# All trees in one pattern: one search per path instead of one per language.
_ANY_LANGUAGE_TREE = re.compile("|".join(f"(?P<{language}>{tree.pattern})" for language, tree in LANGUAGE_TREES))


def language_tree(path: str) -> str | None:
    """The language whose tree ``path`` is in: ``python`` for site-packages, ..."""
    match = _ANY_LANGUAGE_TREE.search(path)
    return match.lastgroup if match is not None else None


def is_build_metadata(path: str) -> bool:
    """Files that only a build of something else reads: CMake configs, ``.pc``, ``.m4``,
    ``.la``, ``.gir``, ``.vapi``."""
    return _BUILD_METADATA.search(path) is not None


# Every document pattern starts with one of these; most paths are rejected by this alone.
_DOC_PREFIXES = (
    "usr/share/man/",
    "usr/share/info/",
    "usr/share/doc/",
    "usr/share/licenses/",
    "usr/share/gtk-doc/",
    "usr/share/devhelp/",
)


def classify_document(path: str) -> Document | None:
    if not path.startswith(_DOC_PREFIXES):
        return None
    man = _MAN_PAGE.match(path)
    if man is not None and man["section"][0] == man["dir"][0]:
        return Document(path, DocKind.MAN, section=man["section"], topic=man["name"])
    if path.startswith("usr/share/info/"):
        if _INFO_INDEX.match(path):
            return None
        info = _INFO_PAGE.match(path)
        if info is not None:
            return Document(path, DocKind.INFO, topic=info["name"])
        return Document(path, DocKind.DOC)  # images and other parts of the manuals
    book = _HTML_BOOK.match(path)
    if book is not None:
        return Document(path, DocKind.HTML, topic=book["topic"])
    tree = _DOC_TREE.match(path)
    if tree is not None:
        kind = DocKind.HTML if path.lower().endswith(_HTML_EXTENSIONS) else DocKind.DOC
        return Document(path, kind, topic=tree["topic"])
    if path.startswith("usr/share/man/"):
        return Document(path, DocKind.DOC)  # whatis databases, READMEs next to the pages
    return None


def is_locale_file(path: str) -> bool:
    return path.startswith("usr/share/locale/") and _LOCALE_FILE.match(path) is not None


def _claimed_paths(facts: Facts) -> set[str]:
    claimed: set[str] = {f.path for f in facts.elf_files}
    claimed.update(e.path for e in facts.executables)
    claimed.update(facts.static_libraries)
    claimed.update(s.path for s in facts.shared_libraries)
    for group in (
        facts.headers,
        facts.pkgconfig,
        facts.services,
        facts.config_files,
        facts.scripts,
        facts.completions,
        facts.perl_modules,
        facts.java_archives,
        facts.lua_modules,
        facts.ruby_gems,
        facts.python_modules,
        facts.node_packages,
    ):
        claimed.update(item.path for item in group)
    return claimed


def _claimed_trees(facts: Facts) -> tuple[str, ...]:
    """Directories that belong wholly to a language package found by another facet."""
    trees: list[str] = [m.path + "/" for m in facts.python_modules]
    trees += [d.path + "/" for d in facts.python_distributions]
    trees += [posixpath.dirname(n.path) + "/" for n in facts.node_packages]
    return tuple(trees)


def is_data_file(entry: Entry, claimed: set[str], trees: tuple[str, ...]) -> bool:
    """See the module docstring for the definition. ``claimed`` must include documents."""
    path = entry.path
    if entry.kind not in (EntryKind.FILE, EntryKind.HARDLINK) or entry.mode & 0o111:
        return False
    if path in claimed or path.startswith(trees) or path.startswith(_CODE_TREES):
        return False
    if is_locale_file(path) or _INFO_INDEX.match(path):
        return False
    return language_tree(path) is None and not is_build_metadata(path)


def find_documents(entries: Iterable[Entry]) -> tuple[Document, ...]:
    found = [classify_document(e.path) for e in entries if e.kind is not EntryKind.DIR]
    return tuple(sorted((d for d in found if d is not None), key=lambda d: d.path))


class DocsFacet:
    name: ClassVar[str] = "docs"

    def capture(self, entry: Entry, head: bytes) -> int:
        return 0  # paths say everything this facet needs

    def analyze(self, view: PackageView, earlier: Facts) -> Facts:
        documents = find_documents(view.entries)
        claimed = _claimed_paths(earlier) | {d.path for d in documents}
        trees = _claimed_trees(earlier)
        locale = sorted(e.path for e in view.entries if e.kind is not EntryKind.DIR and is_locale_file(e.path))
        data = sorted(e.path for e in view.entries if is_data_file(e, claimed, trees))
        return Facts(documents=documents, locale_files=tuple(locale), data_files=tuple(data))
