"""Perl: the modules a package puts on ``@INC``.

A Wolfi maintainer tests a Perl package with ``test/perl-module-check`` and a list of
``modules:`` (``perl -e "use Foo::Bar;"``). ``use Foo::Bar`` loads ``Foo/Bar.pm`` relative to
an ``@INC`` directory, so the module name is the path below one of those directories:

* ``usr/lib/perl5/{vendor_perl,site_perl,core_perl}/`` (Wolfi, Alpine), optionally followed
  by a version (``5.40``) and an architecture (``x86_64-linux-thread-multi``);
* ``usr/share/perl5/``, ``usr/share/perl/<version>/``, ``usr/lib/<triplet>/perl{,5,-base}/``
  (Debian) and the ``usr/local`` variants, ``usr/local/lib/site_perl`` among them.

Below a root we know, the path names the module (``use`` maps names to paths). Where an
unknown directory sits in between, the file's ``package Foo::Bar;`` declaration that matches
the end of the path names it instead. An XS module has its shared object at
``auto/Foo/Bar/Bar.so`` below the same kind of directory.
"""

from __future__ import annotations

import re
from typing import ClassVar

from qackage.analyze.base import HEAD_BYTES, PackageView
from qackage.model import Entry, EntryKind, Facts, PerlModule

KIB = 1024
# How far to look for ``package`` when the first HEAD_BYTES do not hold it (a long licence
# comment or POD before the code). Only needed for files below an unknown directory.
PACKAGE_SEARCH_BYTES = 32 * KIB

_ARCH = r"[A-Za-z0-9_]+-linux[\w.-]*"
_VERSION = r"\d+\.\d+(?:\.\d+)?"
_ROOT = re.compile(
    r"^(?:usr/(?:local/)?)"
    r"(?:"
    rf"lib(?:64)?/perl5(?:/(?:vendor_perl|site_perl|core_perl))?(?:/{_VERSION})?(?:/{_ARCH})?"
    rf"|share/perl5(?:/(?:vendor_perl|site_perl|core_perl))?(?:/{_VERSION})?"
    rf"|share/perl/{_VERSION}"
    rf"|lib(?:64)?/{_ARCH}/perl(?:5|-base)?(?:/{_VERSION})?"
    rf"|lib/site_perl(?:/{_VERSION})?(?:/{_ARCH})?"
    r")/"
)
_IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")
_PACKAGE = re.compile(rb"^[ \t]*package[ \t]+([A-Za-z_]\w*(?:::\w+)*)[ \t]*(?:v?[\d._]+[ \t]*)?[;{]", re.M)


def module_relpath(path: str) -> str | None:
    """``usr/lib/perl5/vendor_perl/5.40/x86_64-linux/Foo/Bar.pm`` -> ``Foo/Bar.pm``."""
    match = _ROOT.match(path)
    return None if match is None else path[match.end() :]


def _path_parts(relpath: str) -> list[str] | None:
    parts = relpath.removesuffix(".pm").split("/")
    return None if parts[0] == "auto" else parts


def declared_packages(text: bytes) -> tuple[str, ...]:
    """Names of the ``package`` statements in ``text``, in order."""
    return tuple(match.group(1).decode("ascii") for match in _PACKAGE.finditer(text))


def module_name(relpath: str, head: bytes) -> str | None:
    """The name ``use`` takes for the module at ``relpath`` (below a recognised root).

    ``use`` resolves names to paths, so a path made of identifiers names the module even
    when the file declares some other package. When a directory we do not know sits in
    between (``5.40.0-custom/Foo/Bar.pm``), the declared package that matches the end of
    the path tells where ``@INC`` really starts.
    """
    parts = _path_parts(relpath)
    if parts is None:
        return None
    if all(_IDENTIFIER.match(part) for part in parts):
        return "::".join(parts)
    for declared in declared_packages(head):
        names = declared.split("::")
        if parts[-len(names) :] == names:
            return declared
    return None


def xs_modules(paths: list[str]) -> frozenset[str]:
    """Modules with a shared object at ``auto/Foo/Bar/Bar.so`` below an ``@INC`` root."""
    found: set[str] = set()
    for path in paths:
        relpath = module_relpath(path) if path.endswith(".so") else None
        if relpath is None or not relpath.startswith("auto/"):
            continue
        *dirs, filename = relpath.split("/")[1:]
        if dirs and filename == f"{dirs[-1]}.so" and all(_IDENTIFIER.match(d) for d in dirs):
            found.add("::".join(dirs))
    return frozenset(found)


def find_modules(view: PackageView) -> tuple[PerlModule, ...]:
    paths = [e.path for e in view.entries if e.kind is not EntryKind.DIR]
    with_xs = xs_modules(paths)
    modules: set[PerlModule] = set()
    for path in paths:
        if not path.endswith(".pm"):
            continue
        relpath = module_relpath(path)
        if relpath is None:
            continue
        name = module_name(relpath, view.contents.get(path, b""))
        if name is not None:
            modules.add(PerlModule(name=name, path=path, has_xs=name in with_xs))
    return tuple(sorted(modules, key=lambda m: (m.name, m.path)))


class PerlFacet:
    """Perl modules below the ``@INC`` directories distributions use."""

    name: ClassVar[str] = "perl"

    def capture(self, entry: Entry, head: bytes) -> int:
        relpath = module_relpath(entry.path) if entry.path.endswith(".pm") else None
        parts = None if relpath is None else _path_parts(relpath)
        if parts is None or all(_IDENTIFIER.match(part) for part in parts):
            return 0  # not a module, or the path alone names it
        declarations = list(_PACKAGE.finditer(head))
        if declarations:
            return declarations[-1].end()  # the statements are all we read
        return min(entry.size, PACKAGE_SEARCH_BYTES if len(head) >= HEAD_BYTES else len(head))

    def analyze(self, view: PackageView, earlier: Facts) -> Facts:
        return Facts(perl_modules=find_modules(view))
