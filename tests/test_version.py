from __future__ import annotations

import functools
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qackage.apk.pkginfo import parse_atom
from qackage.apk.version import (
    compare_versions,
    fuzzy_match,
    is_valid_version,
    require_valid_version,
    satisfies,
    version_key,
)
from qackage.errors import InputError

# --------------------------------------------------------------------------- known answers

ORDERED_PAIRS = [
    # (older, newer)
    ("1.0", "1.0.1"),
    ("1.0", "1.1"),
    ("1.9", "1.10"),
    ("1.99.99", "2"),
    ("3.0.13-r0", "3.1.0-r0"),
    ("6.6.3-r5", "6.6.30-r0"),
    ("2.38-r9", "2.38-r10"),
    ("1.0", "1.0-r0"),
    ("1.0-r0", "1.0-r1"),
    # pre-release suffixes come before the release, post-release ones after it
    ("1.0_alpha", "1.0_beta"),
    ("1.0_beta", "1.0_pre"),
    ("1.0_pre", "1.0_rc"),
    ("1.0_rc", "1.0"),
    ("1.0", "1.0_cvs"),
    ("1.0_cvs", "1.0_svn"),
    ("1.0_svn", "1.0_git"),
    ("1.0_git", "1.0_hg"),
    ("1.0_hg", "1.0_p"),
    ("1.0_rc", "1.0_rc1"),
    ("1.0_rc9", "1.0_rc10"),
    ("1.0_rc1", "1.0_git20240101"),
    ("1.0_p1", "1.0_p1-r1"),
    ("1.2.3-r5", "1.2.3_p1-r2"),
    ("1.0_rc1-r9", "1.0-r0"),
    # after a suffix, another post-release suffix beats a number; a pre-release one loses
    ("1.0_alpha1", "1.0_alpha_p1"),
    ("1.0_alpha_beta", "1.0_alpha1"),
    # the end of a version sorts after a revision, which sorts after a suffix ...
    ("1.0-r1", "1.0_p1"),
    ("1.0_p1", "1.0a"),
    ("1.0a", "1.0b"),
    ("1.0a", "1.0.1"),
    ("1.0z", "1.0.0"),
    # ... and a commit hash sorts between a suffix and a revision
    ("1.0", "1.0~abc"),
    ("1.0~abc-r1", "1.0_p1"),
    ("1.0~abc", "1.0~abd"),
    ("1.0~abc-r0", "1.0~abc-r1"),
    # a later component with a leading zero compares as text
    ("1.01", "1.1"),
    ("1.001", "1.01"),
    ("1.01", "1.010"),
    ("1.0", "1.00"),
    ("1.09", "1.1"),
]

EQUAL_PAIRS = [
    ("1.0", "1.0"),
    ("01.0", "1.0"),  # the first component is a number
    ("1.0-r01", "1.0-r1"),
    ("1.0_rc01", "1.0_rc1"),
]


@pytest.mark.parametrize(("older", "newer"), ORDERED_PAIRS)
def test_known_order(older: str, newer: str) -> None:
    assert compare_versions(older, newer) == -1
    assert compare_versions(newer, older) == 1


@pytest.mark.parametrize(("a", "b"), EQUAL_PAIRS)
def test_known_equal(a: str, b: str) -> None:
    assert compare_versions(a, b) == 0
    assert compare_versions(b, a) == 0


@pytest.mark.parametrize(
    "version",
    ["1", "0", "1.2.3", "20240101", "1.2.3a", "0.1_git20230101", "1.2.3a_rc1_p2~c0ffee-r4", "1.0_alpha_beta2"],
)
def test_valid(version: str) -> None:
    assert is_valid_version(version)
    assert require_valid_version(version).valid


