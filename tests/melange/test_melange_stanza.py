"""``test:`` stanzas into `Stanza` objects: shapes Wolfi uses, and melange's strictness."""

from __future__ import annotations

import textwrap

import pytest

from qackage.errors import InputError
from qackage.melange.fields import Where
from qackage.melange.stanza import parse_stanza
from qackage.melange.yamltext import load_yaml
from qackage.model import Account, Accounts, Group, Stanza, Step
from qackage.model import TestEnvironment as ImageConfig


def stanza(text: str) -> Stanza:
    document = load_yaml(textwrap.dedent(text), "foo.yaml")
    assert isinstance(document, dict)
    return parse_stanza(document["test"], Where("foo.yaml", "test"))


def test_wolfi_shapes_parse_into_steps() -> None:
    parsed = stanza(
        """\
        test:
          environment:
            contents:
              packages:
                - openjdk-${{vars.java-version}}-default-jdk
                - curl
              repositories:
                - https://packages.wolfi.dev/os
              keyring:
                - https://packages.wolfi.dev/os/wolfi-signing.rsa.pub
            accounts:
              run-as: 0
              users:
                - username: nonroot
                  uid: 65532
                  gid: 65532
              groups:
                - groupname: nonroot
                  gid: 65532
                  members: [nonroot]
            environment:
              JAVA_MAX_MEM_RATIO: 5
              LANG: C.utf8
          pipeline:
            - uses: test/daemon-check-output
              with:
                start: /usr/bin/memcached -u nonroot
                timeout: 30
                verbose: false
                expected_output: |
                  server listening
            - name: Functional test
              working-directory: /home/nonroot
              environment:
                JAVA_HOME: /usr/lib/jvm/java-${{range.key}}-openjdk
              pipeline:
                - needs:
                    packages:
                      - build-base
                      - ocaml
                  runs: |
                    ocamlfind ocamlopt -package num test_num.ml
                - name: Only on x86_64
                  if: ${{build.arch}} == 'x86_64'
                  label: x86-only
                  runs: ./a.out
            - name: Placeholder step with nothing to run
        """
    )
    assert parsed == Stanza(
        pipeline=(
            Step(
                uses="test/daemon-check-output",
                with_=(
                    ("start", "/usr/bin/memcached -u nonroot"),
                    ("timeout", "30"),
                    ("verbose", "false"),
                    ("expected_output", "server listening\n"),
                ),
            ),
            Step(
                name="Functional test",
                working_directory="/home/nonroot",
                environment=(("JAVA_HOME", "/usr/lib/jvm/java-${{range.key}}-openjdk"),),
                pipeline=(
                    Step(runs="ocamlfind ocamlopt -package num test_num.ml\n", needs=("build-base", "ocaml")),
                    Step(
                        name="Only on x86_64",
                        if_="${{build.arch}} == 'x86_64'",
                        label="x86-only",
                        runs="./a.out",
                    ),
                ),
            ),
            Step(name="Placeholder step with nothing to run"),
        ),
        environment=ImageConfig(
            packages=("openjdk-${{vars.java-version}}-default-jdk", "curl"),
            repositories=("https://packages.wolfi.dev/os",),
            keyring=("https://packages.wolfi.dev/os/wolfi-signing.rsa.pub",),
            environment=(("JAVA_MAX_MEM_RATIO", "5"), ("LANG", "C.utf8")),
            accounts=Accounts(
                run_as="0",
                users=(Account(username="nonroot", uid=65532, gid=65532),),
                groups=(Group(groupname="nonroot", gid=65532, members=("nonroot",)),),
            ),
        ),
    )


def test_empty_values_are_melange_zero_values() -> None:
    parsed = stanza(
        """\
        test:
          environment:
          pipeline:
            - uses: test/tw/ldd-check
              with:
                files:
            - runs:
              name: empty runs is no runs
        """
    )
    assert parsed.pipeline == (
        Step(uses="test/tw/ldd-check", with_=(("files", ""),)),
        Step(name="empty runs is no runs"),
    )
    assert parsed.environment == ImageConfig()
    assert stanza("test:\n  pipeline: []\n") == Stanza(pipeline=())


