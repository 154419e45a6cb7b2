"""qackage's library of standard melange test pipelines (``qackage/pipelines/``).

Two kinds of checks:

* shape: every definition is a melange pipeline file (known keys, declared inputs, no
  default on a required input, substitutions melange defines in tests, scripts that
  busybox ``sh -n`` accepts, one shared apk-database helper text);
* behaviour: every case of ``tests/validate/pipeline_cases/`` (see its README) runs
  through qackage's own validator (`casekit`): the case's package is the package under
  test, its stanza ``uses:`` the pipeline, and the root comes from the fixture
  repository. A pipeline must pass on its good packages and fail on its broken ones (for
  the reason the case names). The fixtures' own stanzas that use the library pass too.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from casekit import CASES, Case, CaseBench, all_cases, case_file, case_info, case_stanza, load_cases, step_output

from qackage.apk.repository import Repository
from qackage.apk.resolve import resolve
from qackage.build import RepositoryBuild
from qackage.errors import InputError
from qackage.melange.config import parse_config
from qackage.melange.stanza import DEFINITION_KEYS, STEP_KEYS
from qackage.melange.substitution import SubstitutionContext
from qackage.model import PackageInfo
from qackage.validate.compile import compile_test
from qackage.validate.pipelines import BUILTIN_PIPELINES, PipelineLibrary
from qackage.validate.plan import PlannedStep

LIBRARY = BUILTIN_PIPELINES
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
APK_DB_HELPER = LIBRARY / "apkdb.sh"

INPUT_KEYS = frozenset({"description", "default", "required"})
# What melange substitutes in a test's steps besides inputs (reference section 3).
TEST_VARIABLES = frozenset(
    {
        "context.name",
        "package.name",
        "package.version",
        "package.epoch",
        "package.full-version",
        "package.description",
        "package.srcdir",
        "subpkg.name",
        "targets.contextdir",
        "targets.destdir",
        "targets.subpkgdir",
        "targets.outdir",
        "build.arch",
        "build.goarch",
    }
)
EXPRESSION = re.compile(r"\$\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")
HELPER_BLOCK = re.compile(r"^# --- apk-db helper.*?^# --- end of the apk-db helper ---\n", re.DOTALL | re.MULTILINE)
APK_COMMAND = re.compile(r"(^|[;&|(`$]|\s)apk\s+(info|list|add|del|search|policy)\b")


# --------------------------------------------------------------------------- the library


def library_names() -> list[str]:
    return list(PipelineLibrary().available())


def load_definition(uses: str) -> dict[str, Any]:
    document = yaml.safe_load((LIBRARY / f"{uses}.yaml").read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{uses}: not a mapping"
    return document


def as_text(value: object) -> str:
    """A YAML scalar as melange reads it into a string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def walk_steps(steps: object) -> Iterator[dict[str, Any]]:
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, dict):
            yield step
            yield from walk_steps(step.get("pipeline"))


def texts_of(document: Mapping[str, Any]) -> Iterator[str]:
    """Every text melange substitutes in a definition: scripts, with: values, defaults."""
    for step in walk_steps(document.get("pipeline")):
        if "runs" in step:
            yield as_text(step["runs"])
        for value in (step.get("with") or {}).values():
            yield as_text(value)
    for spec in (document.get("inputs") or {}).values():
        if isinstance(spec, dict) and "default" in spec:
            yield as_text(spec["default"])


