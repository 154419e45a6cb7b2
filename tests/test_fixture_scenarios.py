"""The bundled fixture scenarios, built for real: metadata, trees, signatures, and the
programs they ship actually running on this machine."""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import posixpath
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from qackage.apk.archive import ApkArchive
from qackage.apk.index import read_index_file
from qackage.apk.signature import Keyring
from qackage.build import RepositoryBuild, build_repository, host_arch
from qackage.model import Entry, EntryKind
from qackage.validate.pipelines import PipelineLibrary

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SCENARIOS = ("base", "hello", "hello-meta", "py3-pyfoo", "tinyd", "shtools")
LOADER = {"x86_64": ("lib64", "ld-linux-x86-64.so.2"), "aarch64": ("lib", "ld-linux-aarch64.so.1")}
# Recipes may use any pipeline of qackage's library: `qackage validate` runs their stanzas.
KNOWN_PIPELINES = frozenset(PipelineLibrary().available())

pytestmark = pytest.mark.skipif(host_arch() not in LOADER, reason="the base scenario knows x86_64 and aarch64")


@dataclass(frozen=True)
class Unpacked:
    """One package read back with the repository's keyring and unpacked to disk."""

    name: str
    depends: tuple[str, ...]
    provides: tuple[str, ...]
    origin: str
    version: str
    entries: dict[str, Entry]
    root: Path

    def files(self) -> set[str]:
        return {p for p, e in self.entries.items() if e.kind is not EntryKind.DIR}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> RepositoryBuild:
    return build_repository([FIXTURES / name for name in SCENARIOS], tmp_path_factory.mktemp("fixture-repo"))


@pytest.fixture(scope="module")
def unpacked(repo: RepositoryBuild, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Unpacked]:
    keyring = Keyring.load(repo.keyring)
    into = tmp_path_factory.mktemp("unpacked")
    return {p.info.name: unpack(p.path, into / p.info.name, keyring, repo.key_name) for p in repo.packages}


def unpack(path: Path, root: Path, keyring: Keyring, key_name: str) -> Unpacked:
    root.mkdir()
    entries: dict[str, Entry] = {}
    with ApkArchive.open(path, keyring=keyring) as apk:
        for member in apk.members():
            entry = member.entry
            entries[entry.path] = entry
            target = root / entry.path
            if entry.kind is EntryKind.DIR:
                target.mkdir(parents=True, exist_ok=True)
            elif entry.kind is EntryKind.SYMLINK:
                target.symlink_to(entry.link_target or "")
            elif entry.kind is EntryKind.HARDLINK:
                target.hardlink_to(root / (entry.link_target or ""))
            else:
                target.write_bytes(b"".join(member.chunks()))
                target.chmod(entry.mode)
        assert apk.check.datahash_verified
        assert apk.check.signed_by == key_name
        info = apk.info
    return Unpacked(
        info.name,
        tuple(str(d) for d in info.depends),
        tuple(str(p) for p in info.provides),
        info.origin,
        info.version,
        entries,
        root,
    )


def run(*argv: str | Path, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})},
        check=False,
    )


# --------------------------------------------------------------------------- the repository


def test_every_package_is_indexed_signed_and_resolvable(repo: RepositoryBuild) -> None:
    index = read_index_file(repo.index, keyring=Keyring.load(repo.keyring))
    assert index.signed_by == repo.key_name
    assert sorted(e.info.name for e in index.entries) == sorted(p.info.name for p in repo.packages)
    assert {p.info.name for p in repo.packages} == {
        "glibc",
        "busybox",
        "wolfi-base",
        "hello",
        "libgreet",
        "hello-dev",
        "hello-static",
        "hello-doc",
        "hello-bash-completion",
        "hello-meta",
        "hello-compat",
        "py3-pyfoo",
        "tinyd",
        "shtools",
        "shtools-bash-completion",
    }
    available = {e.info.name for e in index.entries} | {p.name for e in index.entries for p in e.info.provides}
    missing = {d.name for e in index.entries for d in e.info.depends} - available
    # python3 comes from the host: the sandbox falls back to it.
    assert missing == {"python3"}


