"""yam-style output: the exact layout, scalars that read back as written, the catalog stable."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from qackage import model
from qackage.melange.fields import Where
from qackage.melange.stanza import parse_stanza
from qackage.melange.yamltext import load_yaml
from qackage.model import Account, Accounts, Group, Stanza, Step
from qackage.propose.yamfmt import (
    double_quoted,
    dump,
    format_stanza,
    format_stanzas,
    is_plain_safe,
    literal_header,
    scalar,
    stanza_data,
    with_list,
)

CORPUS = Path("/work/shared/data/wolfi-tests.jsonl")

HELLO = Stanza(
    pipeline=(
        Step(uses="test/tw/ldd-check"),
        Step(uses="test/tw/ver-check", with_=(("bins", "hello\nhello-cli\n"), ("version", "${{package.version}}"))),
        Step(name="Greets: the world", runs="hello greet world\nhello --help >/dev/null\n"),
        Step(name="arch only", if_="${{build.arch}} == 'x86_64'", working_directory="wolfi-tests", runs="true"),
    ),
    environment=model.TestEnvironment(packages=("build-base", "${{package.name}}-dev")),
)

HELLO_TEXT = """\
test:
  environment:
    contents:
      packages:
        - build-base
        - ${{package.name}}-dev
  pipeline:
    - uses: test/tw/ldd-check
    - uses: test/tw/ver-check
      with:
        bins: |
          hello
          hello-cli
        version: ${{package.version}}
    - name: "Greets: the world"
      runs: |
        hello greet world
        hello --help >/dev/null
    - name: arch only
      if: ${{build.arch}} == 'x86_64'
      working-directory: wolfi-tests
      runs: "true"
