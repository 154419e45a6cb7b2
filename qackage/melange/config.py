"""A melange package file (or a bare ``test:`` fragment) as typed, frozen data.

    config = load_config(Path("hello.yaml"))
    stanza, context = config.test_for("hello-dev", arch="aarch64")

What melange does while *reading* a file happens here too: ``vars`` and
``var-transforms`` are resolved, subpackage names and dependencies are substituted
(``${{package.*}}``, ``${{vars.*}}``), ranged subpackages (``range:`` over a ``data:``
item) are expanded, one per item in sorted key order, and the build environment's
values get melange's parse-time replacement. Pipeline steps and ``test:`` stanzas keep
their ``${{...}}`` text; `qackage.validate.compile` substitutes them with the
`SubstitutionContext` that `MelangeConfig.test_for` returns.

Every key melange knows is accepted; the ones this model does not carry are listed in
``unmodelled`` fields (``update``, ``package.scriptlets`` ...) so nothing vanishes
unseen. ``test:`` stanzas are strict (see `qackage.melange.stanza`). Two deliberate
extensions: ``vars`` may use ``${{package.*}}`` and the vars above them, and each
``copyright`` entry must name its ``license``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from qackage.errors import InputError
from qackage.melange.fields import (
    Where,
    boolean,
    check_keys,
    mapping,
    optional_text,
    sequence,
    text_list,
    text_map,
    whole_number,
)
from qackage.melange.goregexp import compile_go, replace_all
from qackage.melange.stanza import parse_environment, parse_stanza, parse_steps
from qackage.melange.substitution import (
    SubstitutionContext,
    melange_build_environment,
    package_variables,
    replace_known,
    substitute,
)
from qackage.melange.yamltext import FloatText, load_yaml, read_yaml_file
from qackage.model import Stanza, Step, TestEnvironment

_TOP_KEYS = frozenset(
    {"package", "environment", "capabilities", "pipeline", "subpackages", "data", "update", "vars"}
    | {"var-transforms", "options", "test"}
)
_TOP_NOT_MODELLED = ("capabilities", "update")
_PACKAGE_KEYS = frozenset(
    {"name", "version", "epoch", "description", "url", "copyright", "dependencies", "options", "target-architecture"}
)
_PACKAGE_NOT_MODELLED = frozenset(
    {"annotations", "commit", "scriptlets", "checks", "cpe", "setcap", "timeout", "resources", "test-resources"}
)
_SUBPACKAGE_KEYS = frozenset(
    {"if", "range", "name", "pipeline", "dependencies", "options", "description", "url", "test"}
)
_SUBPACKAGE_NOT_MODELLED = frozenset({"scriptlets", "annotations", "commit", "checks", "setcap"})
_DEPENDENCY_KEYS = ("runtime", "provides", "replaces", "provider-priority", "replaces-priority")
_COPYRIGHT_KEYS = ("paths", "attestation", "license", "license-path", "detection-override")
_PACKAGE_NAME = re.compile(r"^[a-zA-Z\d][a-zA-Z\d+_.-]*$")


@dataclass(frozen=True, slots=True)
class Dependencies:
    runtime: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    replaces: tuple[str, ...] = ()
    provider_priority: int | None = None
    replaces_priority: int | None = None


@dataclass(frozen=True, slots=True)
class PackageOptions:
    no_provides: bool = False
    no_depends: bool = False
    no_commands: bool = False
    no_versioned_shlib_deps: bool = False


_OPTION_FIELDS = {
    "no-provides": "no_provides",
    "no-depends": "no_depends",
    "no-commands": "no_commands",
    "no-versioned-shlib-deps": "no_versioned_shlib_deps",
}


@dataclass(frozen=True, slots=True)
class Package:
    name: str
    version: str
    epoch: int = 0
    description: str = ""
    url: str = ""
    licenses: tuple[str, ...] = ()  # one per copyright entry
    dependencies: Dependencies = Dependencies()
    options: PackageOptions = PackageOptions()
    target_architecture: tuple[str, ...] = ()  # empty: every architecture
    # An unquoted version a YAML 1.1 reader (PyYAML, Ruby) takes for a float: 1.10 -> 1.1.
    # melange reads the text; other tools may not.
    version_needs_quotes: bool = False
    unmodelled: tuple[str, ...] = ()

    @property
    def full_version(self) -> str:
        return f"{self.version}-r{self.epoch}"

    @property
    def license(self) -> str:
        """melange joins the copyright entries into one SPDX expression."""
        return " AND ".join(self.licenses)


@dataclass(frozen=True, slots=True)
class Subpackage:
    name: str  # substituted (and range-expanded)
    index: int  # its position under `subpackages:` (several share one when ranged)
    description: str = ""
    url: str = ""
    dependencies: Dependencies = Dependencies()
    options: PackageOptions = PackageOptions()
    pipeline: tuple[Step, ...] = ()
    test: Stanza | None = None
    if_: str | None = None
    range_name: str | None = None
    range_key: str | None = None
    range_value: str | None = None
    unmodelled: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VarTransform:
    from_: str
    match: str
    replace: str
    to: str


@dataclass(frozen=True, slots=True)
class MelangeConfig:
    label: str  # what errors call the file
    package: Package | None  # None for a bare `test:` fragment
    test: Stanza | None = None
    subpackages: tuple[Subpackage, ...] = ()
    vars: tuple[tuple[str, str], ...] = ()  # resolved, var-transforms applied
    var_transforms: tuple[VarTransform, ...] = ()
    environment: TestEnvironment = TestEnvironment()  # the build environment, as melange reads it
    pipeline: tuple[Step, ...] = ()
    build_options: tuple[str, ...] = ()
    unmodelled: tuple[str, ...] = ()  # e.g. ("update", "environment.entrypoint")

    @property
    def package_names(self) -> tuple[str, ...]:
        main = (self.package.name,) if self.package else ()
        return main + tuple(sub.name for sub in self.subpackages)

    def subpackage(self, name: str) -> Subpackage | None:
        return next((sub for sub in self.subpackages if sub.name == name), None)

    def context(self, *, arch: str = "x86_64") -> SubstitutionContext:
        """The main package's substitution context."""
        if self.package is None:
            raise InputError(f"{self.label}: a bare 'test:' fragment has no package; name the package to test")
        return SubstitutionContext(
            package_name=self.package.name,
            package_version=self.package.version,
            package_epoch=self.package.epoch,
            package_description=self.package.description,
            arch=arch,
            vars=self.vars,
            package_names=self.package_names,
            build_options=self.build_options,
            base_environment=melange_build_environment(dict(self.environment.environment)),
            label=f"{self.label}: test",
        )

    def test_for(self, package_name: str, *, arch: str = "x86_64") -> tuple[Stanza | None, SubstitutionContext]:
        """The ``test:`` of the main package or of one subpackage, with its context."""
        if self.package is None:
            return self.test, SubstitutionContext(package_name=package_name, arch=arch, label=f"{self.label}: test")
        main = self.context(arch=arch)
        if package_name == self.package.name:
            return self.test, main
        sub = self.subpackage(package_name)
        if sub is None:
            names = ", ".join(self.package_names)
            raise InputError(f"{self.label}: no package named {package_name!r} (the file builds {names})")
        context = main.for_subpackage(
            sub.name,
            range_key=sub.range_key,
            range_value=sub.range_value,
            label=f"{self.label}: subpackages[{sub.index}].test",
        )
        return sub.test, context


