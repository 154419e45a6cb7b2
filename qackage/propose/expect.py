"""How a step asserts an output a probe observed: the whole output when it is short and
clean, else one distinctive line of it.

The expectation must survive the trip through YAML and yam (which trims trailing
whitespace), and it must not pin a version: those outputs fall back to a line that
shows neither, or to no expectation at all.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from qackage.propose.observe import mentions_version, reads_as_complaint
from qackage.propose.templates import render

# Longer lines make a stanza hard to read; such outputs are matched by a line of them.
MAX_LINE = 100
MAX_EXACT_LINES = 12
# A fixed-string match longer than this says nothing more and reads badly.
MAX_NEEDLE = 80


class ExpectKind(enum.StrEnum):
    EXACT_LINE = "exact-line"  # the output is this one line
    EXACT_TEXT = "exact-text"  # the output is these lines
    CONTAINS = "contains"  # the output has a line containing this text
    PATTERN = "pattern"  # the output has a line matching this extended regular expression (a shape)


@dataclass(frozen=True, slots=True)
class Expectation:
    kind: ExpectKind
    text: str


def _clean(line: str) -> bool:
    """Printable, no tabs or carriage returns, nothing yam would trim."""
    return line == line.rstrip() and line.isprintable() and len(line) <= MAX_LINE


def _needle(lines: Sequence[str], tokens: Sequence[str], version: str) -> str | None:
    """A distinctive line: one showing a sample token when possible, never the version."""
    usable = [
        line.strip()[:MAX_NEEDLE].strip()
        for line in lines
        if line.strip() and line.strip()[:MAX_NEEDLE].isprintable() and not mentions_version(line, version)
    ]
    usable = [line for line in usable if len(line) >= 3]
    lowered = [t.lower() for t in tokens]
    for line in usable:
        if any(token in line.lower() for token in lowered) and not reads_as_complaint(line):
            return line
    for line in usable:
        if not reads_as_complaint(line):
            return line
    return None


def expectation_for(stdout: str, *, version: str, tokens: Sequence[str] = ()) -> Expectation | None:
    """What a step may assert about ``stdout``; None when nothing in it is safe to assert."""
    body = stdout.rstrip("\n")
    if not body.strip():
        return None
    lines = body.split("\n")
    shows_version = mentions_version(body, version)
    if not shows_version and all(_clean(line) for line in lines):
        if len(lines) == 1:
            return Expectation(ExpectKind.EXACT_LINE, lines[0])
        if len(lines) <= MAX_EXACT_LINES and all(line.strip() for line in lines) and stdout.endswith("\n"):
            return Expectation(ExpectKind.EXACT_TEXT, body + "\n")
    needle = _needle(lines, tokens, version)
    return None if needle is None else Expectation(ExpectKind.CONTAINS, needle)


def _delimiter(text: str) -> str:
    lines = set(text.splitlines())
    for candidate in ("EOF", "EXPECTED", "QACKAGE_EXPECTED"):
        if candidate not in lines:
            return candidate
    raise ValueError("no here-document delimiter fits the expected text")


def assertion_script(*, setup: str, command: str, expectation: Expectation, output: str) -> str:
    """The step body: prepare, run ``command`` (its status must be 0), check its output.

    ``output`` names the file the output is kept in (for the multi-line and line checks),
    so that no pipe can end early and a failure shows what was printed.
    """
    return render(
        "func-expect-output.sh.j2",
        setup=setup.rstrip("\n"),
        command=command,
        kind=expectation.kind.value,
        text=expectation.text,
        output=output,
        delimiter=_delimiter(expectation.text) if expectation.kind is ExpectKind.EXACT_TEXT else "",
    )
