"""What a package is, decided by its content: the summary later stages pick tests by.

Content is every entry but directories and the SBOM melange adds to every package
(``var/lib/db/sbom/*.spdx.json``). Kinds come in two tiers:

- *Core* kinds are proved by facts: DAEMON, CLI (programs on PATH that are not
  daemons, nor ``*-config`` helpers of a -dev package), SHARED_LIBRARY, DEV (headers,
  ``.pc`` files, unversioned ``lib*.so`` links or linker scripts, build metadata),
  STATIC (only ``.a`` files, maybe headers), and the language kinds.
- *Ancillary* kinds describe packages with none of those: DOC, LOCALE, COMPLETIONS,
  CONFIG (files under ``etc/``), SCRIPTS (scripts not on PATH), DATA, COMPAT (symlinks
  that leave the package, or alias a directory) and DEBUG (``usr/lib/debug``). Each
  content entry falls in one category (a symlink in its target's); every category
  present is a kind, so "only docs" means DOC alone. Files nothing explains are CLI
  when they are programs outside PATH, else DATA.

No content at all is METAPACKAGE when the package depends on something, else EMPTY.

The primary kind is the one a maintainer would choose the test pipeline by: DAEMON
whenever there is a daemon (it brings its CLI along); otherwise the kind the package
name suggests (``-dev``, ``-doc``, ``py3-`` ...) when the content proved it - names
only break ties between proven kinds; otherwise the first core kind in `KIND_ORDER`,
or for ancillary packages the first in `ANCILLARY_ORDER`.
"""

from __future__ import annotations

import posixpath
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from qackage.analyze.base import PackageView
from qackage.analyze.docs import is_build_metadata, language_tree
from qackage.analyze.headers import MULTIARCH_TRIPLET
from qackage.model import DocKind, Entry, EntryKind, Facts, KindSummary, PackageInfo, PackageKind

SBOM = re.compile(r"^var/lib/db/sbom/[^/]+\.spdx\.json$")
DEBUG_TREE = "usr/lib/debug/"
LIBRARY_DIRS = frozenset({"usr/lib", "lib", "usr/lib64", "lib64", "usr/local/lib"})
_UNVERSIONED_SO = re.compile(r"^lib[^/]*\.so$")
_DEV_HELPER = re.compile(r"-config$")

KIND_ORDER: tuple[PackageKind, ...] = (
    PackageKind.DAEMON,
    PackageKind.CLI,
    PackageKind.PYTHON,
    PackageKind.RUBY,
    PackageKind.PERL,
    PackageKind.JAVA,
    PackageKind.LUA,
    PackageKind.NODE,
    PackageKind.SHARED_LIBRARY,
    PackageKind.DEV,
    PackageKind.STATIC,
    PackageKind.SCRIPTS,
    PackageKind.COMPLETIONS,
    PackageKind.LOCALE,
    PackageKind.DOC,
    PackageKind.CONFIG,
    PackageKind.DATA,
    PackageKind.COMPAT,
    PackageKind.DEBUG,
    PackageKind.METAPACKAGE,
    PackageKind.EMPTY,
)
# For packages without core content: the most specific content decides. Docs and
# translations usually come along with something else; data is what a -data package is.
ANCILLARY_ORDER: tuple[PackageKind, ...] = (
    PackageKind.COMPLETIONS,
    PackageKind.SCRIPTS,
    PackageKind.CLI,  # programs outside PATH
    PackageKind.CONFIG,
    PackageKind.DATA,
    PackageKind.DEBUG,
    PackageKind.LOCALE,
    PackageKind.COMPAT,
    PackageKind.DOC,
)
_LANGUAGE_KINDS = {
    "python": PackageKind.PYTHON,
    "ruby": PackageKind.RUBY,
    "perl": PackageKind.PERL,
    "java": PackageKind.JAVA,
    "lua": PackageKind.LUA,
    "node": PackageKind.NODE,
}
# (pattern on the package name, the kind it suggests): tie-breakers only.
NAME_HINTS: tuple[tuple[re.Pattern[str], PackageKind], ...] = (
    (re.compile(r"-dev$"), PackageKind.DEV),
    (re.compile(r"-static$"), PackageKind.STATIC),
    (re.compile(r"-(?:doc|docs|man|manpages|info)$"), PackageKind.DOC),
    (re.compile(r"-(?:dbg|debug)$"), PackageKind.DEBUG),
    (re.compile(r"-(?:bash|zsh|fish)-completions?$|-completions?$"), PackageKind.COMPLETIONS),
    (re.compile(r"-(?:lang|locale|locales|i18n)$"), PackageKind.LOCALE),
    (re.compile(r"-(?:config|conf)$"), PackageKind.CONFIG),
    (re.compile(r"-compat$"), PackageKind.COMPAT),
    (re.compile(r"-data$"), PackageKind.DATA),
    (re.compile(r"-scripts$"), PackageKind.SCRIPTS),
    (re.compile(r"^(?:py3|py3\.\d+|python3)-"), PackageKind.PYTHON),
    (re.compile(r"^ruby(?:\d\.\d+)?-"), PackageKind.RUBY),
    (re.compile(r"^perl-"), PackageKind.PERL),
    (re.compile(r"^lua(?:\d\.\d)?-"), PackageKind.LUA),
    (re.compile(r"^node-"), PackageKind.NODE),
    (re.compile(r"-libs$|^lib"), PackageKind.SHARED_LIBRARY),
    (re.compile(r"-(?:utils|tools|bin|cli)$"), PackageKind.CLI),
    (re.compile(r"-(?:daemon|server)$"), PackageKind.DAEMON),
)


