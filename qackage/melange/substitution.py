"""melange's ``${{name}}`` substitution, and the variables a test can name.

Two passes, as in melange:

* **Parse time** (`replace_known`): melange replaces the exact text ``${{package.*}}``,
  ``${{vars.*}}`` (and ``${{range.*}}`` in ranged subpackages) throughout the file as
  it reads it, leaving anything else alone.
* **Compile time** (`substitute`): every remaining ``${{name}}`` must name a known
  variable - ``variable X not defined`` otherwise. Whitespace inside the braces is
  allowed (``${{ package.name }}``).

`SubstitutionContext` holds what a test's variables are made of; its `variables` are
the names melange offers while compiling a test (reference: melange-tests.md §3).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from qackage.errors import InputError
from qackage.model import PackageInfo

WORKSPACE = "/home/build"
OUTPUT_DIR = f"{WORKSPACE}/melange-out"

# melange sets these in the build environment when the file leaves them empty; the
# test container starts from the build environment (config.go, "setIfEmpty").
DEFAULT_BUILD_ENVIRONMENT: tuple[tuple[str, str], ...] = (
    ("HOME", WORKSPACE),
    ("GOPATH", f"{WORKSPACE}/.cache/go"),
    ("GOMODCACHE", "/var/cache/melange/gomodcache"),
    ("UV_CACHE_DIR", "/var/cache/melange/uv"),
    ("PIP_CACHE_DIR", "/var/cache/melange/pip"),
    ("COMPOSER_CACHE_DIR", "/var/cache/melange/composer"),
    ("npm_config_cache", "/var/cache/melange/npm"),
)


@dataclass(frozen=True, slots=True)
class Architecture:
    apk: str  # what ${{build.arch}} says
    go: str  # ${{build.goarch}}
    gnu_prefix: str  # host.triplet.gnu without its libc suffix
    rust_prefix: str


_ARCHITECTURES = {
    arch.apk: arch
    for arch in (
        Architecture("x86_64", "amd64", "x86_64-pc-linux-", "x86_64-unknown-linux-"),
        Architecture("aarch64", "arm64", "aarch64-unknown-linux-", "aarch64-unknown-linux-"),
        Architecture("x86", "386", "i486-pc-linux-", "i686-unknown-linux-"),
        Architecture("ppc64le", "ppc64le", "powerpc64le-unknown-linux-", "powerpc64le-unknown-linux-"),
        Architecture("s390x", "s390x", "s390x-ibm-linux-", "s390x-unknown-linux-"),
        Architecture("riscv64", "riscv64", "riscv64-unknown-linux-", "riscv64-unknown-linux-"),
    )
}
_ARCH_ALIASES = {arch.go: arch.apk for arch in _ARCHITECTURES.values()}


def architecture(name: str) -> Architecture:
    """An architecture by its apk name (x86_64) or its Go name (amd64)."""
    found = _ARCHITECTURES.get(_ARCH_ALIASES.get(name, name))
    if found is None:
        known = ", ".join(sorted(_ARCHITECTURES))
        raise InputError(f"unknown architecture {name!r} (known: {known})")
    return found


# ---------------------------------------------------------------------------- substitution

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")
_WHITESPACE = " \t\n\r"
_EXACT = re.compile(r"\$\{\{([A-Za-z0-9_.\-]+)\}\}")


def substitute(text: str, variables: Mapping[str, str], where: str, *, quote: bool = False) -> str:
    """Replace every ``${{name}}`` in ``text``; ``where`` starts every error message.

    ``quote`` wraps each value in double quotes, as melange does for ``if:`` expressions
    so that a value compares as one string literal.
    """
    if "${{" not in text:
        return text
    parts: list[str] = []
    position = 0
    while True:
        start = text.find("${{", position)
        if start < 0:
            parts.append(text[position:])
            return "".join(parts)
        parts.append(text[position:start])
        cursor = start + 3
        while cursor < len(text) and text[cursor] in _WHITESPACE:
            cursor += 1
        name_start = cursor
        while cursor < len(text) and text[cursor] in _NAME_CHARS:
            cursor += 1
        name = text[name_start:cursor]
        while cursor < len(text) and text[cursor] in _WHITESPACE:
            cursor += 1
        if not name or not text.startswith("}}", cursor):
            snippet = text[start : start + 40].splitlines()[0]
            raise InputError(f"{where}: malformed substitution {snippet!r}")
        try:
            value = variables[name]
        except KeyError:
            raise InputError(f"{where}: variable {name} not defined") from None
        parts.append(quote_for_condition(value) if quote else value)
        position = cursor + 2


def replace_known(text: str, variables: Mapping[str, str]) -> str:
    """melange's parse-time pass: exact ``${{name}}`` for known names only, no errors."""
    if "${{" not in text:
        return text
    return _EXACT.sub(lambda match: variables.get(match[1], match[0]), text)


