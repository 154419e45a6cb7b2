"""qackage's library of standard melange test pipelines (``qackage/pipelines/``).

Two kinds of checks:

* shape: every definition is a melange pipeline file (known keys, declared inputs, no
  default on a required input, substitutions melange defines in tests, scripts that
  busybox ``sh -n`` accepts, one shared apk-database helper text);
* behaviour: every case of ``tests/validate/pipeline_cases/`` (see its README) runs. The
  case's packages are written as real .apk files, installed with their dependencies
  from the fixture repository into a fresh root with an apk installed database, and the
  pipeline's scripts, inputs substituted by a small local expander, run in bubblewrap
  with that root as ``/``. A pipeline must pass on its good packages and fail on its
  broken ones (for the reason the case names).
"""

from __future__ import annotations

import base64
import gzip
import io
import os
import re
import subprocess
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

import qackage
from qackage.apk.archive import ApkArchive
from qackage.apk.installed import record_for_archive, write_installed_db
from qackage.apk.pkginfo import parse_atom
from qackage.apk.repository import Repository
from qackage.apk.resolve import resolve
from qackage.apk.writer import PlannedFile, write_apk
from qackage.build import RepositoryBuild
from qackage.model import EntryKind, PackageInfo

LIBRARY = Path(qackage.__file__).resolve().parent / "pipelines"
CASES = Path(__file__).resolve().parent / "pipeline_cases"
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
APK_DB_HELPER = LIBRARY / "apkdb.sh"

# melange's step keys (config.Pipeline); a definition file adds inputs and description.
STEP_KEYS = frozenset(
    {
        "name",
        "uses",
        "with",
        "runs",
        "if",
        "working-directory",
        "environment",
        "pipeline",
        "needs",
        "label",
        "assertions",
    }
)
DEFINITION_KEYS = STEP_KEYS | {"inputs", "description"}
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
MELANGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/sbin:/bin"
STEP_TIMEOUT = 180


# --------------------------------------------------------------------------- the library


def library_names() -> list[str]:
    return sorted(str(p.relative_to(LIBRARY).with_suffix("")) for p in LIBRARY.rglob("*.yaml"))


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


# --------------------------------------------------------------------------- expanding


@dataclass(frozen=True, slots=True)
class Script:
    title: str
    text: str


class PipelineError(Exception):
    """A pipeline that melange would reject before running anything."""