def shape_problems(document: object, known: Sequence[str]) -> list[str]:
    """What makes ``document`` not a melange pipeline definition qackage can ship."""
    if not isinstance(document, dict):
        return ["not a mapping"]
    problems = [f"unknown key {key!r}" for key in document if key not in DEFINITION_KEYS]
    if not isinstance(document.get("name"), str) or not document["name"].strip():
        problems.append("no name")
    steps = document.get("pipeline")
    if not isinstance(steps, list) or not steps:
        problems.append("no pipeline steps")
    inputs = document.get("inputs") or {}
    if not isinstance(inputs, dict):
        return [*problems, "inputs is not a mapping"]
    for name, spec in inputs.items():
        if not isinstance(spec, dict):
            problems.append(f"input {name}: not a mapping")
            continue
        problems += [f"input {name}: unknown key {key!r}" for key in spec if key not in INPUT_KEYS]
        if not isinstance(spec.get("description"), str) or not spec["description"].strip():
            problems.append(f"input {name}: no description")
        if "required" in spec and not isinstance(spec["required"], bool):
            problems.append(f"input {name}: required is not true or false")
        if "default" in spec and not isinstance(spec["default"], str):
            problems.append(f"input {name}: the default is not text (quote it)")
        if spec.get("required") and "default" in spec:
            problems.append(f"input {name}: required, yet it has a default")
    needs = document.get("needs")
    if needs is not None and (
        not isinstance(needs, dict)
        or set(needs) != {"packages"}
        or not all(isinstance(p, str) for p in needs["packages"] or [])
    ):
        problems.append("needs must be {packages: [names]}")
    for step in walk_steps(steps):
        label = step.get("name") or step.get("uses") or "a step"
        problems += [f"step {label!r}: unknown key {key!r}" for key in step if key not in STEP_KEYS]
        actions = [key for key in ("runs", "uses", "pipeline") if key in step]
        if len(actions) != 1:
            problems.append(f"step {label!r}: needs exactly one of runs, uses, pipeline")
        if "with" in step and "uses" not in step:
            problems.append(f"step {label!r}: with without uses")
        if "uses" in step and step["uses"] not in known:
            problems.append(f"step {label!r}: uses {step['uses']!r}, which the library does not have")
    return problems


def substitution_problems(document: Mapping[str, Any]) -> list[str]:
    """Inputs used but not declared, declared but unused, and unknown variables."""
    declared = set(document.get("inputs") or {})
    used: set[str] = set()
    problems: list[str] = []
    for text in texts_of(document):
        for name in EXPRESSION.findall(text):
            if name.startswith("inputs."):
                used.add(name.removeprefix("inputs."))
            elif name not in TEST_VARIABLES:
                problems.append(f"${{{{{name}}}}} is not defined in melange tests")
        if "${{" in EXPRESSION.sub("", text):
            problems.append("a malformed ${{ expression")
    problems += [f"input {name} is used but not declared" for name in sorted(used - declared)]
    problems += [f"input {name} is declared but never used" for name in sorted(declared - used)]
    return problems


def scripts_of(document: Mapping[str, Any]) -> list[str]:
    return [as_text(step["runs"]) for step in walk_steps(document.get("pipeline")) if "runs" in step]


def helper_problems(script: str, helper: str) -> list[str]:
    """A script that defines apk_db must carry the shared helper's text unchanged."""
    if "apk_db()" not in script:
        return []
    block = HELPER_BLOCK.search(script)
    if block is None:
        return ["defines apk_db outside the shared helper block"]
    if block.group(0) != helper:
        return ["its apk-db helper differs from qackage/pipelines/apkdb.sh"]
    return []


# --------------------------------------------------------------------------- shape tests


@pytest.mark.parametrize("uses", library_names())
def test_definition_has_the_melange_pipeline_shape(uses: str) -> None:
    document = yaml.safe_load((LIBRARY / f"{uses}.yaml").read_text(encoding="utf-8"))
    assert shape_problems(document, library_names()) == []


@pytest.mark.parametrize("uses", library_names())
def test_substitutions_are_declared_inputs_or_test_variables(uses: str) -> None:
    assert substitution_problems(load_definition(uses)) == []


