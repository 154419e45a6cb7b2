"""Loading melange YAML: scalars keep their text, hostile documents are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from qackage.errors import InputError
from qackage.melange.fields import Where, boolean, mapping, text, text_map, whole_number
from qackage.melange.yamltext import MAX_YAML_BYTES, FloatText, load_yaml, read_yaml_file


def test_scalars_keep_the_text_melange_reads() -> None:
    document = load_yaml(
        "timeout: 30\nverbose: false\nversion: 1.10\nquoted: '1.10'\nflag: yes\nhex: 0x1F\n"
        "empty:\ntilde: ~\nlist: [1, on]\nblock: |\n  a\n  b\n",
        "x.yaml",
    )
    assert document == {
        "timeout": "30",
        "verbose": "false",
        "version": "1.10",
        "quoted": "1.10",
        "flag": "yes",
        "hex": "0x1F",
        "empty": None,
        "tilde": None,
        "list": ["1", "on"],
        "block": "a\nb\n",
    }
    assert isinstance(document, dict)
    # Only the unquoted float is flagged: YAML 1.1 tools would read it as 1.1.
    assert isinstance(document["version"], FloatText)
    assert not isinstance(document["quoted"], FloatText)
    assert not isinstance(document["timeout"], FloatText)


def test_merge_keys_and_anchors_still_work() -> None:
    document = load_yaml("base: &b {a: 1, b: 2}\nderived:\n  <<: *b\n  b: 3\n", "x.yaml")
    assert document == {"base": {"a": "1", "b": "2"}, "derived": {"a": "1", "b": "3"}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("package: [unclosed", "x.yaml: not valid YAML at line 1: expected ',' or ']', but got '<stream end>'"),
        ("a: 1\nb: 2\na: 3\n", "x.yaml: not valid YAML at line 3: duplicate key 'a'"),
        ("--- 1\n--- 2\n", "x.yaml: not valid YAML at line 2: but found another document"),
        ("a: &x [*x]\n", "x.yaml: not valid YAML: an alias refers to the node that contains it"),
        ("[" * 65 + "]" * 65, "x.yaml: not valid YAML at line 1: nested more than 64 levels deep"),
        ("[" * 200_000 + "]" * 200_000, "x.yaml: not valid YAML at line 1: nested more than 64 levels deep"),
    ],
)
def test_malformed_and_hostile_documents(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        load_yaml(text, "x.yaml")
    assert caught.value.message == message


def test_billion_laughs_is_refused_before_it_expands() -> None:
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]" for n in range(1, 8)]
    with pytest.raises(InputError, match=r"^x.yaml: not valid YAML: aliases expand to more than 1000000 nodes$"):
        load_yaml("\n".join(lines) + "\n", "x.yaml")
    # Modest sharing is fine.
    assert load_yaml("\n".join(lines[:3]) + "\n", "x.yaml") is not None


def test_size_limits(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^x.yaml: larger than 4 MiB; refusing to parse it$"):
        load_yaml("a: " + "b" * MAX_YAML_BYTES, "x.yaml")
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.truncate(MAX_YAML_BYTES + 1)
    with pytest.raises(InputError, match=r"^big.yaml: larger than 4 MiB"):
        read_yaml_file(big, "big.yaml")


def test_read_yaml_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^missing.yaml: cannot read: No such file or directory$"):
        read_yaml_file(tmp_path / "missing.yaml", "missing.yaml")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"a: caf\xe9\n")
    with pytest.raises(InputError, match=r"^latin.yaml: not UTF-8 text \(byte 6\)$"):
        read_yaml_file(latin, "latin.yaml")
    good = tmp_path / "good.yaml"
    good.write_text("a: [1, 2]\n")
    assert read_yaml_file(good) == {"a": ["1", "2"]}


def test_field_readers_name_the_yaml_path() -> None:
    where = Where("foo.yaml", "test").key("pipeline").index(2).key("with")
    assert str(where) == "foo.yaml: test.pipeline[2].with"
    assert text_map({"timeout": 30, "verbose": True, "files": None}, where) == (
        ("timeout", "30"),
        ("verbose", "true"),
        ("files", ""),
    )
    assert text(1.5, where) == "1.5"
    assert whole_number("65532", where) == 65532
    assert boolean("on", where) is True
    assert boolean(None, where) is False
    with pytest.raises(InputError, match=r"^foo.yaml: test.pipeline\[2\].with must be a mapping$"):
        mapping(["a"], where)
    with pytest.raises(InputError, match=r"^foo.yaml: test.pipeline\[2\].with must be text$"):
        text({"a": 1}, where)
    with pytest.raises(InputError, match=r"must be a whole number >= 0$"):
        whole_number("-3", where)
    with pytest.raises(InputError, match=r"must be a whole number >= 0$"):
        whole_number(True, where)
    with pytest.raises(InputError, match=r"must be true or false$"):
        boolean("maybe", where)
    with pytest.raises(InputError, match=r"^foo.yaml: test.pipeline\[2\].with: key 1 must be text$"):
        mapping({1: "a"}, where)