def load_config(path: Path, label: str | None = None) -> MelangeConfig:
    """Read a melange file; errors name it by ``label`` (default: its file name)."""
    name = label or path.name
    return config_from_document(read_yaml_file(path, name), name)


def parse_config(text: str, label: str) -> MelangeConfig:
    return config_from_document(load_yaml(text, label), label)


def config_from_document(document: object, label: str) -> MelangeConfig:
    """Build the config from an already loaded document (`qackage.melange.yamltext`)."""
    where = Where(label)
    if document is None:
        raise InputError(f"{label}: the file is empty")
    if not isinstance(document, Mapping):
        raise InputError(f"{label}: the top level must be a mapping")
    top = mapping(document, where)
    if "package" not in top:
        if set(top) == {"test"}:
            return MelangeConfig(label=label, package=None, test=_stanza(top["test"], where.key("test")))
        raise InputError(f"{label}: no 'package:' section")
    check_keys(top, _TOP_KEYS, where)
    package = _package(top["package"], where.key("package"))
    variables = _variables(top, package, where)
    vars_ = tuple((key[5:], value) for key, value in variables.items() if key.startswith("vars."))
    package = _substituted(package, mapping(top["package"], where.key("package")), variables, where.key("package"))
    environment, environment_unmodelled = _build_environment(
        top.get("environment"), where.key("environment"), variables
    )
    subpackages = _subpackages(top, variables, where)
    _check_unique_names(package.name, subpackages, where)
    return MelangeConfig(
        label=label,
        package=package,
        test=_stanza(top.get("test"), where.key("test")),
        subpackages=subpackages,
        vars=vars_,
        var_transforms=_var_transforms(top.get("var-transforms"), where.key("var-transforms")),
        environment=environment,
        pipeline=parse_steps(top.get("pipeline"), where.key("pipeline")),
        build_options=tuple(mapping(top.get("options"), where.key("options"))),
        unmodelled=tuple(key for key in _TOP_NOT_MODELLED if key in top)
        + tuple(f"environment.{key}" for key in environment_unmodelled),
    )


