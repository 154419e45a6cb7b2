"""Write ``test:`` stanzas the way wolfi-dev/os's ``yam`` leaves a package file.

yam's settings there: 2-space indentation, sequences indented under their key
(``  - uses: ...``), no blank lines inside a ``test:`` block, trailing whitespace trimmed,
a final newline. Scalars are written plain where every YAML reader takes them for the
same string, in double quotes where a reader would see something else (``on``, ``1.0``,
``30``, ``null``, a leading ``*`` or ``&``, ``: `` or `` #`` inside ...), and as ``|``
literal blocks when they span lines. This is also what yaml.v3 (which yam uses) picks
for a Go string, so ``yam`` leaves our output as it is.

Two steps: `stanza_data` turns a `Stanza` into ordered plain data (what a YAML reader
gives back), `dump` writes that data. Tests compare the two directions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Union, cast

import yaml

from qackage.model import Accounts, Stanza, Step, TestEnvironment

INDENT = 2

# Plain data: what a YAML reader returns for our documents.
Data = Union[str, int, list["Data"], dict[str, "Data"]]  # noqa: UP007 - a recursive alias needs the string form

# Characters that only a double-quoted scalar can carry (YAML's non-printable set plus
# the line breaks and the BOM that readers treat specially).
_NEEDS_ESCAPE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff]")
# Plain scalars cannot start with an indicator character (YAML 1.2 c-indicator).
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")
# "-", "?" and ":" may start a plain scalar when a non-blank character follows ("-h").
_SOFT_INDICATORS = frozenset("-?:")
# YAML 1.1 words yaml.v3 and older readers still take for booleans.
_OLD_BOOLEANS = frozenset(
    spelling
    for word in ("y", "yes", "n", "no", "true", "false", "on", "off")
    for spelling in (word, word.capitalize(), word.upper())
)
# YAML 1.2 core numbers (yaml.v3); PyYAML's 1.1 resolvers are asked separately.
_CORE_NUMBER = re.compile(
    r"[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
# PyYAML's implicit resolvers (YAML 1.1: ints, floats, timestamps, merge keys ...).
_resolve = cast("Callable[[type, str, tuple[bool, bool]], str]", yaml.resolver.Resolver().resolve)
_STR_TAG = "tag:yaml.org,2002:str"
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\x00": "\\0", "\x1b": "\\e"}


# --------------------------------------------------------------------------- input values


def with_list(words: Sequence[str]) -> str:
    """A list-valued ``with:`` input (``bins``, ``modules``, ``files`` ...) as maintainers
    spell it: one word as is, several one per line (written as a ``|`` block)."""
    if len(words) == 1:
        return words[0]
    return "".join(f"{word}\n" for word in words)


# --------------------------------------------------------------------------- stanza -> data


def stanza_data(stanza: Stanza) -> dict[str, Data]:
    """The ``test:`` mapping as ordered plain data; empty parts are left out."""
    data: dict[str, Data] = {}
    environment = environment_data(stanza.environment)
    if environment:
        data["environment"] = environment
    data["pipeline"] = [step_data(step) for step in stanza.pipeline]
    return data


def environment_data(environment: TestEnvironment) -> dict[str, Data]:
    data: dict[str, Data] = {}
    contents: dict[str, Data] = {}
    # apko's own order, and the one Wolfi files use when repositories appear.
    for key, values in (
        ("repositories", environment.repositories),
        ("keyring", environment.keyring),
        ("packages", environment.packages),
    ):
        if values:
            contents[key] = list(values)
    if contents:
        data["contents"] = contents
    accounts = accounts_data(environment.accounts)
    if accounts:
        data["accounts"] = accounts
    if environment.environment:
        data["environment"] = dict(environment.environment)
    return data


def accounts_data(accounts: Accounts) -> dict[str, Data]:
    data: dict[str, Data] = {}
    if accounts.run_as is not None:
        data["run-as"] = accounts.run_as
    if accounts.users:
        users: list[Data] = []
        for user in accounts.users:
            entry: dict[str, Data] = {"username": user.username, "uid": user.uid}
            if user.gid is not None:
                entry["gid"] = user.gid
            if user.shell is not None:
                entry["shell"] = user.shell
            if user.homedir is not None:
                entry["homedir"] = user.homedir
            users.append(entry)
        data["users"] = users
    if accounts.groups:
        groups: list[Data] = []
        for group in accounts.groups:
            item: dict[str, Data] = {"groupname": group.groupname, "gid": group.gid}
            if group.members:
                item["members"] = list(group.members)
            groups.append(item)
        data["groups"] = groups
    return data


def step_data(step: Step) -> dict[str, Data]:
    """One step, keys in the order Wolfi files write them (name, then what runs)."""
    data: dict[str, Data] = {}
    if step.name is not None:
        data["name"] = step.name
    if step.if_ is not None:
        data["if"] = step.if_
    if step.working_directory is not None:
        data["working-directory"] = step.working_directory
    if step.label is not None:
        data["label"] = step.label
    if step.uses is not None:
        data["uses"] = step.uses
    if step.with_:
        data["with"] = dict(step.with_)
    if step.environment:
        data["environment"] = dict(step.environment)
    if step.needs:
        data["needs"] = {"packages": list(step.needs)}
    if step.runs is not None:
        data["runs"] = step.runs
    if step.pipeline:
        data["pipeline"] = [step_data(inner) for inner in step.pipeline]
    return data


# --------------------------------------------------------------------------- data -> text


def format_stanza(stanza: Stanza) -> str:
    """The ``test:`` block of one package, as a file fragment."""
    return dump({"test": stanza_data(stanza)})


def format_stanzas(stanzas: Mapping[str, Stanza]) -> str:
    """Several packages' ``test:`` blocks keyed by package name, in the order given.

    A blank line separates the packages, as yam separates top-level keys."""
    return "\n".join(dump({name: {"test": stanza_data(stanza)}}) for name, stanza in stanzas.items())


def dump(data: Mapping[str, Data]) -> str:
    """A block-style YAML document for ``data`` (mappings, sequences, strings, ints)."""
    lines = _mapping_lines(data, 0)
    return "".join(line.rstrip(" ") + "\n" for line in lines)


def _mapping_lines(mapping: Mapping[str, Data], indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for key, value in mapping.items():
        head = f"{pad}{scalar(key)}:"
        lines += _value_lines(head, value, indent)
    return lines


def _value_lines(head: str, value: Data, indent: int) -> list[str]:
    """``head`` (``key:`` or ``-``) followed by ``value``; nested nodes at ``indent + 2``."""
    if isinstance(value, dict):
        if not value:
            return [f"{head} {{}}"]
        return [head, *_mapping_lines(value, indent + INDENT)]
    if isinstance(value, list):
        if not value:
            return [f"{head} []"]
        return [head, *_sequence_lines(value, indent + INDENT)]
    if isinstance(value, int):
        return [f"{head} {value}"]
    header = literal_header(value)
    if header is None:
        return [f"{head} {scalar(value)}"]
    return [f"{head} {header}", *_literal_body(value, indent + INDENT)]


def _sequence_lines(sequence: list[Data], indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for item in sequence:
        if isinstance(item, dict) and item:
            # The first key shares the line with the dash: "- uses: x", the rest align under it.
            inner = _mapping_lines(item, indent + INDENT)
            lines.append(f"{pad}- {inner[0][indent + INDENT :]}")
            lines += inner[1:]
        elif isinstance(item, list):
            raise TypeError("a sequence directly inside a sequence is not used in test stanzas")
        else:
            lines += _value_lines(f"{pad}-", item, indent)
    return lines


def _literal_body(text: str, indent: int) -> list[str]:
    pad = " " * indent
    body = text.rstrip("\n")
    lines = [f"{pad}{line}" if line else "" for line in body.split("\n")]
    # Keep ("+") chomping needs the extra final line breaks spelled out as empty lines.
    extra = len(text) - len(body) - 1
    return lines + [""] * max(extra, 0)


# --------------------------------------------------------------------------- scalars


def literal_header(text: str) -> str | None:
    """``|``, ``|-`` or ``|+`` when ``text`` reads back exactly from a literal block; None
    when it must be written on one line (single-line text, or text a block cannot carry:
    trailing blanks on a line, a leading blank, characters that need escapes)."""
    if "\n" not in text or _NEEDS_ESCAPE.search(text):
        return None
    body = text.rstrip("\n")
    if not body.strip():
        return None
    lines = body.split("\n")
    if any(line and line[-1].isspace() for line in lines):
        return None  # yam trims trailing blanks: they would be lost
    first = next(line for line in lines if line)
    if first[0] in " \t":
        return None  # the block's indentation would need an explicit indicator
    trailing = len(text) - len(body)
    if trailing == 0:
        return "|-"
    return "|" if trailing == 1 else "|+"


def scalar(text: str) -> str:
    """``text`` on one line: plain when that reads back as the same string, else quoted."""
    return text if is_plain_safe(text) else double_quoted(text)


def is_plain_safe(text: str) -> bool:
    """Would every YAML reader (PyYAML's 1.1 rules, yaml.v3's 1.2 ones) read this plain
    scalar back, in block context, as exactly this string?"""
    if text in _NULLS or text in _OLD_BOOLEANS or _CORE_NUMBER.fullmatch(text):
        return False
    if text[0] in " \t" or text[-1].isspace() or "\n" in text or "\t" in text or _NEEDS_ESCAPE.search(text):
        return False
    first = text[0]
    if first in _INDICATORS and not (first in _SOFT_INDICATORS and len(text) > 1 and text[1] not in " \t"):
        return False
    if ": " in text or text.endswith(":") or " #" in text:
        return False
    # YAML 1.1 ints, floats, timestamps, merge keys, "=": PyYAML's own resolvers decide.
    return _resolve(yaml.ScalarNode, text, (True, False)) == _STR_TAG


def double_quoted(text: str) -> str:
    out: list[str] = []
    for char in text:
        escaped = _ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif _NEEDS_ESCAPE.match(char):
            code = ord(char)
            out.append(f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
