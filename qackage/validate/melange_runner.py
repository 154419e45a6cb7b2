"""``--runner melange``: hand the test to a real ``melange test`` when one is installed.

qackage's own runner is the default (it needs only bubblewrap). Maintainers who have
melange can ask for it to cross-check: the same stanza, the same repositories and
pipeline directories, melange's own image builder. The package under test must be in
one of the repositories (melange installs it by name, highest version wins).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qackage.errors import EnvironmentProblem


@dataclass(frozen=True, slots=True)
class MelangeInvocation:
    config: Path  # a whole melange package YAML
    package: str | None = None  # `melange test` tests the main package unless told otherwise
    repositories: tuple[str, ...] = ()
    keyrings: tuple[str, ...] = ()
    pipeline_dirs: tuple[str, ...] = ()
    append_packages: tuple[str, ...] = ()
    arch: str | None = None
    source_dir: Path | None = None
    runner: str = "bubblewrap"


def melange_command(melange: str, invocation: MelangeInvocation) -> list[str]:
    """The argv for ``melange test`` (pure: tests check it without melange installed)."""
    argv = [melange, "test", str(invocation.config)]
    if invocation.package:
        argv.append(invocation.package)
    argv += ["--runner", invocation.runner]
    if invocation.arch:
        argv += ["--arch", invocation.arch]
    for directory in invocation.pipeline_dirs:
        argv += ["--pipeline-dirs", directory]
    for repository in invocation.repositories:
        argv += ["--repository-append", repository]
    for keyring in invocation.keyrings:
        argv += ["--keyring-append", keyring]
    for name in invocation.append_packages:
        argv += ["--test-package-append", name]
    if invocation.source_dir is not None:
        argv += ["--source-dir", str(invocation.source_dir)]
    return argv


def find_melange() -> str:
    found = shutil.which("melange")
    if found is None:
        raise EnvironmentProblem("--runner melange: melange is not installed (or not on PATH)")
    return found


def run_melange(invocation: MelangeInvocation, *, timeout: float | None = None) -> int:
    """Run melange with its output going straight to the terminal; return its exit code."""
    argv = melange_command(find_melange(), invocation)
    try:
        return subprocess.run(argv, check=False, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        raise EnvironmentProblem(f"melange test did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise EnvironmentProblem(f"cannot run melange: {exc.strerror or exc}") from exc


def requires_config(test_file: Path, keys: Sequence[str]) -> None:
    """melange tests whole package files only, not bare `test:` fragments."""
    if "package" not in keys:
        raise EnvironmentProblem(
            f"--runner melange needs a whole melange package YAML; {test_file} holds only a test: fragment"
        )
