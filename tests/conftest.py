"""Session-wide fixtures: the fixture scenarios built once into a real, signed repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from qackage.build import RepositoryBuild, build_repository

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SCENARIOS = ("base", "hello", "hello-meta", "py3-pyfoo", "tinyd", "shtools", "toolchain")


@pytest.fixture(scope="session")
def fixture_repo(tmp_path_factory: pytest.TempPathFactory) -> RepositoryBuild:
    """Every scenario under fixtures/ built into one repository (about a second)."""
    return build_repository([FIXTURES / name for name in SCENARIOS], tmp_path_factory.mktemp("fixture-repo"))