def quote_for_condition(value: str) -> str:
    """A double-quoted literal that `qackage.melange.conditions` reads back as ``value``."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def package_variables(
    name: str, version: str, epoch: int, description: str, extra_vars: Mapping[str, str]
) -> dict[str, str]:
    """The names known while a build file is read: ``package.*`` and ``vars.*``."""
    variables = {
        "package.name": name,
        "package.version": version,
        "package.epoch": str(epoch),
        "package.full-version": f"{version}-r{epoch}",
        "package.description": description,
    }
    variables.update({f"vars.{key}": value for key, value in extra_vars.items()})
    return variables


def melange_build_environment(written: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The build ``environment.environment`` with melange's defaults for empty keys."""
    merged = dict(written)
    for key, value in DEFAULT_BUILD_ENVIRONMENT:
        if not merged.get(key):
            merged[key] = value
    return tuple(merged.items())


# ---------------------------------------------------------------------------- context


@dataclass(frozen=True, slots=True)
class SubstitutionContext:
    """Everything a test's ``${{...}}`` can refer to, for one (sub)package and arch.

    ``package_*`` describe the origin (main) package: ``${{package.name}}`` is the origin
    even in a subpackage's test. ``subpackage`` is set for a subpackage's test and is
    then also ``${{context.name}}``. Fields left ``None`` are unknown (a bare ``test:``
    fragment has no version), and naming them is "variable X not defined".
    """

    package_name: str
    package_version: str | None = None
    package_epoch: int | None = None
    package_description: str | None = None
    subpackage: str | None = None
    arch: str = "x86_64"
    vars: tuple[tuple[str, str], ...] = ()  # var-transforms already applied
    range_key: str | None = None
    range_value: str | None = None
    package_names: tuple[str, ...] = ()  # every package of the file: targets.package.<name>
    build_options: tuple[str, ...] = ()  # options.<name>.enabled, always "false" in tests
    # The test container starts from the build's environment (defaults included).
    base_environment: tuple[tuple[str, str], ...] = field(default=DEFAULT_BUILD_ENVIRONMENT)
    label: str = "test"  # where the stanza came from, for error messages

    @property
    def context_name(self) -> str:
        return self.subpackage or self.package_name

    def for_subpackage(
        self, name: str, *, range_key: str | None = None, range_value: str | None = None, label: str | None = None
    ) -> SubstitutionContext:
        return replace(
            self,
            subpackage=name,
            range_key=range_key,
            range_value=range_value,
            label=label or self.label,
        )

    @classmethod
    def for_built_package(cls, info: PackageInfo, *, arch: str | None = None) -> SubstitutionContext:
        """The context of a package known only from its ``.PKGINFO``/APKINDEX record."""
        version, _, release = info.version.rpartition("-r")
        if not version or not release.isdigit():
            version, release = info.version, "0"
        origin = info.origin or info.name
        context = cls(
            package_name=origin,
            package_version=version,
            package_epoch=int(release),
            package_description=info.description if origin == info.name else None,
            arch=arch or info.arch or "x86_64",
            package_names=tuple(dict.fromkeys((origin, info.name))),
            label=f"{info.name}: test",
        )
        return context if origin == info.name else context.for_subpackage(info.name)

    def parse_time_variables(self) -> dict[str, str]:
        """What melange replaces while reading the file: package.*, vars.*, range.*."""
        names: dict[str, str] = {"package.name": self.package_name}
        if self.package_version is not None:
            names["package.version"] = self.package_version
        if self.package_epoch is not None:
            names["package.epoch"] = str(self.package_epoch)
        if self.package_version is not None and self.package_epoch is not None:
            names["package.full-version"] = f"{self.package_version}-r{self.package_epoch}"
        if self.package_description is not None:
            names["package.description"] = self.package_description
        names.update((f"vars.{key}", value) for key, value in self.vars)
        if self.range_key is not None:
            names["range.key"] = self.range_key
        if self.range_value is not None:
            names["range.value"] = self.range_value
        return names

    def variables(self) -> dict[str, str]:
        """Every name a test's ``runs:``/``with:``/``if:`` may use at compile time.

        ``package.description`` is not among them: melange only replaces it while reading
        the file (see `parse_time_variables`).
        """
        arch = architecture(self.arch)
        names = self.parse_time_variables()
        names.pop("package.description", None)
        names.update(
            {
                "package.srcdir": WORKSPACE,
                "targets.outdir": OUTPUT_DIR,
                "targets.destdir": posixpath.join(OUTPUT_DIR, self.package_name),
                "targets.contextdir": posixpath.join(OUTPUT_DIR, self.context_name),
                "context.name": self.context_name,
                "build.arch": arch.apk,
                "build.goarch": arch.go,
                "host.triplet.gnu": f"{arch.gnu_prefix}gnu",
                "host.triplet.rust": f"{arch.rust_prefix}gnu",
                "cross.triplet.gnu.glibc": f"{arch.gnu_prefix}gnu",
                "cross.triplet.gnu.musl": f"{arch.gnu_prefix}musl",
                "cross.triplet.rust.glibc": f"{arch.rust_prefix}gnu",
                "cross.triplet.rust.musl": f"{arch.rust_prefix}musl",
            }
        )
        if self.subpackage is not None:
            names["subpkg.name"] = self.subpackage
            names["targets.subpkgdir"] = posixpath.join(OUTPUT_DIR, self.subpackage)
        for name in (self.package_name, *self.package_names):
            names[f"targets.package.{name}"] = posixpath.join(OUTPUT_DIR, name)
        names.update((f"options.{option}.enabled", "false") for option in self.build_options)
        return names
