"""var-transforms: Go's regexp.ReplaceAllString semantics on Python's re."""

from __future__ import annotations

import pytest

from qackage.errors import InputError
from qackage.melange.goregexp import compile_go, replace_all


@pytest.mark.parametrize(
    ("pattern", "text", "template", "expected"),
    [
        (r"^(\d+)\.(\d+)\.\d+$", "1.22.3", "$1.$2", "1.22"),
        (r"^(\d+)\.(\d+)\.\d+$", "1.22.3", "${1}_${2}x", "1_22x"),
        # "$1x" names a group called "1x", which does not exist: Go expands it to nothing.
        (r"^(\d+)\.(\d+)\.\d+$", "1.22.3", "$1x-$$", "-$"),
        (r"\.", "1.2.3", "_", "1_2_3"),
        (r"\.", "1.2.3", "", "123"),
        ("x*", "abxd", "-", "-a-b-d-"),  # no empty match right after a match
        (r"(?<major>[[:digit:]]+)\..*", "12.3", "${major}", "12"),
        (r"(?P<major>\d+)\..*", "12.3", "$major", "12"),
        ("[[:alpha:]]+", "ab12cd", "X", "X12X"),
        ("a$", "a\n", "b", "a\n"),  # Go's $ is the end of the text, not before a final newline
        (r"a\z", "xa", "b", "xb"),
        (r"[\]a]", "]a", "-", "--"),
        ("[]a]", "]a", "-", "--"),
        (r"\d", "\u0661\u06623", "#", "\u0661\u0662#"),  # ASCII digits only, as in RE2
        ("_", "a_b", "${", "a${b"),  # an unterminated reference stays literal
        ("(a)|(b)", "b", "[$1]", "[]"),  # a group that did not take part is empty
    ],
)
def test_replace_all_matches_go(pattern: str, text: str, template: str, expected: str) -> None:
    assert replace_all(compile_go(pattern), text, template) == expected


def test_invalid_pattern() -> None:
    with pytest.raises(InputError, match=r"^'\(\[' is not a valid regular expression: "):
        compile_go("([")