def test_rebuilding_unchanged_fixtures_is_a_no_op(repo: RepositoryBuild) -> None:
    started = time.monotonic()
    again = build_repository([FIXTURES / name for name in SCENARIOS], repo.root)
    assert not any(result.rebuilt for result in again.scenarios)
    assert again.packages == repo.packages
    assert time.monotonic() - started < 5


def test_recipes_carry_wolfi_style_test_stanzas() -> None:
    for recipe in sorted(FIXTURES.glob("*/*.yaml")):
        document = yaml.safe_load(recipe.read_text())
        stanzas = [document.get("test")] + [sub.get("test") for sub in document.get("subpackages", [])]
        steps = [step for stanza in stanzas if stanza for step in stanza["pipeline"]]
        assert steps, f"{recipe}: no test pipeline"
        for step in steps:
            assert ("uses" in step) != ("runs" in step), f"{recipe}: {step}"
            if "uses" in step:
                assert step["uses"] in KNOWN_PIPELINES, f"{recipe}: unknown pipeline {step['uses']}"


# --------------------------------------------------------------------------- base


def test_glibc_ships_the_loader_where_host_programs_look(unpacked: dict[str, Unpacked]) -> None:
    glibc = unpacked["glibc"]
    loader_dir, loader = LOADER[host_arch()]
    link = glibc.entries[f"{loader_dir}/{loader}"]
    assert link.kind is EntryKind.SYMLINK and link.link_target == f"/usr/lib/{loader}"
    assert {"usr/lib/libc.so.6", "usr/lib/libm.so.6", "usr/lib/libgcc_s.so.1", f"usr/lib/{loader}"} <= glibc.files()
    assert "so:libc.so.6=6" in glibc.provides
    assert f"so:{loader}={loader.rsplit('.so.', 1)[1]}" in glibc.provides
    assert glibc.depends == ()  # everything it needs, it provides
    result = run(glibc.root / "usr/lib" / loader, glibc.root / "usr/lib/libc.so.6")
    assert "GNU C Library" in result.stdout


def test_busybox_is_static_with_applet_links(unpacked: dict[str, Unpacked]) -> None:
    busybox = unpacked["busybox"]
    assert busybox.depends == ()
    assert busybox.provides == ("cmd:busybox=1.35.0-r0",)
    assert busybox.entries["usr/bin/busybox"].mode == 0o755
    for applet in ("sh", "ls", "awk", "sed", "nc", "wget", "tar", "sha256sum", "timeout", "["):
        assert busybox.entries[f"usr/bin/{applet}"].link_target == "busybox"
    assert busybox.entries["bin/sh"].link_target == "/usr/bin/busybox"
    result = run(busybox.root / "usr/bin/sh", "-c", "printf 'b\\na\\n' | sort | tr a-z A-Z | head -n1")
    assert result.stdout == "A\n"


def test_wolfi_base_is_a_metapackage(unpacked: dict[str, Unpacked]) -> None:
    base = unpacked["wolfi-base"]
    assert base.entries == {}
    assert base.depends == ("busybox", "glibc")


# --------------------------------------------------------------------------- hello


def test_hello_packages_split_like_wolfi(unpacked: dict[str, Unpacked]) -> None:
    hello, lib, dev = unpacked["hello"], unpacked["libgreet"], unpacked["hello-dev"]
    assert {p.origin for p in unpacked.values() if p.name.startswith(("hello", "libgreet"))} == {
        "hello",
        "hello-meta",
    }
    assert hello.version == "2.12.1-r1"
    assert hello.files() == {"usr/bin/hello"}
    assert hello.provides == ("cmd:hello=2.12.1-r1",)
    assert set(hello.depends) == {"so:libgreet.so.1", "so:libc.so.6", f"so:{LOADER[host_arch()][1]}"}

    assert lib.files() == {"usr/lib/libgreet.so.1.0.0", "usr/lib/libgreet.so.1"}
    assert lib.entries["usr/lib/libgreet.so.1"].link_target == "libgreet.so.1.0.0"
    assert lib.provides == ("so:libgreet.so.1=1",)
    assert lib.depends == ("so:libc.so.6",)

    assert dev.files() == {
        "usr/include/greet/greet.h",
        "usr/include/greet/version.h",
        "usr/lib/libgreet.so",
        "usr/lib/pkgconfig/greet.pc",
    }
    assert dev.entries["usr/lib/libgreet.so"].link_target == "libgreet.so.1"
    assert dev.provides == ("pc:greet=2.12.1",)
    assert dev.depends == ("libgreet", "so:libgreet.so.1")

    assert unpacked["hello-static"].files() == {"usr/lib/libgreet.a"}
    assert (unpacked["hello-static"].root / "usr/lib/libgreet.a").read_bytes().startswith(b"!<arch>\n")
    assert unpacked["hello-doc"].files() == {"usr/share/man/man1/hello.1.gz", "usr/share/doc/hello/README"}
    assert unpacked["hello-bash-completion"].files() == {"usr/share/bash-completion/completions/hello"}


