"""The pipeline library: resolving ``uses:``, reading definitions, checking ``with:``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import qackage
from qackage.errors import InputError
from qackage.model import Step
from qackage.validate.pipelines import BUILTIN_PIPELINES, PipelineInput, PipelineLibrary

VER_CHECK = """\
name: Binary version check
description: |
  Runs each binary with a version flag and looks for the version.
needs:
  packages:
    - ver-check
inputs:
  bins:
    description: binaries to check
    required: true
  version:
    default: ${{package.version}}
  verbose:
    default: false
  retries:
    default: 3
  match-type:
pipeline:
  - name: check versions
    runs: |
      ver-check --bins="${{inputs.bins}}" --version="${{inputs.version}}"
"""


def library(tmp_path: Path, files: dict[str, str], *, folder: str = "pipelines") -> Path:
    root = tmp_path / folder
    for name, text in files.items():
        path = root / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    root.mkdir(parents=True, exist_ok=True)
    return root


def test_definition_is_parsed_with_inputs_as_text(tmp_path: Path) -> None:
    folder = library(tmp_path, {"test/tw/ver-check": VER_CHECK})
    definition = PipelineLibrary([folder], include_builtin=False).load("test/tw/ver-check")
    assert definition.uses == "test/tw/ver-check"
    assert definition.path == folder / "test/tw/ver-check.yaml"
    assert definition.description == "Runs each binary with a version flag and looks for the version.\n"
    assert definition.declares_needs
    assert definition.body == Step(
        name="Binary version check",
        needs=("ver-check",),
        pipeline=(
            Step(
                name="check versions",
                runs='ver-check --bins="${{inputs.bins}}" --version="${{inputs.version}}"\n',
            ),
        ),
    )
    assert definition.inputs == (
        PipelineInput("bins", "binaries to check", "", required=True),
        PipelineInput("version", default="${{package.version}}"),
        PipelineInput("verbose", default="false"),
        PipelineInput("retries", default="3"),
        PipelineInput("match-type"),
    )


def test_bind_checks_with_exactly_as_melange(tmp_path: Path) -> None:
    definition = PipelineLibrary([library(tmp_path, {"v": VER_CHECK})], include_builtin=False).load("v")
    assert definition.bind((("bins", "foo bar"), ("retries", "")), "here") == {
        "bins": "foo bar",
        "version": "${{package.version}}",
        "verbose": "false",
        "retries": "3",  # an empty value takes the default
        "match-type": "",
    }
    with pytest.raises(InputError) as caught:
        definition.bind((("bins", "foo"), ("bin", "typo")), "hello.yaml: test.pipeline[0]")
    assert caught.value.message == 'hello.yaml: test.pipeline[0]: undefined input "bin" to pipeline "v"'
    with pytest.raises(InputError) as caught:
        definition.bind((("bins", ""),), "hello.yaml: test.pipeline[0]")
    assert caught.value.message == 'hello.yaml: test.pipeline[0]: required input "bins" for pipeline is missing'


def test_checksum_inputs_are_checked_when_set(tmp_path: Path) -> None:
    fetch = "inputs:\n  uri: {required: true}\n  expected-sha256: {}\n  expected-commit: {}\npipeline:\n  - runs: x\n"
    definition = PipelineLibrary([library(tmp_path, {"fetch": fetch})], include_builtin=False).load("fetch")
    assert definition.bind((("uri", "u"), ("expected-sha256", "ab" * 32)), "w")["expected-sha256"] == "ab" * 32
    with pytest.raises(InputError, match=r'^w: checksum input "expected-sha256" for pipeline, invalid length$'):
        definition.bind((("uri", "u"), ("expected-sha256", "abc")), "w")
    with pytest.raises(InputError, match=r'^w: expected commit "expected-commit" for pipeline contains invalid'):
        definition.bind((("uri", "u"), ("expected-commit", "z" * 40)), "w")


def test_first_folder_wins_then_the_next(tmp_path: Path) -> None:
    first = library(tmp_path, {"test/a": "name: first\n"}, folder="first")
    second = library(tmp_path, {"test/a": "name: second\n", "test/b": "name: only-second\n"}, folder="second")
    pipelines = PipelineLibrary([first, second], include_builtin=False)
    assert pipelines.search_path == (first, second)
    assert pipelines.load("test/a").body.name == "first"
    assert pipelines.load("test/b").body.name == "only-second"
    assert pipelines.find("test/b") == second / "test/b.yaml"
    assert pipelines.available() == ("test/a", "test/b")


def test_definitions_are_cached(tmp_path: Path) -> None:
    folder = library(tmp_path, {"x": "name: x\n"})
    pipelines = PipelineLibrary([folder], include_builtin=False)
    loaded = pipelines.load("x")
    (folder / "x.yaml").unlink()
    assert pipelines.load("x") is loaded
    with pytest.raises(InputError, match="not found"):
        PipelineLibrary([folder], include_builtin=False).load("x")


def test_missing_pipeline_lists_the_folders_searched(tmp_path: Path) -> None:
    first = library(tmp_path, {}, folder="first")
    second = library(tmp_path, {}, folder="second")
    with pytest.raises(InputError) as caught:
        PipelineLibrary([first, second]).load("test/nonexistent-check")
    assert caught.value.message == (
        f'pipeline "test/nonexistent-check" not found: no test/nonexistent-check.yaml in {first}, {second}, '
        f"{BUILTIN_PIPELINES}"
    )


@pytest.mark.parametrize(
    ("uses", "message"),
    [
        ("/etc/passwd", "invalid 'uses' value '/etc/passwd': must not be an absolute path or contain '..'"),
        ("../outside", "invalid 'uses' value '../outside': must not be an absolute path or contain '..'"),
        ("test/", "invalid 'uses' value 'test/'"),
        ("", "invalid 'uses' value ''"),
    ],
)
def test_names_that_could_leave_the_folders(tmp_path: Path, uses: str, message: str) -> None:
    (tmp_path / "outside.yaml").write_text("name: outside\n")
    with pytest.raises(InputError) as caught:
        PipelineLibrary([library(tmp_path, {})], include_builtin=False).load(uses)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nsteps: []\n", "{path}: unknown key 'steps'"),
        ("inputs:\n  a:\n    defualt: b\n", "{path}: inputs.a: unknown key 'defualt'"),
        ("inputs:\n  a:\n    required: sometimes\n", "{path}: inputs.a.required must be true or false"),
        ("uses: other\n", "{path}: a pipeline definition cannot 'uses' another at its top level; use a step under"),
        ("pipeline:\n  - uses: a\n    runs: b\n", "{path}: pipeline[0]: 'uses' and 'runs' cannot be combined"),
        ("name: [unclosed\n", "{path}: not valid YAML at line 2"),
    ],
)
def test_bad_definitions_name_their_file(tmp_path: Path, text: str, message: str) -> None:
    folder = library(tmp_path, {"bad": text})
    with pytest.raises(InputError) as caught:
        PipelineLibrary([folder], include_builtin=False).load("bad")
    assert caught.value.message.startswith(message.format(path=folder / "bad.yaml"))


def test_an_empty_definition_defines_nothing(tmp_path: Path) -> None:
    definition = PipelineLibrary([library(tmp_path, {"empty": ""})], include_builtin=False).load("empty")
    assert (definition.body, definition.inputs, definition.declares_needs) == (Step(), (), False)
    with pytest.raises(InputError, match='undefined input "x" to pipeline "empty"'):
        definition.bind((("x", "1"),), "w")


def test_builtin_library_is_the_package_folder_and_every_definition_reads() -> None:
    assert Path(qackage.__file__).resolve().parent / "pipelines" == BUILTIN_PIPELINES
    pipelines = PipelineLibrary()
    assert pipelines.search_path == (BUILTIN_PIPELINES,)
    for name in pipelines.available():
        assert pipelines.load(name).uses == name
