"""Test helper: packages bundled from the fixture repository's packages.

``greetkit`` is hello and every one of its subpackages in one package, as an unsplit build
ships them: the program, libgreet, headers, the .pc file, the static library, the manual
and the bash completion. Tests that need a package with many facets (and broken copies of
it) build it here:

    kit = shared_greetkit(fixture_repo, tmp_path_factory)     # built once per session
    broken = write_bundle(tmp / "no-lib.apk", greetkit_info(repo), [f for f in greetkit_files(repo) if ...])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pytest

from qackage.apk.archive import ApkArchive
from qackage.apk.writer import PlannedFile, read_package, write_apk
from qackage.build import RepositoryBuild
from qackage.model import PackageInfo

GREETKIT_PARTS = ("hello", "libgreet", "hello-dev", "hello-static", "hello-doc", "hello-bash-completion")
GREETKIT = "greetkit"


def package_files(apk: Path) -> list[PlannedFile]:
    """Every member of an .apk but its folders, as PlannedFiles (to build packages from others)."""
    return read_package(apk)[1]


def greetkit_files(repo: RepositoryBuild, parts: Sequence[str] = GREETKIT_PARTS) -> list[PlannedFile]:
    return [planned for name in parts for planned in package_files(repo.package(name).path)]


def greetkit_info(repo: RepositoryBuild, parts: Sequence[str] = GREETKIT_PARTS) -> PackageInfo:
    """hello's .PKGINFO renamed, providing what every part provides and depending on none
    of the parts (hello depends on libgreet, which is now inside)."""
    infos = []
    for name in parts:
        with ApkArchive.open(repo.package(name).path) as archive:
            infos.append(archive.info)
    first = infos[0]
    return dataclasses.replace(
        first,
        name=GREETKIT,
        origin=GREETKIT,
        depends=tuple(d for d in first.depends if "greet" not in d.name),
        provides=tuple(p for info in infos for p in info.provides),
    )


def write_bundle(path: Path, info: PackageInfo, files: Sequence[PlannedFile]) -> Path:
    write_apk(path, info, files)
    return path


def build_greetkit(repo: RepositoryBuild, folder: Path) -> Path:
    """``folder/greetkit.apk``."""
    return write_bundle(folder / f"{GREETKIT}.apk", greetkit_info(repo), greetkit_files(repo))


_BUILT: dict[Path, Path] = {}


def shared_greetkit(repo: RepositoryBuild, factory: pytest.TempPathFactory) -> Path:
    """greetkit for this repository, built on first use and shared by the whole session
    (tests must not change the file)."""
    if repo.root not in _BUILT:
        _BUILT[repo.root] = build_greetkit(repo, factory.mktemp(GREETKIT))
    return _BUILT[repo.root]
