"""Compiling ``test:`` stanzas into plans, against hand-written pipeline definitions."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from qackage.errors import InputError
from qackage.melange.config import load_config, parse_config
from qackage.melange.fields import Where
from qackage.melange.stanza import parse_stanza
from qackage.melange.substitution import DEFAULT_BUILD_ENVIRONMENT, SubstitutionContext
from qackage.model import Account, Accounts, Group, Stanza
from qackage.validate.compile import DEFAULT_PATH, compile_test, runner_script
from qackage.validate.pipelines import PipelineLibrary
from qackage.validate.plan import PlannedStep
from qackage.validate.plan import TestPlan as Plan

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CORPUS = Path("/work/shared/data/wolfi-tests.jsonl")

# Small definitions in the shape of the real ones (inputs, defaults, needs, nesting).
DEFINITIONS = {
    "test/tw/ver-check": """\
        name: version check
        needs:
          packages: [ver-check]
        inputs:
          bins: {required: true}
          version: {default: "${{package.version}}"}
          version-flag: {default: auto}
        pipeline:
          - name: check versions
            runs: |
              ver-check --bins="${{inputs.bins}}" --version="${{inputs.version}}" --flag="${{inputs.version-flag}}"
        """,
    "test/tw/ldd-check": """\
        needs:
          packages: [ldd-check]
        inputs:
          packages: {default: "${{context.name}}"}
          files: {}
        pipeline:
          - runs: ldd-check --packages="${{inputs.packages}}" --files="${{inputs.files}}"
        """,
    "test/daemon-check-output": """\
        needs:
          packages: [wait-for-it]
        inputs:
          start: {required: true}
          expected_output: {required: true}
          timeout: {default: 30}
          setup: {}
          post: {}
        pipeline:
          - name: setup
            runs: ${{inputs.setup}}
          - name: start and watch
            runs: |
              timeout ${{inputs.timeout}} ${{inputs.start}} > daemon.log 2>&1 &
              printf '%s' "${{inputs.expected_output}}" > expected.txt
          - name: post
            runs: ${{inputs.post}}
        """,
    "test/outer": """\
        inputs:
          x: {default: outer-default}
        pipeline:
          - uses: test/inner
            with:
              value: ${{inputs.x}}
          - runs: echo outer ${{inputs.x}}
        """,
    "test/inner": """\
        needs:
          packages: [inner-tool]
        inputs:
          value: {required: true}
          derived: {default: "${{inputs.value}}-derived"}
        pipeline:
          - name: only for special values
            if: ${{inputs.value}} == 'special'
            needs:
              packages: [special-tool]
            runs: special ${{inputs.value}}
          - runs: echo ${{inputs.value}} ${{inputs.derived}} ${{inputs.x}}
        """,
    "test/arm-only": """\
        if: ${{build.arch}} == 'aarch64'
        needs:
          packages: [arm-tool]
        working-directory: arm
        environment:
          ARM: "1"
        pipeline:
          - runs: uname -m
          - working-directory: deeper
            runs: pwd
        """,
    "test/loop-a": "pipeline:\n  - uses: test/loop-b\n",
    "test/loop-b": "pipeline:\n  - uses: test/loop-a\n",
    "test/needs-description": "pipeline:\n  - runs: echo ${{package.description}}\n",
    "test/bad-default": "inputs:\n  a: {default: '${{vars.missing}}'}\npipeline:\n  - runs: echo ${{inputs.a}}\n",
}

# What the fixture scenarios use that DEFINITIONS does not define: a minimal body with
# the inputs the real pipeline declares, so their `with:` checks as melange would.
FIXTURE_DEFINITIONS = {
    "test/tw/help-check": "inputs:\n  bins: {required: true}\npipeline:\n  - runs: help-check ${{inputs.bins}}\n",
    "test/tw/devpackage": "inputs:\n  prefix: {default: /usr}\npipeline:\n  - runs: devpackage ${{inputs.prefix}}\n",
    "test/tw/staticpackage": "pipeline:\n  - runs: package-type-check static ${{context.name}}\n",
    "test/tw/emptypackage": "pipeline:\n  - runs: package-type-check empty ${{context.name}}\n",
    "test/tw/metapackage": "pipeline:\n  - runs: package-type-check meta ${{context.name}}\n",
    "test/tw/shell-syntax-check": "inputs:\n  files: {}\npipeline:\n  - runs: shell-syntax-check\n",
    "test/tw/shell-deps-check": "inputs:\n  files: {required: true}\npipeline:\n  - runs: deps ${{inputs.files}}\n",
    "test/tw/header-check": "inputs:\n  packages: {}\n  files: {}\npipeline:\n  - runs: header-check\n",
    "test/pkgconf": "needs:\n  packages: [pkgconf]\npipeline:\n  - runs: basename ${{targets.contextdir}}\n",
    "test/docs": "inputs:\n  path-prefix: {default: usr/share}\npipeline:\n  - runs: docs\n",
    "test/metapackage": "pipeline:\n  - runs: meta ${{context.name}}\n",
    "test/emptypackage": "pipeline:\n  - runs: empty ${{context.name}}\n",
    "test/no-docs": "pipeline:\n  - runs: no-docs\n",
    "test/perl-module-check": "inputs:\n  modules: {required: true}\npipeline:\n  - runs: perl ${{inputs.modules}}\n",
    "test/compiler/smoke": "inputs:\n  cc: {}\n  cxx: {}\n  copts: {}\n  cxxopts: {}\npipeline:\n  - runs: smoke\n",
    "python/import": """\
        needs:
          packages: [wolfi-base]
        inputs:
          python: {default: DEFAULT}
          import: {}
          imports: {}
        pipeline:
          - runs: |
              PYTHON="${{inputs.python}}"
              IMPORTS="${{inputs.imports}}"
        """,
}


@pytest.fixture
def pipelines(tmp_path: Path) -> PipelineLibrary:
    root = tmp_path / "pipelines"
    for name, text in (DEFINITIONS | FIXTURE_DEFINITIONS).items():
        path = root / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return PipelineLibrary([root], include_builtin=False)


HELLO = """\
package:
  name: hello
  version: "2.12.1"
  epoch: 1
  description: Friendly greeter
