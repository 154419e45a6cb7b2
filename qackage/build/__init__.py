"""A tiny melange-like builder: fixture scenarios in, a signed APK repository out.

    from qackage.build import build_repository
    repo = build_repository([Path("fixtures/base"), Path("fixtures/hello")], out_dir)
    repo.root, repo.arch_dir, repo.index, repo.keyring   # what apk and qackage read
    repo.package("hello").info.provides                  # PackageInfo as written

A scenario is a folder of melange build files (``*.yaml``) plus their sources; see
`qackage.build.recipe` for the subset of melange it understands.
"""

from __future__ import annotations

from qackage.build.package import BuiltPackage
from qackage.build.repo import (
    BuildResult,
    RepositoryBuild,
    build_repository,
    build_scenario,
    host_arch,
    load_recipes,
)

__all__ = [
    "BuildResult",
    "BuiltPackage",
    "RepositoryBuild",
    "build_repository",
    "build_scenario",
    "host_arch",
    "load_recipes",
]
