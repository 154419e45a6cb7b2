"""Perl: the modules a package puts on ``@INC``.

A Wolfi maintainer tests a Perl package with ``test/perl-module-check`` and a list of
``modules:`` (``perl -e "use Foo::Bar;"``). ``use Foo::Bar`` loads ``Foo/Bar.pm`` relative to
an ``@INC`` directory, so the module name is the path below one of those directories:

* ``usr/lib/perl5/{vendor_perl,site_perl,core_perl}/`` (Wolfi, Alpine), optionally followed
  by a version (``5.40``) and an architecture (``x86_64-linux-thread-multi``);
* ``usr/share/perl5/``, ``usr/share/perl/<version>/``, ``usr/lib/<triplet>/perl5/<version>/``
  (Debian) and the ``usr/local`` variants.

When the head of the file declares ``package Foo::Bar;`` and that name matches the end of the
path, it wins: it is what the author called the module and it confirms where ``@INC`` begins
even in a layout we do not know. An XS module has its shared object at
``auto/Foo/Bar/Bar.so`` below the same kind of directory.
"""

from __future__ import annotations

import re
from typing import ClassVar

from qackage.analyze.base import HEAD_BYTES, PackageView
from qackage.model import Entry, EntryKind, Facts, PerlModule

KIB = 1024
# Where to look for ``package`` when the first HEAD_BYTES do not hold it (a long licence
# comment or POD before the code). Beyond this the path alone names the module.
PACKAGE_SEARCH_BYTES = 32 * KIB

_ARCH = r"[A-Za-z0-9_]+-linux[\w.-]*"
_VERSION = r"\d+\.\d+(?:\.\d+)?"
_ROOT = re.compile(
    r"^(?:usr/(?:local/)?)"
    r"(?:"
    rf"lib(?:64)?/perl5(?:/(?:vendor_perl|site_perl|core_perl))?(?:/{_VERSION})?(?:/{_ARCH})?"
    rf"|share/perl5(?:/(?:vendor_perl|site_perl|core_perl))?(?:/{_VERSION})?"
    rf"|share/perl/{_VERSION}"
    rf"|lib(?:64)?/{_ARCH}/perl5?(?:/{_VERSION})?"
    r")/"
)
_IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")
_PACKAGE = re.compile(rb"^[ \t]*package[ \t]+([A-Za-z_]\w*(?:::\w+)*)[ \t]*(?:v?[\d._]+[ \t]*)?[;{]", re.M)


def module_relpath(path: str) -> str | None:
    """``usr/lib/perl5/vendor_perl/5.40/x86_64-linux/Foo/Bar.pm`` -> ``Foo/Bar.pm``."""
    match = _ROOT.match(path)
    return None if match is None else path[match.end() :]


def _path_name(relpath: str) -> str | None:
    parts = relpath.removesuffix(".pm").split("/")
    if parts[0] == "auto" or not all(_IDENTIFIER.match(part) for part in parts):
        return None
    return "::".join(parts)


def declared_packages(text: bytes) -> tuple[str, ...]:
    """Names of the ``package`` statements in ``text``, in order."""
    return tuple(match.group(1).decode("ascii") for match in _PACKAGE.finditer(text))


def module_name(path: str, relpath: str, head: bytes) -> str | None:
    """The name ``use`` takes for the module at ``path``, or None if it has none."""
    from_path = _path_name(relpath)
    if from_path is None:
        return None
    components = path.removesuffix(".pm").split("/")
    for declared in declared_packages(head):
        parts = declared.split("::")
        if components[-len(parts) :] == parts:
            return declared
    return from_path


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
        name = module_name(path, relpath, view.contents.get(path, b""))
        if name is not None:
            modules.add(PerlModule(name=name, path=path, has_xs=name in with_xs))
    return tuple(sorted(modules, key=lambda m: (m.name, m.path)))


class PerlFacet:
    """Perl modules below the ``@INC`` directories distributions use."""

    name: ClassVar[str] = "perl"

    def capture(self, entry: Entry, head: bytes) -> int:
        if not entry.path.endswith(".pm") or module_relpath(entry.path) is None:
            return 0
        declaration = _PACKAGE.search(head)
        if declaration is not None:
            return declaration.end()  # all we need is that first statement
        return min(entry.size, PACKAGE_SEARCH_BYTES if len(head) >= HEAD_BYTES else len(head))

    def analyze(self, view: PackageView, earlier: Facts) -> Facts:
        return Facts(perl_modules=find_modules(view))
