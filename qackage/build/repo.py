"""Scenarios in, a signed APK repository out: the public face of the fixture builder.

Layout of an output folder (an apk repository root)::

    <out>/<arch>/*.apk                 the packages
    <out>/<arch>/APKINDEX.tar.gz       the signed index
    <out>/keyring/<key>.rsa.pub        the public key: a keyring folder for apk and qackage
    <out>/signing/<key>.rsa            the private key, generated once per folder
    <out>/.build/<arch>/<scenario>.json  what each scenario built, and from which content

Everything is built into a staging folder first and moved in only when every scenario
built, so a failing step leaves the output as it was (and no output at all the first
time). A scenario whose content digest matches its manifest is not rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qackage.apk.archive import ApkArchive
from qackage.apk.index import write_index
from qackage.apk.writer import SigningKey
from qackage.build.cache import Manifest, read_manifest, scenario_digest, write_manifest
from qackage.build.package import BuiltPackage, build_recipe
from qackage.build.recipe import Recipe, parse_recipe
from qackage.errors import InputError, QackageError

KEY_PREFIX = "qackage-fixtures"
INDEX_DESCRIPTION = "qackage fixtures"
_MACHINE_ARCH = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}


@dataclass(frozen=True, slots=True)
class BuildResult:
    """One scenario's packages, at their place in the repository."""

    scenario: str
    scenario_dir: Path
    arch: str
    packages: tuple[BuiltPackage, ...]
    rebuilt: bool  # False when the scenario was unchanged and its packages were kept

    def package(self, name: str) -> BuiltPackage:
        for built in self.packages:
            if built.info.name == name:
                return built
        raise LookupError(f"scenario {self.scenario} built no package {name!r}")


@dataclass(frozen=True, slots=True)
class RepositoryBuild:
    root: Path  # the repository root: what apk's repository list names
    arch: str
    index: Path  # <root>/<arch>/APKINDEX.tar.gz
    keyring: Path  # folder holding only the public key
    key_name: str  # "<name>.rsa.pub": the signatures' key name
    scenarios: tuple[BuildResult, ...]  # those of this call, in the order given

    @property
    def arch_dir(self) -> Path:
        return self.root / self.arch

    @property
    def packages(self) -> tuple[BuiltPackage, ...]:
        return tuple(built for result in self.scenarios for built in result.packages)

    def package(self, name: str) -> BuiltPackage:
        for built in self.packages:
            if built.info.name == name:
                return built
        raise LookupError(f"the repository {self.root} has no package {name!r}")


def host_arch() -> str:
    machine = platform.machine().lower()
    return _MACHINE_ARCH.get(machine, machine)


def build_scenario(
    scenario_dir: Path, out_dir: Path, *, arch: str | None = None, signing_key: SigningKey | None = None
) -> BuildResult:
    """Build (or keep, when unchanged) one scenario into the repository at ``out_dir``.

    Other scenarios already in ``out_dir`` stay, and the index lists them all."""
    build = _build([scenario_dir], out_dir, arch=arch, signing_key=signing_key, prune=False)
    return build.scenarios[0]


def build_repository(
    scenario_dirs: Sequence[Path],
    out_dir: Path,
    *,
    arch: str | None = None,
    signing_key: SigningKey | None = None,
) -> RepositoryBuild:
    """Make ``out_dir`` a repository holding exactly these scenarios' packages."""
    if not scenario_dirs:
        raise InputError("no scenario to build")
    return _build(scenario_dirs, out_dir, arch=arch, signing_key=signing_key, prune=True)


def recipe_files(scenario_dir: Path) -> list[Path]:
    """The melange build files of a scenario: its top-level ``*.yaml`` files."""
    files = sorted(p for p in scenario_dir.iterdir() if p.suffix in {".yaml", ".yml"} and p.is_file())
    if not files:
        raise InputError(f"{scenario_dir.name}: no melange build file (*.yaml) in {scenario_dir}")
    return files


def load_recipes(scenario_dir: Path) -> list[Recipe]:
    recipes: list[Recipe] = []
    for file in recipe_files(scenario_dir):
        label = f"{scenario_dir.name}/{file.name}"
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{label}: cannot read: {exc}") from exc
        recipes.append(parse_recipe(text, label))
    return recipes