@pytest.mark.parametrize("uses", library_names())
def test_scripts_parse_with_busybox_sh(uses: str) -> None:
    for script in scripts_of(load_definition(uses)):
        text = EXPRESSION.sub("placeholder", script)
        result = subprocess.run(
            ["busybox", "sh", "-n", "-c", f"set -eo pipefail\n{text}"], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"{uses}: {result.stderr}"


def shared_helper() -> str:
    block = HELPER_BLOCK.search(APK_DB_HELPER.read_text(encoding="utf-8"))
    assert block is not None, f"{APK_DB_HELPER} has no helper block"
    return block.group(0)


@pytest.mark.parametrize("uses", library_names())
def test_apk_db_helper_is_the_shared_text(uses: str) -> None:
    helper = shared_helper()
    for script in scripts_of(load_definition(uses)):
        assert helper_problems(script, helper) == []


@pytest.mark.parametrize("uses", library_names())
def test_scripts_do_not_need_the_apk_program(uses: str) -> None:
    """Test roots have apk's database but not necessarily apk: the helper reads the database."""
    for script in scripts_of(load_definition(uses)):
        assert not APK_COMMAND.search(script), f"{uses} runs apk"


# Each pipeline's inputs and their defaults (None: no default), as the reference lists them.
DAEMON_ERROR_STRINGS = (
    "ERROR\nFAIL\nFATAL\nTraceback.*most.recent.call\nException in thread\njava.lang.NullPointerException\n"
    "java.lang.RuntimeException\nGem::MissingSpecError\ncommand not found\n"
)
REFERENCE_INPUTS: dict[str, dict[str, str | None]] = {
    "python/import": {"python": "DEFAULT", "import": None, "from": None, "imports": None, "venv": None},
    "test/compiler/smoke": {"cc": "", "cxx": "", "copts": "", "cxxopts": ""},
    "test/daemon-check-output": {
        "start": None,
        "setup": None,
        "post": None,
        "timeout": "30",
        "expected_output": None,
        "error_strings": DAEMON_ERROR_STRINGS,
    },
    "test/docs": {"path-prefix": "usr/share"},
    "test/emptypackage": {},
    "test/jar-check": {"path": "/usr"},
    "test/ldd-check": {"files": None, "packages": None, "verbose": "false"},
    "test/metapackage": {},
    "test/no-docs": {},
    "test/perl-module-check": {"modules": None},
    "test/pkgconf": {},
    "test/tw/contains-files": {"dir": "/usr/", "name": "*", "type": "f", "files": ""},
    "test/tw/devpackage": {"prefix": "/usr"},
    "test/tw/docs": {"path-prefix": "usr/share"},
    "test/tw/emptypackage": {},
    "test/tw/gem-check": {"package": "${{context.name}}", "require": ""},
    "test/tw/header-check": {"packages": "${{context.name}}", "files": "", "configure-opts": ""},
    "test/tw/help-check": {"bins": None, "help-flag": "auto", "expect-contains": "", "verbose": "false"},
    "test/tw/ldd-check": {
        "files": None,
        "exclude-files": None,
        "packages": "${{context.name}}",
        "extra-library-paths": "",
        "verbose": "false",
    },
    "test/tw/metapackage": {},
    "test/tw/no-docs": {"package": "${{context.name}}"},
    "test/tw/pip-check": {"python": "DEFAULT"},
    "test/tw/shell-syntax-check": {"files": ""},
    "test/tw/staticpackage": {},
    "test/tw/symlink-check": {"packages": "${{context.name}}", "allow-absolute": "false"},
    "test/tw/ver-check": {
        "bins": None,
        "version": "${{package.version}}",
        "version-flag": "auto",
        "match-type": "contains",
        "verbose": "false",
    },
    "test/tw/virtualpackage": {"virtual-pkg-name": None},
    "test/virtualpackage": {"virtual-pkg-name": None, "real-pkg-name": ""},
}


def test_the_library_is_the_reference_list() -> None:
    assert library_names() == sorted(REFERENCE_INPUTS)


@pytest.mark.parametrize("uses", sorted(REFERENCE_INPUTS))
def test_inputs_and_defaults_are_the_references(uses: str) -> None:
    declared = load_definition(uses).get("inputs") or {}
    assert {name: spec.get("default") for name, spec in declared.items()} == REFERENCE_INPUTS[uses]


def test_required_inputs_are_wolfis() -> None:
    required = {
        uses: sorted(name for name, spec in (load_definition(uses).get("inputs") or {}).items() if spec.get("required"))
        for uses in library_names()
    }
    assert {uses: names for uses, names in required.items() if names} == {
        "test/daemon-check-output": ["expected_output", "start"],
        "test/perl-module-check": ["modules"],
        "test/tw/help-check": ["bins"],
        "test/tw/ver-check": ["bins"],
        "test/tw/virtualpackage": ["virtual-pkg-name"],
        "test/virtualpackage": ["virtual-pkg-name"],
    }


# The checks themselves must catch what they are for.


def test_shape_check_reports_broken_definitions() -> None:
    broken = {
        "name": "x",
        "colour": "red",
        "inputs": {"a": {"description": "", "required": True, "default": 1}, "b": "text"},
        "needs": {"packages": [1]},
        "pipeline": [{"runs": "true", "uses": "test/none"}, {"with": {"k": "v"}, "runs": "true"}],
    }
    assert shape_problems(broken, ["test/tw/ldd-check"]) == [
        "unknown key 'colour'",
        "input a: no description",
        "input a: the default is not text (quote it)",
        "input a: required, yet it has a default",
        "input b: not a mapping",
        "needs must be {packages: [names]}",
        "step 'test/none': needs exactly one of runs, uses, pipeline",
        "step 'test/none': uses 'test/none', which the library does not have",
        "step 'a step': with without uses",
    ]


def test_substitution_check_reports_undeclared_unused_and_unknown() -> None:
    document = {
        "inputs": {"used": {"description": "d"}, "idle": {"description": "d", "default": "${{package.bogus}}"}},
        "pipeline": [{"runs": 'echo "${{inputs.used}} ${{inputs.ghost}} ${{vars.x}} ${{ broken"'}],
    }
    assert substitution_problems(document) == [
        "${{vars.x}} is not defined in melange tests",
        "a malformed ${{ expression",
        "${{package.bogus}} is not defined in melange tests",
        "input ghost is used but not declared",
        "input idle is declared but never used",
    ]


def test_helper_check_reports_an_edited_copy() -> None:
    helper = shared_helper()
    assert helper_problems(f"echo start\n{helper}echo end\n", helper) == []
    assert helper_problems(helper.replace("found = 1", "found = 2"), helper) == [
        "its apk-db helper differs from qackage/pipelines/apkdb.sh"
    ]
    assert helper_problems("apk_db() { :; }\n", helper) == ["defines apk_db outside the shared helper block"]


# --------------------------------------------------------------------------- binding


def compile_uses(uses: str, given: Mapping[str, str]) -> tuple[PlannedStep, ...]:
    """The steps of a stanza that only ``uses: <uses>`` with ``given``, for libfoo-dev 1.2.3-r4."""
    info = PackageInfo(name="libfoo-dev", version="1.2.3-r4", arch="x86_64", origin="libfoo")
    step: dict[str, object] = {"uses": uses, **({"with": dict(given)} if given else {})}
    stanza = parse_config(yaml.safe_dump({"test": {"pipeline": [step]}}), "binding").test
    assert stanza is not None
    context = SubstitutionContext.for_built_package(info, arch="x86_64")
    plan = compile_test(stanza, context, PipelineLibrary(), package_under_test=info.name)
    return plan.steps


def test_library_inputs_bind_as_melange_does() -> None:
    (step,) = compile_uses("test/tw/ver-check", {"bins": "foo", "version": ""})
    assert 'bins="foo"' in step.script
    assert 'expected="1.2.3"' in step.script  # empty takes the default, as in melange
    nested = compile_uses("test/metapackage", {})
    assert nested[0].trail[:-1] == ("step 1", "test/metapackage", "step 1", "test/emptypackage")
    assert "/home/build/melange-out/libfoo-dev" in nested[0].script
    with pytest.raises(InputError, match='undefined input "bogus"'):
        compile_uses("test/tw/ldd-check", {"bogus": "1"})
    with pytest.raises(InputError, match='required input "bins"'):
        compile_uses("test/tw/help-check", {})


# --------------------------------------------------------------------------- cases


CASES_OF_THE_LIBRARY = all_cases(library_names())


def compile_case(case: Case, arch: str) -> tuple[PackageInfo, tuple[str, ...]]:
    """The case's package and everything its plan installs, compiled with the real library."""
    info = case_info(case.package, arch)
    context = SubstitutionContext.for_built_package(info, arch=arch)
    plan = compile_test(case_stanza(case), context, PipelineLibrary(), package_under_test=info.name)
    return info, plan.packages


@pytest.fixture(scope="session")
def bench(fixture_repo: RepositoryBuild, tmp_path_factory: pytest.TempPathFactory) -> CaseBench:
    """One keyring and one extraction cache for every case: each package unpacks once."""
    return CaseBench.create(fixture_repo, tmp_path_factory.mktemp("pipeline-cases"))


@pytest.mark.parametrize("uses", library_names())
def test_every_pipeline_has_passing_and_failing_cases(uses: str) -> None:
    assert case_file(uses).is_file(), f"no cases for {uses} in {CASES}"
    expectations = {case.expect for case in load_cases(uses)}
    assert expectations == {"pass", "fail"}


def test_case_files_are_about_library_pipelines() -> None:
    about = {str(p.relative_to(CASES).with_suffix("")) for p in CASES.rglob("*.yaml")}
    assert about <= set(library_names())


def test_needs_are_in_the_fixture_repository(fixture_repo: RepositoryBuild) -> None:
    """What the pipelines pull in (their needs, nested uses included) is offline too."""
    needs: set[str] = set()
    for case in CASES_OF_THE_LIBRARY:
        info, packages = compile_case(case, fixture_repo.arch)
        made = {info.name, *(spec["name"] for spec in case.also)}
        needs.update(name for name in packages if name not in made)
    repository = Repository.open(str(fixture_repo.root), fixture_repo.arch)
    resolution = resolve(sorted(needs), [repository])
    assert resolution.ok, resolution.unresolved


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES_OF_THE_LIBRARY, ids=lambda case: case.id)
def test_pipeline_case(case: Case, bench: CaseBench, tmp_path: Path) -> None:
    missing = [name for name in case.requires if name not in bench.available()]
    if missing:
        pytest.skip(f"the offline fixture repository has no {', '.join(missing)}")
    report = bench.run(case, tmp_path)
    assert report.passed == (case.expect == "pass"), step_output(report, failed_only=False)
    if case.log_contains:
        # The reason a broken package fails is in the failing step's output.
        output = step_output(report, failed_only=not report.passed)
        assert case.log_contains in output, step_output(report, failed_only=False)