vars:
  greeting: Hello
environment:
  environment:
    LANG: C.UTF-8
subpackages:
  - name: ${{package.name}}-dev
    test:
      pipeline:
        - uses: test/tw/ldd-check
test:
  environment:
    contents:
      packages:
        - curl
        - ${{package.name}}-doc
    environment:
      GREETING: ${{vars.greeting}}
      PATH: /opt/bin
  pipeline:
    - uses: test/tw/ver-check
      with:
        bins: hello
    - name: Greets
      working-directory: greet
      environment:
        LC_ALL: C
      pipeline:
        - runs: hello greet ${{context.name}} | grep -q "${{vars.greeting}}"
        - name: On arm only
          if: ${{build.arch}} == 'aarch64'
          needs:
            packages: [qemu-tools]
          runs: hello --arm
        - working-directory: /tmp/abs dir
          environment:
            PATH: /custom/bin
          runs: pwd
"""


def hello_plan(pipelines: PipelineLibrary, *, arch: str = "x86_64", name: str = "hello") -> Plan:
    stanza, context = parse_config(HELLO, "hello.yaml").test_for(name, arch=arch)
    assert stanza is not None
    return compile_test(stanza, context, pipelines, package_under_test=name, append_packages=["wolfi-base"])


def test_a_stanza_compiles_into_an_exact_plan(pipelines: PipelineLibrary) -> None:
    base = dict(DEFAULT_BUILD_ENVIRONMENT) | {"LANG": "C.UTF-8", "GREETING": "Hello", "PATH": DEFAULT_PATH}

    def env(**extra: str) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((base | extra).items()))

    assert hello_plan(pipelines) == Plan(
        package="hello",
        origin="hello",
        packages=("curl", "hello", "hello-doc", "ver-check", "wolfi-base"),
        steps=(
            PlannedStep(
                number=1,
                title="check versions",
                trail=("step 1", "test/tw/ver-check", "step 1"),
                uses="test/tw/ver-check",
                script=(
                    "set -eo pipefail\n[ -d /home/build ] || mkdir -p /home/build\ncd /home/build\n"
                    'ver-check --bins="hello" --version="2.12.1" --flag="auto"\n\nexit 0'
                ),
                environment=env(),
                working_directory="/home/build",
            ),
            PlannedStep(
                number=2,
                title='hello greet hello | grep -q "Hello"',
                trail=("step 2", "step 1"),
                uses=None,
                script=runner_script("/home/build/greet", 'hello greet hello | grep -q "Hello"'),
                environment=env(LC_ALL="C"),
                working_directory="/home/build/greet",
            ),
            PlannedStep(
                number=3,
                title="On arm only",
                trail=("step 2", "step 2"),
                uses=None,
                script=runner_script("/home/build/greet", "hello --arm"),
                environment=env(LC_ALL="C"),
                working_directory="/home/build/greet",
                skipped_reason="if: ${{build.arch}} == 'aarch64' is false (\"x86_64\" == 'aarch64')",
            ),
            PlannedStep(
                number=4,
                title="pwd",
                trail=("step 2", "step 3"),
                uses=None,
                script=(
                    "set -eo pipefail\n[ -d '/tmp/abs dir' ] || mkdir -p '/tmp/abs dir'\ncd '/tmp/abs dir'\npwd\nexit 0"
                ),
                environment=env(LC_ALL="C", PATH="/custom/bin"),
                working_directory="/tmp/abs dir",
            ),
        ),
        accounts=Accounts(users=(Account("build", 1000, gid=1000),), groups=(Group("build", 1000, ("build",)),)),
    )


def test_a_true_condition_runs_the_step_and_installs_its_needs(pipelines: PipelineLibrary) -> None:
    plan = hello_plan(pipelines, arch="aarch64")
    assert [step.skipped_reason for step in plan.steps] == [None, None, None, None]
    assert "qemu-tools" in plan.packages


def test_subpackage_test_gets_its_own_context_and_image(pipelines: PipelineLibrary) -> None:
    plan = hello_plan(pipelines, name="hello-dev")
    assert (plan.package, plan.origin, plan.packages) == (
        "hello-dev",
        "hello",
        ("hello-dev", "ldd-check", "wolfi-base"),
    )
    assert plan.steps[0].script == runner_script("/home/build", 'ldd-check --packages="hello-dev" --files=""')


def test_nested_pipelines_forward_inputs_and_defaults_name_siblings(pipelines: PipelineLibrary) -> None:
    stanza = Stanza(pipeline=parse_stanza({"pipeline": [{"uses": "test/outer"}]}, Where("x")).pipeline)
    context = SubstitutionContext(package_name="foo", package_version="1", package_epoch=0)
    plan = compile_test(stanza, context, pipelines, package_under_test="foo")
    assert [(step.title, step.trail, step.skipped_reason) for step in plan.steps] == [
        (
            "only for special values",
            ("step 1", "test/outer", "step 1", "test/inner", "step 1"),
            "if: ${{inputs.value}} == 'special' is false (\"outer-default\" == 'special')",
        ),
        (
            "echo outer-default outer-default-derived outer-default",
            ("step 1", "test/outer", "step 1", "test/inner", "step 2"),
            None,
        ),
        ("echo outer outer-default", ("step 1", "test/outer", "step 2"), None),
    ]
    assert all(step.uses == "test/outer" for step in plan.steps)
    assert plan.packages == ("foo", "inner-tool")  # special-tool's step was skipped

    special = parse_stanza({"pipeline": [{"uses": "test/outer", "with": {"x": "special"}}]}, Where("x"))
    plan = compile_test(special, context, pipelines, package_under_test="foo")
    assert plan.steps[0].skipped_reason is None
    assert plan.packages == ("foo", "inner-tool", "special-tool")


def test_a_false_pipeline_condition_skips_everything_below_it(pipelines: PipelineLibrary) -> None:
    stanza = parse_stanza({"pipeline": [{"uses": "test/arm-only", "working-directory": "ignored"}]}, Where("x"))
    context = SubstitutionContext(package_name="foo")
    skipped = compile_test(stanza, context, pipelines, package_under_test="foo")
    assert skipped.packages == ("foo",)
    reason = "if: ${{build.arch}} == 'aarch64' is false (\"x86_64\" == 'aarch64')"
    assert [(step.working_directory, step.skipped_reason) for step in skipped.steps] == [
        ("/home/build/arm", reason),  # the definition's working-directory wins over the step's
        ("/home/build/deeper", reason),
    ]
    ran = compile_test(
        stanza, SubstitutionContext(package_name="foo", arch="aarch64"), pipelines, package_under_test="foo"
    )
    assert ran.packages == ("arm-tool", "foo")
    assert all(step.skipped_reason is None and ("ARM", "1") in step.environment for step in ran.steps)


def test_parse_time_variables_behave_as_in_melange(pipelines: PipelineLibrary) -> None:
    config = parse_config(
        textwrap.dedent(
            """\
        package: {name: py3-widget, version: "1.0", description: Widgets}
        data:
          - name: pythons
            items: {"3.12": "312", "3.13": "313"}
        subpackages:
          - range: pythons
            name: py${{range.key}}-widget
            test:
              environment:
                environment:
                  ARCH_NOTE: built for ${{build.arch}}
                  PYVER: ${{range.key}}
              pipeline:
                - if: '"${{range.key}}" == "3.13"'
                  runs: echo newest ${{range.value}} ${{package.description}}
                - uses: test/needs-description
        """
        ),
        "widget.yaml",
    )
    stanza, context = config.test_for("py3.13-widget")
    assert stanza is not None
    # The stanza's own text may use package.description (replaced while reading the file);
    # a pipeline definition may not.
    with pytest.raises(InputError) as caught:
        compile_test(stanza, context, pipelines, package_under_test="py3.13-widget")
    assert caught.value.message == (
        "widget.yaml: subpackages[0].test.pipeline[1] > test/needs-description: pipeline[0].runs: "
        "variable package.description not defined"
    )
    first = Stanza(pipeline=stanza.pipeline[:1], environment=stanza.environment)
    plan = compile_test(first, context, pipelines, package_under_test="py3.13-widget")
    assert plan.steps[0].script == runner_script("/home/build", "echo newest 313 Widgets")
    environment = dict(plan.steps[0].environment)
    # Test environment values only get the parse-time pass, as melange does.
    assert (environment["ARCH_NOTE"], environment["PYVER"]) == ("built for ${{build.arch}}", "3.13")
    _, older = config.test_for("py3.12-widget")
    assert compile_test(first, older, pipelines, package_under_test="py3.12-widget").steps[0].skipped_reason == (
        # range.* is replaced while the file is read, so the condition arrives with its values.
        'if: "3.12" == "3.13" is false'
    )


def test_accounts_keep_the_stanzas_and_add_the_build_user(pipelines: PipelineLibrary) -> None:
    stanza = parse_stanza(
        {
            "environment": {
                "accounts": {
                    "run-as": 65532,
                    "users": [{"username": "build", "uid": 2000}, {"username": "nonroot", "uid": 65532}],
                    "groups": [{"groupname": "nonroot", "gid": 65532}],
                }
            },
            "pipeline": [],
        },
        Where("x"),
    )
    plan = compile_test(stanza, SubstitutionContext(package_name="foo"), pipelines, package_under_test="foo")
    assert plan.accounts == Accounts(
        run_as="65532",
        users=(Account("build", 2000), Account("nonroot", 65532)),
        groups=(Group("nonroot", 65532), Group("build", 1000, ("build",))),
    )
    assert plan.steps == ()
    assert plan.packages == ("foo",)


def compile_error(pipelines: PipelineLibrary, test: dict[str, Any], context: SubstitutionContext | None = None) -> str:
    stanza = parse_stanza(test, Where("foo.yaml", "test"))
    context = context or SubstitutionContext(package_name="foo", package_version="1", label="foo.yaml: test")
    with pytest.raises(InputError) as caught:
        compile_test(stanza, context, pipelines, package_under_test="foo")
    assert "\n" not in caught.value.message
    return caught.value.message


@pytest.mark.parametrize(
    ("test", "message"),
    [
        (
            {"pipeline": [{"uses": "test/tw/ver-check", "with": {"bins": "x", "bin": "y"}}]},
            'foo.yaml: test.pipeline[0]: undefined input "bin" to pipeline "test/tw/ver-check"',
        ),
        (
            {"pipeline": [{"uses": "test/tw/ver-check"}]},
            'foo.yaml: test.pipeline[0]: required input "bins" for pipeline is missing',
        ),
        (
            {"pipeline": [{"runs": "a"}, {"pipeline": [{"uses": "test/tw/no-such-check"}]}]},
            'foo.yaml: test.pipeline[1].pipeline[0]: pipeline "test/tw/no-such-check" not found: '
            "no test/tw/no-such-check.yaml in {root}",
        ),
        (
            {"pipeline": [{"uses": "test/loop-a"}]},
            "foo.yaml: test.pipeline[0] > test/loop-a: pipeline[0] > test/loop-b: pipeline[0]: "
            "pipeline 'test/loop-a' uses itself (test/loop-a -> test/loop-b -> test/loop-a)",
        ),
        (
            {"pipeline": [{"runs": "echo ${{targets.nowhere}}"}]},
            "foo.yaml: test.pipeline[0].runs: variable targets.nowhere not defined",
        ),
        (
            {"pipeline": [{"pipeline": [{"if": "${{build.arch}} = 'x86_64'", "runs": "a"}]}]},
            "foo.yaml: test.pipeline[0].pipeline[0].if: cannot evaluate \"${{build.arch}} = 'x86_64'\": "
            "expected '==' or '!=' at position 9",
        ),
        (
            {"pipeline": [{"if": "${{build.arch}} == 'x86_64'", "runs": "echo ${{oops}}"}]},
            "foo.yaml: test.pipeline[0].runs: variable oops not defined",
        ),
        (
            {"pipeline": [{"working-directory": "${{vars.dir}}", "runs": "a"}]},
            "foo.yaml: test.pipeline[0].working-directory: variable vars.dir not defined",
        ),
        (
            {"pipeline": [{"needs": {"packages": ["tool-${{build.os}}"]}, "runs": "a"}]},
            "foo.yaml: test.pipeline[0].needs.packages[0]: variable build.os not defined",
        ),
        (
            {"environment": {"contents": {"packages": ["tool-${{build.arch}}"]}}, "pipeline": []},
            "foo.yaml: test.environment.contents.packages[0]: variable build.arch not defined",
        ),
        (
            {"pipeline": [{"uses": "test/tw/ver-check", "with": {"bins": "x", "version": "${{inputs.nope}}"}}]},
            "foo.yaml: test.pipeline[0].with.version: variable inputs.nope not defined",
        ),
        (
            {"pipeline": [{"uses": "test/bad-default"}]},
            "foo.yaml: test.pipeline[0] > test/bad-default: inputs.a.default: variable vars.missing not defined",
        ),
    ],
)
def test_compile_errors_name_the_step(
    pipelines: PipelineLibrary, tmp_path: Path, test: dict[str, Any], message: str
) -> None:
    assert compile_error(pipelines, test) == message.replace("{root}", str(tmp_path / "pipelines"))


def test_skipped_steps_are_still_compiled(pipelines: PipelineLibrary) -> None:
    # melange compiles before it evaluates conditions: a broken step fails even when skipped.
    message = compile_error(
        pipelines, {"pipeline": [{"if": "'a' == 'b'", "pipeline": [{"uses": "test/tw/ver-check"}]}]}
    )
    assert message == 'foo.yaml: test.pipeline[0].pipeline[0]: required input "bins" for pipeline is missing'


def test_a_fan_out_of_pipelines_is_bounded(tmp_path: Path) -> None:
    root = tmp_path / "fan"
    root.mkdir()
    (root / "level0.yaml").write_text("pipeline:\n" + "  - runs: leaf\n" * 50)
    for level in range(1, 4):
        (root / f"level{level}.yaml").write_text("pipeline:\n" + f"  - uses: level{level - 1}\n" * 50)
    stanza = parse_stanza({"pipeline": [{"uses": "level3"}]}, Where("x"))
    with pytest.raises(InputError, match=r"^test: the test expands to more than 10000 steps$"):
        compile_test(
            stanza,
            SubstitutionContext(package_name="foo"),
            PipelineLibrary([root], include_builtin=False),
            package_under_test="foo",
        )


def test_every_fixture_test_compiles(pipelines: PipelineLibrary) -> None:
    plans: dict[str, Plan] = {}
    for path in sorted(FIXTURES.glob("*/*.yaml")):
        config = load_config(path)
        for name in config.package_names:
            stanza, context = config.test_for(name)
            if stanza is not None:
                plans[name] = compile_test(stanza, context, pipelines, package_under_test=name)
    hello = plans["hello"]
    assert [step.title for step in hello.steps] == [
        "check versions",
        "help-check hello",
        "Greets through libgreet",
        "Upper-cases standard input",
        "Rejects an unknown command",
        'ldd-check --packages="hello" --files=""',
    ]
    assert hello.packages == ("hello", "ldd-check", "ver-check")
    assert 'ver-check --bins="hello" --version="2.12.1"' in hello.steps[0].script
    assert plans["hello-dev"].packages == ("hello-dev", "pkgconf")
    assert "basename /home/build/melange-out/hello-dev\n" in plans["hello-dev"].steps[1].script
    tinyd = plans["tinyd"]
    assert "timeout 30 /usr/sbin/tinyd -f > daemon.log" in tinyd.steps[2].script
    assert 'tinyd -v | grep -qF "0.3.1"' in tinyd.steps[0].script
    pyfoo = plans["py3-pyfoo"]
    assert 'IMPORTS="import pyfoo\nfrom pyfoo.cli import main\n"' in pyfoo.steps[0].script
    assert pyfoo.packages == ("py3-pyfoo", "wolfi-base")
    assert all(step.skipped_reason is None for plan in plans.values() for step in plan.steps)


@pytest.mark.skipif(not CORPUS.is_file(), reason=f"{CORPUS} is not available")
def test_real_wolfi_stanzas_compile(pipelines: PipelineLibrary) -> None:
    wanted = {
        ("memcached.yaml", "memcached"),
        ("ocaml-num.yaml", "ocaml-num"),
        ("blobfuse2.yaml", "blobfuse2"),
        ("tomcat-11.0.yaml", "${{package.name}}-openjdk-${{range.key}}"),
    }
    records: dict[tuple[str, str], dict[str, Any]] = {}
    with CORPUS.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if (record["file"], record["name"]) in wanted:
                records[(record["file"], record["name"])] = record["test"]

    def plan(key: tuple[str, str], context: SubstitutionContext) -> Plan:
        stanza = parse_stanza(records[key], Where(key[0], "test"))
        return compile_test(stanza, context, pipelines, package_under_test=context.context_name)

    memcached = plan(("memcached.yaml", "memcached"), SubstitutionContext(package_name="memcached"))
    # The grouping step's absolute working directory reaches every nested step.
    assert [step.working_directory for step in memcached.steps[1:]] == ["/home/nonroot"] * (len(memcached.steps) - 1)
    assert memcached.accounts.run_as == "65532"

    ocaml = plan(("ocaml-num.yaml", "ocaml-num"), SubstitutionContext(package_name="ocaml-num"))
    assert {"build-base", "ocaml", "ocamlfind"} <= set(ocaml.packages)

    blobfuse = plan(
        ("blobfuse2.yaml", "blobfuse2"),
        SubstitutionContext(package_name="blobfuse2", package_version="2.5.0", package_epoch=0),
    )
    assert "blobfuse2 --version | grep 2.5.0" in blobfuse.steps[0].script
    assert "timeout 30 blobfuse2 mount" in blobfuse.steps[3].script

    tomcat_context = SubstitutionContext(
        package_name="tomcat-11.0", package_version="11.0.2", package_epoch=0
    ).for_subpackage("tomcat-11.0-openjdk-21", range_key="21", range_value="21")
    tomcat = plan(("tomcat-11.0.yaml", "${{package.name}}-openjdk-${{range.key}}"), tomcat_context)
    daemon_steps = [step for step in tomcat.steps if step.uses == "test/daemon-check-output"]
    # The uses step's environment reaches the pipeline's own steps.
    assert all(("JAVA_HOME", "/usr/lib/jvm/java-21-openjdk") in step.environment for step in daemon_steps)
    assert "Server version: Apache Tomcat/11.0.2" in tomcat.steps[0].script
    assert tomcat.packages == ("curl", "tomcat-11.0-openjdk-21", "ver-check", "wait-for-it")