# -- the build ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    arch: str
    root: Path
    key: SigningKey
    key_is_new: bool

    @property
    def key_id(self) -> str:
        return f"{self.key.name}:{hashlib.sha256(self.key.public_pem()).hexdigest()}"

    @property
    def arch_dir(self) -> Path:
        return self.root / self.arch

    @property
    def state_dir(self) -> Path:
        return self.root / ".build" / self.arch

    def manifest_path(self, scenario: str) -> Path:
        return self.state_dir / f"{scenario}.json"


@dataclass(frozen=True, slots=True)
class _Scenario:
    """A scenario as it will stand in the repository once committed."""

    manifest: Manifest
    result: BuildResult


def _build(
    scenario_dirs: Sequence[Path],
    out_dir: Path,
    *,
    arch: str | None,
    signing_key: SigningKey | None,
    prune: bool,
) -> RepositoryBuild:
    dirs = [Path(d).absolute() for d in scenario_dirs]
    _check_scenarios(dirs)
    root = Path(out_dir).absolute()
    key, key_is_new = _signing_key(root, signing_key)
    plan = _Plan(arch or host_arch(), root, key, key_is_new)

    current: list[_Scenario] = []
    staging: Path | None = None
    try:
        for directory in dirs:
            digest = scenario_digest(directory, arch=plan.arch, key_id=plan.key_id)
            kept = _reuse(plan, directory, digest)
            if kept is not None:
                current.append(kept)
                continue
            if staging is None:
                root.parent.mkdir(parents=True, exist_ok=True)
                staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.staging-", dir=root.parent))
            result = _build_into(plan, directory, staging)
            files = tuple(p.path.name for p in result.packages)
            current.append(_Scenario(Manifest(directory.name, digest, plan.key_id, files), result))
        others = [] if prune else _other_scenarios(plan, {s.result.scenario for s in current})
        _check_conflicts([*current, *others])
        _commit(plan, current, others, staging)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return RepositoryBuild(
        root=root,
        arch=plan.arch,
        index=plan.arch_dir / "APKINDEX.tar.gz",
        keyring=root / "keyring",
        key_name=key.name,
        scenarios=tuple(s.result for s in current),
    )


def _check_scenarios(dirs: Sequence[Path]) -> None:
    names = [d.name for d in dirs]
    for directory in dirs:
        if not directory.is_dir():
            raise InputError(f"scenario {directory}: not a directory")
        if names.count(directory.name) > 1:
            raise InputError(f"two scenarios are named {directory.name!r}: scenario folder names must differ")


def _signing_key(root: Path, given: SigningKey | None) -> tuple[SigningKey, bool]:
    if given is not None:
        return given, False
    stored = sorted((root / "signing").glob("*.rsa"))
    if stored:
        try:
            return SigningKey.load(stored[0]), False
        except (ValueError, TypeError, OSError) as exc:
            raise InputError(f"{stored[0]}: not a usable RSA private key: {exc}") from exc
    fresh = SigningKey.generate("pending")
    fingerprint = hashlib.sha256(fresh.public_pem()).hexdigest()[:8]
    return SigningKey(f"{KEY_PREFIX}-{fingerprint}.rsa.pub", fresh.private_key), True


def _reuse(plan: _Plan, directory: Path, digest: str) -> _Scenario | None:
    manifest = read_manifest(plan.manifest_path(directory.name))
    if manifest is None or manifest.digest != digest:
        return None
    packages = _load_packages(plan.arch_dir, manifest)
    if packages is None:
        return None
    return _Scenario(manifest, BuildResult(directory.name, directory, plan.arch, packages, rebuilt=False))


def _load_packages(arch_dir: Path, manifest: Manifest) -> tuple[BuiltPackage, ...] | None:
    """The packages a manifest names, read back from their .PKGINFO; None if any is gone."""
    packages: list[BuiltPackage] = []
    for name in manifest.files:
        path = arch_dir / name
        try:
            with ApkArchive.open(path) as apk:
                packages.append(BuiltPackage(apk.info, path))
        except QackageError:
            return None
    return tuple(packages)