# ---------------------------------------------------------------------------- package


def _package(value: object, where: Where) -> Package:
    package = mapping(value, where)
    check_keys(package, _PACKAGE_KEYS | _PACKAGE_NOT_MODELLED, where)
    name = _package_name(optional_text(package.get("name"), where.key("name")), where.key("name"))
    raw_version = package.get("version")
    version = optional_text(raw_version, where.key("version"))
    if version is None:
        raise where.key("version").invalid("is missing")
    epoch = 0 if package.get("epoch") is None else whole_number(package["epoch"], where.key("epoch"))
    return Package(
        name=name,
        version=version,
        epoch=epoch,
        description=optional_text(package.get("description"), where.key("description")) or "",
        url=optional_text(package.get("url"), where.key("url")) or "",
        licenses=_licenses(package.get("copyright"), where.key("copyright")),
        # Substituted once the variables are known (see _substituted).
        dependencies=Dependencies(),
        options=_options(package.get("options"), where.key("options")),
        target_architecture=text_list(package.get("target-architecture"), where.key("target-architecture")),
        version_needs_quotes=isinstance(raw_version, FloatText),
        unmodelled=tuple(key for key in package if key in _PACKAGE_NOT_MODELLED),
    )


def _package_name(name: str | None, where: Where) -> str:
    if name is None:
        raise where.invalid("is missing")
    if not _PACKAGE_NAME.match(name):
        raise where.invalid(f"{name!r} is not a valid package name")
    return name


def _licenses(value: object, where: Where) -> tuple[str, ...]:
    licenses: list[str] = []
    for index, item in enumerate(sequence(value, where)):
        entry = mapping(item, where.index(index))
        check_keys(entry, _COPYRIGHT_KEYS, where.index(index))
        license_ = optional_text(entry.get("license"), where.index(index).key("license"))
        if license_ is None:
            raise where.index(index).key("license").invalid("is missing")
        licenses.append(license_)
    return tuple(licenses)


def _options(value: object, where: Where) -> PackageOptions:
    options = mapping(value, where)
    check_keys(options, _OPTION_FIELDS, where)
    return PackageOptions(**{field: boolean(options.get(key), where.key(key)) for key, field in _OPTION_FIELDS.items()})


def _dependencies(value: object, variables: Mapping[str, str], where: Where) -> Dependencies:
    """Atoms are substituted strictly (melange errors on an unknown name here)."""
    dependencies = mapping(value, where)
    check_keys(dependencies, _DEPENDENCY_KEYS, where)

    def atoms(key: str) -> tuple[str, ...]:
        items = text_list(dependencies.get(key), where.key(key))
        return tuple(substitute(atom, variables, str(where.key(key).index(n))) for n, atom in enumerate(items))

    def priority(key: str) -> int | None:
        spelled = optional_text(dependencies.get(key), where.key(key))
        if spelled is None:
            return None
        try:
            return int(substitute(spelled, variables, str(where.key(key))))
        except ValueError:
            raise where.key(key).invalid("must be a number") from None

    return Dependencies(
        runtime=atoms("runtime"),
        provides=atoms("provides"),
        replaces=atoms("replaces"),
        provider_priority=priority("provider-priority"),
        replaces_priority=priority("replaces-priority"),
    )


# ---------------------------------------------------------------------------- variables


def _variables(top: Mapping[str, object], package: Package, where: Where) -> dict[str, str]:
    """package.* and vars.* as melange knows them while reading the file."""
    variables = package_variables(package.name, package.version, package.epoch, package.description, {})
    for key, value in text_map(top.get("vars"), where.key("vars")):
        variables[f"vars.{key}"] = substitute(value, variables, str(where.key("vars").key(key)))
    for index, transform in enumerate(_var_transforms(top.get("var-transforms"), where.key("var-transforms"))):
        at = where.key("var-transforms").index(index)
        source = substitute(transform.from_, variables, str(at.key("from")))
        try:
            regex = compile_go(transform.match)
        except InputError as exc:
            raise at.key("match").error(exc.message) from exc
        variables[f"vars.{transform.to}"] = replace_all(regex, source, transform.replace)
    return variables


def _var_transforms(value: object, where: Where) -> tuple[VarTransform, ...]:
    transforms: list[VarTransform] = []
    for index, item in enumerate(sequence(value, where)):
        at = where.index(index)
        fields = mapping(item, at)
        check_keys(fields, ("from", "match", "replace", "to"), at)
        required = {key: optional_text(fields.get(key), at.key(key)) for key in ("from", "match", "to")}
        for key, found in required.items():
            if found is None:
                raise at.key(key).invalid("is missing")
        transforms.append(
            VarTransform(
                from_=required["from"] or "",
                match=required["match"] or "",
                replace=optional_text(fields.get("replace"), at.key("replace")) or "",
                to=required["to"] or "",
            )
        )
    return tuple(transforms)


