"""Read a melange build file into frozen data: the subset the fixture builder runs.

Supported: ``package`` (name, version, epoch, description, url, copyright, dependencies,
options, target-architecture), ``vars``, ``environment.environment``, ``pipeline`` and
``subpackages`` whose steps are ``runs:`` blocks, and ``test``/``update`` (kept in the file,
not run). Unknown keys are errors, as in melange's strict decode; melange features the
builder cannot honour (``uses:``, ``if:``, ranges) are errors that say so, never ignored.

Package metadata is substituted here (``${{package.*}}`` and ``${{vars.*}}``); the
``runs:`` text stays raw because ``${{targets.*}}`` is only known when the build runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from qackage.build.substitute import package_variables, substitute
from qackage.errors import InputError

_TOP_KEYS = frozenset({"package", "environment", "vars", "pipeline", "subpackages", "test", "update"})
_PACKAGE_KEYS = frozenset(
    {
        "name",
        "version",
        "epoch",
        "description",
        "url",
        "copyright",
        "dependencies",
        "options",
        "target-architecture",
        "resources",
        "test-resources",
        "timeout",
    }
)
# The build environment's packages are for melange's build image; the builder uses the host.
_ENVIRONMENT_KEYS = frozenset({"contents", "environment", "accounts"})
_SUBPACKAGE_KEYS = frozenset({"name", "description", "url", "dependencies", "options", "pipeline", "test"})
_DEPENDENCY_KEYS = frozenset({"runtime", "provides", "replaces", "provider-priority"})
_OPTION_KEYS = {"no-provides": "no_provides", "no-depends": "no_depends", "no-commands": "no_commands"}
_STEP_KEYS = frozenset({"name", "runs", "working-directory", "environment", "needs", "label"})
# Real melange keys the builder deliberately does not implement: named so the error is clear.
_UNSUPPORTED_STEP_KEYS = frozenset({"uses", "with", "if", "pipeline", "assertions"})
_UNSUPPORTED_SUBPACKAGE_KEYS = frozenset({"if", "range", "checks", "scriptlets", "commit"})
_PACKAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+_.\-]*$")
_VERSION = re.compile(r"^[0-9][A-Za-z0-9._+~\-]*$")


@dataclass(frozen=True, slots=True)
class Step:
    """One ``runs:`` step. ``runs`` still holds its ``${{...}}`` expressions."""

    label: str  # the step's name, or "step N" when it has none
    runs: str
    working_directory: str = ""
    environment: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class PackageOptions:
    no_provides: bool = False
    no_depends: bool = False
    no_commands: bool = False


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
    options: PackageOptions = PackageOptions()
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
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise InputError(f"{label}: not valid YAML{where}: {problem}") from exc
    top = _mapping(document, label, "the file")
    _check_keys(top, _TOP_KEYS, label, "top level")
    if "package" not in top:
        raise InputError(f"{label}: no 'package:' section")
    package = _mapping(top["package"], label, "package")
    _check_keys(package, _PACKAGE_KEYS, label, "package")

    name = _required_string(package, "name", label, "package")
    version = _version(package.get("version"), label)
    epoch = _epoch(package.get("epoch", 0), label)
    description = _string(package.get("description", ""), label, "package.description")
    raw_vars = {
        key: _scalar(value, label, f"vars.{key}") for key, value in _mapping(top.get("vars", {}), label, "vars").items()
    }
    base = package_variables(name, version, epoch, description, {})
    # vars may use package.* (melange allows "${{package.version}}" in a var).
    extra_vars = {key: substitute(value, base, f"{label}: vars.{key}") for key, value in raw_vars.items()}
    variables = package_variables(name, version, epoch, description, extra_vars)

    main = _package_spec(package, top.get("pipeline", []), variables, label, "package", main=True)
    subpackages = tuple(
        _subpackage(item, variables, label, index)
        for index, item in enumerate(_sequence(top.get("subpackages", []), label, "subpackages"))
    )
    names = [spec.name for spec in (main, *subpackages)]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"{label}: package name {duplicates[0]!r} is used twice")
    environment = _mapping(top.get("environment", {}), label, "environment")
    _check_keys(environment, _ENVIRONMENT_KEYS, label, "environment")
    build_env = _string_map(environment.get("environment", {}), label, "environment.environment")
    return Recipe(
        label=label,
        version=version,
        epoch=epoch,
        license=_license(package.get("copyright", []), label),
        main=main,
        subpackages=subpackages,
        variables=tuple(variables.items()),
        environment=tuple(build_env.items()),
        target_architectures=tuple(
            _string(a, label, "package.target-architecture")
            for a in _sequence(package.get("target-architecture", []), label, "package.target-architecture")
        ),
    )


# -- pieces -----------------------------------------------------------------------------


def _subpackage(item: object, variables: Mapping[str, str], label: str, index: int) -> PackageSpec:
    where = f"subpackages[{index}]"
    spec = _mapping(item, label, where)
    unsupported = sorted(set(spec) & _UNSUPPORTED_SUBPACKAGE_KEYS)
    if unsupported:
        raise InputError(f"{label}: {where}: '{unsupported[0]}' is not supported by the fixture builder")
    _check_keys(spec, _SUBPACKAGE_KEYS, label, where)
    return _package_spec(spec, spec.get("pipeline", []), variables, label, where, main=False)


def _package_spec(
    spec: Mapping[str, Any],
    pipeline: object,
    variables: Mapping[str, str],
    label: str,
    where: str,
    *,
    main: bool,
) -> PackageSpec:
    def sub(value: str, field: str) -> str:
        return substitute(value, variables, f"{label}: {where}.{field}")

    name = sub(_required_string(spec, "name", label, where), "name")
    if not _PACKAGE_NAME.match(name):
        raise InputError(f"{label}: {where}.name {name!r} is not a valid package name")
    where = "package" if main else name
    deps = _mapping(spec.get("dependencies", {}), label, f"{where}.dependencies")
    _check_keys(deps, _DEPENDENCY_KEYS, label, f"{where}.dependencies")
    priority = deps.get("provider-priority")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int | str)):
        raise InputError(f"{label}: {where}.dependencies.provider-priority must be a number")
    try:
        provider_priority = None if priority is None else int(priority)
    except ValueError:
        raise InputError(f"{label}: {where}.dependencies.provider-priority must be a number") from None

    def atoms(key: str) -> tuple[str, ...]:
        items = _sequence(deps.get(key, []), label, f"{where}.dependencies.{key}")
        return tuple(sub(_string(item, label, f"{where}.dependencies.{key}"), f"dependencies.{key}") for item in items)

    return PackageSpec(
        name=name,
        description=sub(_string(spec.get("description", ""), label, f"{where}.description"), "description"),
        url=sub(_string(spec.get("url", ""), label, f"{where}.url"), "url"),
        runtime=atoms("runtime"),
        provides=atoms("provides"),
        replaces=atoms("replaces"),
        provider_priority=provider_priority,
        options=_options(spec.get("options", {}), label, where),
        pipeline=tuple(
            _step(item, label, f"{where} pipeline", number)
            for number, item in enumerate(_sequence(pipeline, label, f"{where}.pipeline"), 1)
        ),
    )


def _step(item: object, label: str, where: str, number: int) -> Step:
    step = _mapping(item, label, f"{where} step {number}")
    step_label = _string(step.get("name", f"step {number}"), label, f"{where} step {number} name")
    unsupported = sorted(set(step) & _UNSUPPORTED_STEP_KEYS)
    if unsupported:
        raise InputError(
            f"{label}: {where} step {step_label!r}: '{unsupported[0]}' is not supported by the fixture "
            "builder (write the commands in a 'runs:' block)"
        )
    _check_keys(step, _STEP_KEYS, label, f"{where} step {step_label!r}")
    if "runs" not in step:
        raise InputError(f"{label}: {where} step {step_label!r} has no 'runs:'")
    return Step(
        label=step_label,
        runs=_string(step["runs"], label, f"{where} step {step_label!r} runs"),
        working_directory=_string(step.get("working-directory", ""), label, "working-directory"),
        environment=tuple(_string_map(step.get("environment", {}), label, f"step {step_label!r} environment").items()),
    )


def _options(value: object, label: str, where: str) -> PackageOptions:
    options = _mapping(value, label, f"{where}.options")
    _check_keys(options, frozenset(_OPTION_KEYS), label, f"{where}.options")
    flags: dict[str, bool] = {}
    for key, field in _OPTION_KEYS.items():
        flag = options.get(key, False)
        if not isinstance(flag, bool):
            raise InputError(f"{label}: {where}.options.{key} must be true or false")
        flags[field] = flag
    return PackageOptions(**flags)


def _license(value: object, label: str) -> str:
    licenses: list[str] = []
    for index, item in enumerate(_sequence(value, label, "package.copyright")):
        entry = _mapping(item, label, f"package.copyright[{index}]")
        licenses.append(_required_string(entry, "license", label, f"package.copyright[{index}]"))
    # melange joins several copyright entries into one SPDX expression.
    return " AND ".join(licenses)


def _version(value: object, label: str) -> str:
    if isinstance(value, float):
        # YAML reads 1.10 as the float 1.1; melange keeps the text, so we insist on quotes.
        raise InputError(f"{label}: package.version {value!r} reads as a number: quote it")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise InputError(f"{label}: package.version is missing")
    if not _VERSION.match(value) or "-r" in value:
        raise InputError(f"{label}: package.version {value!r} is not a valid apk version")
    return value


def _epoch(value: object, label: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"{label}: package.epoch must be a whole number >= 0")
    return value


def _check_keys(mapping: Mapping[str, Any], allowed: frozenset[str], label: str, where: str) -> None:
    unknown = sorted(str(key) for key in mapping if key not in allowed)
    if unknown:
        raise InputError(f"{label}: {where}: unknown key {unknown[0]!r}")


def _mapping(value: object, label: str, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{label}: {where} must be a mapping")
    return {str(key): item for key, item in value.items()}


def _sequence(value: object, label: str, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(f"{label}: {where} must be a list")
    return value


def _string(value: object, label: str, where: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{label}: {where} must be text")
    return value


def _scalar(value: object, label: str, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InputError(f"{label}: {where} must be text")
    return str(value)


def _required_string(mapping: Mapping[str, Any], key: str, label: str, where: str) -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{label}: {where}.{key} is missing")
    return value.strip()


def _string_map(value: object, label: str, where: str) -> dict[str, str]:
    return {key: _scalar(item, label, f"{where}.{key}") for key, item in _mapping(value, label, where).items()}