"""


def reparsed(text: str, package: str | None = None) -> Stanza:
    """What qackage's melange reader (yaml.v3's view: scalars stay text) makes of ``text``:
    a ``test:`` block, or one keyed by ``package``."""
    document = load_yaml(text, "formatted")
    assert isinstance(document, dict)
    test = document[package]["test"] if package else document["test"]
    return parse_stanza(test, Where("formatted", "test"))


def test_layout_is_what_yam_leaves() -> None:
    assert format_stanza(HELLO) == HELLO_TEXT


def test_output_reads_back_as_the_same_data_and_stanza() -> None:
    text = format_stanza(HELLO)
    assert yaml.safe_load(text) == {"test": stanza_data(HELLO)}
    assert reparsed(text) == HELLO


def test_nested_steps_needs_environment_and_accounts() -> None:
    stanza = Stanza(
        pipeline=(
            Step(
                name="group",
                working_directory="sub",
                pipeline=(Step(runs="make check\n", needs=("make",), environment=(("CI", "1"),)), Step(uses="x/y")),
            ),
        ),
        environment=model.TestEnvironment(
            packages=("curl",),
            repositories=("https://packages.example/os",),
            keyring=("https://packages.example/key.rsa.pub",),
            environment=(("HOME", "/root"), ("ON", "on")),
            accounts=Accounts(
                run_as="0",
                users=(Account("svc", 1001, gid=1001, shell="/bin/sh", homedir="/var/lib/svc"),),
                groups=(Group("svc", 1001, members=("svc",)),),
            ),
        ),
    )
    text = format_stanza(stanza)
    assert yaml.safe_load(text) == {"test": stanza_data(stanza)}
    assert reparsed(text) == stanza
    assert "        - uses: x/y\n" in text  # nested steps are indented under their key too
    assert '      run-as: "0"\n' in text
    assert '      "ON": "on"\n' in text


def test_empty_pipeline_and_empty_mappings() -> None:
    assert format_stanza(Stanza(pipeline=())) == "test:\n  pipeline: []\n"
    assert dump({"a": {}, "b": []}) == "a: {}\nb: []\n"


def test_several_packages_keyed_by_name_with_a_blank_line_between() -> None:
    docs = Stanza(pipeline=(Step(uses="test/docs"),))
    text = format_stanzas({"hello": HELLO, "hello-doc": docs})
    assert text.startswith("hello:\n  test:\n    environment:\n")
    assert "\n\nhello-doc:\n  test:\n    pipeline:\n      - uses: test/docs\n" in text
    assert text.endswith("\n") and not text.endswith("\n\n")
    loaded = yaml.safe_load(text)
    assert loaded == {"hello": {"test": stanza_data(HELLO)}, "hello-doc": {"test": stanza_data(docs)}}
    assert reparsed(text.split("\n\n")[1], "hello-doc") == docs


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("hello", "hello"),
        ("${{package.version}}", "${{package.version}}"),
        ("test/tw/ver-check", "test/tw/ver-check"),
        ("-h", "-h"),
        ("--version", "--version"),
        ("a b, c [d] {e}", "a b, c [d] {e}"),
        ("ünïcode", "ünïcode"),
        ("on", '"on"'),
        ("Yes", '"Yes"'),
        ("n", '"n"'),
        ("true", '"true"'),
        ("null", '"null"'),
        ("~", '"~"'),
        ("", '""'),
        ("30", '"30"'),
        ("1.0", '"1.0"'),
        ("1e3", '"1e3"'),
        ("0x1F", '"0x1F"'),
        ("1:20", '"1:20"'),  # YAML 1.1 base-60 number
        ("2024-01-02", '"2024-01-02"'),  # YAML 1.1 timestamp
        ("<<", '"<<"'),
        ("=", '"="'),
        ("-", '"-"'),
        ("- item", '"- item"'),
        ("*.so", '"*.so"'),
        ("&anchor", '"&anchor"'),
        ("!tag", '"!tag"'),
        ("%TAG", '"%TAG"'),
        ("@at", '"@at"'),
        ("`cmd`", '"`cmd`"'),
        ("#comment", '"#comment"'),
        ("a #b", '"a #b"'),
        ("key: value", '"key: value"'),
        ("ends:", '"ends:"'),
        ("'quoted'", "\"'quoted'\""),
        (' "x"', '" \\"x\\""'),
        ("trailing ", '"trailing "'),
        ("nbsp\xa0", '"nbsp\xa0"'),
        ("\xa0lead", "\xa0lead"),
        ("tab\there", '"tab\\there"'),
        ("bell\x07", '"bell\\x07"'),
        ("back\\slash: x", '"back\\\\slash: x"'),
        ("line\u2028sep", '"line\\u2028sep"'),
    ],
)
def test_one_line_scalars(text: str, written: str) -> None:
    assert scalar(text) == written
    assert yaml.safe_load(f"k: {written}\n") == {"k": text}


@pytest.mark.parametrize(
    ("text", "header"),
    [
        ("one line", None),
        ("a\nb\n", "|"),
        ("a\nb", "|-"),
        ("a\nb\n\n", "|+"),
        ("a\n\nb\n", "|"),
        ("  indented first\nline\n", None),
        ("\n  indented after a blank\n", None),
        ("trailing blank \nx\n", None),
        ("trailing nbsp\xa0\nx\n", None),
        ("\n\n", None),
        ("bell\x07\nx\n", None),
        ("tab\tinside\nx\n", "|"),
    ],
)
def test_literal_blocks(text: str, header: str | None) -> None:
    assert literal_header(text) == header
    written = dump({"k": text})
    assert yaml.safe_load(written) == {"k": text}
    assert all(line == line.rstrip() for line in written.splitlines())


def test_with_list_spells_one_word_as_is_and_several_one_per_line() -> None:
    assert with_list(["hello"]) == "hello"
    assert with_list(["a", "b"]) == "a\nb\n"
    assert dump({"bins": with_list(["a", "b"])}) == "bins: |\n  a\n  b\n"


def test_double_quoted_escapes_round_trip() -> None:
    text = 'q"\\\n\t\r\x00\x1b\x85\ufeffé'
    assert yaml.safe_load(double_quoted(text)) == text


# Text a step may carry; surrogates cannot be written as UTF-8 at all.
_CHARACTERS = st.characters(exclude_categories=["Cs"])
_TEXT = st.text(_CHARACTERS, max_size=40)
_WORDS = st.text(_CHARACTERS, min_size=1, max_size=20)
_KEYS = st.from_regex(r"[a-z][a-z0-9_-]{0,12}", fullmatch=True)


@st.composite
def steps(draw: st.DrawFn) -> Step:
    if draw(st.booleans()):
        inputs = draw(st.dictionaries(_KEYS, _TEXT, max_size=4))
        return Step(name=draw(st.none() | _WORDS), uses=draw(_WORDS), with_=tuple(inputs.items()))
    return Step(name=draw(st.none() | _WORDS), runs=draw(_WORDS))


@settings(max_examples=300, deadline=None)
@given(st.lists(steps(), max_size=4), st.lists(_WORDS, max_size=4))
def test_any_stanza_reads_back_exactly(pipeline: list[Step], packages: list[str]) -> None:
    stanza = Stanza(pipeline=tuple(pipeline), environment=model.TestEnvironment(packages=tuple(packages)))
    text = format_stanza(stanza)
    assert yaml.safe_load(text) == {"test": stanza_data(stanza)}
    assert all(line == line.rstrip() for line in text.splitlines())
    assert text.endswith("\n")


@settings(max_examples=500, deadline=None)
@given(_TEXT)
def test_plain_scalars_are_only_chosen_when_they_read_back(text: str) -> None:
    if is_plain_safe(text):
        assert yaml.safe_load(f"k: {text}\n") == {"k": text}
        assert load_yaml(f"k: {text}\n", "plain") == {"k": text}
    assert yaml.safe_load(dump({"k": text})) == {"k": text}


# ---------------------------------------------------------------------------- the catalog


@pytest.fixture(scope="module")
def catalog() -> list[tuple[str, Stanza]]:
    if not CORPUS.is_file():
        pytest.skip(f"{CORPUS} is not available")
    records: list[dict[str, Any]] = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    # Every 5th record: all families are represented, and it runs in about a second.
    return [(r["name"], parse_stanza(r["test"], Where(r["file"], "test"))) for r in records[::5]]


def test_catalog_stanzas_format_stably(catalog: list[tuple[str, Stanza]]) -> None:
    for name, stanza in catalog:
        text = format_stanza(stanza)
        assert yaml.safe_load(text) == {"test": stanza_data(stanza)}, name
        again = reparsed(text)
        assert again == stanza, name
        assert format_stanza(again) == text, name


def test_catalog_stanzas_keep_yam_conventions(catalog: list[tuple[str, Stanza]]) -> None:
    for name, stanza in catalog:
        text = format_stanza(stanza)
        lines = text.splitlines()
        assert text.endswith("\n") and not text.endswith("\n\n"), name
        assert all(line == line.rstrip() for line in lines), name
        indents = {len(line) - len(line.lstrip(" ")) for line in lines if line and not line.startswith(" " * 8)}
        assert all(indent % 2 == 0 for indent in indents), name
        steps_at = [line for line in lines if line.startswith("    - ")]
        assert len(steps_at) == len(stanza.pipeline), name  # sequences indented under their key
        # No blank line between steps (blank lines only occur inside block scalars).
        for before, after in itertools.pairwise(lines):
            assert not (before == "" and after.startswith("    - ")), name