def test_hello_runs_against_its_library(unpacked: dict[str, Unpacked]) -> None:
    hello = unpacked["hello"].root / "usr/bin/hello"
    env = {"LD_LIBRARY_PATH": str(unpacked["libgreet"].root / "usr/lib")}
    assert run(hello, "greet", "world", env=env).stdout == "Hello, world!\n"
    assert run(hello, "greet", "--shout", "a", "b", env=env).stdout == "HELLO, A!\nHELLO, B!\n"
    assert run(hello, "upper", stdin="quiet please\nok\n", env=env).stdout == "QUIET PLEASE\nOK\n"
    assert run(hello, "--version", env=env).stdout == "hello 2.12.1\n"
    assert "greet [--shout] NAME" in run(hello, "--help", env=env).stdout
    unknown = run(hello, "frobnicate", env=env)
    assert unknown.returncode == 2 and "unknown command 'frobnicate'" in unknown.stderr
    assert "libgreet.so.1" in run(hello, "greet", "x").stderr  # really linked against it


def test_hello_runs_on_the_packaged_glibc(unpacked: dict[str, Unpacked]) -> None:
    loader = unpacked["glibc"].root / "usr/lib" / LOADER[host_arch()][1]
    library_path = f"{unpacked['glibc'].root / 'usr/lib'}:{unpacked['libgreet'].root / 'usr/lib'}"
    result = run(loader, "--library-path", library_path, unpacked["hello"].root / "usr/bin/hello", "greet", "wolfi")
    assert result.stdout == "Hello, wolfi!\n"


def test_hello_dev_builds_a_program(unpacked: dict[str, Unpacked], tmp_path: Path) -> None:
    # Install -dev and the library into one root, as apk would.
    sysroot = tmp_path / "sysroot"
    for name in ("hello-dev", "libgreet"):
        shutil.copytree(unpacked[name].root, sysroot, symlinks=True, dirs_exist_ok=True)
    pc = (sysroot / "usr/lib/pkgconfig/greet.pc").read_text()
    assert re.search(r"^Libs: -L\$\{libdir\} -lgreet$", pc, re.MULTILINE)
    assert "#include <greet/version.h>" in (sysroot / "usr/include/greet/greet.h").read_text()
    source = tmp_path / "use.c"
    source.write_text(
        "#include <stdio.h>\n#include <string.h>\n#include <greet/greet.h>\n"
        "int main(void) {\n"
        '  char *text = greet_format("dev");\n'
        '  printf("%s %d\\n", text, strcmp(greet_version(), GREET_VERSION) == 0);\n'
        "  greet_free(text);\n  return 0;\n}\n"
    )
    program = tmp_path / "use"
    compiled = run("gcc", "-I", sysroot / "usr/include", "-o", program, source, "-L", sysroot / "usr/lib", "-lgreet")
    assert compiled.returncode == 0, compiled.stderr
    assert run(program, env={"LD_LIBRARY_PATH": str(sysroot / "usr/lib")}).stdout == "Hello, dev! 1\n"


