"""Whole melange files: package metadata, vars, ranged subpackages, and each test's context."""

from __future__ import annotations

from pathlib import Path

import pytest

from qackage.errors import InputError
from qackage.melange.config import (
    Dependencies,
    Package,
    PackageOptions,
    VarTransform,
    load_config,
    parse_config,
)
from qackage.melange.substitution import DEFAULT_BUILD_ENVIRONMENT
from qackage.model import Stanza, Step
from qackage.model import TestEnvironment as ImageConfig

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

WIDGET = """\
package:
  name: py3-widget
  version: 2.4.1
  epoch: 3
  description: Widgets for ${{package.name}}
  url: https://example.org/widget
  copyright:
    - license: MIT
    - license: Apache-2.0
      paths: ["vendor/*"]
  dependencies:
    runtime:
      - python-${{vars.pyver}}
    provides:
      - widget=${{package.full-version}}
    provider-priority: 10
  options:
    no-provides: true
  target-architecture:
    - x86_64
    - aarch64
  resources:
    cpu: 4

vars:
  pyver: "3.12"
  pypi-package: widget
  tag: v${{package.version}}

var-transforms:
  - from: ${{package.version}}
    match: ^(\\d+)\\.(\\d+)\\.\\d+$
    replace: $1.$2
    to: short-version

data:
  - name: py-versions
    items:
      "3.12": "312"
      "3.10": "310"
      "3.11": "311"

environment:
  contents:
    packages:
      - build-base
      - python-${{vars.pyver}}-dev
  environment:
    CGO_ENABLED: 0
    WIDGET_VERSION: ${{package.version}}

options:
  static:
    environment:
      contents:
        packages: [musl]

pipeline:
  - uses: git-checkout
    with:
      repository: https://example.org/widget.git
      tag: ${{vars.tag}}
      expected-commit: 0123456789abcdef0123456789abcdef01234567
  - runs: python3 -m build

subpackages:
  - range: py-versions
    name: py${{range.key}}-${{vars.pypi-package}}
    description: widget for Python ${{range.key}}
    dependencies:
      runtime:
        - python-${{range.key}}
      provides:
        - py3-${{vars.pypi-package}}
    pipeline:
      - runs: echo ${{range.value}}
    test:
      environment:
        contents:
          packages:
            - python-${{range.key}}-dev
      pipeline:
        - uses: python/import
          with:
            python: python${{range.key}}
            imports: import widget
        - if: '"${{range.key}}" == "3.12"'
          runs: python${{range.key}} -c 'import widget.fast'

  - name: ${{package.name}}-doc
    if: ${{build.arch}} == 'x86_64'
    scriptlets:
      post-install: /bin/true
    test:
      pipeline:
        - uses: test/docs

test:
  environment:
    contents:
      packages:
        - py3-widget-doc
  pipeline:
    - uses: test/tw/ver-check
      with:
        bins: widget
    - runs: widget --version | grep ${{vars.short-version}}

update:
  enabled: true
"""


def test_package_metadata_vars_and_environment() -> None:
    config = parse_config(WIDGET, "py3-widget.yaml")
    assert config.package == Package(
        name="py3-widget",
        version="2.4.1",
        epoch=3,
        description="Widgets for py3-widget",
        url="https://example.org/widget",
        licenses=("MIT", "Apache-2.0"),
        dependencies=Dependencies(
            runtime=("python-3.12",),
            provides=("widget=2.4.1-r3",),
            provider_priority=10,
        ),
        options=PackageOptions(no_provides=True),
        target_architecture=("x86_64", "aarch64"),
        unmodelled=("resources",),
    )
    assert config.package.license == "MIT AND Apache-2.0"
    assert config.vars == (
        ("pyver", "3.12"),
        ("pypi-package", "widget"),
        ("tag", "v2.4.1"),
        ("short-version", "2.4"),
    )
    assert config.var_transforms == (
        VarTransform(from_="${{package.version}}", match=r"^(\d+)\.(\d+)\.\d+$", replace="$1.$2", to="short-version"),
    )
    assert config.environment == ImageConfig(
        packages=("build-base", "python-3.12-dev"),
        environment=(("CGO_ENABLED", "0"), ("WIDGET_VERSION", "2.4.1")),
    )
    assert config.build_options == ("static",)
    assert config.unmodelled == ("update",)
    # Build steps keep their ${{...}} text.
    assert config.pipeline[0].with_[1] == ("tag", "${{vars.tag}}")
    assert config.pipeline[1] == Step(runs="python3 -m build")


