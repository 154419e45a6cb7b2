"""Operators that break what an interpreter loads: Python packages and modules, Perl
modules, the files a Ruby gem's ``require`` finds."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator

from qackage.model import PythonModule, PythonModuleKind, RubyGem
from qackage.validate.mutators.base import Delete, Edit, MutantSpec, Operator, Subject

_SPEC_PATH = re.compile(r"^(?P<root>.+)/specifications/(?:default/)?(?P<full>[^/]+)\.gemspec$")


def _importable_files(subject: Subject, directory: str, leaf: str) -> tuple[str, ...]:
    """Every file ``import`` could load ``leaf`` from in ``directory``: ``foo.py``,
    ``foo.pyc`` and ``foo.<abi tag>.so``, so deleting them all really removes it."""
    pattern = re.compile(rf"^{re.escape(leaf)}(?:\.[\w-]+)?\.(?:py|pyc|so)$")
    return tuple(p for p in subject.files_in(directory) if pattern.match(posixpath.basename(p)))


def _top_level_first(subject: Subject) -> list[PythonModule]:
    """Modules a distribution declares (top_level.txt) first, then by depth and name."""
    declared = {name for dist in subject.analysis.facts.python_distributions for name in dist.top_level}
    return sorted(
        subject.analysis.facts.python_modules,
        key=lambda m: (m.name not in declared, m.name.count("."), m.name, m.path),
    )


def _init_files(subject: Subject, module: PythonModule) -> tuple[str, ...]:
    return _importable_files(subject, module.path, "__init__")


def _module_files(subject: Subject, module: PythonModule) -> tuple[str, ...]:
    return _importable_files(subject, posixpath.dirname(module.path), module.name.rsplit(".", 1)[-1])


# --------------------------------------------------------------------------- python


def _find_python_init(subject: Subject) -> Iterator[MutantSpec]:
    seen: set[str] = set()
    for module in _top_level_first(subject):
        if module.kind is not PythonModuleKind.PACKAGE or module.name in seen or not _init_files(subject, module):
            continue
        seen.add(module.name)
        yield MutantSpec(
            "delete-python-init",
            module.name,
            f"__init__.py of the Python package {module.name} deleted: "
            "`import` finds an empty namespace package instead",
        )


def _plan_python_init(subject: Subject, spec: MutantSpec) -> Edit:
    files = [
        path
        for module in subject.analysis.facts.python_modules
        if module.name == spec.target and module.kind is PythonModuleKind.PACKAGE
        for path in _init_files(subject, module)
    ]
    return Edit(tuple(Delete(path) for path in sorted(set(files))))


_MODULE_KINDS = (PythonModuleKind.MODULE, PythonModuleKind.EXTENSION)


def _find_python_module(subject: Subject) -> Iterator[MutantSpec]:
    seen: set[str] = set()
    for module in _top_level_first(subject):
        if module.kind not in _MODULE_KINDS or module.name in seen or not _module_files(subject, module):
            continue
        seen.add(module.name)
        kind = "extension module" if module.kind is PythonModuleKind.EXTENSION else "module"
        yield MutantSpec("delete-python-module", module.name, f"Python {kind} {module.name} deleted ({module.path})")


def _plan_python_module(subject: Subject, spec: MutantSpec) -> Edit:
    files = [
        path
        for module in subject.analysis.facts.python_modules
        if module.name == spec.target and module.kind in _MODULE_KINDS
        for path in _module_files(subject, module)
    ]
    return Edit(tuple(Delete(path) for path in sorted(set(files))))


# --------------------------------------------------------------------------- perl


def _find_perl_module(subject: Subject) -> Iterator[MutantSpec]:
    # perl-foo-bar ships Foo::Bar: the module named after the package first, then the
    # shallow ones (Foo before Foo::Bar::Baz).
    own = subject.name.removeprefix("perl-").lower()
    modules = sorted(
        subject.analysis.facts.perl_modules,
        key=lambda m: (m.name.lower().replace("::", "-") != own, m.name.count("::"), m.name, m.path),
    )
    seen: set[str] = set()
    for module in modules:
        if module.name in seen or not subject.is_regular(module.path):
            continue
        seen.add(module.name)
        yield MutantSpec(
            "delete-perl-module", module.name, f"Perl module {module.name} deleted ({module.path}): `use` fails"
        )


def _plan_perl_module(subject: Subject, spec: MutantSpec) -> Edit:
    paths = {m.path for m in subject.analysis.facts.perl_modules if m.name == spec.target}
    return Edit(tuple(Delete(path) for path in sorted(paths) if subject.is_regular(path)))


# --------------------------------------------------------------------------- ruby


def _main_requirable(gem: RubyGem) -> list[str]:
    """What ``require`` a user of the gem writes first: its own name (``foo``,
    ``foo-bar`` -> ``foo/bar``), then the top-level files."""
    wanted = [gem.name, gem.name.replace("-", "/"), gem.name.replace("-", "_")]
    first = [name for name in wanted if name in gem.requirables]
    return list(dict.fromkeys(first + [r for r in gem.requirables if "/" not in r]))


def _gem_file(subject: Subject, gem: RubyGem, requirable: str) -> str | None:
    """The package file that ``require "<requirable>"`` loads from this gem."""
    match = _SPEC_PATH.match(gem.path)
    if match is None:
        return None
    gem_dir = f"{match['root']}/gems/{match['full']}"
    for require_path in gem.require_paths:
        for suffix in (".rb", ".so"):
            path = posixpath.normpath(f"{gem_dir}/{require_path}/{requirable}{suffix}")
            if subject.is_regular(path):
                return path
    return None


def _find_gem_file(subject: Subject) -> Iterator[MutantSpec]:
    for gem in subject.analysis.facts.ruby_gems:
        for requirable in _main_requirable(gem):
            path = _gem_file(subject, gem, requirable)
            if path is None:
                continue
            yield MutantSpec(
                "delete-gem-file",
                path,
                f'{path} deleted: `require "{requirable}"` of the gem {gem.name} fails',
            )
            break  # one file per gem; the next gem's main file is worth more than a second


def _plan_delete(_subject: Subject, spec: MutantSpec) -> Edit:
    return Edit((Delete(spec.target),))


OPERATORS = (
    Operator(
        "delete-python-init",
        "delete a Python package's __init__.py",
        _find_python_init,
        _plan_python_init,
    ),
    Operator(
        "delete-python-module",
        "delete a top-level Python module file",
        _find_python_module,
        _plan_python_module,
    ),
    Operator(
        "delete-perl-module",
        "delete a Perl module (.pm)",
        _find_perl_module,
        _plan_perl_module,
    ),
    Operator(
        "delete-gem-file",
        "delete the file `require` loads for a Ruby gem",
        _find_gem_file,
        _plan_delete,
    ),
)