def test_hello_docs_and_completion(unpacked: dict[str, Unpacked]) -> None:
    doc = unpacked["hello-doc"].root
    page = gzip.decompress((doc / "usr/share/man/man1/hello.1.gz").read_bytes()).decode()
    assert page.startswith(".TH HELLO 1")
    assert "hello greet world" in (doc / "usr/share/doc/hello/README").read_text()
    completion = unpacked["hello-bash-completion"].root / "usr/share/bash-completion/completions/hello"
    assert run("bash", "-n", completion).returncode == 0
    assert "complete -F _hello hello" in completion.read_text()


def test_packages_without_files(unpacked: dict[str, Unpacked]) -> None:
    meta, compat = unpacked["hello-meta"], unpacked["hello-compat"]
    assert meta.entries == {} and compat.entries == {}
    assert meta.depends == ("hello", "hello-bash-completion", "hello-doc")
    assert compat.depends == () and compat.provides == ()
    assert compat.origin == "hello-meta"


# --------------------------------------------------------------------------- py3-pyfoo


def site_packages(pkg: Unpacked) -> Path:
    return pkg.root / f"usr/lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages"


def test_pyfoo_is_an_installed_distribution(unpacked: dict[str, Unpacked]) -> None:
    pyfoo = unpacked["py3-pyfoo"]
    assert pyfoo.depends == ("python3",)
    assert pyfoo.provides == ("cmd:pyfoo=1.2.0-r0",)
    site = site_packages(pyfoo)
    dist = site / "pyfoo-1.2.0.dist-info"
    assert {p.name for p in (site / "pyfoo").iterdir()} == {"__init__.py", "cli.py", "__main__.py"}
    assert "Name: pyfoo\nVersion: 1.2.0\n" in (dist / "METADATA").read_text()
    assert (dist / "top_level.txt").read_text() == "pyfoo\n"
    assert "pyfoo = pyfoo.cli:main" in (dist / "entry_points.txt").read_text()
    assert pyfoo.entries["usr/bin/pyfoo"].mode == 0o755


def test_pyfoo_record_matches_the_files(unpacked: dict[str, Unpacked]) -> None:
    site = site_packages(unpacked["py3-pyfoo"])
    lines = (site / "pyfoo-1.2.0.dist-info/RECORD").read_text().splitlines()
    recorded = {}
    for line in lines:
        path, digest, size = line.rsplit(",", 2)
        recorded[posixpath.normpath(path)] = (digest, size)
    installed = {p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()}
    assert set(recorded) == installed | {"../../../bin/pyfoo"}
    for path, (digest, size) in recorded.items():
        if path.endswith("RECORD"):
            assert (digest, size) == ("", "")
            continue
        data = (site / path).read_bytes()
        expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert (digest, size) == (f"sha256={expected}", str(len(data))), path


def test_pyfoo_command_runs(unpacked: dict[str, Unpacked]) -> None:
    pyfoo = unpacked["py3-pyfoo"]
    script = pyfoo.root / "usr/bin/pyfoo"
    assert script.read_text().startswith("#!/usr/bin/python3\n")
    env = {"PYTHONPATH": str(site_packages(pyfoo)), "PYTHONDONTWRITEBYTECODE": "1"}
    assert run(sys.executable, script, "slugify", "Hello, World!", env=env).stdout == "hello-world\n"
    assert run(sys.executable, script, "--version", env=env).stdout == "pyfoo 1.2.0\n"
    result = run(sys.executable, "-m", "pyfoo", "slugify", "--separator", "_", stdin="Ünïcode Títle\n", env=env)
    assert result.stdout == "unicode_title\n"


# --------------------------------------------------------------------------- tinyd


