"""`qackage analyze` gives the right facts for every fixture scenario's packages."""

from __future__ import annotations

import pytest

from qackage.analyze.engine import analyze_source
from qackage.apk.archive import ApkArchive
from qackage.apk.signature import Keyring
from qackage.build import RepositoryBuild
from qackage.model import Analysis, DocKind, ElfType, PackageKind, PythonModuleKind, ServiceManager


def _analyze(repo: RepositoryBuild, name: str) -> Analysis:
    with ApkArchive.open(repo.package(name).path, keyring=Keyring.load(repo.keyring)) as archive:
        return analyze_source(archive)


def test_every_package_is_analyzed_and_verified(fixture_repo: RepositoryBuild) -> None:
    names = sorted(p.info.name for p in fixture_repo.packages)
    assert len(names) >= 14
    for name in names:
        analysis = _analyze(fixture_repo, name)
        assert analysis.check.datahash_verified, name
        assert analysis.check.signed_by == fixture_repo.key_name, name
        assert analysis.package.name == name


def test_hello_cli(fixture_repo: RepositoryBuild) -> None:
    analysis = _analyze(fixture_repo, "hello")
    assert analysis.kind.primary is PackageKind.CLI
    (program,) = analysis.facts.executables
    assert program.path == "usr/bin/hello"
    assert program.on_path
    assert program.elf
    (elf,) = analysis.facts.elf_files
    assert elf.elf_type is ElfType.EXECUTABLE
    assert elf.needed == ("libgreet.so.1", "libc.so.6")
    assert elf.interpreter is not None
    assert "so:libgreet.so.1" in {d.name for d in analysis.package.depends}


def test_libgreet_shared_library(fixture_repo: RepositoryBuild) -> None:
    analysis = _analyze(fixture_repo, "libgreet")
    assert analysis.kind.primary is PackageKind.SHARED_LIBRARY
    (library,) = analysis.facts.shared_libraries
    assert library.soname == "libgreet.so.1"
    assert library.aliases == ("usr/lib/libgreet.so.1",)
    (elf,) = analysis.facts.elf_files
    assert {"greet_format", "greet_version"} <= set(elf.exported_functions)
    assert analysis.package.so_provides == ("libgreet.so.1",)


def test_hello_dev(fixture_repo: RepositoryBuild) -> None:
    analysis = _analyze(fixture_repo, "hello-dev")
    assert analysis.kind.primary is PackageKind.DEV
    headers = {h.include_name: h for h in analysis.facts.headers}
    assert set(headers) == {"greet/greet.h", "greet/version.h"}
    assert "greet/version.h" in headers["greet/greet.h"].includes
    (pc,) = analysis.facts.pkgconfig
    assert pc.module == "greet"
    assert pc.version == "2.12.1"
    assert pc.link_libraries == ("greet",)
    (link,) = analysis.facts.symlinks
    assert link.path == "usr/lib/libgreet.so"
    assert link.dangling  # the target lives in libgreet, a dependency


def test_hello_static_doc_and_completion(fixture_repo: RepositoryBuild) -> None:
    static = _analyze(fixture_repo, "hello-static")
    assert static.kind.primary is PackageKind.STATIC
    assert static.facts.static_libraries == ("usr/lib/libgreet.a",)
    doc = _analyze(fixture_repo, "hello-doc")
    assert doc.kind.primary is PackageKind.DOC
    man = [d for d in doc.facts.documents if d.kind is DocKind.MAN]
    assert [(d.section, d.topic) for d in man] == [("1", "hello")]
    completion = _analyze(fixture_repo, "hello-bash-completion")
    assert completion.kind.primary is PackageKind.COMPLETIONS
    assert [(c.shell, c.command) for c in completion.facts.completions] == [("bash", "hello")]


def test_python_package(fixture_repo: RepositoryBuild) -> None:
    analysis = _analyze(fixture_repo, "py3-pyfoo")
    assert analysis.kind.primary is PackageKind.PYTHON
    (module,) = analysis.facts.python_modules
    assert module.name == "pyfoo"
    assert module.kind is PythonModuleKind.PACKAGE
    (dist,) = analysis.facts.python_distributions
    assert (dist.name, dist.version) == ("pyfoo", "1.2.0")
    assert dist.console_scripts == (("pyfoo", "pyfoo.cli:main"),)
    assert dist.has_record


def test_daemon(fixture_repo: RepositoryBuild) -> None:
    analysis = _analyze(fixture_repo, "tinyd")
    assert analysis.kind.primary is PackageKind.DAEMON
    (daemon,) = analysis.facts.daemons
    assert daemon.path == "usr/sbin/tinyd"
    assert daemon.ports == (7070,)
    assert "etc/tinyd/tinyd.conf" in daemon.config_files
    managers = {s.manager for s in analysis.facts.services}
    assert managers == {ServiceManager.OPENRC, ServiceManager.SYSTEMD}


def test_shell_scripts(fixture_repo: RepositoryBuild) -> None:
    analysis = _analyze(fixture_repo, "shtools")
    assert analysis.kind.primary in (PackageKind.SCRIPTS, PackageKind.CLI)
    (script,) = analysis.facts.scripts
    assert script.path == "usr/bin/wordfreq"
    assert script.shell == "sh"


@pytest.mark.parametrize(
    ("name", "kind"), [("hello-meta", PackageKind.METAPACKAGE), ("hello-compat", PackageKind.EMPTY)]
)
def test_packages_without_files(fixture_repo: RepositoryBuild, name: str, kind: PackageKind) -> None:
    analysis = _analyze(fixture_repo, name)
    assert analysis.kind.primary is kind
    assert not [e for e in analysis.entries if e.kind.value != "dir"]


def test_base_layer(fixture_repo: RepositoryBuild) -> None:
    glibc = _analyze(fixture_repo, "glibc")
    sonames = {lib.soname for lib in glibc.facts.shared_libraries}
    assert {"libc.so.6", "libm.so.6"} <= sonames
    busybox = _analyze(fixture_repo, "busybox")
    (elf,) = busybox.facts.elf_files
    assert elf.static
    names = {e.name for e in busybox.facts.executables}
    assert {"sh", "awk", "nc", "busybox"} <= names
    assert _analyze(fixture_repo, "wolfi-base").kind.primary is PackageKind.METAPACKAGE
