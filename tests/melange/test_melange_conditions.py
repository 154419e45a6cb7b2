"""``if:`` expressions, evaluated as melange's pkg/cond does."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qackage.errors import InputError
from qackage.melange.conditions import ConditionError, evaluate
from qackage.melange.substitution import quote_for_condition


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("\"x86_64\" == 'x86_64'", True),
        ("'x86_64' != 'x86_64'", False),
        ("'aarch64' != 'x86_64'", True),
        ("'a' == 'a' && 'b' == 'c'", False),
        ("'a' == 'b' || 'c' == 'c'", True),
        # && and || bind equally, left to right: (true || false) && false.
        ("'a' == 'a' || 'a' == 'b' && 'a' == 'b'", False),
        ("'a' == 'a' || ('a' == 'b' && 'a' == 'b')", True),
        ("((('a' == 'a')))", True),
        ("  \n'a'=='a'\t", True),
        ('"say \\"hi\\"" == \'say "hi"\'', True),
        ("'it\\'s' == \"it's\"", True),
        ("'tab\\there' == \"tab\there\"", True),
        ("'keep\\qthis' == \"keep\\\\qthis\"", True),  # unknown escapes stay as written
        ("'' == \"\"", True),
    ],
)
def test_evaluate(expression: str, expected: bool) -> None:
    assert evaluate(expression) is expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "unexpected end of expression at position 0"),
        ("'a'", "expected '==' or '!=' at position 3"),
        ("'a' = 'a'", "expected '==' or '!=' at position 4"),
        ("'a == 'b'", "expected '==' or '!=' at position 7"),
        ("'a' == 'b", "unterminated string at position 9"),
        ("('a' == 'a'", "expected ')' at position 11"),
        ("'a' == 'a')", "unexpected ')' at position 10"),
        ("'a' == 'a' and 'b' == 'b'", "unexpected \"and 'b' == 'b'\" at position 11"),
        ("${{build.arch}} == 'x86_64'", "unsubstituted variable at position 0"),
        ("x86_64 == 'x86_64'", "expected a quoted string, found 'x' at position 0"),
        ("'a' == 'a' && ", "unexpected end of expression at position 14"),
    ],
)
def test_syntax_errors(expression: str, message: str) -> None:
    with pytest.raises(ConditionError) as caught:
        evaluate(expression)
    assert caught.value.message == message
    assert isinstance(caught.value, InputError)


@given(st.text(), st.text())
def test_quoted_values_compare_as_written(left: str, right: str) -> None:
    quoted_left, quoted_right = quote_for_condition(left), quote_for_condition(right)
    assert evaluate(f"{quoted_left} == {quoted_right}") is (left == right)
    assert evaluate(f"{quoted_left} != {quoted_right}") is (left != right)