def test_tinyd_ships_daemon_config_and_service_files(unpacked: dict[str, Unpacked]) -> None:
    tinyd = unpacked["tinyd"]
    assert tinyd.files() == {
        "usr/sbin/tinyd",
        "etc/tinyd/tinyd.conf",
        "etc/init.d/tinyd",
        "usr/lib/systemd/system/tinyd.service",
    }
    assert tinyd.entries["etc/init.d/tinyd"].mode == 0o755
    assert tinyd.entries["etc/tinyd/tinyd.conf"].mode == 0o644
    assert tinyd.provides == ("cmd:tinyd=0.3.1-r0",)
    assert "so:libc.so.6" in tinyd.depends
    assert re.search(r"^port = 7070$", (tinyd.root / "etc/tinyd/tinyd.conf").read_text(), re.MULTILINE)
    unit = (tinyd.root / "usr/lib/systemd/system/tinyd.service").read_text()
    assert "ExecStart=/usr/sbin/tinyd -f -c /etc/tinyd/tinyd.conf" in unit
    assert (tinyd.root / "etc/init.d/tinyd").read_text().startswith("#!/sbin/openrc-run\n")
    check = run(tinyd.root / "usr/sbin/tinyd", "-t", "-c", tinyd.root / "etc/tinyd/tinyd.conf")
    assert check.stdout == "tinyd: configuration ok (127.0.0.1 port 7070)\n"
    assert run(tinyd.root / "usr/sbin/tinyd", "-v").stdout == "tinyd 0.3.1\n"


@pytest.fixture
def tinyd_daemon(unpacked: dict[str, Unpacked], tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    config = tmp_path / "tinyd.conf"
    config.write_text("# test settings\nport = 0\nbind = 127.0.0.1\n")
    with subprocess.Popen(
        [str(unpacked["tinyd"].root / "usr/sbin/tinyd"), "-f", "-c", str(config)],
        stderr=subprocess.PIPE,
        text=True,
    ) as daemon:
        try:
            assert daemon.stderr is not None
            ready = daemon.stderr.readline()
            match = re.fullmatch(r"tinyd: listening on port (\d+)\n", ready)
            assert match, ready
            yield daemon, int(match[1])
        finally:
            if daemon.poll() is None:
                daemon.kill()
            daemon.wait(timeout=10)


def ask(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(request)
        reply = b""
        while chunk := connection.recv(64):
            reply += chunk
    return reply


def test_tinyd_answers_ping_and_stops_on_sigterm(tinyd_daemon: tuple[subprocess.Popen[str], int]) -> None:
    daemon, port = tinyd_daemon
    assert ask(port, b"PING\n") == b"PONG\n"
    assert ask(port, b"HELLO\n") == b"ERR unknown command\n"
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=10) == 0
    assert daemon.stderr is not None
    assert daemon.stderr.read() == "tinyd: shutting down\n"


def test_tinyd_rejects_bad_settings(unpacked: dict[str, Unpacked], tmp_path: Path) -> None:
    config = tmp_path / "bad.conf"
    config.write_text("prot = 1\n")
    result = run(unpacked["tinyd"].root / "usr/sbin/tinyd", "-t", "-c", config)
    assert result.returncode == 1
    assert result.stderr == f"tinyd: {config}:1: unknown setting 'prot'\n"


# --------------------------------------------------------------------------- shtools


def test_wordfreq_counts_words(unpacked: dict[str, Unpacked], tmp_path: Path) -> None:
    shtools = unpacked["shtools"]
    assert shtools.version == "1.0.3-r2"
    assert shtools.depends == ("busybox",)  # "#!/bin/sh" adds nothing, as in melange
    assert shtools.provides == ("cmd:wordfreq=1.0.3-r2",)
    script = shtools.root / "usr/bin/wordfreq"
    assert script.read_text().startswith("#!/bin/sh\n")
    words = tmp_path / "words.txt"
    words.write_text("the cat and The dog\nthe end\n")
    assert run(script, "-n", "2", words).stdout == "3 the\n1 and\n"
    assert run(script, stdin="b a b\n").stdout == "2 b\n1 a\n"
    assert run(script, "--version").stdout == "wordfreq 1.0.3\n"
    bad = run(script, "-n", "many", stdin="")
    assert bad.returncode == 2 and "needs a number" in bad.stderr
    # And with the packaged busybox as the shell, as in a Wolfi image.
    busybox_sh = unpacked["busybox"].root / "usr/bin/sh"
    assert run(busybox_sh, script, "-n", "1", words).stdout == "3 the\n"
    completion = unpacked["shtools-bash-completion"].root / "usr/share/bash-completion/completions/wordfreq"
    assert run("bash", "-n", completion).returncode == 0
