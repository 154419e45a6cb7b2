"""Probes run like test steps in the package's root and report what they observed."""

from __future__ import annotations

from pathlib import Path

from qackage.apk.signature import Keyring
from qackage.build import RepositoryBuild
from qackage.model import ProbeCommand
from qackage.validate.bubblewrap import Bubblewrap
from qackage.validate.probe import run_probes
from qackage.validate.session import ValidateRequest, extract_cache, open_repositories, probe_root_factory


def _request(repo: RepositoryBuild, tmp_path: Path, package: str) -> ValidateRequest:
    return ValidateRequest(
        package=repo.package(package).path,
        test_file=tmp_path / "unused.yaml",
        repositories=(str(repo.root),),
        keyring=repo.keyring,
        append_packages=("wolfi-base",),
        cache_dir=tmp_path / "cache",
    )


def test_probes_observe_the_package(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    request = _request(fixture_repo, tmp_path, "hello")
    repositories = open_repositories(request, Keyring.load(fixture_repo.keyring))
    make_root = probe_root_factory(request, repositories, extract_cache(request))
    commands = [
        ProbeCommand("version", "hello --version </dev/null"),
        ProbeCommand("greet", "hello greet probe"),
        ProbeCommand("stdin", "printf 'loud\\n' | hello upper"),
        ProbeCommand("unknown", "hello frobnicate"),
        ProbeCommand("compiler", "cc --version", packages=("build-base",)),
        ProbeCommand("writes", "echo scratch > file && cat file"),
        ProbeCommand("isolated", "test ! -e file"),
        ProbeCommand("slow", "sleep 30", timeout=1),
    ]
    results = run_probes(commands, make_root=make_root, sandbox=Bubblewrap())
    assert set(results) == {c.key for c in commands}
    assert results["version"].ok
    assert "2.12.1" in results["version"].stdout
    assert results["greet"].stdout == "Hello, probe!\n"
    assert results["stdin"].stdout == "LOUD\n"
    assert not results["unknown"].ok
    assert "unknown command" in results["unknown"].stderr
    assert results["compiler"].ok, results["compiler"]
    assert "free software foundation" in results["compiler"].stdout.lower()
    assert results["writes"].stdout == "scratch\n"
    assert results["isolated"].ok  # each probe gets a fresh workspace
    assert results["slow"].reason is not None
    assert "timed out" in results["slow"].reason