def test_assertions_are_accepted_and_checked() -> None:
    parsed = stanza(
        "test:\n  pipeline:\n    - assertions:\n        required-steps: 1\n      pipeline:\n        - runs: a\n"
    )
    assert parsed.pipeline == (Step(pipeline=(Step(runs="a"),)),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "test:\n  pipeline:\n    - runs: a\n    - runs: b\n    - run: c\n",
            "foo.yaml: test.pipeline[2]: unknown key 'run'",
        ),
        ("test:\n  pipeline:\n    - with: {a: b}\n", "foo.yaml: test.pipeline[0]: 'with' needs 'uses'"),
        (
            "test:\n  pipeline:\n    - uses: x\n      runs: y\n",
            "foo.yaml: test.pipeline[0]: 'uses' and 'runs' cannot be combined",
        ),
        (
            "test:\n  pipeline:\n    - uses: x\n      pipeline:\n        - runs: y\n",
            "foo.yaml: test.pipeline[0]: 'uses' and 'pipeline' cannot be combined",
        ),
        (
            "test:\n  pipeline:\n    - pipeline:\n        - uses: /etc/passwd\n",
            "foo.yaml: test.pipeline[0].pipeline[0].uses: invalid 'uses' value '/etc/passwd': "
            "must not be an absolute path or contain '..'",
        ),
        (
            "test:\n  pipeline:\n    - uses: test/../../secret\n",
            "foo.yaml: test.pipeline[0].uses: invalid 'uses' value 'test/../../secret': "
            "must not be an absolute path or contain '..'",
        ),
        (
            "test:\n  pipeline:\n    - uses: x\n      with:\n        files: [a, b]\n",
            "foo.yaml: test.pipeline[0].with.files must be text (quote it or use a block scalar)",
        ),
        ("test:\n  pipeline:\n    - runs: [a]\n", "foo.yaml: test.pipeline[0].runs must be text"),
        (
            "test:\n  pipeline:\n    - needs: {package: [a]}\n",
            "foo.yaml: test.pipeline[0].needs: unknown key 'package'",
        ),
        (
            "test:\n  pipeline:\n    - assertions: {required-steps: many}\n",
            "foo.yaml: test.pipeline[0].assertions.required-steps must be a whole number >= 0",
        ),
        (
            "test:\n  pipeline:\n    - inputs: {a: {default: b}}\n",
            "foo.yaml: test.pipeline[0]: unknown key 'inputs'",
        ),
        ("test:\n  pipelines: []\n", "foo.yaml: test: unknown key 'pipelines'"),
        ("test:\n  pipeline: {runs: a}\n", "foo.yaml: test.pipeline must be a list"),
        (
            "test:\n  environment:\n    entrypoint: {command: x}\n  pipeline: []\n",
            "foo.yaml: test.environment: 'entrypoint' is not supported in a test environment",
        ),
        (
            "test:\n  environment:\n    contents:\n      baseimage: x\n  pipeline: []\n",
            "foo.yaml: test.environment: 'contents.baseimage' is not supported in a test environment",
        ),
        (
            "test:\n  environment:\n    contents:\n      package: [x]\n  pipeline: []\n",
            "foo.yaml: test.environment.contents: unknown key 'package'",
        ),
        (
            "test:\n  environment:\n    accounts:\n      users:\n        - username: a\n  pipeline: []\n",
            "foo.yaml: test.environment.accounts.users[0].uid is missing",
        ),
        (
            "test:\n  environment:\n    accounts:\n      groups:\n        - groupname: a\n          gid: x\n"
            "  pipeline: []\n",
            "foo.yaml: test.environment.accounts.groups[0].gid must be a whole number >= 0",
        ),
        (
            "test:\n  environment:\n    environment:\n      A: {b: c}\n  pipeline: []\n",
            "foo.yaml: test.environment.environment.A must be text",
        ),
    ],
)
def test_errors_are_one_line_and_name_the_yaml_path(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        stanza(text)
    assert caught.value.message == message


def test_deeply_nested_steps_are_refused() -> None:
    nested: object = [{"runs": "true"}]
    for _ in range(20):
        nested = [{"pipeline": nested}]
    with pytest.raises(InputError, match=r"^foo.yaml: test(\.pipeline\[0\])+: steps nested more than 16 levels deep$"):
        parse_stanza({"pipeline": nested}, Where("foo.yaml", "test"))
