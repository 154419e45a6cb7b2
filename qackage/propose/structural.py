"""The catalog's conventional checks, chosen from the analysis alone (no probes).

Each rule looks at one facet of the package and proposes the pipeline Wolfi maintainers
use for it (reference: wolfi-catalog-stats.md §5 and §8), with the inputs that make it
pass on this package. A rule stays silent rather than propose a step whose pipeline would
fail on a sound package: the pipelines' own semantics decide (a static-package check
fails on anything but ``.a`` files, ``test/docs`` needs files under its prefix, the
metapackage check wants "meta" in the description ...).

``targets`` name only the mutation operators a step really catches on this package; a
check that guards nothing the operators break says so by naming none.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from qackage.analyze.headers import MULTIARCH_TRIPLET
from qackage.analyze.kinds import is_content
from qackage.model import (
    Analysis,
    Candidate,
    CheckKind,
    DocKind,
    ElfFile,
    ElfType,
    EntryKind,
    Header,
    JavaArchive,
    PackageKind,
    ProbeCommand,
    ProbeResult,
    PythonDistribution,
    PythonModule,
    PythonModuleKind,
    RubyGem,
    Step,
)
from qackage.propose.templates import render
from qackage.propose.yamfmt import with_list

DEBUG_TREE = "usr/lib/debug/"
# Where test/pkgconf looks for a package's .pc files; one elsewhere fails the check.
PKGCONF_DIRS = ("usr/lib/pkgconfig", "usr/share/pkgconfig")
# What test/tw/devpackage counts as a header.
_DEVPACKAGE_HEADER = re.compile(r"\.(?:h|hpp|hxx|hh|h\+\+)$")
_DEV_NAME = re.compile(r"-(?:dev|devel)$")
_UNVERSIONED_SO = re.compile(r"^lib[^/]*\.so$")
_LIBRARY_DIRS = frozenset({"usr/lib", "lib", "usr/lib64", "lib64", "usr/local/lib"})
# Where test/tw/shell-syntax-check finds completions by itself.
_SYNTAX_CHECKED_COMPLETIONS = (
    ("bash", re.compile(r"^usr/share/bash-completion/completions/[^./][^/]*$")),
    ("zsh", re.compile(r"^usr/share/zsh/site-functions/[^/]+$")),
    ("fish", re.compile(r"^usr/share/fish/vendor_completions\.d/[^/]+\.fish$")),
)
_SCRIPT_DIRS = ("usr/bin/", "usr/sbin/", "usr/libexec/")
_PARSING_SHELLS = frozenset({"sh", "bash", "zsh", "fish"})
_RUBY_PREFIX = re.compile(r"^ruby[0-9.]*-")
_ENTRY_POINT = re.compile(r"^(?P<module>[A-Za-z_][\w.]*)\s*:\s*(?P<attr>[A-Za-z_]\w*)")

MAX_HEADERS = 8
MAX_PERL_MODULES = 8
MAX_GEM_REQUIRES = 8
MAX_ENTRY_POINT_IMPORTS = 5
MAX_LISTED_FILES = 8


class StructuralProposer:
    """Conventional per-kind checks; needs no probes."""

    name: ClassVar[str] = "structural"

    def probes(self, analysis: Analysis, seen: Mapping[str, ProbeResult]) -> tuple[ProbeCommand, ...]:
        return ()

    def candidates(self, analysis: Analysis, seen: Mapping[str, ProbeResult]) -> tuple[Candidate, ...]:
        return tuple(candidate for rule in RULES for candidate in rule(analysis))


def _uses(pipeline: str, **inputs: str) -> Step:
    """A ``uses:`` step; inputs spelled with dashes (``allow_absolute`` -> ``allow-absolute``)."""
    return Step(uses=pipeline, with_=tuple((key.replace("_", "-"), value) for key, value in inputs.items()))


def _count(number: int, noun: str, plural: str | None = None) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {plural or noun + 's'}"


def _content_files(analysis: Analysis) -> list[str]:
    """Regular files and symlinks a package installs (directories and the SBOM aside)."""
    return [e.path for e in analysis.entries if is_content(e)]


# --------------------------------------------------------------------------- package type


def package_type(analysis: Analysis) -> Iterable[Candidate]:
    """Empty, meta, documentation and static packages: what the package *is*."""
    primary = analysis.kind.primary
    name = analysis.package.name
    if primary is PackageKind.EMPTY:
        yield Candidate(
            step=_uses("test/emptypackage"),
            kind=CheckKind.STRUCTURE,
            rationale=f"{name} installs no files and depends on nothing: it must stay empty",
        )
    elif primary is PackageKind.METAPACKAGE:
        yield _metapackage(analysis)
    elif primary is PackageKind.DOC:
        yield from _docs(analysis)
    elif primary is PackageKind.STATIC:
        yield from _static(analysis)


def _metapackage(analysis: Analysis) -> Candidate:
    name = analysis.package.name
    depends = ", ".join(d.name for d in analysis.package.depends if not d.conflict)
    if "meta" in analysis.package.description.lower():
        return Candidate(
            step=_uses("test/metapackage"),
            kind=CheckKind.STRUCTURE,
            rationale=f"{name} installs no files and pulls in {depends}: a metapackage",
        )
    # test/metapackage also wants "meta" in the description; this one would fail on it.
    return Candidate(
        step=_uses("test/emptypackage"),
        kind=CheckKind.STRUCTURE,
        rationale=f"{name} installs no files and pulls in {depends}, but its description does not say "
        "'meta', which test/metapackage requires: checked as an empty package",
    )


def _docs(analysis: Analysis) -> Iterable[Candidate]:
    files = _content_files(analysis)
    if not any(path.startswith("usr/share/") for path in files):
        return  # test/docs counts documentation under usr/share only
    pages = [d for d in analysis.facts.documents if d.kind in (DocKind.MAN, DocKind.INFO)]
    targets = ("empty-package", "corrupt-man-page") if pages else ("empty-package",)
    shown = f" ({_count(len(pages), 'manual or info page')})" if pages else ""
    yield Candidate(
        step=_uses("test/docs"),
        kind=CheckKind.STRUCTURE,
        rationale=f"{analysis.package.name} is documentation{shown}: every page must be readable",
        targets=targets,
    )


STATIC_ARCHIVE_CAP = 8


def _static(analysis: Analysis) -> Iterable[Candidate]:
    files = _content_files(analysis)
    if not files or any(not path.endswith(".a") for path in files):
        return  # test/tw/staticpackage fails on anything but .a files (headers included)
    yield Candidate(
        step=_uses("test/tw/staticpackage"),
        kind=CheckKind.STRUCTURE,
        rationale=f"{analysis.package.name} holds only static libraries ({_count(len(files), 'archive')})",
        targets=("empty-package",),
    )
    archives = sorted(analysis.facts.static_libraries)[:STATIC_ARCHIVE_CAP]
    if archives:
        # staticpackage only looks at file names; listing the members and their symbols
        # proves each archive is whole (a truncated .a is "not an archive" to ar and nm).
        yield Candidate(
            step=Step(
                name="Static archives list their members and symbols",
                runs=render("structural-static-archives.sh.j2", archives=["/" + path for path in archives]),
            ),
            kind=CheckKind.FUNCTIONAL,
            rationale="ar and nm read every archive: a truncated or corrupt .a fails",
            packages=("binutils",),
            targets=("truncate-static-lib", "empty-package"),
        )


# --------------------------------------------------------------------------- development files


def development(analysis: Analysis) -> Iterable[Candidate]:
    """-dev layout, pkg-config modules and, without a .pc to check, the headers themselves."""
    name = analysis.package.name
    counted = [
        e.path
        for e in analysis.entries
        if is_content(e) and e.path.startswith("usr/") and _DEVPACKAGE_HEADER.search(e.path)
    ]
    if _DEV_NAME.search(name) and counted:
        yield Candidate(
            step=_uses("test/tw/devpackage"),
            kind=CheckKind.STRUCTURE,
            rationale=f"{name} is a development package with {_count(len(counted), 'header file')}",
            targets=("empty-package",),
        )
    modules = _checkable_pc_modules(analysis)
    if modules:
        yield Candidate(
            step=_uses("test/pkgconf"),
            kind=CheckKind.STRUCTURE,
            rationale=f"pkg-config modules {', '.join(modules)}: pkgconf must resolve their version, "
            "libraries and compiler flags",
        )
    if analysis.facts.headers and not analysis.facts.pkgconfig:
        yield from _header_check(analysis)


def _checkable_pc_modules(analysis: Analysis) -> list[str]:
    """Modules test/pkgconf checks and passes: real .pc files (a Name: field) in its search path."""
    return [pc.module for pc in analysis.facts.pkgconfig if pc.name and posixpath.dirname(pc.path) in PKGCONF_DIRS]


def _header_check(analysis: Analysis) -> Iterable[Candidate]:
    chosen = entry_headers(analysis.facts.headers)
    if not chosen:
        return
    own = {h.include_name for h in analysis.facts.headers}
    pulls_in_own = any(set(h.includes) & own for h in chosen)
    yield Candidate(
        step=_uses("test/tw/header-check", files=with_list([h.include_name for h in chosen])),
        kind=CheckKind.STRUCTURE,
        rationale=f"{_count(len(analysis.facts.headers), 'header')} and no .pc file: the public headers must compile "
        "on their own",
        targets=("delete-included-header",) if pulls_in_own else (),
    )


def entry_headers(headers: Sequence[Header]) -> list[Header]:
    """The headers a user includes: those no other header of the package includes
    (internal ``bits/`` pieces are not meant to compile alone). Headers that pull in
    others of the package come first: they fail when one of those goes missing."""
    included = {name for h in headers for name in h.includes}
    own = {h.include_name for h in headers}
    entries = [h for h in headers if h.include_name not in included]
    if not entries:  # everything includes everything: any header is an entry
        entries = list(headers)
    entries.sort(key=lambda h: (not (set(h.includes) & own), h.include_name.count("/"), h.include_name))
    return entries[:MAX_HEADERS]


# --------------------------------------------------------------------------- linkage


def linkage(analysis: Analysis) -> Iterable[Candidate]:
    """test/tw/ldd-check where the dynamic loader has something to resolve."""
    name = analysis.package.name
    dynamic = [f for f in analysis.facts.elf_files if _dynamically_linked(f)]
    dev_links = [
        e.path
        for e in analysis.entries
        if e.kind is EntryKind.SYMLINK and _UNVERSIONED_SO.match(e.name) and _is_library_dir(posixpath.dirname(e.path))
    ]
    if not dynamic and not (dev_links and PackageKind.DEV in analysis.kind.kinds):
        return
    provided = {lib.soname for lib in analysis.facts.shared_libraries if lib.soname}
    needs_own = sorted({n for f in dynamic for n in f.needed if n in provided and n != f.soname})
    if dynamic:
        libraries = sum(1 for f in dynamic if f.elf_type is ElfType.SHARED_LIBRARY and not f.is_program)
        what = _count(len(dynamic), "dynamically linked ELF file")
        rationale = (
            f"{name} has {what}"
            + (f" ({_count(libraries, 'shared library', 'shared libraries')})" if libraries else "")
            + ": every library they need must resolve"
        )
    else:
        rationale = f"{name} ships the link-time library link {dev_links[0]}: the library behind it must load"
    if needs_own:
        rationale += f"; its own {', '.join(needs_own)} among them"
    yield Candidate(
        step=_uses("test/tw/ldd-check"),
        kind=CheckKind.LINKAGE,
        rationale=rationale,
        # A library the package's own programs load: gone or cut off, loading them fails.
        targets=("delete-soname", "truncate-elf") if needs_own else (),
    )


def _dynamically_linked(elf: ElfFile) -> bool:
    """What the loader loads: every shared object (melange's lddcheck linter asks for an
    ldd-check whenever there is one), and programs that are not statically linked."""
    if elf.path.startswith(DEBUG_TREE) or elf.static:
        return False
    if elf.elf_type is ElfType.SHARED_LIBRARY:
        return True
    return elf.elf_type is ElfType.EXECUTABLE and (bool(elf.needed) or elf.interpreter is not None)


def _is_library_dir(directory: str) -> bool:
    parent, _, leaf = directory.rpartition("/")
    return directory in _LIBRARY_DIRS or (parent in ("usr/lib", "lib") and bool(MULTIARCH_TRIPLET.match(leaf)))


# --------------------------------------------------------------------------- symlinks


def symlinks(analysis: Analysis) -> Iterable[Candidate]:
    """test/tw/symlink-check, where it guards links the package itself controls.

    The pipeline fails on a link that dangles in the installed test image (runtime
    dependencies included) and, unless allowed, on absolute links. So: links that end
    inside the package are the point; links that leave it are fine only when the package
    depends on something that can hold their targets, and are the point only for compat
    packages (which are made of them); loops always fail."""
    links = analysis.facts.symlinks
    if not links or any(link.loop for link in links):
        return
    inside = [link for link in links if not link.dangling]
    outside = [link for link in links if link.dangling]
    has_dependencies = any(not d.conflict for d in analysis.package.depends)
    if outside and not has_dependencies:
        return  # nothing installed alongside could hold their targets
    # A package made of links (a -compat package, even one whose links are commands on
    # PATH) exists for them: links into its dependencies are what there is to check.
    made_of_links = all(e.kind is EntryKind.SYMLINK for e in analysis.entries if is_content(e))
    compat = analysis.kind.primary is PackageKind.COMPAT or made_of_links
    if not inside and not compat:
        return
    absolute = any(link.absolute for link in links)
    soname_files = {lib.path for lib in analysis.facts.shared_libraries}
    names_library = any(link.resolved in soname_files for link in inside)
    targets = ("dangle-symlink", "delete-soname") if names_library else ("dangle-symlink",)
    where = f"{len(inside)} end inside the package" + (f", {len(outside)} in its dependencies" if outside else "")
    yield Candidate(
        step=_uses("test/tw/symlink-check", allow_absolute="true") if absolute else _uses("test/tw/symlink-check"),
        kind=CheckKind.STRUCTURE,
        rationale=f"{_count(len(links), 'symlink')} ({where}) must not dangle"
        + ("; some are absolute, which the package means" if absolute else ""),
        targets=targets,
    )


# --------------------------------------------------------------------------- languages


def python(analysis: Analysis) -> Iterable[Candidate]:
    """pip-check where pip metadata exists, then python/import of every top-level module.

    One pair of steps per Python version the package installs for. ``python:`` is named
    only when there are several (the pipelines' DEFAULT wants exactly one python3.N);
    otherwise naming it is the fallback the repair loop tries."""
    modules = [m for m in analysis.facts.python_modules if not m.path.startswith(DEBUG_TREE)]
    distributions = analysis.facts.python_distributions
    versions = sorted({m.python_version for m in modules} | {d.python_version for d in distributions}, key=str)
    several = sum(1 for v in versions if v is not None) > 1
    for version in versions:
        interpreter = PythonInterpreter(f"python{version}" if version else None, explicit=several)
        dists = [d for d in distributions if d.python_version == version]
        if dists:
            yield _pip_check(dists, interpreter)
        names = import_names([m for m in modules if m.python_version == version])
        if names:
            yield _python_import(names, _entry_point_imports(dists, names), interpreter)


@dataclass(frozen=True, slots=True)
class PythonInterpreter:
    """The ``python:`` input: given when ``explicit``, else kept for a fallback step."""

    name: str | None
    explicit: bool

    def steps(self, pipeline: str, **inputs: str) -> tuple[Step, tuple[Step, ...]]:
        """(the step, its fallbacks)."""
        if self.name is None:
            return _uses(pipeline, **inputs), ()
        named = _uses(pipeline, python=self.name, **inputs)
        if self.explicit:
            return named, ()
        return _uses(pipeline, **inputs), (named,)


def import_names(modules: Sequence[PythonModule]) -> list[str]:
    """What ``import`` should name: each top-level module; under a namespace package
    (where ``import google`` proves nothing) the first real modules inside it."""
    real = sorted({m.name for m in modules if m.kind is not PythonModuleKind.NAMESPACE})
    namespaces = sorted({m.name for m in modules if m.kind is PythonModuleKind.NAMESPACE})
    # A namespace with nothing found below it (and not inside a real package, which
    # importing covers) is still what there is to import.
    bare = [
        n
        for n in namespaces
        if not any(other.startswith(n + ".") for other in real + namespaces)
        and not any(n.startswith(r + ".") for r in real)
    ]
    top = [r for r in real if not any(r.startswith(other + ".") for other in real)]
    return sorted(top + bare)


def _entry_point_imports(distributions: Sequence[PythonDistribution], names: Sequence[str]) -> list[tuple[str, str]]:
    """``from module import function`` for the console scripts the metadata declares."""
    found: list[tuple[str, str]] = []
    roots = {n.split(".")[0] for n in names}
    for distribution in distributions:
        for _command, target in distribution.console_scripts:
            match = _ENTRY_POINT.match(target)
            if match is None or match["module"].split(".")[0] not in roots:
                continue
            pair = (match["module"], match["attr"])
            if pair not in found:
                found.append(pair)
    return found[:MAX_ENTRY_POINT_IMPORTS]


def _pip_check(distributions: Sequence[PythonDistribution], interpreter: PythonInterpreter) -> Candidate:
    names = ", ".join(f"{d.name} {d.version}".strip() for d in distributions)
    step, fallbacks = interpreter.steps("test/tw/pip-check")
    return Candidate(
        step=step,
        kind=CheckKind.LINKAGE,
        rationale=f"pip metadata for {names}: pip check must find every requirement installed",
        fallbacks=fallbacks,
    )


def _python_import(
    names: Sequence[str], from_imports: Sequence[tuple[str, str]], interpreter: PythonInterpreter
) -> Candidate:
    imports = render("structural-python-imports.j2", modules=names, from_imports=from_imports)
    step, fallbacks = interpreter.steps("python/import", imports=imports)
    scripts = f" and the console scripts' {', '.join(m + ':' + a for m, a in from_imports)}" if from_imports else ""
    return Candidate(
        step=step,
        kind=CheckKind.IMPORT,
        rationale=f"top-level modules {', '.join(names)}{scripts} must import",
        targets=("delete-python-module",),
        fallbacks=fallbacks,
    )


def ruby(analysis: Analysis) -> Iterable[Candidate]:
    """test/tw/gem-check for each gem, with the files ``require`` should load."""
    package_gem = _RUBY_PREFIX.sub("", analysis.package.name)
    for gem in analysis.facts.ruby_gems:
        requires = gem_requires(gem)
        if not requires:
            continue  # nothing a require can load: gem-check's require would fail
        default = gem.name.replace("-", "/")
        inputs: dict[str, str] = {}
        if gem.name != package_gem:
            # gem-check takes the gem name from this input, minus any rubyX.Y- prefix.
            inputs["package"] = gem.name
        if requires != [default]:
            inputs["require"] = with_list(requires)
        yield Candidate(
            step=_uses("test/tw/gem-check", **inputs),
            kind=CheckKind.IMPORT,
            rationale=f"gem {gem.name} {gem.version}: gem list must show it and ruby must require "
            + ", ".join(requires),
            targets=("delete-gem-file",),
        )


def gem_requires(gem: RubyGem) -> list[str]:
    """The gem's entry files: its top-level requirables, the conventional one first."""
    default = gem.name.replace("-", "/")
    top = [r for r in gem.requirables if "/" not in r]
    if default in gem.requirables and default not in top:
        top.insert(0, default)
    top.sort(key=lambda r: (r != default, r))
    return top[:MAX_GEM_REQUIRES]


def perl(analysis: Analysis) -> Iterable[Candidate]:
    modules = perl_modules(analysis.package.name, [m.name for m in analysis.facts.perl_modules])
    if not modules:
        return
    yield Candidate(
        step=_uses("test/perl-module-check", modules=with_list(modules)),
        kind=CheckKind.IMPORT,
        rationale=f"Perl modules {', '.join(modules)} must load with use",
        targets=("delete-perl-module",),
    )


def perl_modules(package: str, names: Sequence[str]) -> list[str]:
    """The modules to ``use``: the one the package is named after first, then the shallowest."""
    wanted = package.removeprefix("perl-").lower()

    def rank(name: str) -> tuple[bool, bool, int, str]:
        spelled = name.lower().replace("::", "-")
        return (spelled != wanted, not wanted.startswith(spelled.split("-")[0]), name.count("::"), name)

    return sorted(set(names), key=rank)[:MAX_PERL_MODULES]


def java(analysis: Analysis) -> Iterable[Candidate]:
    archives = analysis.facts.java_archives
    if not archives:
        return
    roots = {archive.path.split("/", 1)[0] for archive in archives}
    # test/jar-check searches /usr unless told otherwise; one search folder covers them all.
    step = _uses("test/jar-check") if roots == {"usr"} else _uses("test/jar-check", path="/" + _common_dir(archives))
    yield Candidate(
        step=step,
        kind=CheckKind.STRUCTURE,
        rationale=f"{_count(len(archives), 'Java archive')} must be sound zip files",
    )


def _common_dir(archives: Sequence[JavaArchive]) -> str:
    return posixpath.commonpath([posixpath.dirname(archive.path) for archive in archives])


# --------------------------------------------------------------------------- shells


def completions(analysis: Analysis) -> Iterable[Candidate]:
    """test/tw/shell-syntax-check for completions it can find (and the scripts it also parses)."""
    checked = [
        (c.path, shell)
        for c in analysis.facts.completions
        for shell, pattern in _SYNTAX_CHECKED_COMPLETIONS
        if c.shell == shell and pattern.match(c.path)
    ]
    if not checked:
        return
    scripts = [
        (s.path, s.shell)
        for s in analysis.facts.scripts
        if s.shell in _PARSING_SHELLS and s.path.startswith(_SCRIPT_DIRS)
    ]
    shells = {shell for _path, shell in checked} | {shell for _path, shell in scripts if shell}
    # bash comes with the pipeline; zsh and fish files need their shell in the image.
    packages = tuple(sorted(shells & {"zsh", "fish"}))
    files = sorted(path for path, _shell in checked)
    if len(checked) + len(scripts) == 1:
        step = _uses("test/tw/shell-syntax-check")  # its only file: dropping it fails the check
    else:
        step = _uses("test/tw/shell-syntax-check", files=with_list(["/" + path for path in files]))
    yield Candidate(
        step=step,
        kind=CheckKind.STRUCTURE,
        rationale=f"{'/'.join(sorted({s for _p, s in checked}))} completions {', '.join(files)} must parse",
        packages=packages,
        targets=("drop-completion",),
    )


# --------------------------------------------------------------------------- plain files


def listed_files(analysis: Analysis) -> Iterable[Candidate]:
    """Data, configuration and translations have no pipeline of their own in our library:
    check that the files the package is made of are installed."""
    if analysis.kind.primary not in (PackageKind.DATA, PackageKind.CONFIG, PackageKind.LOCALE):
        return
    files = sorted(e.path for e in analysis.entries if is_content(e) and e.kind in (EntryKind.FILE, EntryKind.HARDLINK))
    if not files:
        return
    shown = files[:MAX_LISTED_FILES]
    yield Candidate(
        step=_uses("test/tw/contains-files", files=with_list(["/" + path for path in shown])),
        kind=CheckKind.STRUCTURE,
        rationale=f"{analysis.kind.primary.value} package: {len(shown)} of its {len(files)} files must be installed",
        targets=("drop-data-file", "empty-package"),
    )


RULES: tuple[Callable[[Analysis], Iterable[Candidate]], ...] = (
    package_type,
    development,
    linkage,
    symlinks,
    python,
    ruby,
    perl,
    java,
    completions,
    listed_files,
)
