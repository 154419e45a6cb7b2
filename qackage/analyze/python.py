"""Python: what a package makes importable, and the distributions it installs.

A Wolfi maintainer tests a Python package with the ``python/import`` pipeline, which
needs the names ``import`` takes, and with ``pip check``/console scripts, which need the
distribution metadata. Both come from ``site-packages`` (or Debian's ``dist-packages``):

* importable names follow CPython's ``FileFinder`` at one directory level: a directory
  with ``__init__`` is a package; otherwise an extension module, then a ``.py`` source,
  then sourceless ``.pyc``; a directory of code without ``__init__`` is a namespace
  portion, and we descend into it because ``import google`` proves nothing while
  ``import google.cloud.storage`` does;
* ``*.dist-info`` (``METADATA``, ``RECORD``, ``top_level.txt``, ``entry_points.txt``) and
  ``*.egg-info`` (a directory with ``PKG-INFO``, or a single distutils file).
"""

from __future__ import annotations

import keyword
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from qackage.analyze.base import PackageView
from qackage.model import (
    Entry,
    EntryKind,
    Facts,
    PythonDistribution,
    PythonModule,
    PythonModuleKind,
)

KIB = 1024
MIB = 1024 * KIB

# ``usr/lib/python3.12/site-packages``, ``usr/lib64/python3.13t/site-packages``,
# ``usr/local/lib/python3.11/dist-packages``, Debian's unversioned ``usr/lib/python3/dist-packages``.
_SITE = re.compile(
    r"^(?P<site>(?:usr/(?:local/)?)?lib(?:64)?/python(?P<version>3|\d+\.\d+t?)/(?:site|dist)-packages)"
    r"(?:/(?P<rest>.+))?$"
)
# Version tags CPython and PyPy put between a module name and ``.so``:
# ``.cpython-312-x86_64-linux-gnu``, ``.cpython-313t-...``, ``.abi3``, ``.pypy310-pp73-...``.
_EXTENSION = re.compile(
    r"^(?P<name>[A-Za-z_]\w*)(?:\.(?:cpython-\d+[a-z]*(?:-[\w-]+)?|abi3|pypy\d*(?:-[\w-]+)?))?\.so$"
)
_SOURCE = re.compile(r"^(?P<name>[A-Za-z_]\w*)\.py$")
_BYTECODE = re.compile(r"^(?P<name>[A-Za-z_]\w*)\.pyc$")
_METADATA_DIR = (".dist-info", ".egg-info")

# Directories and modules that sit in site-packages by accident of packaging (test suites,
# a stray setup.py) rather than as an API: importing them tests nothing or runs a build.
_NOT_IMPORT_TARGETS = frozenset({"test", "tests", "conftest", "setup", "__pycache__"})
_NAMESPACE_DEPTH = 4  # google.cloud.storage.v1 is about as deep as real namespaces go
_CODE_SEARCH_DEPTH = 12

# How much of each metadata file to keep. Headers and tables are small; RECORD lists
# every installed file, so it gets the most room.
_CAPTURE = {
    "METADATA": 64 * KIB,
    "PKG-INFO": 64 * KIB,
    "top_level.txt": 64 * KIB,
    "entry_points.txt": 256 * KIB,
    "RECORD": 1 * MIB,
}
_EGG_INFO_FILE_CAPTURE = 64 * KIB

# Import precedence inside one directory (lower wins), as FileFinder resolves it.
_RANK = {
    PythonModuleKind.PACKAGE: 0,
    PythonModuleKind.EXTENSION: 1,
    PythonModuleKind.MODULE: 2,
    PythonModuleKind.NAMESPACE: 4,
}
_BYTECODE_RANK = 3


@dataclass(frozen=True, slots=True)
class _SitePath:
    site: str
    python_version: str | None
    rest: str  # path below the site directory, "" for the site directory itself


def _site_path(path: str) -> _SitePath | None:
    match = _SITE.match(path)
    if match is None:
        return None
    version = match["version"]
    return _SitePath(match["site"], None if version == "3" else version, match["rest"] or "")


