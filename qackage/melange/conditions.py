"""Evaluate a melange ``if:`` expression whose ``${{...}}`` are already substituted.

Grammar (melange ``pkg/cond``)::

    expr       := atom (('&&' | '||') atom)*
    atom       := '(' expr ')' | comparison
    comparison := value ('==' | '!=') value
    value      := '...' | "..."

``&&`` and ``||`` bind equally and apply left to right, as in melange: ``a || b && c``
means ``(a || b) && c``. Inside quotes ``\\\\``, ``\\'``, ``\\"``, ``\\n`` and ``\\t`` are
escapes; any other backslash is kept as written. Every operand is evaluated (no
short-circuit), so a syntax error anywhere is reported.
"""

from __future__ import annotations

from qackage.errors import InputError

_WHITESPACE = " \t\n\r"
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t"}


class ConditionError(InputError):
    """An ``if:`` expression that does not parse."""


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0

    def fail(self, problem: str) -> ConditionError:
        return ConditionError(f"{problem} at position {self.position}")

    def skip_whitespace(self) -> None:
        while self.position < len(self.text) and self.text[self.position] in _WHITESPACE:
            self.position += 1

    def operator(self, choices: tuple[str, ...]) -> str | None:
        self.skip_whitespace()
        found = self.text[self.position : self.position + 2]
        if found in choices:
            self.position += 2
            return found
        return None

    def expression(self) -> bool:
        result = self.atom()
        while (operator := self.operator(("&&", "||"))) is not None:
            right = self.atom()
            result = (result and right) if operator == "&&" else (result or right)
        return result

    def atom(self) -> bool:
        self.skip_whitespace()
        if self.text.startswith("(", self.position):
            self.position += 1
            result = self.expression()
            self.skip_whitespace()
            if not self.text.startswith(")", self.position):
                raise self.fail("expected ')'")
            self.position += 1
            return result
        left = self.value()
        operator = self.operator(("==", "!="))
        if operator is None:
            raise self.fail("expected '==' or '!='")
        right = self.value()
        return (left == right) if operator == "==" else (left != right)

    def value(self) -> str:
        self.skip_whitespace()
        if self.position >= len(self.text):
            raise self.fail("unexpected end of expression")
        quote = self.text[self.position]
        if quote not in "'\"":
            if self.text.startswith("${{", self.position):
                raise self.fail("unsubstituted variable")
            raise self.fail(f"expected a quoted string, found {quote!r}")
        self.position += 1
        chars: list[str] = []
        while self.position < len(self.text) and self.text[self.position] != quote:
            char = self.text[self.position]
            if char == "\\" and self.position + 1 < len(self.text):
                self.position += 1
                escaped = self.text[self.position]
                chars.append(_ESCAPES.get(escaped, "\\" + escaped))
            else:
                chars.append(char)
            self.position += 1
        if self.position >= len(self.text):
            raise self.fail("unterminated string")
        self.position += 1
        return "".join(chars)


def evaluate(expression: str) -> bool:
    """True or false; `ConditionError` (an `InputError`) when it does not parse."""
    parser = _Parser(expression)
    result = parser.expression()
    parser.skip_whitespace()
    if parser.position != len(expression):
        raise parser.fail(f"unexpected {expression[parser.position :][:20]!r}")
    return result
