"""Ruby: installed gems and the names ``require`` can load from them.

A Wolfi maintainer tests a gem with ``test/tw/gem-check`` (``gem list`` sees it, ``ruby``
can ``require`` it). RubyGems writes an installed gem's specification as generated Ruby
(``gems/<api>/specifications/<name>-<version>.gemspec``) in a regular shape::

    # stub: redis 5.0.6 ruby lib
    Gem::Specification.new do |s|
      s.name = "redis".freeze
      s.version = "5.0.6".freeze
      s.require_paths = ["lib".freeze]
      s.executables = ["redis-cli".freeze]

so a few regular expressions read it; we never evaluate it. The gem's files live in
``gems/<api>/gems/<name>-<version>/``; every ``.rb`` (or native ``.so``) under a require path,
and under the gem's ``extensions/<platform>/<api>/<full name>/`` directory, is requirable.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from qackage.analyze.base import PackageView
from qackage.model import Entry, EntryKind, Facts, RubyGem

KIB = 1024
GEMSPEC_CAPTURE = 256 * KIB  # generated specs are a few KiB; a long files list fits easily
MAX_REQUIRABLES = 50

_GEMSPEC = re.compile(
    r"^(?P<root>(?:usr/(?:local/)?)?(?:lib|lib64|share)/ruby/gems/(?P<api>[^/]+))"
    r"/specifications/(?:default/)?(?P<full>[^/]+)\.gemspec$"
)
# "# stub: <name> <version> <platform> <require paths joined by NUL>"
_STUB = re.compile(r"^# stub: (?P<name>\S+) (?P<version>\S+)(?: (?P<platform>\S+)(?: (?P<paths>[^\n]+))?)?$", re.M)
_ASSIGNMENT = re.compile(
    r"^[ \t]*\w+\.(?P<attr>name|version|require_paths|executables)[ \t]*=[ \t]*(?P<value>[^\n]*)$", re.M
)
_STRING = re.compile(r""""((?:[^"\\\n]|\\.)*)"|'((?:[^'\\\n]|\\.)*)'|%q\{([^}\n]*)\}""")
_FULL_NAME = re.compile(r"^(?P<name>.+?)-(?P<version>\d[^-]*)(?:-(?P<platform>.+))?$")
_REQUIRABLE_SUFFIXES = (".rb", ".so")


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _strings(value: str) -> tuple[str, ...]:
    """The string literals in a (one-line) Ruby expression, in order."""
    return tuple(
        _unescape(next(group for group in match.groups() if group is not None)) for match in _STRING.finditer(value)
    )


@dataclass(frozen=True, slots=True)
class GemSpec:
    """The fields of a gemspec we use; None when the text does not say."""

    name: str | None = None
    version: str | None = None
    require_paths: tuple[str, ...] | None = None
    executables: tuple[str, ...] = ()


def parse_gemspec(text: str) -> GemSpec:
    """Read a generated gemspec. Its ``s.x = ...`` lines win over the ``# stub:`` cache
    line (RubyGems writes both; the assignments are the specification proper)."""
    assigned: dict[str, tuple[str, ...]] = {}
    for match in _ASSIGNMENT.finditer(text):
        values = _strings(match["value"])
        if values or match["attr"] == "executables":
            assigned.setdefault(match["attr"], values)
    stub = _STUB.search(text)
    stub_paths = tuple(p for p in stub["paths"].split("\0") if p) if stub and stub["paths"] else None
    return GemSpec(
        name=assigned["name"][0] if "name" in assigned else (stub["name"] if stub else None),
        version=assigned["version"][0] if "version" in assigned else (stub["version"] if stub else None),
        require_paths=assigned.get("require_paths", stub_paths),
        executables=assigned.get("executables", ()),
    )


def _safe_relative(path: str) -> str | None:
    clean = posixpath.normpath(path)
    if clean.startswith(("/", "..")) or clean == ".":
        return None
    return clean


def requirables(paths: Iterable[str], load_dirs: Iterable[str]) -> tuple[str, ...]:
    """Names ``require`` takes for files under any of ``load_dirs``: top level first, capped."""
    prefixes = tuple(d.rstrip("/") + "/" for d in load_dirs)
    names: set[str] = set()
    for path in paths:
        if not path.endswith(_REQUIRABLE_SUFFIXES):
            continue
        for prefix in prefixes:
            if path.startswith(prefix):
                names.add(posixpath.splitext(path[len(prefix) :])[0])
                break
    ordered = sorted(names, key=lambda name: (name.count("/"), name))
    return tuple(ordered[:MAX_REQUIRABLES])


def _gem(view: PackageView, spec_path: str, root: str, api: str, full: str, files: tuple[str, ...]) -> RubyGem:
    spec = parse_gemspec(view.text(spec_path) or "")
    from_name = _FULL_NAME.match(full)
    name = spec.name or (from_name["name"] if from_name else full)
    version = spec.version or (from_name["version"] if from_name else "")
    raw_paths = spec.require_paths if spec.require_paths is not None else ("lib",)
    require_paths = tuple(p for p in (_safe_relative(raw) for raw in raw_paths) if p is not None)
    gem_dir = f"{root}/gems/{full}"
    load_dirs = [f"{gem_dir}/{p}" for p in require_paths]
    # Native extensions are also built into extensions/<platform>/<api>/<full name>/,
    # which RubyGems puts on the load path next to the require paths.
    load_dirs += sorted(
        {
            path.rsplit(f"/{full}/", 1)[0] + f"/{full}"
            for path in files
            if path.startswith(f"{root}/extensions/") and f"/{full}/" in path
        }
    )
    return RubyGem(
        name=name,
        version=version,
        path=spec_path,
        ruby_api=api,
        require_paths=require_paths,
        executables=tuple(sorted(set(spec.executables))),
        requirables=requirables(files, load_dirs),
    )


def find_gems(view: PackageView) -> tuple[RubyGem, ...]:
    files = tuple(e.path for e in view.entries if e.kind is not EntryKind.DIR)
    gems = [
        _gem(view, path, match["root"], match["api"], match["full"], files)
        for path in files
        if (match := _GEMSPEC.match(path)) is not None
    ]
    return tuple(sorted(gems, key=lambda g: (g.name, g.version, g.path)))


class RubyFacet:
    """Installed gems from their generated specifications."""

    name: ClassVar[str] = "ruby"

    def capture(self, entry: Entry, head: bytes) -> int:
        if not entry.path.endswith(".gemspec") or _GEMSPEC.match(entry.path) is None:
            return 0
        return min(entry.size, GEMSPEC_CAPTURE)

    def analyze(self, view: PackageView, earlier: Facts) -> Facts:
        return Facts(ruby_gems=find_gems(view))