def _is_import_name(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


def _module_file(filename: str) -> tuple[str, PythonModuleKind, int] | None:
    """(import name, kind, precedence rank) for a file that ``import`` can load."""
    for pattern, kind, rank in (
        (_EXTENSION, PythonModuleKind.EXTENSION, _RANK[PythonModuleKind.EXTENSION]),
        (_SOURCE, PythonModuleKind.MODULE, _RANK[PythonModuleKind.MODULE]),
        (_BYTECODE, PythonModuleKind.MODULE, _BYTECODE_RANK),
    ):
        match = pattern.match(filename)
        if match is not None and _is_import_name(match["name"]):
            return match["name"], kind, rank
    return None


# --------------------------------------------------------------------------- the tree


@dataclass
class _Dir:
    dirs: dict[str, _Dir] = field(default_factory=dict)
    files: set[str] = field(default_factory=set)

    def child(self, name: str) -> _Dir:
        found = self.dirs.get(name)
        if found is None:
            found = self.dirs[name] = _Dir()
            self.files.discard(name)
        return found

    def has_code(self, depth: int = _CODE_SEARCH_DEPTH) -> bool:
        if any(_module_file(name) is not None for name in self.files):
            return True
        return depth > 0 and any(sub.has_code(depth - 1) for sub in self.dirs.values())

    def is_package(self) -> bool:
        return any((found := _module_file(name)) is not None and found[0] == "__init__" for name in self.files)


def _build_tree(rests: Iterable[tuple[str, EntryKind]]) -> _Dir:
    root = _Dir()
    for rest, kind in rests:
        *parents, leaf = rest.split("/")
        node = root
        for part in parents:
            node = node.child(part)
        if kind is EntryKind.DIR:
            node.child(leaf)
        elif leaf not in node.dirs:
            node.files.add(leaf)
    return root


@dataclass(frozen=True, slots=True)
class _Found:
    name: str
    kind: PythonModuleKind
    rank: int
    relpath: str
    node: _Dir | None = None  # the directory, for namespaces we descend into


def _importables(node: _Dir, relprefix: str) -> list[_Found]:
    """What ``import`` finds directly in one directory, one winner per name."""
    best: dict[str, _Found] = {}

    def offer(found: _Found) -> None:
        current = best.get(found.name)
        if current is None or found.rank < current.rank:
            best[found.name] = found

    for name, sub in node.dirs.items():
        if not _is_import_name(name):
            continue  # *.dist-info, *.egg-info, foo-1.0.egg, ...
        if sub.is_package():
            offer(_Found(name, PythonModuleKind.PACKAGE, _RANK[PythonModuleKind.PACKAGE], relprefix + name))
        elif sub.has_code():
            offer(_Found(name, PythonModuleKind.NAMESPACE, _RANK[PythonModuleKind.NAMESPACE], relprefix + name, sub))
    for filename in node.files:
        module = _module_file(filename)
        if module is not None:
            name, kind, rank = module
            offer(_Found(name, kind, rank, relprefix + filename))
    return [found for name, found in best.items() if not _skipped(name, best)]


def _skipped(name: str, level: Mapping[str, _Found]) -> bool:
    if name in _NOT_IMPORT_TARGETS or (name.startswith("__") and name.endswith("__")):
        return True
    # A private module (_cffi_backend, _yaml, _distutils_hack) is an implementation detail
    # that the public module next to it imports, so a test of the public name covers it.
    # When a package ships only private modules, they are all there is to test: keep them.
    return name.startswith("_") and any(_is_public(other) for other in level)


def _is_public(name: str) -> bool:
    return not name.startswith("_") and name not in _NOT_IMPORT_TARGETS


def _walk_modules(node: _Dir, relprefix: str, dotted: str, depth: int) -> Iterable[tuple[str, _Found]]:
    for found in _importables(node, relprefix):
        name = dotted + found.name
        yield name, found
        if found.node is not None and depth < _NAMESPACE_DEPTH:
            yield from _walk_modules(found.node, found.relpath + "/", name + ".", depth + 1)


def find_modules(view: PackageView) -> tuple[PythonModule, ...]:
    by_site: dict[tuple[str, str | None], list[tuple[str, EntryKind]]] = {}
    for entry in view.entries:
        located = _site_path(entry.path)
        if located is None:
            continue
        rests = by_site.setdefault((located.site, located.python_version), [])
        if located.rest:
            rests.append((located.rest, entry.kind))
    modules = [
        PythonModule(name=name, kind=found.kind, path=f"{site}/{found.relpath}", python_version=version)
        for (site, version), rests in by_site.items()
        for name, found in _walk_modules(_build_tree(rests), "", "", 1)
    ]
    return tuple(sorted(modules, key=lambda m: (m.name, m.python_version or "", m.path)))


# --------------------------------------------------------------------------- metadata


def parse_metadata_headers(text: str) -> dict[str, str]:
    """Core-metadata headers (RFC 822 style; folded lines joined), keys lower-cased.

    Stops at the first blank line: what follows is the long description.
    """
    headers: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        if not line.strip():
            break
        if line[0] in " \t":
            if last is not None:
                headers[last] = f"{headers[last]} {line.strip()}".strip()
            continue
        key, sep, value = line.partition(":")
        if not sep:
            last = None
            continue
        last = key.strip().lower()
        headers.setdefault(last, value.strip())
    return headers


def _record_path(line: str) -> str:
    """First CSV field of a RECORD row (quoted when the path holds a comma)."""
    if not line.startswith('"'):
        return line.split(",", 1)[0]
    chars: list[str] = []
    index = 1
    while index < len(line):
        char = line[index]
        if char == '"':
            if line[index + 1 : index + 2] == '"':
                chars.append('"')
                index += 2
                continue
            break
        chars.append(char)
        index += 1
    return "".join(chars)


def record_top_level(text: str, *, truncated: bool) -> tuple[str, ...]:
    """Top-level import names of the files a RECORD lists."""
    lines = text.splitlines()
    if truncated and lines:
        lines.pop()  # the capture may have cut the last row in half
    names: set[str] = set()
    for line in lines:
        path = _record_path(line.strip())
        if not path or path.startswith(("/", "../")):
            continue  # scripts and data installed outside site-packages
        first, sep, _ = path.partition("/")
        if sep:
            if _is_import_name(first) and first != "__pycache__":
                names.add(first)
        elif (module := _module_file(first)) is not None and module[0] != "__init__":
            names.add(module[0])
    return tuple(sorted(names))


def parse_top_level(text: str) -> tuple[str, ...]:
    names: set[str] = set()
    for line in text.splitlines():
        name = line.strip().replace("/", ".")
        if name and all(_is_import_name(part) for part in name.split(".")):
            names.add(name)
    return tuple(sorted(names))


def parse_console_scripts(text: str) -> tuple[tuple[str, str], ...]:
    """``[console_scripts]`` of an entry_points.txt: (command, "module:function")."""
    scripts: dict[str, str] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        if section != "console_scripts":
            continue
        command, sep, target = line.partition("=")
        command = command.strip()
        target = target.split("[", 1)[0].strip()  # drop "[extra1,extra2]"
        if sep and command and target:
            scripts.setdefault(command, target)
    return tuple(sorted(scripts.items()))


def _name_version_from_dirname(dirname: str) -> tuple[str, str]:
    """``foo_bar-1.2.dist-info`` / ``foo-1.2-py3.12.egg-info`` -> (name, version)."""
    stem = dirname
    for suffix in _METADATA_DIR:
        stem = stem.removesuffix(suffix)
    parts = stem.split("-")
    return parts[0], parts[1] if len(parts) > 1 else ""


def _summary(headers: Mapping[str, str]) -> str:
    summary = headers.get("summary", "")
    return "" if summary == "UNKNOWN" else summary  # old setuptools' placeholder


def _distribution(view: PackageView, located: _SitePath, dirpath: str, headers_file: str) -> PythonDistribution:
    """One distribution from its metadata directory (or distutils' single egg-info file)."""
    dirname = posixpath.basename(dirpath)
    listed = view.by_path.get(dirpath)  # absent when the archive only implies the directory
    is_file = listed is not None and listed.kind is not EntryKind.DIR

    def member(name: str) -> str:
        return dirpath if is_file else f"{dirpath}/{name}"

    headers = parse_metadata_headers(view.text(member(headers_file)) or "")
    fallback_name, fallback_version = _name_version_from_dirname(dirname)
    top_level: tuple[str, ...] = ()
    has_record = False
    scripts: tuple[tuple[str, str], ...] = ()
    if not is_file:
        top_level_text = view.text(member("top_level.txt"))
        record_path = member("RECORD")
        record_text = view.text(record_path)
        has_record = record_path in view.by_path
        if top_level_text is not None:
            top_level = parse_top_level(top_level_text)
        if not top_level and record_text is not None:
            # flit, hatchling and poetry write no top_level.txt; RECORD says what landed.
            top_level = record_top_level(record_text, truncated=record_path in view.truncated)
        scripts = parse_console_scripts(view.text(member("entry_points.txt")) or "")
    return PythonDistribution(
        name=headers.get("name") or fallback_name,
        version=headers.get("version") or fallback_version,
        path=dirpath,
        python_version=located.python_version,
        top_level=top_level,
        console_scripts=scripts,
        has_record=has_record,
        summary=_summary(headers),
    )


def find_distributions(view: PackageView) -> tuple[PythonDistribution, ...]:
    found: dict[str, tuple[_SitePath, str]] = {}
    for entry in view.entries:
        located = _site_path(entry.path)
        if located is None or not located.rest:
            continue
        first = located.rest.split("/", 1)[0]
        if first.endswith(".dist-info"):
            found.setdefault(f"{located.site}/{first}", (located, "METADATA"))
        elif first.endswith(".egg-info"):
            found.setdefault(f"{located.site}/{first}", (located, "PKG-INFO"))
    distributions = [
        _distribution(view, located, dirpath, headers_file) for dirpath, (located, headers_file) in found.items()
    ]
    return tuple(sorted(distributions, key=lambda d: (d.name.lower(), d.python_version or "", d.path)))


# --------------------------------------------------------------------------- the facet


def _capture_size(entry: Entry) -> int:
    if ".dist-info/" not in entry.path and ".egg-info" not in entry.path:
        return 0  # the common case, decided without a regex
    located = _site_path(entry.path)
    if located is None:
        return 0
    parts = located.rest.split("/")
    if len(parts) == 1 and parts[0].endswith(".egg-info"):
        return _EGG_INFO_FILE_CAPTURE  # distutils wrote PKG-INFO as this one file
    if len(parts) == 2 and parts[0].endswith(_METADATA_DIR):
        return _CAPTURE.get(parts[1], 0)
    return 0


class PythonFacet:
    """Importable modules and installed distributions under site-packages."""

    name: ClassVar[str] = "python"

    def capture(self, entry: Entry, head: bytes) -> int:
        return min(entry.size, _capture_size(entry))

    def analyze(self, view: PackageView, earlier: Facts) -> Facts:
        return Facts(python_modules=find_modules(view), python_distributions=find_distributions(view))