def _substituted(package: Package, fields: Mapping[str, object], variables: Mapping[str, str], where: Where) -> Package:
    """What melange substitutes in ``package:`` once the variables are known."""
    return replace(
        package,
        description=replace_known(package.description, variables),
        url=replace_known(package.url, variables),
        dependencies=_dependencies(fields.get("dependencies"), variables, where.key("dependencies")),
    )


def _build_environment(
    value: object, where: Where, variables: Mapping[str, str]
) -> tuple[TestEnvironment, tuple[str, ...]]:
    written, unmodelled = parse_environment(value, where, test=False)
    packages_at = where.key("contents").key("packages")
    environment = TestEnvironment(
        packages=tuple(
            substitute(package, variables, str(packages_at.index(n))) for n, package in enumerate(written.packages)
        ),
        repositories=tuple(replace_known(item, variables) for item in written.repositories),
        keyring=tuple(replace_known(item, variables) for item in written.keyring),
        environment=tuple((key, replace_known(item, variables)) for key, item in written.environment),
        accounts=written.accounts,
    )
    return environment, unmodelled


def _stanza(value: object, where: Where) -> Stanza | None:
    return None if value is None else parse_stanza(value, where)


# ---------------------------------------------------------------------------- subpackages


def _subpackages(top: Mapping[str, object], variables: Mapping[str, str], where: Where) -> tuple[Subpackage, ...]:
    data = _data(top.get("data"), where.key("data"))
    subpackages: list[Subpackage] = []
    for index, item in enumerate(sequence(top.get("subpackages"), where.key("subpackages"))):
        at = where.key("subpackages").index(index)
        fields = mapping(item, at)
        check_keys(fields, _SUBPACKAGE_KEYS | _SUBPACKAGE_NOT_MODELLED, at)
        range_name = optional_text(fields.get("range"), at.key("range"))
        raw_name = optional_text(fields.get("name"), at.key("name"))
        if raw_name is None:
            raise at.key("name").invalid("is missing")
        common = Subpackage(
            name=raw_name,
            index=index,
            options=_options(fields.get("options"), at.key("options")),
            pipeline=parse_steps(fields.get("pipeline"), at.key("pipeline")),
            test=_stanza(fields.get("test"), at.key("test")),
            if_=optional_text(fields.get("if"), at.key("if")),
            range_name=range_name,
            unmodelled=tuple(key for key in fields if key in _SUBPACKAGE_NOT_MODELLED),
        )
        if range_name is None:
            expansions: list[tuple[str | None, str | None]] = [(None, None)]
        elif range_name in data:
            # melange sorts the items' keys so the expansion order is stable.
            expansions = sorted(data[range_name].items())
        else:
            raise at.key("range").error(f"range {range_name!r} is not defined under 'data:'")
        for key, value in expansions:
            scope = dict(variables)
            if key is not None and value is not None:
                scope.update({"range.key": key, "range.value": value})
            subpackages.append(_expand(common, fields, scope, at, key, value))
    return tuple(subpackages)


def _expand(
    common: Subpackage,
    fields: Mapping[str, object],
    scope: Mapping[str, str],
    at: Where,
    range_key: str | None,
    range_value: str | None,
) -> Subpackage:
    name = _package_name(substitute(common.name, scope, str(at.key("name"))), at.key("name"))
    return Subpackage(
        name=name,
        index=common.index,
        description=replace_known(optional_text(fields.get("description"), at.key("description")) or "", scope),
        url=replace_known(optional_text(fields.get("url"), at.key("url")) or "", scope),
        dependencies=_dependencies(fields.get("dependencies"), scope, at.key("dependencies")),
        options=common.options,
        pipeline=common.pipeline,
        test=common.test,
        if_=common.if_,
        range_name=common.range_name,
        range_key=range_key,
        range_value=range_value,
        unmodelled=common.unmodelled,
    )


def _data(value: object, where: Where) -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = {}
    for index, item in enumerate(sequence(value, where)):
        at = where.index(index)
        fields = mapping(item, at)
        check_keys(fields, ("name", "items"), at)
        name = optional_text(fields.get("name"), at.key("name"))
        if name is None:
            raise at.key("name").invalid("is missing")
        data[name] = dict(text_map(fields.get("items"), at.key("items")))
    return data


def _check_unique_names(main: str, subpackages: tuple[Subpackage, ...], where: Where) -> None:
    seen = {main}
    for sub in subpackages:
        if sub.name in seen:
            raise where.key("subpackages").index(sub.index).error(f"package name {sub.name!r} is used twice")
        seen.add(sub.name)
