"""Build one melange recipe: run its pipelines in a scratch workspace, then write one
signed .apk per (sub)package into a staging folder."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from qackage.apk.pkginfo import parse_atom
from qackage.apk.writer import SigningKey, write_apk
from qackage.build import autodeps
from qackage.build.recipe import PackageSpec, Recipe
from qackage.build.runner import StepCommand, run_step
from qackage.build.substitute import substitute
from qackage.build.tree import PackageTree, scan_tree
from qackage.errors import InputError
from qackage.model import Dependency, PackageInfo

# Fixture packages are rebuilt often and only read locally: fast gzip beats small files
# (level 6 makes the toolchain scenario ~10% smaller but about a second slower to build).
FIXTURE_COMPRESSLEVEL = 1


@dataclass(frozen=True, slots=True)
class BuiltPackage:
    info: PackageInfo  # as written: size and datahash filled
    path: Path


def apk_file_name(name: str, full_version: str) -> str:
    return f"{name}-{full_version}.apk"


def build_recipe(
    recipe: Recipe, scenario_dir: Path, staging: Path, *, arch: str, signing_key: SigningKey
) -> tuple[BuiltPackage, ...]:
    """Run ``recipe`` on a copy of ``scenario_dir``; write its packages into ``staging``."""
    if not recipe.builds_for(arch):
        return ()
    with tempfile.TemporaryDirectory(prefix=f"qackage-build-{recipe.name}-") as scratch:
        workspace = Path(scratch) / "workspace"
        try:
            shutil.copytree(scenario_dir, workspace, symlinks=True)
        except (OSError, shutil.Error) as exc:
            raise InputError(f"{recipe.label}: cannot copy the sources: {exc}") from exc
        outdir = workspace / "melange-out"
        for spec in recipe.packages:
            (outdir / spec.name).mkdir(parents=True, exist_ok=True)
        common = {
            **dict(recipe.variables),
            "build.arch": arch,
            "targets.outdir": str(outdir),
            "targets.destdir": str(outdir / recipe.name),
            **{f"targets.package.{spec.name}": str(outdir / spec.name) for spec in recipe.packages},
        }
        for spec in recipe.packages:
            _run_pipeline(recipe, spec, workspace, _context_variables(common, recipe, spec, outdir))
        trees = [scan_tree(spec.name, outdir / spec.name, recipe.label) for spec in recipe.packages]
        return tuple(
            _write_package(recipe, spec, tree, trees, staging, arch=arch, signing_key=signing_key)
            for spec, tree in zip(recipe.packages, trees, strict=True)
        )


def _context_variables(common: Mapping[str, str], recipe: Recipe, spec: PackageSpec, outdir: Path) -> dict[str, str]:
    variables = {**common, "context.name": spec.name, "targets.contextdir": str(outdir / spec.name)}
    if spec is not recipe.main:
        variables["targets.subpkgdir"] = str(outdir / spec.name)
        variables["subpkg.name"] = spec.name
    return variables


def _run_pipeline(recipe: Recipe, spec: PackageSpec, workspace: Path, variables: Mapping[str, str]) -> None:
    for step in spec.pipeline:
        where = f"{recipe.label}: {spec.name} pipeline step {step.label!r}"
        command = StepCommand(
            where=where,
            script=substitute(step.runs, variables, where),
            working_directory=substitute(step.working_directory, variables, where),
            environment=tuple((key, substitute(value, variables, where)) for key, value in step.environment),
        )
        run_step(command, workspace, dict(recipe.environment))


def _write_package(
    recipe: Recipe,
    spec: PackageSpec,
    tree: PackageTree,
    trees: list[PackageTree],
    staging: Path,
    *,
    arch: str,
    signing_key: SigningKey,
) -> BuiltPackage:
    where = f"{recipe.label}: {spec.name}"
    _check_arch(tree, arch, where)
    generated = autodeps.generate(tree, trees, recipe.full_version, spec.options, spec.runtime)
    depends, provides = autodeps.merge(spec.name, spec.runtime, spec.provides, generated)
    info = PackageInfo(
        name=spec.name,
        version=recipe.full_version,
        arch=arch,
        origin=recipe.name,
        description=spec.description,
        url=spec.url or recipe.main.url,
        license=recipe.license,
        depends=_atoms(depends, where),
        provides=_atoms(provides, where),
        replaces=spec.replaces,
        provider_priority=spec.provider_priority,
    )
    path = staging / apk_file_name(spec.name, recipe.full_version)
    files = [entry.planned() for entry in tree.entries]
    try:
        written = write_apk(path, info, files, signing_key=signing_key, compresslevel=FIXTURE_COMPRESSLEVEL)
    except OSError as exc:
        raise InputError(f"{where}: cannot write {path.name}: {exc.strerror or exc}") from exc
    return BuiltPackage(written, path)


def _check_arch(tree: PackageTree, arch: str, where: str) -> None:
    for entry in tree.entries:
        if entry.elf is not None and entry.elf.arch != arch:
            raise InputError(f"{where}: {entry.path} is built for {entry.elf.arch}, not {arch}")


def _atoms(texts: tuple[str, ...], where: str) -> tuple[Dependency, ...]:
    try:
        return tuple(parse_atom(text) for text in texts)
    except InputError as exc:
        raise InputError(f"{where}: {exc.message}") from exc
