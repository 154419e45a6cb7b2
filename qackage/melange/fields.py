"""Typed reads from a loaded YAML (or JSON) document, with errors that name the place.

Every error is one `InputError` line: ``hello.yaml: test.pipeline[2]: unknown key 'foo'``.
Scalars may arrive as ``str`` (from `qackage.melange.yamltext`) or as ``int``/``bool``/
``float`` (from JSON or a plain ``yaml.safe_load``); text fields accept them all and
spell them the way YAML wrote them, as melange's string fields do.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from qackage.errors import InputError


@dataclass(frozen=True, slots=True)
class Where:
    """A file label and a YAML path inside it (``test.pipeline[2].with``)."""

    label: str
    path: str = ""

    def key(self, name: str) -> Where:
        return Where(self.label, f"{self.path}.{name}" if self.path else name)

    def index(self, number: int) -> Where:
        return Where(self.label, f"{self.path}[{number}]")

    def __str__(self) -> str:
        return f"{self.label}: {self.path}" if self.path else self.label

    def error(self, message: str) -> InputError:
        """``label: path: message``."""
        return InputError(f"{self}: {message}")

    def invalid(self, predicate: str) -> InputError:
        """``label: path predicate`` (``package.version is missing``)."""
        if not self.path:
            return InputError(f"{self.label}: {predicate}")
        return InputError(f"{self.label}: {self.path} {predicate}")


def mapping(value: object, where: Where) -> dict[str, object]:
    """A mapping with text keys; ``None`` (an empty YAML value) is an empty mapping."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise where.invalid("must be a mapping")
    result: dict[str, object] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise where.error(f"key {key!r} must be text")
        result[key] = item
    return result


def sequence(value: object, where: Where) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise where.invalid("must be a list")
    return value


def check_keys(value: Mapping[str, object], allowed: Collection[str], where: Where) -> None:
    for key in value:
        if key not in allowed:
            raise where.error(f"unknown key {key!r}")


def scalar_text(value: object) -> str | None:
    """The text of a scalar as YAML spelled it; ``None`` for anything that is not one."""
    if isinstance(value, str):
        return str(value)  # drops str subclasses such as FloatText
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def text(value: object, where: Where) -> str:
    result = scalar_text(value)
    if result is None:
        raise where.invalid("must be text")
    return result


def optional_text(value: object, where: Where) -> str | None:
    """Text, or ``None`` when the key is absent or empty (melange's zero value)."""
    if value is None:
        return None
    result = text(value, where)
    return result or None


def text_list(value: object, where: Where) -> tuple[str, ...]:
    return tuple(text(item, where.index(number)) for number, item in enumerate(sequence(value, where)))


def text_map(value: object, where: Where) -> tuple[tuple[str, str], ...]:
    """A string-to-string map; an empty value is ``""`` as in yaml.v3."""
    return tuple(
        (key, "" if item is None else text(item, where.key(key))) for key, item in mapping(value, where).items()
    )


def whole_number(value: object, where: Where, *, minimum: int = 0) -> int:
    if isinstance(value, bool):
        raise where.invalid(f"must be a whole number >= {minimum}")
    if isinstance(value, int):
        number = value
    else:
        spelled = scalar_text(value)
        if spelled is None or not spelled.strip().lstrip("+-").isdigit():
            raise where.invalid(f"must be a whole number >= {minimum}")
        number = int(spelled)
    if number < minimum:
        raise where.invalid(f"must be a whole number >= {minimum}")
    return number


_TRUE = frozenset({"true", "yes", "on", "y"})
_FALSE = frozenset({"false", "no", "off", "n"})


def boolean(value: object, where: Where) -> bool:
    """yaml.v3 decodes YAML 1.1 spellings (yes/no/on/off) into bool fields too."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    spelled = (scalar_text(value) or "").lower()
    if spelled in _TRUE:
        return True
    if spelled in _FALSE:
        return False
    raise where.invalid("must be true or false")
