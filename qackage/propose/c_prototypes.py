"""Function prototypes in C headers, and which of them a test can call blindly.

A full C parser is not needed: a library's public header declares its functions as
plain statements. Comments and preprocessor lines go, statements split at ";", and
those shaped like ``RETURN NAME(PARAMETERS)`` are prototypes. Export macros
(``FOO_API``, ``FOO_EXTERN``) and attributes are dropped from the return type.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_LINE_COMMENT = re.compile(r"//[^\n]*")
_ATTRIBUTE = re.compile(r"__attribute__\s*\(\((?:[^()]|\([^()]*\))*\)\)|__declspec\s*\([^()]*\)")
_PROTOTYPE = re.compile(r"^(?P<returns>[A-Za-z_][\w\s*]*?)\s*\b(?P<name>[A-Za-z_]\w*)\s*\((?P<parameters>[^()]*)\)$")
_MACRO_WORD = re.compile(r"^[A-Z][A-Z0-9_]+$")
_DROPPED_WORDS = frozenset({"extern", "__extension__", "__inline", "__restrict", "restrict", "register"})
# Names that announce side effects or lifecycle steps: never called blindly.
_UNSAFE_NAME = re.compile(
    r"init|free|destroy|open|close|exit|abort|set|write|delete|remove|unlink|connect|start|stop|run|"
    r"reset|shutdown|cleanup|release|lock|alloc|kill|exec|spawn|fork|load|save|send|recv|read|"
    r"register|signal|wait|sleep|create|new|push|pop|flush|sync|mkdir|bind|listen|accept|error|errno|perror",
    re.IGNORECASE,
)
_INFORMATIVE_NAME = re.compile(r"version|name|str|format|escape|encode|info|describe|hash|default", re.IGNORECASE)

SAMPLE_STRING = "wolfi"


class ResultKind(enum.StrEnum):
    STRING = "string"
    SIGNED = "signed"
    UNSIGNED = "unsigned"
    FLOATING = "floating"


_RESULT_TYPES = {
    "const char *": ResultKind.STRING,
    "char *": ResultKind.STRING,
    "int": ResultKind.SIGNED,
    "long": ResultKind.SIGNED,
    "long int": ResultKind.SIGNED,
    "long long": ResultKind.SIGNED,
    "bool": ResultKind.SIGNED,
    "_Bool": ResultKind.SIGNED,
    "unsigned": ResultKind.UNSIGNED,
    "unsigned int": ResultKind.UNSIGNED,
    "unsigned long": ResultKind.UNSIGNED,
    "size_t": ResultKind.UNSIGNED,
    "uint32_t": ResultKind.UNSIGNED,
    "uint64_t": ResultKind.UNSIGNED,
    "int32_t": ResultKind.SIGNED,
    "int64_t": ResultKind.SIGNED,
    "double": ResultKind.FLOATING,
    "float": ResultKind.FLOATING,
}
_STRING_PARAMETER = re.compile(r"^const char \*(?:\s*const)?(?:\s*[A-Za-z_]\w*)?$")


@dataclass(frozen=True, slots=True)
class Prototype:
    name: str
    returns: str  # normalised: "const char *", "int"
    parameters: tuple[str, ...]  # as written, normalised spacing; () for "(void)"
    header: str  # the include name that declares it


@dataclass(frozen=True, slots=True)
class Call:
    """A call a test can make without knowing more than the prototype."""

    prototype: Prototype
    result: ResultKind
    arguments: tuple[str, ...]  # C expressions
    score: int  # higher is more telling: transforms an input > reports a constant

    @property
    def expression(self) -> str:
        return f"{self.prototype.name}({', '.join(self.arguments)})"


def _normalise_type(text: str) -> str:
    text = _ATTRIBUTE.sub(" ", text)
    text = re.sub(r"\s*\*\s*", " * ", text)
    words = [w for w in text.split() if w not in _DROPPED_WORDS and not _MACRO_WORD.match(w)]
    return re.sub(r"\s+\*", " *", " ".join(words)).replace("* *", "**").strip()


def _statements(text: str) -> list[str]:
    text = _BLOCK_COMMENT.sub(" ", text)
    text = _LINE_COMMENT.sub(" ", text)
    text = text.replace("\\\n", " ")
    lines = [line for line in text.split("\n") if not line.lstrip().startswith("#")]
    text = " ".join(lines)
    text = re.sub(r'extern\s+"C"\s*\{', " ", text)
    return [" ".join(part.split()) for part in text.split(";")]


def prototypes(text: str, header: str) -> tuple[Prototype, ...]:
    """The functions ``text`` (a header's source) declares."""
    found: list[Prototype] = []
    for raw_statement in _statements(text):
        statement = _ATTRIBUTE.sub(" ", raw_statement).strip().lstrip("}").strip()
        if not statement or "{" in statement or "=" in statement or statement.startswith(("typedef", "static")):
            continue
        match = _PROTOTYPE.match(" ".join(statement.split()))
        if not match:
            continue
        returns = _normalise_type(match.group("returns"))
        if not returns or returns in ("return", "else"):
            continue
        raw = match.group("parameters").strip()
        parameters = () if raw in ("", "void") else tuple(" ".join(p.split()) for p in raw.split(","))
        found.append(Prototype(match.group("name"), returns, parameters, header))
    return tuple(found)


def callable_as_sample(prototype: Prototype) -> Call | None:
    """How to call ``prototype`` in a test, or None when no call is obviously harmless:
    no arguments, or one C string, returning a string or a number."""
    result = _RESULT_TYPES.get(prototype.returns)
    if result is None or prototype.name.startswith("_") or _UNSAFE_NAME.search(prototype.name):
        return None
    informative = 1 if _INFORMATIVE_NAME.search(prototype.name) else 0
    if not prototype.parameters:
        return Call(prototype, result, (), (2 if result is ResultKind.STRING else 1) + informative)
    if len(prototype.parameters) == 1 and _STRING_PARAMETER.match(_normalise_type(prototype.parameters[0])):
        return Call(prototype, result, (f'"{SAMPLE_STRING}"',), (4 if result is ResultKind.STRING else 1) + informative)
    return None