def _listing(items: Iterable[str], limit: int = 5) -> str:
    unique = sorted(set(items))
    shown = ", ".join(unique[:limit])
    return shown if len(unique) <= limit else f"{shown} and {len(unique) - limit} more"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def is_content(entry: Entry) -> bool:
    """Directories and melange's SBOM are in every package; they say nothing about it."""
    return entry.kind is not EntryKind.DIR and SBOM.match(entry.path) is None


def _is_library_dir(directory: str) -> bool:
    if directory in LIBRARY_DIRS:
        return True
    parent, _, leaf = directory.rpartition("/")
    return parent in ("usr/lib", "lib") and MULTIARCH_TRIPLET.match(leaf) is not None


def _not_debug(paths: Iterable[str]) -> list[str]:
    return [p for p in paths if not p.startswith(DEBUG_TREE)]


# --------------------------------------------------------------------------- core kinds


def _dev_reason(content: Sequence[Entry], facts: Facts) -> str | None:
    elf_paths = {f.path for f in facts.elf_files}
    parts: list[str] = []
    headers = _not_debug(h.path for h in facts.headers)
    if headers:
        parts.append(_plural(len(headers), "header"))
    # A .pc without compile or link flags describes data (iso-codes, shared-mime-info).
    modules = [p.module for p in facts.pkgconfig if p.libs or p.cflags or headers]
    if modules:
        parts.append("pkg-config " + _listing(modules))
    links = [
        e.name
        for e in content
        if e.kind is EntryKind.SYMLINK and _UNVERSIONED_SO.match(e.name) and _is_library_dir(posixpath.dirname(e.path))
    ]
    if links:
        parts.append("unversioned " + _listing(links) + (" link" if len(links) == 1 else " links"))
    scripts = [
        e.name
        for e in content
        if e.kind is EntryKind.FILE
        and _UNVERSIONED_SO.match(e.name)
        and _is_library_dir(posixpath.dirname(e.path))
        and e.path not in elf_paths
    ]
    if scripts:
        parts.append("linker script " + _listing(scripts))
    # libtool .la files come along with libraries of any kind; they prove nothing alone.
    metadata = [e.path for e in content if is_build_metadata(e.path) and not e.path.endswith((".pc", ".la"))]
    if metadata:
        parts.append("build metadata " + _listing(posixpath.basename(p) for p in metadata))
    return "; ".join(parts) or None


def _static_reason(content: Sequence[Entry], facts: Facts) -> str | None:
    archives = set(facts.static_libraries)
    if not archives:
        return None
    headers = {h.path for h in facts.headers}
    allowed = archives | headers
    others = [e for e in content if e.path not in allowed and not e.path.endswith(".la")]
    if others:
        return None
    names = _listing(posixpath.basename(p) for p in archives)
    return f"only static libraries {names}" + (" and headers" if headers else "")


