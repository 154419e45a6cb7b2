"""Put candidate steps together into one ``test:`` stanza, the way a maintainer orders it.

Order: what the package is (empty, meta, docs, static, -dev layout, pkg-config), then
whether its code loads (pip, imports, gems, Perl modules, jars, ldd), its links, headers
and shell files, then version and help, then functional checks in the order they were
proposed. The conventional pipelines' relative order is the one the Wolfi catalog uses
most (``test/tw/devpackage`` before ``test/pkgconf`` before ``test/tw/ldd-check``,
``test/tw/pip-check`` before ``python/import``, ``ver-check`` before ``help-check`` ...).

The test environment gets every package a step asked for, sorted and de-duplicated,
minus what wolfi-dev/os's lint.sh deletes (wolfi-base, busybox, apk-tools, wolfi-keys and
the package itself: the test image has them anyway). Names of the origin's family are
written with ``${{package.name}}`` (``hello-dev`` -> ``${{package.name}}-dev``), as
maintainers write them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from qackage.model import Candidate, CheckKind, Stanza, Step, TestEnvironment

# What wolfi-dev/os's lint.sh deletes from test.environment.contents.packages.
LINT_DROPPED = frozenset({"wolfi-base", "busybox", "apk-tools", "wolfi-keys"})
PACKAGE_NAME = "${{package.name}}"
# Always the package under test, in a test environment or an input.
_SELF_REFERENCES = frozenset({"${{context.name}}", "${{subpkg.name}}"})

# The conventional pipelines in the order maintainers write them.
PIPELINE_ORDER: tuple[str, ...] = (
    "test/emptypackage",
    "test/tw/emptypackage",
    "test/metapackage",
    "test/tw/metapackage",
    "test/docs",
    "test/tw/docs",
    "test/tw/staticpackage",
    "test/tw/devpackage",
    "test/pkgconf",
    "test/tw/pip-check",
    "python/import",
    "test/tw/gem-check",
    "test/tw/ldd-check",
    "test/ldd-check",
    "test/perl-module-check",
    "test/jar-check",
    "test/tw/symlink-check",
    "test/tw/header-check",
    "test/tw/shell-syntax-check",
    "test/tw/contains-files",
    "test/tw/ver-check",
    "test/tw/help-check",
)
_RANK = {uses: number for number, uses in enumerate(PIPELINE_ORDER)}
# Steps of other kinds, by what they prove: layout and loading first, behaviour last.
_KIND_GROUP = {
    CheckKind.STRUCTURE: 0,
    CheckKind.IMPORT: 0,
    CheckKind.LINKAGE: 0,
    CheckKind.VERSION: 1,
    CheckKind.HELP: 2,
    CheckKind.FUNCTIONAL: 3,
}
# Inputs that name the package under test and default to it (${{context.name}}).
_PACKAGE_INPUTS = {
    "test/tw/ldd-check": "packages",
    "test/tw/symlink-check": "packages",
    "test/tw/header-check": "packages",
    "test/tw/gem-check": "package",
    "test/tw/no-docs": "package",
    "test/tw/configpackage": "package",
}


def assemble(candidates: Sequence[Candidate], *, package: str, origin: str | None = None) -> Stanza:
    """The stanza for ``package`` (a subpackage of ``origin`` when they differ)."""
    ordered = sorted(enumerate(candidates), key=lambda item: (*_position(item[1]), item[0]))
    steps: list[Step] = []
    for _index, candidate in ordered:
        step = _templated_inputs(candidate.step, package, origin)
        if step in steps:  # two proposers may suggest the same check
            continue
        merged = _merged_imports(steps, step)
        if merged is None:
            steps.append(step)
    wanted = [name for candidate in candidates for name in candidate.packages]
    return Stanza(
        pipeline=tuple(steps),
        environment=TestEnvironment(packages=environment_packages(wanted, package=package, origin=origin)),
    )


def _merged_imports(steps: list[Step], step: Step) -> Step | None:
    """Fold a second unnamed ``python/import`` step into an earlier one for the same
    interpreter, as one ``imports:`` block a maintainer would write. Returns the merged
    step (already placed in ``steps``) or None when there is nothing to merge with."""
    if step.uses != "python/import" or step.name or set(dict(step.with_)) - {"imports", "python"}:
        return None
    for index, earlier in enumerate(steps):
        if earlier.uses != "python/import" or earlier.name or set(dict(earlier.with_)) - {"imports", "python"}:
            continue
        ours, theirs = dict(step.with_), dict(earlier.with_)
        if ours.get("python") != theirs.get("python"):
            continue
        lines = [*theirs.get("imports", "").splitlines(), *ours.get("imports", "").splitlines()]
        imports = "\n".join(dict.fromkeys(line for line in lines if line.strip())) + "\n"
        merged = dataclasses.replace(earlier, with_=tuple({**theirs, "imports": imports}.items()))
        steps[index] = merged
        return merged
    return None


def _position(candidate: Candidate) -> tuple[int, int]:
    """(kind group, rank in the conventional order); unknown pipelines after known ones."""
    group = _KIND_GROUP[candidate.kind]
    uses = candidate.step.uses
    if candidate.kind is CheckKind.FUNCTIONAL or uses is None:
        return group, len(_RANK)
    return group, _RANK.get(uses, len(_RANK))


def environment_packages(names: Sequence[str], *, package: str, origin: str | None = None) -> tuple[str, ...]:
    """``test.environment.contents.packages``: sorted, unique, without what the test image
    has anyway, the origin's family spelled with ``${{package.name}}``."""
    kept: set[str] = set()
    for name in names:
        spelled = _templated_name(name.strip(), origin)
        if not spelled or spelled in LINT_DROPPED or spelled in _SELF_REFERENCES or name == package:
            continue
        if spelled == PACKAGE_NAME and (origin is None or origin == package):
            continue  # ${{package.name}} is the package itself in a main package's test
        kept.add(spelled)
    return tuple(sorted(kept))


def _templated_name(name: str, origin: str | None) -> str:
    if origin is None:
        return name
    if name == origin:
        return PACKAGE_NAME
    if name.startswith(origin + "-"):
        return PACKAGE_NAME + name[len(origin) :]
    return name


def _templated_inputs(step: Step, package: str, origin: str | None) -> Step:
    """Leave out a package input that names the package under test (its default), and
    name the origin as ``${{package.name}}`` in a subpackage's test."""
    key = _PACKAGE_INPUTS.get(step.uses or "")
    if key is None or not any(k == key for k, _value in step.with_):
        return step
    inputs: list[tuple[str, str]] = []
    for name, value in step.with_:
        if name != key:
            inputs.append((name, value))
        elif value != package and value not in _SELF_REFERENCES:
            inputs.append((name, PACKAGE_NAME if origin is not None and value == origin else value))
    return dataclasses.replace(step, with_=tuple(inputs))
