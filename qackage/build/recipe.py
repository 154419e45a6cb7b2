"""Read a melange build file into frozen data: the subset the fixture builder runs.

The file is read by `qackage.melange.config` (melange's own rules: strict keys,
``vars``/``var-transforms``, substituted names and dependencies); this module keeps what
the builder can honour and refuses the rest. Supported: ``package`` (name, version,
epoch, description, url, copyright, dependencies, options, target-architecture;
resources and timeouts are ignored), ``vars``, ``var-transforms``,
``environment.environment``, ``pipeline`` and ``subpackages`` whose steps are ``runs:``
blocks, and ``test``/``update`` (kept in the file, not run). melange features the
builder cannot honour (``uses:``, ``if:``, ranges, scriptlets ...) are errors that say
so, never ignored.

The ``runs:`` text stays raw because ``${{targets.*}}`` is only known when the build runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from qackage.errors import InputError
from qackage.melange.config import (
    Dependencies,
    MelangeConfig,
    Package,
    PackageOptions,
    Subpackage,
    config_from_document,
)
from qackage.melange.substitution import package_variables
from qackage.melange.yamltext import load_yaml
from qackage.model import Step as PipelineStep

# Re-exported: `qackage.build.autodeps` and the tests take the options from here.
__all__ = ["PackageOptions", "PackageSpec", "Recipe", "Step", "parse_recipe"]

_VERSION = re.compile(r"^[0-9][A-Za-z0-9._+~\-]*$")
# Keys melange reads that the builder ignores on purpose: they tune melange's own sandbox.
_IGNORED_PACKAGE_KEYS = frozenset({"resources", "test-resources", "timeout"})
_IGNORED_TOP_KEYS = frozenset({"update"})
# Checked on the raw document: `range` would be expanded (or rejected for a missing
# `data:` item) and `assertions` has no place in the typed step before we could refuse them.
_RAW_SUBPACKAGE_KEYS = ("range",)
_RAW_STEP_KEYS = ("assertions",)


@dataclass(frozen=True, slots=True)
class Step:
    """One ``runs:`` step. ``runs`` still holds its ``${{...}}`` expressions."""

    label: str  # the step's name, or "step N" when it has none
    runs: str
    working_directory: str = ""
    environment: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class PackageSpec:
    """The main package or one subpackage, metadata already substituted."""

    name: str
    description: str = ""
    url: str = ""
    runtime: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    replaces: tuple[str, ...] = ()
    provider_priority: int | None = None
    options: PackageOptions = field(default_factory=PackageOptions)
    pipeline: tuple[Step, ...] = ()


@dataclass(frozen=True, slots=True)
class Recipe:
    label: str  # where it came from, for messages ("base/glibc.yaml")
    version: str
    epoch: int
    license: str
    main: PackageSpec
    subpackages: tuple[PackageSpec, ...] = ()
    variables: tuple[tuple[str, str], ...] = ()  # package.* and vars.*, substituted
    environment: tuple[tuple[str, str], ...] = ()  # environment.environment
    target_architectures: tuple[str, ...] = ()  # empty: all

    @property
    def name(self) -> str:
        return self.main.name

    @property
    def full_version(self) -> str:
        return f"{self.version}-r{self.epoch}"

    @property
    def packages(self) -> tuple[PackageSpec, ...]:
        return (self.main, *self.subpackages)

    def builds_for(self, arch: str) -> bool:
        wanted = self.target_architectures
        return not wanted or "all" in wanted or arch in wanted


def parse_recipe(text: str, label: str) -> Recipe:
    """Parse the YAML text of a melange build file; every error names ``label``."""
    document = load_yaml(text, label)
    _refuse_raw_keys(document, label)
    config = config_from_document(document, label)
    package = config.package
    if package is None:
        raise InputError(f"{label}: no 'package:' section")
    _refuse_unsupported(config, package, label)
    _check_version(package, label)
    variables = package_variables(package.name, package.version, package.epoch, package.description, dict(config.vars))
    return Recipe(
        label=label,
        version=package.version,
        epoch=package.epoch,
        license=package.license,
        main=_spec(
            package.name,
            package.description,
            package.url,
            package.dependencies,
            package.options,
            config.pipeline,
            label,
            "package",
        ),
        subpackages=tuple(_subpackage(sub, label) for sub in config.subpackages),
        variables=tuple(variables.items()),
        environment=config.environment.environment,
        target_architectures=package.target_architecture,
    )


# -- what the builder refuses -----------------------------------------------------------


def _refuse_raw_keys(document: object, label: str) -> None:
    if not isinstance(document, Mapping):
        return  # the config parser reports the shape
    pipelines = [("package pipeline", document.get("pipeline"))]
    subpackages = document.get("subpackages")
    for index, item in enumerate(subpackages if isinstance(subpackages, list) else []):
        if not isinstance(item, Mapping):
            continue
        for key in _RAW_SUBPACKAGE_KEYS:
            if key in item:
                raise InputError(f"{label}: subpackages[{index}]: '{key}' is not supported by the fixture builder")
        pipelines.append((f"subpackages[{index}] pipeline", item.get("pipeline")))
    for where, steps in pipelines:
        for number, step in enumerate(steps if isinstance(steps, list) else [], 1):
            for key in _RAW_STEP_KEYS:
                if isinstance(step, Mapping) and key in step:
                    raise InputError(f"{label}: {where} step {number}: '{key}' is not supported by the fixture builder")


def _refuse_unsupported(config: MelangeConfig, package: Package, label: str) -> None:
    refused = [key for key in config.unmodelled if key not in _IGNORED_TOP_KEYS]
    refused += [f"package.{key}" for key in package.unmodelled if key not in _IGNORED_PACKAGE_KEYS]
    if config.build_options:
        refused.append("options")
    if refused:
        raise InputError(f"{label}: '{refused[0]}' is not supported by the fixture builder")
    for sub in config.subpackages:
        unsupported = [*sub.unmodelled, *(["if"] if sub.if_ is not None else [])]
        if unsupported:
            raise InputError(
                f"{label}: subpackages[{sub.index}]: '{sorted(unsupported)[0]}' is not supported by the fixture builder"
            )


def _check_version(package: Package, label: str) -> None:
    if package.version_needs_quotes:
        # YAML 1.1 tools read 1.10 as the float 1.1; melange keeps the text, so we insist on quotes.
        raise InputError(f"{label}: package.version {package.version} reads as a number: quote it")
    if not _VERSION.match(package.version) or "-r" in package.version:
        raise InputError(f"{label}: package.version {package.version!r} is not a valid apk version")


# -- pieces -----------------------------------------------------------------------------


def _subpackage(sub: Subpackage, label: str) -> PackageSpec:
    return _spec(sub.name, sub.description, sub.url, sub.dependencies, sub.options, sub.pipeline, label, sub.name)


def _spec(
    name: str,
    description: str,
    url: str,
    dependencies: Dependencies,
    options: PackageOptions,
    pipeline: tuple[PipelineStep, ...],
    label: str,
    where: str,
) -> PackageSpec:
    if options.no_versioned_shlib_deps:
        raise InputError(f"{label}: {where}.options: 'no-versioned-shlib-deps' is not supported by the fixture builder")
    return PackageSpec(
        name=name,
        description=description,
        url=url,
        runtime=dependencies.runtime,
        provides=dependencies.provides,
        replaces=dependencies.replaces,
        provider_priority=dependencies.provider_priority,
        options=options,
        pipeline=tuple(_step(step, label, f"{where} pipeline", number) for number, step in enumerate(pipeline, 1)),
    )


def _step(step: PipelineStep, label: str, where: str, number: int) -> Step:
    step_label = step.name or f"step {number}"
    present = {"if": step.if_ is not None, "pipeline": bool(step.pipeline), "uses": step.uses is not None}
    unsupported = sorted(key for key, found in present.items() if found)
    if unsupported:
        raise InputError(
            f"{label}: {where} step {step_label!r}: '{unsupported[0]}' is not supported by the fixture "
            "builder (write the commands in a 'runs:' block)"
        )
    if step.runs is None:
        raise InputError(f"{label}: {where} step {step_label!r} has no 'runs:'")
    return Step(
        label=step_label,
        runs=step.runs,
        working_directory=step.working_directory or "",
        environment=step.environment,
    )
