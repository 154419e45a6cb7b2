"""Dependency atoms: every operator, apk's alias spellings, and the errors a user sees."""

from __future__ import annotations

import pytest

from qackage.apk.pkginfo import parse_atom, parse_atoms
from qackage.errors import InputError
from qackage.model import ConstraintOp, Dependency

Op = ConstraintOp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("busybox", Dependency("busybox")),
        ("so:libc.so.6", Dependency("so:libc.so.6")),
        ("so:libc.so.6=6", Dependency("so:libc.so.6", Op.EQ, "6")),
        ("cmd:sh", Dependency("cmd:sh")),
        ("!busybox-legacy", Dependency("busybox-legacy", conflict=True)),
        ("glibc<2.40", Dependency("glibc", Op.LT, "2.40")),
        ("glibc<=2.39-r5", Dependency("glibc", Op.LE, "2.39-r5")),
        ("glibc>2.38", Dependency("glibc", Op.GT, "2.38")),
        ("glibc>=2.38", Dependency("glibc", Op.GE, "2.38")),
        ("python-3.12~3.12", Dependency("python-3.12", Op.FUZZY, "3.12")),
        ("!openssl<3", Dependency("openssl", Op.LT, "3", conflict=True)),
        ("  zlib=1.3-r0\n", Dependency("zlib", Op.EQ, "1.3-r0")),
    ],
)
def test_atoms(text: str, expected: Dependency) -> None:
    assert parse_atom(text) == expected
    assert str(parse_atom(text)) == text.strip()


@pytest.mark.parametrize("alias", ["~=", "=~", "><"])
def test_fuzzy_aliases_fold_to_tilde(alias: str) -> None:
    assert parse_atom(f"ruby{alias}3.3") == Dependency("ruby", Op.FUZZY, "3.3")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "malformed dependency ''"),
        (">=1.0", "malformed dependency '>=1.0'"),
        ("two words", "malformed dependency 'two words'"),
        ("foo>=", "dependency 'foo>=' has an operator but no version"),
        ("foo~", "dependency 'foo~' has an operator but no version"),
    ],
)
def test_malformed_atoms_raise_every_time(text: str, message: str) -> None:
    # Parsed atoms are cached; a failure must not be, so asking twice fails twice.
    for _ in range(2):
        with pytest.raises(InputError) as caught:
            parse_atom(text)
        assert caught.value.message == message


def test_parse_atoms_splits_on_whitespace() -> None:
    assert parse_atoms("so:libc.so.6  cmd:sh\t!foo") == (
        Dependency("so:libc.so.6"),
        Dependency("cmd:sh"),
        Dependency("foo", conflict=True),
    )
    assert parse_atoms("") == ()