def _language_reasons(content: Sequence[Entry], facts: Facts) -> dict[PackageKind, str]:
    reasons: dict[PackageKind, str] = {}
    found = {
        PackageKind.PYTHON: [m.name for m in facts.python_modules] + [d.name for d in facts.python_distributions],
        PackageKind.RUBY: [g.name for g in facts.ruby_gems],
        PackageKind.PERL: [m.name for m in facts.perl_modules],
        PackageKind.JAVA: [posixpath.basename(j.path) for j in facts.java_archives],
        PackageKind.LUA: [m.name for m in facts.lua_modules],
        PackageKind.NODE: [n.name for n in facts.node_packages],
    }
    for kind, names in found.items():
        if names:
            reasons[kind] = f"{kind.value} code: {_listing(names)}"
    # Files in a language's tree prove the language even when its facet found no module.
    trees = Counter(language_tree(e.path) for e in content if e.kind is not EntryKind.SYMLINK)
    for language, count in trees.items():
        if language is None:
            continue
        kind = _LANGUAGE_KINDS[language]
        reasons.setdefault(kind, f"{_plural(count, 'file')} in the {language} tree")
    return reasons


def core_kinds(content: Sequence[Entry], facts: Facts) -> dict[PackageKind, str]:
    """Core kinds the content proves, with the reason for each."""
    reasons: dict[PackageKind, str] = {}
    if facts.daemons:
        reasons[PackageKind.DAEMON] = "; ".join(f"{d.name}: {', '.join(d.reasons[:2])}" for d in facts.daemons[:3])
    dev = _dev_reason(content, facts)
    daemon_names = {d.name for d in facts.daemons} | {posixpath.basename(d.path) for d in facts.daemons}
    commands = [
        e.name
        for e in facts.executables
        if e.on_path and e.name not in daemon_names and not (dev and _DEV_HELPER.search(e.name))
    ]
    if commands:
        reasons[PackageKind.CLI] = "on PATH: " + _listing(commands)
    libraries = [lib for lib in facts.shared_libraries if not lib.path.startswith(DEBUG_TREE)]
    if libraries:
        reasons[PackageKind.SHARED_LIBRARY] = "shared libraries " + _listing(
            lib.soname or posixpath.basename(lib.path) for lib in libraries
        )
    static = _static_reason(content, facts)
    if static:
        reasons[PackageKind.STATIC] = static
    if dev:
        reasons[PackageKind.DEV] = dev
    reasons.update(_language_reasons(content, facts))
    return reasons


# --------------------------------------------------------------------------- ancillary kinds


def _categories(content: Sequence[Entry], facts: Facts, view: PackageView) -> dict[str, PackageKind | None]:
    """Each content path's ancillary category; None when nothing explains it."""
    by_fact: dict[str, PackageKind] = {}
    for document in facts.documents:
        by_fact[document.path] = PackageKind.DOC
    for path in facts.locale_files:
        by_fact[path] = PackageKind.LOCALE
    for script in facts.scripts:
        by_fact.setdefault(script.path, PackageKind.SCRIPTS)
    for path in facts.data_files:
        by_fact.setdefault(path, PackageKind.DATA)

    completions = {c.path for c in facts.completions}

    def category(path: str) -> PackageKind | None:
        if path.startswith(DEBUG_TREE):
            return PackageKind.DEBUG
        if path in completions:
            return PackageKind.COMPLETIONS
        if path.startswith("etc/"):
            return PackageKind.CONFIG  # init scripts included: a -openrc package is configuration
        return by_fact.get(path)

    found: dict[str, PackageKind | None] = {}
    for entry in content:
        kind = category(entry.path)
        if kind is None and entry.kind is EntryKind.SYMLINK:
            target = view.resolve(entry.path)
            target_entry = view.by_path.get(target) if target is not None else None
            if target is None or target_entry is None or target_entry.kind is EntryKind.DIR:
                kind = PackageKind.COMPAT  # leaves the package, or a directory alias like lib64
            else:
                kind = category(target)
        found[entry.path] = kind
    return found


