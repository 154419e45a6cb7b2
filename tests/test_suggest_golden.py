"""Golden files: what `qackage suggest --validate` prints for each fixture package.

Regenerate with QACKAGE_UPDATE_GOLDEN=1 after a deliberate change, and read the diff:
it is exactly what a maintainer would see change in a pull request.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qackage.build import RepositoryBuild
from qackage.cli.main import main

GOLDEN = Path(__file__).resolve().parent / "golden_suggest"
PACKAGES = (
    "hello",
    "libgreet",
    "hello-dev",
    "hello-static",
    "hello-doc",
    "hello-bash-completion",
    "py3-pyfoo",
    "tinyd",
    "shtools",
    "hello-meta",
    "hello-compat",
)


@pytest.mark.parametrize("name", PACKAGES)
def test_suggest_output_matches_golden(
    fixture_repo: RepositoryBuild, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    apk = fixture_repo.package(name).path
    code = main(
        [
            "suggest",
            str(apk),
            "--no-strength",
            "-r",
            str(fixture_repo.root),
            "--keyring",
            str(fixture_repo.keyring),
            "--test-package-append",
            "wolfi-base",
            "--cache-dir",
            str(tmp_path),
        ]
    )
    text = capsys.readouterr().out
    assert code == 0
    golden = GOLDEN / f"{name}.yaml"
    if os.environ.get("QACKAGE_UPDATE_GOLDEN") == "1":
        golden.write_text(text)
    assert golden.exists(), f"no golden file for {name}: run with QACKAGE_UPDATE_GOLDEN=1"
    assert text == golden.read_text(), f"suggest output for {name} changed: regenerate with QACKAGE_UPDATE_GOLDEN=1"
