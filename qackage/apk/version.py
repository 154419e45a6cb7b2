"""apk version ordering and dependency constraints.

An apk version reads ``1.2.3a_rc1_p2~c0ffee-r4``: a first number, more ``.number``
components, at most one lowercase letter, any number of ``_suffix[number]`` parts, an
optional ``~commit`` (hex) and an optional ``-rN`` revision.

apk compares two versions token by token. Tokens of the same kind compare by value
(numbers numerically - except that a later component with a leading zero compares as
text, ``1.01 < 1.1`` - letters and commit hashes as text, suffixes in the order
``alpha < beta < pre < rc < (none) < cvs < svn < git < hg < p``). At the first place
where the kinds differ, a pre-release suffix loses to anything, and otherwise the kind
that comes *later* in the grammar loses: ``1.0 < 1.0.1`` (the end of a version comes
after a digit), ``1.0-r1 < 1.0_p1``, ``1.0_rc1 < 1.0``.

We turn each version into a sort key that encodes exactly those rules, so comparison
is a plain tuple comparison and therefore a total order. Text that is not a valid
version keeps apk's treatment of the valid prefix and compares its invalid tail as
text (apk itself calls such tails equal; we refine that to keep the order total).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import lru_cache

from qackage.errors import InputError
from qackage.model import ConstraintOp, Dependency


class _Kind(enum.IntEnum):
    """Token kinds in grammar order. Where two versions first differ in kind, the one
    whose token comes later in this order is the smaller version (see module doc)."""

    INITIAL_DIGIT = 0
    DIGIT = 1
    LETTER = 2
    SUFFIX = 3
    SUFFIX_NUMBER = 4
    COMMIT_HASH = 5
    REVISION = 6
    END = 7
    INVALID = 8


PRE_RELEASE_SUFFIXES = ("alpha", "beta", "pre", "rc")
POST_RELEASE_SUFFIXES = ("cvs", "svn", "git", "hg", "p")
# Rank of each suffix; "no suffix" sits between the two groups.
_SUFFIX_RANK = {
    **{name: rank for rank, name in enumerate(PRE_RELEASE_SUFFIXES)},
    **{name: rank + len(PRE_RELEASE_SUFFIXES) + 1 for rank, name in enumerate(POST_RELEASE_SUFFIXES)},
}
_PRE_RELEASE_CLASS = -1

_DIGITS = re.compile(r"[0-9]+")
_LETTERS = re.compile(r"[a-z]*")
_HEX = re.compile(r"[0-9a-f]+")

# One token's place in the sort key: (class, value). The class decides between
# different kinds; the value is only ever compared with a value of the same kind.
TokenKey = tuple[int, int | str | tuple[int, int | str]]


def _class(kind: _Kind) -> int:
    # Later kinds must sort lower, so invert the grammar order.
    return int(_Kind.INVALID) - int(kind)


def _digit_value(text: str) -> tuple[int, int | str]:
    # apk compares a later component textually when either side has a leading zero.
    # Text starting with "0" sorts before any number starting with 1-9, so "leading
    # zero" components form their own lower band ordered as text.
    if text.startswith("0"):
        return (0, text)
    return (1, int(text))


@dataclass(frozen=True, slots=True)
class Version:
    """A parsed version. Compare ``key``s to order versions as apk does."""

    text: str
    key: tuple[TokenKey, ...]
    valid: bool

    @property
    def prefix_key(self) -> tuple[TokenKey, ...]:
        """The tokens without the final END/INVALID marker (what ``~`` matches on)."""
        return self.key[:-1] if self.valid else self.key


def _tokenize(text: str) -> tuple[tuple[TokenKey, ...], bool]:
    keys: list[TokenKey] = []
    pos = 0
    kind = _Kind.INITIAL_DIGIT

    def invalid() -> tuple[tuple[TokenKey, ...], bool]:
        keys.append((_class(_Kind.INVALID), text[pos:]))
        return tuple(keys), False

    first = _DIGITS.match(text, pos)
    if first is None:
        return invalid()
    keys.append((_class(kind), int(first.group())))
    pos = first.end()
    while pos < len(text):
        char = text[pos]
        start = pos
        if "a" <= char <= "z":
            if kind > _Kind.DIGIT:
                return invalid()
            kind = _Kind.LETTER
            keys.append((_class(kind), char))
            pos += 1
        elif char == "." or "0" <= char <= "9":
            if char == ".":
                if kind > _Kind.DIGIT:
                    return invalid()
                pos += 1
            if kind in (_Kind.INITIAL_DIGIT, _Kind.DIGIT):
                kind = _Kind.DIGIT
            elif kind is _Kind.SUFFIX and char != ".":
                kind = _Kind.SUFFIX_NUMBER
            else:
                pos = start
                return invalid()
            digits = _DIGITS.match(text, pos)
            if digits is None:
                pos = start
                return invalid()
            value: int | tuple[int, int | str] = (
                _digit_value(digits.group()) if kind is _Kind.DIGIT else int(digits.group())
            )
            keys.append((_class(kind), value))
            pos = digits.end()
        elif char == "_":
            if kind > _Kind.SUFFIX_NUMBER:
                return invalid()
            name = _LETTERS.match(text, pos + 1)
            assert name is not None  # [a-z]* always matches
            rank = _SUFFIX_RANK.get(name.group())
            if rank is None:
                return invalid()
            kind = _Kind.SUFFIX
            pre_release = name.group() in PRE_RELEASE_SUFFIXES
            keys.append((_PRE_RELEASE_CLASS if pre_release else _class(kind), rank))
            pos = name.end()
        elif char == "~":
            if kind >= _Kind.COMMIT_HASH:
                return invalid()
            commit = _HEX.match(text, pos + 1)
            if commit is None:
                return invalid()
            kind = _Kind.COMMIT_HASH
            keys.append((_class(kind), commit.group()))
            pos = commit.end()
        elif char == "-":
            if kind >= _Kind.REVISION or not text.startswith("-r", pos):
                return invalid()
            revision = _DIGITS.match(text, pos + 2)
            if revision is None:
                return invalid()
            kind = _Kind.REVISION
            keys.append((_class(kind), int(revision.group())))
            pos = revision.end()
        else:
            return invalid()
    keys.append((_class(_Kind.END), 0))
    return tuple(keys), True


@lru_cache(maxsize=65536)
def parse_version(text: str) -> Version:
    """Parse any text; ``Version.valid`` says whether apk would accept it."""
    key, valid = _tokenize(text)
    return Version(text, key, valid)


def version_key(text: str) -> tuple[TokenKey, ...]:
    """A sort key: ``sorted(versions, key=version_key)`` orders oldest first."""
    return parse_version(text).key


def is_valid_version(text: str) -> bool:
    return parse_version(text).valid


def require_valid_version(text: str, what: str = "version") -> Version:
    """Parse user input; raise InputError for something apk would not accept."""
    version = parse_version(text)
    if not version.valid:
        raise InputError(f"{what} {text!r} is not an apk version (expected e.g. 1.2.3, 1.2.3_rc1, 1.2.3-r0)")
    return version


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is older than, the same as, or newer than ``b``."""
    key_a, key_b = version_key(a), version_key(b)
    return (key_a > key_b) - (key_a < key_b)


def fuzzy_match(version: str, prefix: str) -> bool:
    """apk's ``~``: every token of ``prefix`` equals the matching token of ``version``
    (``3.6.9`` and ``3.6_pre1`` match ``~3.6``; ``3.60`` does not)."""
    wanted = parse_version(prefix).prefix_key
    return parse_version(version).key[: len(wanted)] == wanted


def satisfies(version: str, dep: Dependency) -> bool:
    """Whether ``version`` meets the version part of ``dep``.

    The ``!`` of a conflict atom is not applied here: for ``!foo<2`` this answers
    whether ``version`` is one of the versions the conflict names.
    """
    op = dep.op
    if op is ConstraintOp.ANY:
        return True
    if op is ConstraintOp.FUZZY:
        return fuzzy_match(version, dep.version)
    order = compare_versions(version, dep.version)
    if op is ConstraintOp.EQ:
        return order == 0
    if op is ConstraintOp.LT:
        return order < 0
    if op is ConstraintOp.LE:
        return order <= 0
    if op is ConstraintOp.GT:
        return order > 0
    return order >= 0  # GE, the last member of ConstraintOp