@pytest.mark.parametrize(
    "version",
    [
        "",
        "a",
        ".1",
        "1.",
        "1..0",
        "1.0-",
        "1.0-r",
        "1.0-p1",
        "1.0-r1.2",
        "1.0-r1-r2",
        "1.0_",
        "1.0__alpha",
        "1.0_foo",
        "1.0_1",
        "1.0ab",
        "1.0a1",
        "1.0a.1",
        "1.0_rc1.2",
        "1.0~",
        "1.0~xyz",
        "1.0~ab~cd",
        "1.0-r1~ab",
        "1.0 ",
        "1.0A",
        "v1.0",
    ],
)
def test_invalid(version: str) -> None:
    assert not is_valid_version(version)
    with pytest.raises(InputError, match="not an apk version"):
        require_valid_version(version, "pkgver")


def test_invalid_versions_still_order_by_their_valid_prefix() -> None:
    assert compare_versions("2.0_foo", "1.9") == 1
    assert compare_versions("1.0", "1.0bc") == -1
    # apk calls two invalid tails equal; we order them as text to stay total
    assert compare_versions("1.0_bar", "1.0_foo") == -1


@pytest.mark.parametrize(
    ("version", "atom", "expected"),
    [
        ("1.2.3-r0", "foo", True),
        ("1.2.3-r0", "foo=1.2.3-r0", True),
        ("1.2.3-r0", "foo=1.2.3", False),
        ("1.2.3-r0", "foo>=1.2", True),
        ("1.2.3-r0", "foo>1.2.3", True),
        ("1.2.3", "foo>1.2.3", False),
        ("1.2.3", "foo<1.2.3_p1", True),
        ("1.2.3_rc1", "foo<1.2.3", True),
        ("1.2.3", "foo<=1.2.3", True),
        ("1.2.4", "foo<=1.2.3", False),
        ("1.2.3-r0", "foo~1.2", True),
        ("1.2_pre1", "foo~1.2", True),
        ("1.2", "foo~1.2", True),
        ("1.20", "foo~1.2", False),
        ("1.3", "foo~1.2", False),
        ("1", "foo~1.2", False),
        ("3.6.9-r2", "foo~3.6.9", True),
        ("3.6.9-r2", "foo~3.6.9-r2", True),
        ("3.6.9-r2", "foo~3.6.9-r3", False),
        ("1.0", "!foo<2", True),  # the ! is the resolver's business
    ],
)
def test_satisfies(version: str, atom: str, expected: bool) -> None:
    assert satisfies(version, parse_atom(atom)) is expected


# --------------------------------------------------------------------------- properties


@st.composite
def versions(draw: st.DrawFn) -> str:
    """Valid apk versions from a small alphabet, so that ties and near-ties are common."""
    number = st.text(alphabet="0129", min_size=1, max_size=3)
    text = draw(number)
    for component in draw(st.lists(number, max_size=3)):
        text += "." + component
    if draw(st.booleans()):
        text += draw(st.sampled_from("abz"))
    for _ in range(draw(st.integers(0, 2))):
        text += "_" + draw(st.sampled_from(["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"]))
        if draw(st.booleans()):
            text += draw(number)
    if draw(st.booleans()):
        text += "~" + draw(st.text(alphabet="0a9f", min_size=1, max_size=3))
    if draw(st.booleans()):
        text += f"-r{draw(st.integers(0, 12))}"
    return text


def _reference_tokens(text: str) -> list[tuple[int, str]]:
    """(kind, raw text) tokens of a valid version; kinds in grammar order:
    0 first number, 1 number, 2 letter, 3 suffix, 4 suffix number, 5 commit, 6 revision, 7 end."""
    tokens: list[tuple[int, str]] = []
    i = 0

    def digits(at: int) -> int:
        end = at
        while end < len(text) and text[end].isdigit():
            end += 1
        return end

    end = digits(0)
    tokens.append((0, text[:end]))
    i = end
    while i < len(text):
        char = text[i]
        if char == ".":
            end = digits(i + 1)
            tokens.append((1, text[i + 1 : end]))
        elif char.isdigit():  # the number right after a suffix name
            end = digits(i)
            tokens.append((4, text[i:end]))
        elif char == "_":
            end = i + 1
            while end < len(text) and text[end].isalpha():
                end += 1
            tokens.append((3, text[i + 1 : end]))
        elif char == "~":
            end = i + 1
            while end < len(text) and text[end] in "0123456789abcdef":
                end += 1
            tokens.append((5, text[i + 1 : end]))
        elif char == "-":
            end = digits(i + 2)
            tokens.append((6, text[i + 2 : end]))
        else:
            end = i + 1
            tokens.append((2, char))
        i = end
    tokens.append((7, ""))
    return tokens