def substitute(text: str, variables: Mapping[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        try:
            return variables[match[1]]
        except KeyError:
            raise PipelineError(f"variable {match[1]} not defined") from None

    return EXPRESSION.sub(value, text)


def melange_variables(package: str, origin: str, full_version: str, arch: str) -> dict[str, str]:
    version, _, epoch = full_version.rpartition("-r")
    outdir = "/home/build/melange-out"
    return {
        "context.name": package,
        "subpkg.name": package,
        "package.name": origin,
        "package.version": version,
        "package.epoch": epoch,
        "package.full-version": full_version,
        "package.description": "",
        "package.srcdir": "/home/build",
        "targets.outdir": outdir,
        "targets.destdir": f"{outdir}/{origin}",
        "targets.contextdir": f"{outdir}/{package}",
        "targets.subpkgdir": f"{outdir}/{package}",
        "build.arch": arch,
        "build.goarch": {"x86_64": "amd64", "aarch64": "arm64"}.get(arch, arch),
    }


def expand(uses: str, given: Mapping[str, object], variables: Mapping[str, str]) -> list[Script]:
    """The scripts ``uses: <uses>`` with ``given`` runs, as melange binds and substitutes."""
    definition = load_definition(uses)
    declared: dict[str, dict[str, Any]] = definition.get("inputs") or {}
    undefined = sorted(set(given) - set(declared))
    if undefined:
        raise PipelineError(f'undefined input "{undefined[0]}" to pipeline "{uses}"')
    scope = dict(variables)
    for name, spec in declared.items():
        # As melange: an input given empty takes the default too.
        value = substitute(as_text(given.get(name)), variables) or substitute(as_text(spec.get("default")), variables)
        if spec.get("required") and not value:
            raise PipelineError(f'required input "{name}" for pipeline is missing')
        scope[f"inputs.{name}"] = value
    return list(_expand_steps(uses, definition["pipeline"], scope, variables))


def _expand_steps(
    uses: str, steps: list[dict[str, Any]], scope: Mapping[str, str], variables: Mapping[str, str]
) -> Iterator[Script]:
    for number, step in enumerate(steps, 1):
        if "uses" in step:
            given = {key: substitute(as_text(value), scope) for key, value in (step.get("with") or {}).items()}
            yield from expand(step["uses"], given, variables)
        elif "runs" in step:
            yield Script(f"{uses}: {step.get('name') or f'step {number}'}", substitute(as_text(step["runs"]), scope))
        if "pipeline" in step:
            yield from _expand_steps(uses, step["pipeline"], scope, variables)


def needed_packages(uses: str) -> list[str]:
    definition = load_definition(uses)
    names = list((definition.get("needs") or {}).get("packages") or [])
    for step in walk_steps(definition["pipeline"]):
        if "uses" in step:
            names += needed_packages(step["uses"])
    return names


# --------------------------------------------------------------------------- case packages


@dataclass(frozen=True, slots=True)
class Case:
    pipeline: str
    name: str
    expect: str
    package: dict[str, Any]
    also: tuple[dict[str, Any], ...] = ()
    given: tuple[tuple[str, object], ...] = ()
    install: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    log_contains: str = ""

    @property
    def id(self) -> str:
        return f"{self.pipeline}:{self.name}"


CASE_KEYS = frozenset({"name", "expect", "package", "also", "with", "install", "requires", "log-contains"})
PACKAGE_KEYS = frozenset({"name", "version", "origin", "description", "depends", "provides", "replaces", "files"})
FILE_KINDS = ("text", "gzip", "base64", "zip", "symlink", "directory", "program", "library")


def case_file(uses: str) -> Path:
    return CASES / f"{uses}.yaml"


def load_cases(uses: str) -> list[Case]:
    document = yaml.safe_load(case_file(uses).read_text(encoding="utf-8"))
    assert document["pipeline"] == uses, f"{case_file(uses)} is about {document['pipeline']}, not {uses}"
    cases = []
    for item in document["cases"]:
        unknown = set(item) - CASE_KEYS
        assert not unknown, f"{uses}: case {item.get('name')}: unknown keys {sorted(unknown)}"
        for package in [item["package"], *item.get("also", [])]:
            assert not set(package) - PACKAGE_KEYS, f"{uses}: {item['name']}: unknown package keys"
        assert item["expect"] in {"pass", "fail"}, f"{uses}: {item['name']}: expect is pass or fail"
        cases.append(
            Case(
                pipeline=uses,
                name=item["name"],
                expect=item["expect"],
                package=item["package"],
                also=tuple(item.get("also", [])),
                given=tuple((item.get("with") or {}).items()),
                install=tuple(item.get("install", [])),
                requires=tuple(item.get("requires", [])),
                log_contains=item.get("log-contains", ""),
            )
        )
    return cases


def all_cases() -> list[Case]:
    return [case for uses in library_names() if case_file(uses).is_file() for case in load_cases(uses)]


def _mode(entry: Mapping[str, Any], default: int) -> int:
    mode = entry.get("mode")
    return default if mode is None else int(str(mode), 8)


def _compile(source: str, output: Path, scratch: Path, *, soname: str = "", needs: Sequence[str] = ()) -> None:
    """Compile C with the host's cc. ``needs``: sonames to record as DT_NEEDED, linked
    against empty stand-ins that are not packaged (so only the case decides what exists)."""
    scratch.mkdir(parents=True, exist_ok=True)
    source_file = scratch / f"{output.name}.c"
    source_file.write_text(source, encoding="utf-8")
    stubs = []
    for needed in needs:
        stub = scratch / "stubs" / needed
        if not stub.exists():
            stub.parent.mkdir(exist_ok=True)
            empty = scratch / "stubs" / "empty.c"
            empty.write_text("int qackage_case_stub;\n")
            subprocess.run(
                ["cc", "-shared", "-fPIC", f"-Wl,-soname,{needed}", "-o", str(stub), str(empty)],
                check=True,
                capture_output=True,
            )
        stubs.append(str(stub))
    command = ["cc", "-O1", "-o", str(output), str(source_file)]
    if soname:
        command += ["-shared", "-fPIC", f"-Wl,-soname,{soname}"]
    # Linked by path with --no-as-needed, each stand-in becomes a DT_NEEDED entry.
    command += ["-Wl,--no-as-needed", *stubs]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"cannot compile {output.name}: {result.stderr}"


def _zip_bytes(members: Mapping[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), content)
    return buffer.getvalue()


def planned_file(entry: Mapping[str, Any], scratch: Path) -> PlannedFile:
    kinds = [kind for kind in FILE_KINDS if kind in entry]
    assert len(kinds) == 1, f"{entry.get('path')}: give exactly one of {FILE_KINDS}"
    kind, value, path = kinds[0], entry[kinds[0]], str(entry["path"]).strip("/")
    if kind == "symlink":
        return PlannedFile(path, EntryKind.SYMLINK, 0o777, link_target=str(value))
    if kind == "directory":
        return PlannedFile(path, EntryKind.DIR, _mode(entry, 0o755))
    if kind in {"program", "library"}:
        spec = value if isinstance(value, dict) else {"source": value}
        output = scratch / "built" / path.replace("/", "_")
        output.parent.mkdir(parents=True, exist_ok=True)
        _compile(spec["source"], output, scratch / "src", soname=spec.get("soname", ""), needs=spec.get("needs", ()))
        return PlannedFile(path, EntryKind.FILE, _mode(entry, 0o755), data=output.read_bytes())
    data = {
        "text": lambda: str(value).encode(),
        "gzip": lambda: gzip.compress(str(value).encode(), mtime=0),
        "base64": lambda: base64.b64decode(str(value)),
        "zip": lambda: _zip_bytes(value),
    }[kind]()
    return PlannedFile(path, EntryKind.FILE, _mode(entry, 0o644), data=data)


def write_case_package(spec: Mapping[str, Any], scratch: Path, arch: str) -> tuple[PackageInfo, Path]:
    name = spec["name"]
    version = str(spec.get("version", "1.0-r0"))
    info = PackageInfo(
        name=name,
        version=version,
        arch=arch,
        origin=spec.get("origin", name),
        description=spec.get("description", f"{name}, made by a pipeline case"),
        license="MIT",
        depends=tuple(parse_atom(atom) for atom in spec.get("depends", [])),
        provides=tuple(parse_atom(atom) for atom in spec.get("provides", [])),
        replaces=tuple(spec.get("replaces", [])),
    )
    files = [planned_file(entry, scratch / name) for entry in spec.get("files") or []]
    path = scratch / "packages" / f"{name}-{version}.apk"
    return write_apk(path, info, files), path


# --------------------------------------------------------------------------- the test root


def extract_into(apk: Path, root: Path) -> None:
    """Unpack a package over ``root``; a later package's file replaces an earlier one's."""
    with ApkArchive.open(apk) as archive:
        for member in archive.members():
            entry = member.entry
            target = root / entry.path
            if entry.kind is EntryKind.DIR:
                target.mkdir(parents=True, exist_ok=True)
                target.chmod(entry.mode)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or target.exists():
                target.unlink()
            if entry.kind is EntryKind.SYMLINK:
                target.symlink_to(entry.link_target or "")
            elif entry.kind is EntryKind.HARDLINK:
                os.link(root / (entry.link_target or ""), target)
            else:
                with target.open("wb") as handle:
                    for chunk in member.chunks():
                        handle.write(chunk)
                target.chmod(entry.mode)


def install_order(packages: Sequence[tuple[PackageInfo, Path]]) -> list[tuple[PackageInfo, Path]]:
    """Packages that replace others go last, so their files win (apk's ``replaces``)."""
    return sorted(packages, key=lambda item: bool(item[0].replaces))


def make_root(root: Path, packages: Sequence[tuple[PackageInfo, Path]]) -> None:
    ordered = install_order(packages)
    for _, apk in ordered:
        extract_into(apk, root)
    database = root / "lib" / "apk" / "db" / "installed"
    database.parent.mkdir(parents=True, exist_ok=True)
    database.write_text(write_installed_db(record_for_archive(apk) for _, apk in ordered), encoding="utf-8")
    for mount_point in ("proc", "dev", "tmp", "home/build"):
        (root / mount_point).mkdir(parents=True, exist_ok=True)


def run_script(root: Path, workspace: Path, script: str) -> subprocess.CompletedProcess[str]:
    """One step as melange runs it (``set -eo pipefail``) with ``root`` as /, read-only."""
    command = [
        "bwrap",
        "--ro-bind", str(root), "/",
        "--proc", "/proc",
        "--dev", "/dev",
        "--tmpfs", "/tmp",
        "--bind", str(workspace), "/home/build",
        "--chdir", "/home/build",
        "--unshare-all",
        "--die-with-parent",
        "--clearenv",
        "--setenv", "PATH", MELANGE_PATH,
        "--setenv", "HOME", "/home/build",
        "/bin/sh", "-c", f"set -eo pipefail\n{script}\nexit 0\n",
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False)


@dataclass(frozen=True, slots=True)
class Outcome:
    passed: bool
    log: str


def run_case(case: Case, repo: RepositoryBuild, scratch: Path) -> Outcome:
    made = [write_case_package(spec, scratch, repo.arch) for spec in (case.package, *case.also)]
    paths = {info.name: path for info, path in made}
    repository = Repository.open(str(repo.root), repo.arch)
    wanted = [case.package["name"], *(spec["name"] for spec in case.also)]
    wanted += [*needed_packages(case.pipeline), *case.install, "wolfi-base"]
    resolution = resolve(wanted, [repository], preferred=[info for info, _ in made])
    assert resolution.ok, f"{case.id}: cannot install {resolution.unresolved} {resolution.conflicts}"
    chosen = [
        (chosen.info, paths[chosen.info.name] if chosen.repository is None else repo.package(chosen.info.name).path)
        for chosen in resolution.packages
    ]
    root, workspace = scratch / "root", scratch / "workspace"
    root.mkdir()
    workspace.mkdir()
    make_root(root, chosen)
    info = made[0][0]
    variables = melange_variables(info.name, info.origin or info.name, info.version, repo.arch)
    log: list[str] = []
    for script in expand(case.pipeline, dict(case.given), variables):
        result = run_script(root, workspace, script.text)
        log += [f"== {script.title}: exit {result.returncode}", result.stdout, result.stderr]
        if result.returncode != 0:
            return Outcome(False, "\n".join(log))
    return Outcome(True, "\n".join(log))


# --------------------------------------------------------------------------- fixture stanzas


@dataclass(frozen=True, slots=True)
class FixtureStep:
    """A ``uses:`` step of a fixture recipe's test stanza that names a library pipeline."""

    recipe: str  # "hello/melange.yaml"
    package: str  # the (sub)package the stanza tests
    origin: str
    uses: str
    given: tuple[tuple[str, object], ...]
    environment: tuple[str, ...]  # test.environment.contents.packages

    @property
    def id(self) -> str:
        return f"{self.recipe}:{self.package}:{self.uses}"


def fixture_steps() -> list[FixtureStep]:
    known = set(library_names())
    steps = []
    for recipe in sorted(FIXTURES.glob("*/*.yaml")):
        document = yaml.safe_load(recipe.read_text(encoding="utf-8"))
        origin = document["package"]["name"]
        tested = [(origin, document.get("test"))]
        tested += [
            (sub["name"].replace("${{package.name}}", origin), sub.get("test"))
            for sub in document.get("subpackages", [])
        ]
        for package, stanza in tested:
            contents = ((stanza or {}).get("environment") or {}).get("contents") or {}
            for step in (stanza or {}).get("pipeline", []):
                if step.get("uses") in known:
                    steps.append(
                        FixtureStep(
                            recipe=str(recipe.relative_to(FIXTURES)),
                            package=package,
                            origin=origin,
                            uses=step["uses"],
                            given=tuple((step.get("with") or {}).items()),
                            environment=tuple(contents.get("packages", [])),
                        )
                    )
    return steps


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


def test_expand_binds_inputs_as_melange_does() -> None:
    variables = melange_variables("libfoo-dev", "libfoo", "1.2.3-r4", "x86_64")
    scripts = expand("test/tw/ver-check", {"bins": "foo", "version": ""}, variables)
    assert len(scripts) == 1
    assert 'bins="foo"' in scripts[0].text
    assert 'expected="1.2.3"' in scripts[0].text  # empty takes the default, as in melange
    nested = expand("test/metapackage", {}, variables)
    assert nested[0].title == "test/emptypackage: empty package check"
    assert "/home/build/melange-out/libfoo-dev" in nested[0].text
    with pytest.raises(PipelineError, match='undefined input "bogus"'):
        expand("test/tw/ldd-check", {"bogus": "1"}, variables)
    with pytest.raises(PipelineError, match='required input "bins"'):
        expand("test/tw/help-check", {}, variables)


# --------------------------------------------------------------------------- cases


@pytest.mark.parametrize("uses", library_names())
def test_every_pipeline_has_passing_and_failing_cases(uses: str) -> None:
    assert case_file(uses).is_file(), f"no cases for {uses} in {CASES}"
    expectations = {case.expect for case in load_cases(uses)}
    assert expectations == {"pass", "fail"}


def test_case_files_are_about_library_pipelines() -> None:
    about = {str(p.relative_to(CASES).with_suffix("")) for p in CASES.rglob("*.yaml")}
    assert about <= set(library_names())


def test_needs_are_in_the_fixture_repository(fixture_repo: RepositoryBuild) -> None:
    needs = sorted({name for uses in library_names() for name in needed_packages(uses)})
    repository = Repository.open(str(fixture_repo.root), fixture_repo.arch)
    resolution = resolve(needs, [repository])
    assert resolution.ok, resolution.unresolved


@pytest.mark.slow
@pytest.mark.parametrize("case", all_cases(), ids=lambda case: case.id)
def test_pipeline_case(case: Case, fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    available = {built.info.name for built in fixture_repo.packages}
    missing = [name for name in case.requires if name not in available]
    if missing:
        pytest.skip(f"the offline fixture repository has no {', '.join(missing)}")
    outcome = run_case(case, fixture_repo, tmp_path)
    assert outcome.passed == (case.expect == "pass"), outcome.log
    if case.log_contains:
        assert case.log_contains in outcome.log, outcome.log


def test_a_broken_step_fails_the_case(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    """The harness must not report success for a step that fails (exit status reaches us)."""
    root, workspace = tmp_path / "root", tmp_path / "workspace"
    root.mkdir()
    workspace.mkdir()
    base = [(p.info, p.path) for p in fixture_repo.packages if p.info.name in {"busybox", "glibc"}]
    make_root(root, base)
    assert run_script(root, workspace, "true").returncode == 0
    assert run_script(root, workspace, "false\necho not reached").returncode == 1
    assert run_script(root, workspace, "false | true").returncode == 1  # pipefail
    # The root is shared by every step of a case: read-only, with writes going to the workspace.
    assert run_script(root, workspace, "touch /probe").returncode != 0
    assert run_script(root, workspace, "echo kept > /home/build/probe").returncode == 0
    assert (workspace / "probe").read_text() == "kept\n"


@pytest.mark.slow
@pytest.mark.parametrize("step", fixture_steps(), ids=lambda step: step.id)
def test_fixture_stanzas_pass_with_the_library(
    step: FixtureStep, fixture_repo: RepositoryBuild, tmp_path: Path
) -> None:
    """The fixtures' own test stanzas, where they use the library, pass on their packages."""
    built = {p.info.name: p for p in fixture_repo.packages}
    assert step.package in built, f"{step.id}: the fixture repository has no {step.package}"
    repository = Repository.open(str(fixture_repo.root), fixture_repo.arch)
    wanted = [step.package, *step.environment, *needed_packages(step.uses), "wolfi-base"]
    resolution = resolve(wanted, [repository])
    assert resolution.ok, f"{step.id}: cannot install {resolution.unresolved}"
    root, workspace = tmp_path / "root", tmp_path / "workspace"
    root.mkdir()
    workspace.mkdir()
    make_root(root, [(chosen.info, built[chosen.info.name].path) for chosen in resolution.packages])
    variables = melange_variables(step.package, step.origin, built[step.package].info.version, fixture_repo.arch)
    for script in expand(step.uses, dict(step.given), variables):
        result = run_script(root, workspace, script.text)
        assert result.returncode == 0, f"{script.title}\n{result.stdout}\n{result.stderr}"