def _build_into(plan: _Plan, directory: Path, staging: Path) -> BuildResult:
    recipes = load_recipes(directory)
    stage = staging / directory.name
    stage.mkdir()
    built: list[BuiltPackage] = []
    for recipe in recipes:
        built += build_recipe(recipe, directory, stage, arch=plan.arch, signing_key=plan.key)
    names = [b.info.name for b in built]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"{directory.name}: two recipes build the package {duplicates[0]!r}")
    # Report the packages where they will live once committed.
    placed = tuple(BuiltPackage(b.info, plan.arch_dir / b.path.name) for b in built)
    return BuildResult(directory.name, directory, plan.arch, placed, rebuilt=True)


def _other_scenarios(plan: _Plan, current: set[str]) -> list[_Scenario]:
    """Scenarios that earlier calls built into this folder and that are still intact."""
    others: list[_Scenario] = []
    for path in sorted(plan.state_dir.glob("*.json")) if plan.state_dir.is_dir() else ():
        manifest = read_manifest(path)
        if manifest is None or manifest.scenario in current:
            continue
        packages = _load_packages(plan.arch_dir, manifest)
        if packages is None:
            continue
        if manifest.key != plan.key_id:
            raise InputError(
                f"{plan.root}: scenario {manifest.scenario} was signed with another key; "
                "build every scenario again with this key, or use a fresh folder"
            )
        result = BuildResult(manifest.scenario, Path(manifest.scenario), plan.arch, packages, rebuilt=False)
        others.append(_Scenario(manifest, result))
    return others


def _check_conflicts(scenarios: Sequence[_Scenario]) -> None:
    owner: dict[str, str] = {}
    for scenario in scenarios:
        for built in scenario.result.packages:
            first = owner.setdefault(built.info.name, scenario.result.scenario)
            if first != scenario.result.scenario:
                raise InputError(
                    f"scenarios {first} and {scenario.result.scenario} both build the package {built.info.name!r}"
                )


def _commit(plan: _Plan, current: Sequence[_Scenario], others: Sequence[_Scenario], staging: Path | None) -> None:
    """Move the staged packages in, forget what is gone, and re-sign the index."""
    final = {s.result.scenario: s for s in [*others, *current]}
    previous = _previous_manifests(plan)
    gone = [name for name in previous if name not in final]
    rebuilt = [s for s in current if s.result.rebuilt]
    public_key = plan.root / "keyring" / plan.key.name
    if not rebuilt and not gone and (plan.arch_dir / "APKINDEX.tar.gz").is_file() and public_key.is_file():
        return  # nothing changed: leave every file (and its mtime) alone

    plan.arch_dir.mkdir(parents=True, exist_ok=True)
    for scenario in rebuilt:
        assert staging is not None
        for built in scenario.result.packages:
            (staging / scenario.result.scenario / built.path.name).replace(built.path)
        write_manifest(plan.manifest_path(scenario.result.scenario), scenario.manifest)
    for name in gone:
        plan.manifest_path(name).unlink(missing_ok=True)
    listed = {file for s in final.values() for file in s.manifest.files}
    for manifest in previous.values():
        for file in manifest.files:
            if file not in listed:
                (plan.arch_dir / file).unlink(missing_ok=True)
    _write_keys(plan)
    packages = sorted(
        (p for s in final.values() for p in s.result.packages), key=lambda p: (p.info.name, p.info.version)
    )
    write_index(
        plan.arch_dir, [(p.info, p.path) for p in packages], signing_key=plan.key, description=INDEX_DESCRIPTION
    )


def _previous_manifests(plan: _Plan) -> dict[str, Manifest]:
    if not plan.state_dir.is_dir():
        return {}
    found = {path.stem: read_manifest(path) for path in sorted(plan.state_dir.glob("*.json"))}
    return {name: manifest for name, manifest in found.items() if manifest is not None}


def _write_keys(plan: _Plan) -> None:
    keyring = plan.root / "keyring"
    keyring.mkdir(parents=True, exist_ok=True)
    for stale in keyring.glob("*.rsa.pub"):
        if stale.name != plan.key.name:
            stale.unlink()
    plan.key.write_public(keyring)
    if plan.key_is_new:
        signing = plan.root / "signing"
        signing.mkdir(parents=True, exist_ok=True)
        private = signing / plan.key.name.removesuffix(".pub")
        with contextlib.suppress(FileNotFoundError):
            private.unlink()
        descriptor = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(plan.key.private_pem())