_SUFFIX_ORDER = ["alpha", "beta", "pre", "rc", "", "cvs", "svn", "git", "hg", "p"]


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


def _reference_compare(a: str, b: str) -> int:
    """apk's pairwise walk, written independently of the sort-key implementation."""
    for (kind_a, raw_a), (kind_b, raw_b) in zip(_reference_tokens(a), _reference_tokens(b), strict=False):
        if kind_a != kind_b:
            if kind_a == 3 and _SUFFIX_ORDER.index(raw_a) < 4:
                return -1
            if kind_b == 3 and _SUFFIX_ORDER.index(raw_b) < 4:
                return 1
            return 1 if kind_a < kind_b else -1
        if kind_a == 7:
            return 0
        if kind_a == 1 and (raw_a.startswith("0") or raw_b.startswith("0")):
            result = _sign((raw_a > raw_b) - (raw_a < raw_b))
        elif kind_a in (0, 1, 4, 6):
            result = _sign(int(raw_a) - int(raw_b))
        elif kind_a == 3:
            result = _sign(_SUFFIX_ORDER.index(raw_a) - _SUFFIX_ORDER.index(raw_b))
        else:
            result = (raw_a > raw_b) - (raw_a < raw_b)
        if result:
            return result
    raise AssertionError("unreachable: both token lists end with the end token")


@given(versions())
def test_generated_versions_are_valid(version: str) -> None:
    assert is_valid_version(version)


@given(versions(), versions())
@settings(max_examples=500)
def test_agrees_with_the_pairwise_walk(a: str, b: str) -> None:
    assert compare_versions(a, b) == _reference_compare(a, b)


@given(versions(), versions())
def test_antisymmetric(a: str, b: str) -> None:
    assert compare_versions(a, b) == -compare_versions(b, a)
    assert compare_versions(a, a) == 0


@given(versions(), versions(), versions())
@settings(max_examples=500)
def test_transitive(a: str, b: str, c: str) -> None:
    if compare_versions(a, b) <= 0 and compare_versions(b, c) <= 0:
        assert compare_versions(a, c) <= 0
    if compare_versions(a, b) == 0 and compare_versions(b, c) == 0:
        assert compare_versions(a, c) == 0


@given(st.lists(versions(), min_size=2, max_size=8))
def test_sorting_by_key_agrees_with_compare(items: list[str]) -> None:
    ordered = sorted(items, key=version_key)
    assert all(compare_versions(x, y) <= 0 for x, y in itertools.pairwise(ordered))
    assert ordered == sorted(items, key=functools.cmp_to_key(compare_versions))


@given(st.text(max_size=12), st.text(max_size=12), st.text(max_size=12))
def test_total_order_on_any_text(a: str, b: str, c: str) -> None:
    assert compare_versions(a, b) == -compare_versions(b, a)
    if compare_versions(a, b) <= 0 and compare_versions(b, c) <= 0:
        assert compare_versions(a, c) <= 0


@given(versions())
def test_fuzzy_matches_every_token_prefix(version: str) -> None:
    tokens = _reference_tokens(version)[:-1]
    separators = {1: ".", 3: "_", 5: "~", 6: "-r"}
    prefix = ""
    for kind, raw in tokens:
        prefix += separators.get(kind, "") + raw
        assert fuzzy_match(version, prefix), prefix
    assert not fuzzy_match(version, version + ".1")