# --------------------------------------------------------------------------- fixture stanzas


@dataclass(frozen=True, slots=True)
class FixtureStanza:
    """A fixture recipe's (sub)package whose test stanza uses a library pipeline."""

    recipe: str  # "hello/melange.yaml"
    package: str

    @property
    def id(self) -> str:
        return f"{self.recipe}:{self.package}"


def fixture_stanzas() -> list[FixtureStanza]:
    known = set(library_names())
    found = []
    for recipe in sorted(FIXTURES.glob("*/*.yaml")):
        document = yaml.safe_load(recipe.read_text(encoding="utf-8"))
        origin = document["package"]["name"]
        tested = [(origin, document.get("test"))]
        tested += [
            (sub["name"].replace("${{package.name}}", origin), sub.get("test"))
            for sub in document.get("subpackages", [])
        ]
        for package, stanza in tested:
            if any(step.get("uses") in known for step in walk_steps((stanza or {}).get("pipeline"))):
                found.append(FixtureStanza(str(recipe.relative_to(FIXTURES)), package))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("stanza", fixture_stanzas(), ids=lambda stanza: stanza.id)
def test_fixture_stanzas_pass(stanza: FixtureStanza, bench: CaseBench) -> None:
    """The fixtures' own test stanzas, where they use the library, pass on their packages."""
    built = {p.info.name: p for p in bench.fixture_repo.packages}
    assert stanza.package in built, f"{stanza.id}: the fixture repository has no {stanza.package}"
    report = bench.validate(built[stanza.package].path, FIXTURES / stanza.recipe)
    assert report.passed, step_output(report, failed_only=True)