def test_ranged_subpackages_expand_in_sorted_key_order() -> None:
    config = parse_config(WIDGET, "py3-widget.yaml")
    assert config.package_names == (
        "py3-widget",
        "py3.10-widget",
        "py3.11-widget",
        "py3.12-widget",
        "py3-widget-doc",
    )
    ranged = config.subpackages[:3]
    assert [(sub.range_key, sub.range_value, sub.index, sub.range_name) for sub in ranged] == [
        ("3.10", "310", 0, "py-versions"),
        ("3.11", "311", 0, "py-versions"),
        ("3.12", "312", 0, "py-versions"),
    ]
    assert ranged[1].description == "widget for Python 3.11"
    assert ranged[1].dependencies == Dependencies(runtime=("python-3.11",), provides=("py3-widget",))
    # Steps and tests are shared and keep ${{range.key}}: the context carries the values.
    assert ranged[0].pipeline == (Step(runs="echo ${{range.value}}"),)
    assert ranged[0].test is ranged[2].test
    doc = config.subpackages[3]
    assert (doc.name, doc.index, doc.if_, doc.unmodelled) == (
        "py3-widget-doc",
        1,
        "${{build.arch}} == 'x86_64'",
        ("scriptlets",),
    )


def test_test_for_gives_each_test_its_context() -> None:
    config = parse_config(WIDGET, "py3-widget.yaml")
    stanza, context = config.test_for("py3-widget", arch="aarch64")
    assert stanza is config.test
    assert context.label == "py3-widget.yaml: test"
    variables = context.variables()
    assert variables["context.name"] == "py3-widget"
    assert variables["vars.short-version"] == "2.4"
    assert variables["build.arch"] == "aarch64"
    assert variables["options.static.enabled"] == "false"
    assert variables["targets.package.py3.11-widget"] == "/home/build/melange-out/py3.11-widget"
    base = dict(context.base_environment)
    assert base["CGO_ENABLED"] == "0" and base["HOME"] == "/home/build"
    assert set(base) == {"CGO_ENABLED", "WIDGET_VERSION"} | {key for key, _ in DEFAULT_BUILD_ENVIRONMENT}

    stanza, context = config.test_for("py3.11-widget")
    assert stanza is not None and stanza.pipeline[0].uses == "python/import"
    assert context.label == "py3-widget.yaml: subpackages[0].test"
    assert (context.context_name, context.range_key, context.range_value) == ("py3.11-widget", "3.11", "311")
    assert context.parse_time_variables()["range.key"] == "3.11"
    assert context.variables()["targets.contextdir"] == "/home/build/melange-out/py3.11-widget"

    stanza, context = config.test_for("py3-widget-doc")
    assert stanza == Stanza(pipeline=(Step(uses="test/docs"),))
    assert context.label == "py3-widget.yaml: subpackages[1].test"
    with pytest.raises(InputError) as caught:
        config.test_for("py3-gadget")
    assert caught.value.message == (
        "py3-widget.yaml: no package named 'py3-gadget' (the file builds py3-widget, py3.10-widget, "
        "py3.11-widget, py3.12-widget, py3-widget-doc)"
    )


def test_a_bare_test_fragment() -> None:
    config = parse_config("test:\n  pipeline:\n    - runs: foo --version\n", "fragment.yaml")
    assert config.package is None
    stanza, context = config.test_for("foo")
    assert stanza == Stanza(pipeline=(Step(runs="foo --version"),))
    assert (context.package_name, context.context_name, context.label) == ("foo", "foo", "fragment.yaml: test")
    assert "package.version" not in context.variables()
    with pytest.raises(InputError, match="a bare 'test:' fragment has no package"):
        config.context()


def test_unquoted_float_versions_are_read_as_text_and_flagged() -> None:
    config = parse_config("package:\n  name: x\n  version: 1.10\n", "x.yaml")
    assert config.package is not None
    assert (config.package.version, config.package.version_needs_quotes) == ("1.10", True)
    quoted = parse_config("package:\n  name: x\n  version: '1.10'\n", "x.yaml")
    assert quoted.package is not None and not quoted.package.version_needs_quotes


