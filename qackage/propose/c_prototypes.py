"""Function prototypes in C headers, and which of them a test can call blindly.

A full C parser is not needed: a library's public header declares its functions as
plain statements. Comments and preprocessor lines go, statements split at ";", and
those shaped like ``RETURN NAME(PARAMETERS)`` are prototypes. Export macros
(``FOO_API``, ``FOO_EXTERN``) and attributes are dropped from the return type. Two
older portable shapes are read too: a return type wrapped in an export macro
(``API(const char *) name(void)``) and parameters wrapped for pre-ANSI compilers
(``name OF((void))``). Simple typedefs (``typedef char XML_LChar``) resolve result types.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_LINE_COMMENT = re.compile(r"//[^\n]*")
_ATTRIBUTE = re.compile(r"__attribute__\s*\(\((?:[^()]|\([^()]*\))*\)\)|__declspec\s*\([^()]*\)")
_PROTOTYPE = re.compile(r"^(?P<returns>[A-Za-z_][\w\s*]*?)\s*\b(?P<name>[A-Za-z_]\w*)\s*\((?P<parameters>[^()]*)\)$")
_MACRO_WORD = re.compile(r"^[A-Z][A-Z0-9_]+$")
# ``XMLPARSEAPI(const XML_LChar *) XML_ExpatVersion(void)``: the macro expands to the return type.
_MACRO_RETURN = re.compile(r"^(?P<macro>[A-Z][A-Z0-9_]*)\s*\((?P<returns>[^()]*)\)\s*(?P<rest>[A-Za-z_]\w*\s*\(.*\))$")
# ``zlibVersion OF((void))``: a K&R-compatibility macro that expands to its inner parentheses.
_OLD_STYLE_PARAMETERS = re.compile(r"\bOF\s*\(\s*\((?P<parameters>.*)\)\s*\)$")
_TYPEDEF = re.compile(r"^typedef (?P<type>[A-Za-z_][\w\s*]*?)\s*\b(?P<name>[A-Za-z_]\w*)$")
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


def _unwrap_macros(statement: str) -> str:
    """``statement`` with a macro-wrapped return type or parameter list written out plainly."""
    statement = _OLD_STYLE_PARAMETERS.sub(r"(\g<parameters>)", statement)
    wrapped = _MACRO_RETURN.match(statement)
    if wrapped:
        statement = f"{wrapped.group('returns')} {wrapped.group('rest')}"
    return statement


def typedefs(text: str) -> dict[str, str]:
    """Plain type aliases ``text`` declares (``typedef char XML_LChar``), normalised.

    When preprocessor branches define one name several ways, the last one wins: headers
    usually put the default (the ``#else`` branch) last, and the compile-and-run probe
    confirms the guess before any step relies on it."""
    found: dict[str, str] = {}
    for statement in _statements(text):
        match = _TYPEDEF.match(statement.strip().lstrip("}").strip())
        if match and not match.group("type").startswith(("struct", "union", "enum")):
            found[match.group("name")] = _normalise_type(match.group("type"))
    return found


def resolve_type(text: str, aliases: Mapping[str, str]) -> str:
    """``text`` (a normalised type) with the words that are ``aliases`` replaced by what they name."""
    words = [aliases.get(word, word) for word in text.split()]
    return _normalise_type(" ".join(words))


def prototypes(text: str, header: str) -> tuple[Prototype, ...]:
    """The functions ``text`` (a header's source) declares."""
    found: list[Prototype] = []
    for raw_statement in _statements(text):
        statement = _ATTRIBUTE.sub(" ", raw_statement).strip().lstrip("}").strip()
        if not statement or "{" in statement or "=" in statement or statement.startswith(("typedef", "static")):
            continue
        match = _PROTOTYPE.match(_unwrap_macros(" ".join(statement.split())))
        if not match:
            continue
        returns = _normalise_type(match.group("returns"))
        if not returns or returns in ("return", "else"):
            continue
        raw = match.group("parameters").strip()
        parameters = () if raw in ("", "void") else tuple(" ".join(p.split()) for p in raw.split(","))
        found.append(Prototype(match.group("name"), returns, parameters, header))
    return tuple(found)


def callable_as_sample(prototype: Prototype, aliases: Mapping[str, str] | None = None) -> Call | None:
    """How to call ``prototype`` in a test, or None when no call is obviously harmless:
    no arguments, or one C string, returning a string or a number. ``aliases`` are the
    typedefs of the headers read, to see through ``const XML_LChar *``."""
    result = _RESULT_TYPES.get(resolve_type(prototype.returns, aliases or {}))
    if result is None or prototype.name.startswith("_") or _UNSAFE_NAME.search(prototype.name):
        return None
    informative = 1 if _INFORMATIVE_NAME.search(prototype.name) else 0
    if not prototype.parameters:
        return Call(prototype, result, (), (2 if result is ResultKind.STRING else 1) + informative)
    if len(prototype.parameters) == 1 and _STRING_PARAMETER.match(_normalise_type(prototype.parameters[0])):
        return Call(prototype, result, (f'"{SAMPLE_STRING}"',), (4 if result is ResultKind.STRING else 1) + informative)
    return None
