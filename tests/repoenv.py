"""How tests point qackage at the session's fixture repository."""

from __future__ import annotations

from pathlib import Path

from qackage.build import RepositoryBuild


def cli_environment(repo: RepositoryBuild, cache: Path) -> list[str]:
    """The command-line options every validating command takes: the fixture repository,
    its keyring, wolfi-base appended (as Wolfi does), and a cache folder."""
    return [
        "-r",
        str(repo.root),
        "--keyring",
        str(repo.keyring),
        "--test-package-append",
        "wolfi-base",
        "--cache-dir",
        str(cache),
    ]