MINIMAL = "package:\n  name: x\n  version: '1'\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "x.yaml: the file is empty"),
        ("- a\n", "x.yaml: the top level must be a mapping"),
        ("pipeline: []\n", "x.yaml: no 'package:' section"),
        (MINIMAL + "sources: []\n", "x.yaml: unknown key 'sources'"),
        ("package:\n  version: '1'\n", "x.yaml: package.name is missing"),
        ("package:\n  name: x y\n  version: '1'\n", "x.yaml: package.name 'x y' is not a valid package name"),
        ("package:\n  name: x\n", "x.yaml: package.version is missing"),
        (MINIMAL + "  epoch: -1\n", "x.yaml: package.epoch must be a whole number >= 0"),
        (MINIMAL + "  homepage: x\n", "x.yaml: package: unknown key 'homepage'"),
        (MINIMAL + "  copyright:\n    - paths: ['*']\n", "x.yaml: package.copyright[0].license is missing"),
        (MINIMAL + "  options:\n    no-provides: maybe\n", "x.yaml: package.options.no-provides must be true or false"),
        (
            MINIMAL + "  dependencies:\n    runtime:\n      - ${{vars.nope}}\n",
            "x.yaml: package.dependencies.runtime[0]: variable vars.nope not defined",
        ),
        (
            MINIMAL + "  dependencies:\n    provider-priority: high\n",
            "x.yaml: package.dependencies.provider-priority must be a number",
        ),
        (MINIMAL + "vars:\n  a: ${{vars.b}}\n  b: c\n", "x.yaml: vars.a: variable vars.b not defined"),
        (
            MINIMAL + "var-transforms:\n  - from: x\n    match: '(['\n    to: y\n",
            "x.yaml: var-transforms[0].match: '([' is not a valid regular expression: unterminated character set",
        ),
        (MINIMAL + "var-transforms:\n  - from: x\n    match: y\n", "x.yaml: var-transforms[0].to is missing"),
        (
            MINIMAL + "subpackages:\n  - name: ${{vars.nope}}-dev\n",
            "x.yaml: subpackages[0].name: variable vars.nope not defined",
        ),
        (
            MINIMAL + "subpackages:\n  - name: y\n    range: versions\n",
            "x.yaml: subpackages[0].range: range 'versions' is not defined under 'data:'",
        ),
        (
            # A ranged subpackage whose name ignores the range comes out twice.
            MINIMAL + "data:\n  - name: r\n    items: {a: '1', b: '2'}\nsubpackages:\n  - name: y\n    range: r\n",
            "x.yaml: subpackages[0]: package name 'y' is used twice",
        ),
        (MINIMAL + "subpackages:\n  - name: x\n", "x.yaml: subpackages[0]: package name 'x' is used twice"),
        (MINIMAL + "subpackages:\n  - name: y\n    provides: [z]\n", "x.yaml: subpackages[0]: unknown key 'provides'"),
        (
            MINIMAL + "environment:\n  contents:\n    packages:\n      - ${{build.arch}}-tools\n",
            "x.yaml: environment.contents.packages[0]: variable build.arch not defined",
        ),
        (
            MINIMAL + "test:\n  pipeline:\n    - uses: a\n      runs: b\n",
            "x.yaml: test.pipeline[0]: 'uses' and 'runs' cannot be combined",
        ),
        (
            MINIMAL + "subpackages:\n  - name: y\n    test:\n      pipeline:\n        - with: {a: b}\n",
            "x.yaml: subpackages[0].test.pipeline[0]: 'with' needs 'uses'",
        ),
    ],
)
def test_errors_are_one_line_and_name_the_place(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_config(text, "x.yaml")
    assert caught.value.message == message


def test_load_config_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "widget.yaml"
    path.write_text(WIDGET)
    assert load_config(path).label == "widget.yaml"
    path.write_text(WIDGET.replace("  - runs: python3 -m build", "  - runs: python3 -m build\n    shell: bash"))
    with pytest.raises(InputError, match=r"^os/widget.yaml: pipeline\[1\]: unknown key 'shell'$"):
        load_config(path, "os/widget.yaml")


def test_every_fixture_file_reads(tmp_path: Path) -> None:
    files = sorted(FIXTURES.glob("*/*.yaml"))
    assert files
    for path in files:
        config = load_config(path)
        assert config.package is not None, path
        for name in config.package_names:
            _, context = config.test_for(name)
            assert context.context_name == name
    hello = load_config(FIXTURES / "hello" / "melange.yaml")
    assert hello.package_names == (
        "hello",
        "libgreet",
        "hello-dev",
        "hello-static",
        "hello-doc",
        "hello-bash-completion",
    )
    stanza, context = hello.test_for("hello-dev")
    assert stanza == Stanza(pipeline=(Step(uses="test/tw/devpackage"), Step(uses="test/pkgconf")))
    assert context.label == "melange.yaml: subpackages[1].test"
    assert hello.subpackages[1].dependencies == Dependencies(runtime=("libgreet",))
