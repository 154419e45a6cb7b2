"""Assembly: maintainer order, one environment, the origin's family templated."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from qackage.model import Candidate, CheckKind, Step
from qackage.propose.assemble import PIPELINE_ORDER, assemble, environment_packages
from qackage.propose.yamfmt import format_stanza


def uses(pipeline: str, kind: CheckKind = CheckKind.STRUCTURE, *inputs: tuple[str, str]) -> Candidate:
    return Candidate(step=Step(uses=pipeline, with_=inputs), kind=kind, rationale=f"because {pipeline}")


def runs(name: str, *packages: str) -> Candidate:
    return Candidate(
        step=Step(name=name, runs=f"echo {name}\n"), kind=CheckKind.FUNCTIONAL, rationale=name, packages=packages
    )


CONVENTIONAL = [
    uses("test/tw/help-check", CheckKind.HELP, ("bins", "hello")),
    uses("test/tw/ver-check", CheckKind.VERSION, ("bins", "hello")),
    uses("test/tw/symlink-check"),
    uses("test/tw/ldd-check", CheckKind.LINKAGE),
    uses("python/import", CheckKind.IMPORT, ("imports", "import hello\n")),
    uses("test/tw/pip-check", CheckKind.LINKAGE),
    uses("test/pkgconf"),
    uses("test/tw/devpackage"),
]
MAINTAINER_ORDER = [
    "test/tw/devpackage",
    "test/pkgconf",
    "test/tw/pip-check",
    "python/import",
    "test/tw/ldd-check",
    "test/tw/symlink-check",
    "test/tw/ver-check",
    "test/tw/help-check",
]


def pipelines(candidates: list[Candidate], package: str = "hello") -> list[str]:
    return [step.uses or step.name or "" for step in assemble(candidates, package=package).pipeline]


def test_structure_and_loading_then_version_help_then_functional() -> None:
    candidates = [runs("Greets"), *CONVENTIONAL, runs("Upper-cases")]
    assert pipelines(candidates) == [*MAINTAINER_ORDER, "Greets", "Upper-cases"]


@given(st.permutations(CONVENTIONAL))
def test_order_does_not_depend_on_the_proposers_order(shuffled: list[Candidate]) -> None:
    assert pipelines(shuffled) == MAINTAINER_ORDER


def test_functional_steps_keep_their_order_whatever_pipeline_they_use() -> None:
    daemon = uses("test/daemon-check-output", CheckKind.FUNCTIONAL, ("start", "/usr/sbin/tinyd -f"))
    candidates = [runs("first"), daemon, uses("test/tw/help-check", CheckKind.HELP, ("bins", "tinyd")), runs("last")]
    assert pipelines(candidates) == ["test/tw/help-check", "first", "test/daemon-check-output", "last"]


def test_unknown_pipelines_follow_the_known_ones_of_their_kind() -> None:
    candidates = [
        uses("test/tw/ver-check", CheckKind.VERSION, ("bins", "x")),
        uses("test/tw/virtualpackage", CheckKind.STRUCTURE, ("virtual-pkg-name", "y")),
        uses("test/tw/ldd-check", CheckKind.LINKAGE),
    ]
    assert pipelines(candidates) == ["test/tw/ldd-check", "test/tw/virtualpackage", "test/tw/ver-check"]
    assert len(set(PIPELINE_ORDER)) == len(PIPELINE_ORDER)


def test_the_same_step_twice_is_kept_once() -> None:
    candidates = [uses("test/tw/ldd-check", CheckKind.LINKAGE), runs("a", "curl"), uses("test/tw/ldd-check")]
    stanza = assemble(candidates, package="hello")
    assert [s.uses or s.name for s in stanza.pipeline] == ["test/tw/ldd-check", "a"]


def test_environment_drops_what_lint_sh_drops_and_sorts() -> None:
    candidates = [
        runs("a", "wolfi-base", "curl", "busybox", "jq"),
        runs("b", "apk-tools", "curl", "wolfi-keys", "hello", "build-base"),
    ]
    stanza = assemble(candidates, package="hello")
    assert stanza.environment.packages == ("build-base", "curl", "jq")


def test_origin_family_is_written_with_package_name() -> None:
    # A subpackage's test: its main package and siblings by ${{package.name}}, itself dropped.
    assert environment_packages(
        ["hello", "hello-dev", "hello-doc", "hellothere", "gcc", "${{context.name}}"],
        package="hello-doc",
        origin="hello",
    ) == ("${{package.name}}", "${{package.name}}-dev", "gcc", "hellothere")
    # The main package's test: ${{package.name}} would be the package itself.
    assert environment_packages(["hello", "${{package.name}}", "hello-dev"], package="hello", origin="hello") == (
        "${{package.name}}-dev",
    )
    assert environment_packages(["hello-dev"], package="hello") == ("hello-dev",)  # no origin: literal names


def test_package_inputs_that_name_the_package_itself_are_left_to_their_default() -> None:
    candidates = [
        uses("test/tw/ldd-check", CheckKind.LINKAGE, ("packages", "hello-dev"), ("verbose", "true")),
        uses("test/tw/symlink-check", CheckKind.STRUCTURE, ("packages", "hello")),
        uses("test/tw/header-check", CheckKind.STRUCTURE, ("packages", "zlib-dev")),
    ]
    stanza = assemble(candidates, package="hello-dev", origin="hello")
    assert [s.with_ for s in stanza.pipeline] == [
        (("verbose", "true"),),
        (("packages", "${{package.name}}"),),
        (("packages", "zlib-dev"),),
    ]


def test_assembled_stanza_formats() -> None:
    stanza = assemble([runs("Greets", "curl"), *CONVENTIONAL[:2]], package="hello")
    text = format_stanza(stanza)
    assert text.startswith("test:\n  environment:\n    contents:\n      packages:\n        - curl\n  pipeline:\n")
    assert text.index("ver-check") < text.index("help-check") < text.index("Greets")


def test_python_import_steps_are_merged_into_one_imports_block() -> None:
    first = Candidate(
        step=Step(uses="python/import", with_=(("imports", "import pyfoo\n"),)),
        kind=CheckKind.IMPORT,
        rationale="modules",
    )
    second = Candidate(
        step=Step(uses="python/import", with_=(("imports", "from pyfoo import slugify\nimport pyfoo\n"),)),
        kind=CheckKind.IMPORT,
        rationale="a public name",
    )
    other_python = Candidate(
        step=Step(uses="python/import", with_=(("python", "python3.12"), ("imports", "import pyfoo\n"))),
        kind=CheckKind.IMPORT,
        rationale="another interpreter",
    )
    stanza = assemble([first, second, other_python], package="py3-pyfoo")
    imports = [dict(step.with_) for step in stanza.pipeline if step.uses == "python/import"]
    assert imports == [
        {"imports": "import pyfoo\nfrom pyfoo import slugify\n"},
        {"python": "python3.12", "imports": "import pyfoo\n"},
    ]