def _ancillary_reason(kind: PackageKind, paths: Sequence[str], facts: Facts) -> str:
    if kind is PackageKind.DOC:
        pages = sum(1 for d in facts.documents if d.path in paths and d.kind is DocKind.MAN)
        extra = f" ({_plural(pages, 'man page')})" if pages else ""
        return f"{_plural(len(paths), 'document')}{extra}"
    if kind is PackageKind.LOCALE:
        return f"{_plural(len(paths), 'translation')} (.mo)"
    if kind is PackageKind.COMPLETIONS:
        shells = sorted({c.shell for c in facts.completions if c.path in paths})
        commands = [c.command for c in facts.completions if c.path in paths]
        return f"{'/'.join(shells)} completions for {_listing(commands)}"
    if kind is PackageKind.CONFIG:
        return f"{_plural(len(paths), 'file')} under etc/"
    if kind is PackageKind.SCRIPTS:
        return "scripts off PATH: " + _listing(posixpath.basename(p) for p in paths)
    if kind is PackageKind.COMPAT:
        return "symlinks out of the package: " + _listing(paths, limit=3)
    if kind is PackageKind.DEBUG:
        return f"{_plural(len(paths), 'file')} under usr/lib/debug"
    return f"{_plural(len(paths), 'data file')}"


def ancillary_kinds(content: Sequence[Entry], facts: Facts, view: PackageView) -> dict[PackageKind, str]:
    """Ancillary kinds present, with the reason for each."""
    categories = _categories(content, facts, view)
    grouped: dict[PackageKind, list[str]] = {}
    unexplained: list[str] = []
    for path, kind in categories.items():
        if kind is None:
            unexplained.append(path)
        else:
            grouped.setdefault(kind, []).append(path)
    reasons = {kind: _ancillary_reason(kind, paths, facts) for kind, paths in grouped.items()}
    if unexplained:
        # Programs outside PATH (libexec helpers) are still programs; the rest is data.
        helpers = [e.name for e in facts.executables if e.path in unexplained]
        kind = PackageKind.CLI if helpers else PackageKind.DATA
        note = "programs off PATH: " + _listing(helpers) if helpers else f"{_plural(len(unexplained), 'other file')}"
        reasons[kind] = "; ".join(filter(None, (reasons.get(kind), note)))
    return reasons


# --------------------------------------------------------------------------- summary


def name_hint(name: str) -> PackageKind | None:
    return next((kind for pattern, kind in NAME_HINTS if pattern.search(name)), None)


def _ordered(kinds: Iterable[PackageKind]) -> tuple[PackageKind, ...]:
    chosen = set(kinds)
    return tuple(k for k in KIND_ORDER if k in chosen)


def _choose_primary(name: str, kinds: Sequence[PackageKind], ancillary: bool) -> PackageKind:
    if PackageKind.DAEMON in kinds:
        return PackageKind.DAEMON
    hint = name_hint(name)
    if hint is not None and hint in kinds:
        return hint
    if ancillary:
        return min(kinds, key=ANCILLARY_ORDER.index)
    return kinds[0]


def _only(kind: PackageKind, reason: str) -> KindSummary:
    return KindSummary(kind, (kind,), ((kind, reason),))


def summarize_kind(info: PackageInfo, entries: tuple[Entry, ...], facts: Facts) -> KindSummary:
    content = [e for e in entries if is_content(e)]
    if not content:
        depends = [d.name for d in info.depends if not d.conflict]
        if depends:
            return _only(PackageKind.METAPACKAGE, "no files; depends on " + _listing(depends))
        return _only(PackageKind.EMPTY, "no files and no dependencies")
    reasons = core_kinds(content, facts) if any(not e.path.startswith(DEBUG_TREE) for e in content) else {}
    ancillary = not reasons
    if ancillary:
        reasons = ancillary_kinds(content, facts, PackageView(info=info, entries=entries))
    kinds = _ordered(reasons)
    primary = _choose_primary(info.name, kinds, ancillary)
    return KindSummary(primary, kinds, tuple((k, reasons[k]) for k in kinds))
