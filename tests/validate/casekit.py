"""Pipeline cases (``tests/validate/pipeline_cases/``): read them, and run one through `qackage validate`.

A case runs the way a package's test runs in Wolfi, through qackage's own validator:

* its package is written as a real .apk (`write_apk`) and is the package under test;
* its ``also`` packages go into a small repository of the case's own, signed with a
  key the shared keyring trusts next to the fixture repository's;
* a ``test:`` fragment holds one step, ``uses: <pipeline>`` with the case's ``with:``,
  and the ``also`` and ``install`` packages as the test environment's packages;
* `qackage.validate.session.validate` builds the root from the fixture repository (and
  the case's), appends ``wolfi-base`` and runs the steps in bubblewrap.

Every case shares one extraction cache, so each repository package is unpacked once per
test session. Imported as ``casekit`` (pytest puts this folder on ``sys.path``).
"""

from __future__ import annotations

import base64
import gzip
import io
import shutil
import subprocess
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from qackage.apk.index import write_index
from qackage.apk.pkginfo import parse_atom
from qackage.apk.writer import PlannedFile, SigningKey, write_apk
from qackage.build import RepositoryBuild
from qackage.melange.config import parse_config
from qackage.model import EntryKind, PackageInfo, Stanza
from qackage.validate.bubblewrap import Bubblewrap
from qackage.validate.report import StepStatus, TestReport
from qackage.validate.session import ValidateRequest, validate

CASES = Path(__file__).resolve().parent / "pipeline_cases"
CASE_KEYS = frozenset({"name", "expect", "package", "also", "with", "install", "requires", "log-contains"})
PACKAGE_KEYS = frozenset({"name", "version", "origin", "description", "depends", "provides", "replaces", "files"})
FILE_KINDS = ("text", "gzip", "base64", "zip", "symlink", "directory", "program", "library")
CASE_KEY_NAME = "qackage-pipeline-cases.rsa.pub"
# Wolfi's --test-package-append: every test image has the base system.
APPENDED = ("wolfi-base",)


# --------------------------------------------------------------------------- reading cases


@dataclass(frozen=True, slots=True)
class Case:
    pipeline: str
    name: str
    expect: str  # "pass" or "fail"
    package: dict[str, Any]
    also: tuple[dict[str, Any], ...] = ()
    given: tuple[tuple[str, object], ...] = ()
    install: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    log_contains: str = ""

    @property
    def id(self) -> str:
        return f"{self.pipeline}:{self.name}"


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


def all_cases(pipelines: Sequence[str]) -> list[Case]:
    return [case for uses in pipelines if case_file(uses).is_file() for case in load_cases(uses)]


# --------------------------------------------------------------------------- the stanza


def case_document(case: Case) -> dict[str, Any]:
    """The ``test:`` fragment a case runs, as a maintainer would write it."""
    step: dict[str, Any] = {"uses": case.pipeline}
    if case.given:
        step["with"] = dict(case.given)
    stanza: dict[str, Any] = {"pipeline": [step]}
    packages = [*(spec["name"] for spec in case.also), *case.install]
    if packages:
        stanza["environment"] = {"contents": {"packages": packages}}
    return {"test": stanza}


def case_text(case: Case) -> str:
    return yaml.safe_dump(case_document(case), sort_keys=False)


def case_stanza(case: Case) -> Stanza:
    """The fragment as qackage reads it (values keep the spelling melange gives them)."""
    stanza = parse_config(case_text(case), case.id).test
    assert stanza is not None
    return stanza


# --------------------------------------------------------------------------- packages


def case_info(spec: Mapping[str, Any], arch: str) -> PackageInfo:
    name = spec["name"]
    return PackageInfo(
        name=name,
        version=str(spec.get("version", "1.0-r0")),
        arch=arch,
        origin=spec.get("origin", name),
        description=spec.get("description", f"{name}, made by a pipeline case"),
        license="MIT",
        depends=tuple(parse_atom(atom) for atom in spec.get("depends", [])),
        provides=tuple(parse_atom(atom) for atom in spec.get("provides", [])),
        replaces=tuple(spec.get("replaces", [])),
    )


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


def write_case_package(
    spec: Mapping[str, Any], folder: Path, scratch: Path, arch: str, *, signing_key: SigningKey | None = None
) -> tuple[PackageInfo, Path]:
    """``folder/<name>-<version>.apk``, its programs compiled under ``scratch``."""
    info = case_info(spec, arch)
    files = [planned_file(entry, scratch / info.name) for entry in spec.get("files") or []]
    path = folder / f"{info.name}-{info.version}.apk"
    return write_apk(path, info, files, signing_key=signing_key, compresslevel=1), path


# --------------------------------------------------------------------------- running


@dataclass(frozen=True, slots=True)
class CaseBench:
    """What every case runs against, made once per test session."""

    fixture_repo: RepositoryBuild
    keyring: Path  # trusts the fixture repository's key and `signing_key`
    signing_key: SigningKey  # signs the cases' own repositories
    cache_dir: Path  # one extraction cache for every case
    sandbox: Bubblewrap

    @classmethod
    def create(cls, fixture_repo: RepositoryBuild, folder: Path) -> CaseBench:
        keyring = folder / "keyring"
        keyring.mkdir(parents=True)
        for key in fixture_repo.keyring.iterdir():
            shutil.copy2(key, keyring / key.name)
        signing_key = SigningKey.generate(CASE_KEY_NAME)
        signing_key.write_public(keyring)
        cache_dir = folder / "cache"
        cache_dir.mkdir()
        return cls(fixture_repo, keyring, signing_key, cache_dir, Bubblewrap())

    @property
    def arch(self) -> str:
        return self.fixture_repo.arch

    def available(self) -> set[str]:
        return {built.info.name for built in self.fixture_repo.packages}

    def case_repository(self, specs: Sequence[Mapping[str, Any]], scratch: Path) -> Path:
        """A signed repository holding ``specs`` (a case's ``also`` packages)."""
        root = scratch / "repository"
        arch_dir = root / self.arch
        written = [
            write_case_package(spec, arch_dir, scratch / "also", self.arch, signing_key=self.signing_key)
            for spec in specs
        ]
        write_index(arch_dir, written, signing_key=self.signing_key, description="pipeline case packages")
        return root

    def validate(self, package: Path, test_file: Path, *, extra_repositories: Sequence[Path] = ()) -> TestReport:
        request = ValidateRequest(
            package=package,
            test_file=test_file,
            repositories=(str(self.fixture_repo.root), *(str(root) for root in extra_repositories)),
            keyring=self.keyring,
            append_packages=APPENDED,
            arch=self.arch,
            cache_dir=self.cache_dir,
        )
        return validate(request, sandbox=self.sandbox)

    def run(self, case: Case, scratch: Path) -> TestReport:
        """Build the case's packages and stanza under ``scratch`` and validate them."""
        _, package = write_case_package(case.package, scratch / "under-test", scratch / "build", self.arch)
        repositories = [self.case_repository(case.also, scratch)] if case.also else []
        test_file = scratch / "test.yaml"
        test_file.write_text(case_text(case), encoding="utf-8")
        return self.validate(package, test_file, extra_repositories=repositories)


def step_output(report: TestReport, *, failed_only: bool) -> str:
    """The steps' titles, outcomes and output tails: those of the failing step only, or of all."""
    parts: list[str] = []
    for step in report.steps:
        if failed_only and step.status is not StepStatus.FAILED:
            continue
        parts += [f"== {step.title}: {step.status.value} ({step.reason or 'ok'})", step.stdout_tail, step.stderr_tail]
    return "\n".join(parts)
