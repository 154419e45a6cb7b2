"""Go's ``regexp.ReplaceAllString`` for melange ``var-transforms``, on Python's ``re``.

melange compiles ``match`` with Go's RE2 syntax and expands ``replace`` with Go's
template rules. The differences that matter for version strings are bridged here:

* ``$`` (without the ``m`` flag) is the end of the text in Go, Python's ``\\Z``; Go's
  ``\\z`` is Python's ``\\Z``; ``(?<name>...)`` is ``(?P<name>...)``; POSIX classes
  (``[[:digit:]]``) become ranges; ``\\d``, ``\\w``, ``\\s`` are ASCII-only (``re.ASCII``).
* Templates: ``$1``, ``${1}``, ``$name``, ``${name}`` and ``$$``. A name is the longest
  run of letters, digits and ``_``, so ``$1x`` names group "1x", which does not exist
  and expands to nothing - as in Go. A ``$`` that starts no valid reference stays.
* An empty match right after the previous match is skipped, as Go does.
"""

from __future__ import annotations

import re

from qackage.errors import InputError

_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_MULTILINE_FLAG = re.compile(r"\(\?[a-zA-Z]*m[a-zA-Z]*[:)]")
_NAME_CHARS = re.compile(r"[A-Za-z0-9_]+")


def compile_go(pattern: str) -> re.Pattern[str]:
    """Compile a Go regular expression; `InputError` when Python cannot take it."""
    try:
        return re.compile(_translate(pattern), re.ASCII)
    except re.error as exc:
        raise InputError(f"{pattern!r} is not a valid regular expression: {exc.msg}") from exc


def _translate(pattern: str) -> str:
    multiline = bool(_MULTILINE_FLAG.search(pattern))
    out: list[str] = []
    index = 0
    in_class = False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            out.append("\\Z" if escaped == "z" and not in_class else char + escaped)
            index += 2
            continue
        if in_class:
            if char == "[" and pattern.startswith("[:", index):
                end = pattern.find(":]", index + 2)
                name = pattern[index + 2 : end] if end > 0 else ""
                negated = name.startswith("^")
                ranges = _POSIX_CLASSES.get(name.lstrip("^"))
                if ranges is not None and not negated:
                    out.append(ranges)
                    index = end + 2
                    continue
            if char == "]" and not _class_just_opened(out):
                in_class = False
            out.append(char)
        elif char == "[":
            in_class = True
            out.append(char)
        elif char == "$" and not multiline:
            out.append("\\Z")
        elif pattern.startswith("(?<", index) and not pattern.startswith(("(?<=", "(?<!"), index):
            out.append("(?P<")
            index += 3
            continue
        else:
            out.append(char)
        index += 1
    return "".join(out)


def _class_just_opened(out: list[str]) -> bool:
    """A ``]`` straight after ``[`` or ``[^`` is a literal, not the end of the class."""
    return bool(out) and (out[-1] == "[" or (out[-1] == "^" and len(out) > 1 and out[-2] == "["))


def replace_all(regex: re.Pattern[str], text: str, template: str) -> str:
    parts: list[str] = []
    position = 0
    previous_end = -1
    for match in regex.finditer(text):
        if match.start() == match.end() == previous_end:
            continue
        parts.append(text[position : match.start()])
        parts.append(_expand(match, template))
        position = match.end()
        previous_end = match.end()
    parts.append(text[position:])
    return "".join(parts)


def _expand(match: re.Match[str], template: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(template):
        char = template[index]
        if char != "$" or index + 1 >= len(template):
            out.append(char)
            index += 1
            continue
        if template[index + 1] == "$":
            out.append("$")
            index += 2
            continue
        braced = template[index + 1] == "{"
        name_match = _NAME_CHARS.match(template, index + 2 if braced else index + 1)
        end = name_match.end() if name_match else -1
        if name_match is None or (braced and not template.startswith("}", end)):
            out.append("$")
            index += 1
            continue
        out.append(_group(match, name_match[0]))
        index = end + 1 if braced else end
    return "".join(out)


def _group(match: re.Match[str], name: str) -> str:
    """A group's text; "" for a group that did not take part or does not exist."""
    try:
        value = match.group(int(name)) if name.isdigit() else match.group(name)
    except IndexError:  # raised for unknown numbers and unknown names alike
        return ""
    return value or ""
