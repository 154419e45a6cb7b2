"""Mutation operators: every mutant is a real, valid .apk that breaks exactly what it says.

The fixture packages (hello, libgreet, hello-dev ... busybox, glibc) are mutated once per
module with every operator; the tests read the mutants back with `ApkArchive`, analyze
them again, run the stand-in scripts and load the renamed libraries.
"""

from __future__ import annotations

import ctypes
import dataclasses
import gzip
import hashlib
import os
import posixpath
import shlex
import shutil
import subprocess
import tracemalloc
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from pkgfiles import hardlink, package_info, symlink, text_file

from qackage.analyze.engine import analyze_source
from qackage.apk.archive import ApkArchive
from qackage.apk.writer import PlannedFile, SigningKey, write_apk
from qackage.build import RepositoryBuild
from qackage.errors import InputError
from qackage.model import Analysis, CheckKind, Entry, EntryKind, PythonModuleKind
from qackage.validate.bubblewrap import Bubblewrap
from qackage.validate.checkkind import HELP_WORDS, VERSION_WORDS, script_kind
from qackage.validate.mutants import (
    MANIFEST_NAME,
    OPERATORS,
    DataReferences,
    MutantSpec,
    analyze_apk,
    applicable_mutants,
    build_mutant,
    data_references,
    load_mutants,
    write_mutants,
)
from qackage.validate.mutators.base import Edit, Relocate
from qackage.validate.mutators.control import read_control_scripts
from qackage.validate.mutators.lookalikes import HELP_REQUESTS, VERSION_REQUESTS, real_path, upstream_version
from qackage.validate.mutators.references import MAX_REFERENCE, PathScanner, find_references, path_pattern
from qackage.validate.mutators.rewrite import write_mutant
from qackage.validate.session import ValidateRequest, validate

FIXTURE_PACKAGES = (
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
    "busybox",
    "glibc",
)

PROGRAM_OPERATORS = {"delete-executable", "exec-exit-1", "exec-exit-0-silent", "exec-not-executable", "truncate-elf"}
LOOKALIKES = {"exec-version-only", "exec-output-garbled"}
EXPECTED_OPERATORS: dict[str, set[str]] = {
    "hello": PROGRAM_OPERATORS | LOOKALIKES | {"empty-package"},
    "libgreet": {"truncate-elf", "delete-soname", "strip-export", "dangle-symlink", "empty-package"},
    "hello-dev": {"dangle-symlink", "break-pc-libs", "delete-included-header", "empty-package"},
    "hello-static": {"truncate-static-lib", "empty-package"},
    "hello-doc": {"corrupt-man-page", "empty-package"},
    "hello-bash-completion": {"drop-completion", "empty-package"},
    "py3-pyfoo": (PROGRAM_OPERATORS - {"truncate-elf"})
    | LOOKALIKES
    | {"break-shebang", "delete-python-init", "empty-package"},
    # A daemon's exit-0 stand-in is daemon-exits, not exec-exit-0-silent; its output is not garbled.
    "tinyd": (PROGRAM_OPERATORS - {"exec-exit-0-silent"})
    | {"exec-version-only", "daemon-exits", "missing-config", "empty-package"},
    "shtools": (PROGRAM_OPERATORS - {"truncate-elf"}) | LOOKALIKES | {"break-shebang", "empty-package"},
    "hello-meta": set(),
    # Its programs are links to one multi-call binary (and that binary is the shell): none is garbled.
    "busybox": PROGRAM_OPERATORS | {"exec-version-only", "dangle-symlink", "empty-package"},
    "glibc": {"truncate-elf", "delete-soname", "strip-export", "dangle-symlink", "empty-package"},
}


# --------------------------------------------------------------------------- reading packages back


@dataclass(frozen=True)
class Member:
    entry: Entry
    data: bytes | None


def read_tree(apk: Path) -> dict[str, Member]:
    """Every member with its content (the test packages are small)."""
    tree: dict[str, Member] = {}
    with ApkArchive.open(apk) as archive:
        for member in archive.members():
            data = b"".join(member.chunks()) if member.entry.kind is EntryKind.FILE else None
            tree[member.entry.path] = Member(member.entry, data)
        assert archive.check.datahash_verified
    return tree


def content(tree: dict[str, Member], path: str) -> bytes:
    """A file's bytes, through a hardlink to the file it names."""
    member = tree[path]
    if member.entry.kind is EntryKind.HARDLINK:
        member = tree[member.entry.link_target or ""]
    assert member.data is not None, path
    return member.data


def changed_paths(good: dict[str, Member], bad: dict[str, Member]) -> set[str]:
    """Paths added, removed, or different in kind, mode, owner, link target or content."""
    changed = set(good) ^ set(bad)
    for path in set(good) & set(bad):
        before, after = good[path], bad[path]
        same_entry = dataclasses.replace(before.entry, size=0) == dataclasses.replace(after.entry, size=0)
        same_content = before.entry.kind is not EntryKind.FILE or content(good, path) == content(bad, path)
        if not (same_entry and same_content):
            changed.add(path)
    return changed


def intended_paths(spec: MutantSpec, analysis: Analysis) -> set[str]:
    """What each operator is meant to touch, worked out from its definition."""
    facts = analysis.facts
    if spec.operator == "empty-package":
        return {e.path for e in analysis.entries}
    if spec.operator == "delete-soname":
        return {lib.path for lib in facts.shared_libraries if lib.soname == spec.target}
    if spec.operator == "strip-export":
        return {spec.target.rsplit(":", 1)[0]}
    if spec.operator == "delete-python-init":
        return {f"{m.path}/__init__.py" for m in facts.python_modules if m.name == spec.target}
    if spec.operator in ("delete-python-module", "delete-perl-module"):
        modules = facts.python_modules if spec.operator == "delete-python-module" else facts.perl_modules
        return {m.path for m in modules if m.name == spec.target}
    if spec.operator == "exec-output-garbled":
        moved = real_path(spec.target)
        return {spec.target, moved, posixpath.dirname(moved)}
    return {spec.target}


def extract(tree: dict[str, Member], path: str, folder: Path, name: str | None = None) -> Path:
    target = folder / (name or path.rsplit("/", 1)[-1])
    target.write_bytes(content(tree, path))
    member = tree[path]
    mode = member.entry.mode
    if member.entry.kind is EntryKind.HARDLINK:
        mode = tree[member.entry.link_target or ""].entry.mode
    target.chmod(mode & 0o777)
    return target


def reanalyze(apk: Path) -> Analysis:
    return analyze_apk(apk)


# --------------------------------------------------------------------------- the fixture mutants


@dataclass(frozen=True)
class Mutated:
    good: Path
    analysis: Analysis
    tree: dict[str, Member]
    written: tuple[tuple[MutantSpec, Path], ...]

    def only(self, operator: str) -> list[tuple[MutantSpec, Path]]:
        found = [(spec, path) for spec, path in self.written if spec.operator == operator]
        assert found, f"no {operator} mutant of {self.analysis.package.name}"
        return found


@pytest.fixture(scope="module")
def mutated(fixture_repo: RepositoryBuild, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Mutated]:
    """Every fixture package mutated with every operator (default cap)."""
    root = tmp_path_factory.mktemp("mutants")
    result: dict[str, Mutated] = {}
    for name in FIXTURE_PACKAGES:
        good = fixture_repo.package(name).path
        written = write_mutants(good, root / name)
        result[name] = Mutated(good, analyze_apk(good), read_tree(good), written)
    return result


@pytest.mark.parametrize("name", FIXTURE_PACKAGES)
def test_operators_apply_where_they_make_sense(mutated: dict[str, Mutated], name: str) -> None:
    assert {spec.operator for spec, _path in mutated[name].written} == EXPECTED_OPERATORS[name]


@pytest.mark.parametrize("name", FIXTURE_PACKAGES)
def test_every_mutant_is_a_valid_apk_with_the_good_pkginfo(mutated: dict[str, Mutated], name: str) -> None:
    package = mutated[name]
    good_info = package.analysis.package
    for spec, path in package.written:
        with ApkArchive.open(path) as archive:
            files = [m.entry for m in archive.members()]
            assert archive.check.datahash_verified, spec.key
            assert not archive.signatures, "a mutant must not carry the good package's signature"
            info = archive.info
        assert dataclasses.replace(info, size=0, datahash="") == dataclasses.replace(good_info, size=0, datahash="")
        assert info.datahash != good_info.datahash, f"{spec.key} changed nothing"
        assert info.size == sum(e.size for e in files if e.kind is EntryKind.FILE)


@pytest.mark.parametrize("name", FIXTURE_PACKAGES)
def test_each_mutant_changes_exactly_its_target(mutated: dict[str, Mutated], name: str) -> None:
    package = mutated[name]
    for spec, path in package.written:
        assert changed_paths(package.tree, read_tree(path)) == intended_paths(spec, package.analysis), spec.key


def test_manifest_lists_the_specs_and_files(mutated: dict[str, Mutated]) -> None:
    package = mutated["libgreet"]
    out_dir = package.written[0][1].parent
    manifest = load_mutants(out_dir)
    assert (manifest.package, manifest.version, manifest.source) == (
        "libgreet",
        package.analysis.package.version,
        package.good.name,
    )
    assert manifest.source_sha256 == hashlib.sha256(package.good.read_bytes()).hexdigest()
    assert [(m.spec, out_dir / m.file) for m in manifest.mutants] == list(package.written)
    for mutant in manifest.mutants:
        assert mutant.key == mutant.spec.key
        assert hashlib.sha256((out_dir / mutant.file).read_bytes()).hexdigest() == mutant.sha256
    assert sorted(p.name for p in out_dir.iterdir()) == sorted([MANIFEST_NAME, *(m.file for m in manifest.mutants)])


# --------------------------------------------------------------------------- programs


def test_exit_scripts_exit_as_described(mutated: dict[str, Mutated], tmp_path: Path) -> None:
    expected = {"exec-exit-1": 1, "exec-exit-0-silent": 0, "daemon-exits": 0}
    seen: set[str] = set()
    for name in ("hello", "tinyd", "shtools", "py3-pyfoo", "busybox"):
        for spec, path in mutated[name].written:
            if spec.operator not in expected:
                continue
            seen.add(spec.operator)
            tree = read_tree(path)
            script = extract(tree, spec.target, tmp_path, f"{name}-{spec.operator}")
            assert content(tree, spec.target).startswith(b"#!/bin/sh\n")
            assert os.access(script, os.X_OK)
            run = subprocess.run([script, "--version"], capture_output=True, check=False, timeout=10)
            assert (run.returncode, run.stdout, run.stderr) == (expected[spec.operator], b"", b""), spec.key
            again = {e.path: e for e in reanalyze(path).facts.executables}[spec.target]
            assert (again.elf, again.interpreter) == (False, "/bin/sh")
    assert seen == set(expected)


def test_script_stand_ins_never_replace_the_shell(mutated: dict[str, Mutated]) -> None:
    targets = {spec.target for spec, _ in mutated["busybox"].written if spec.operator.startswith("exec-exit")}
    assert targets, "busybox's applets are programs too"
    assert not targets & {"bin/sh", "usr/bin/busybox"}
    # Deleting the shell or its binary is a real breakage all the same.
    deleted = [spec.target for spec, _ in mutated["busybox"].written if spec.operator == "delete-executable"]
    assert deleted[0] == "usr/bin/busybox", "the program named after the package comes first"


def test_truncated_elf_is_the_first_half(mutated: dict[str, Mutated], tmp_path: Path) -> None:
    package = mutated["hello"]
    [(spec, path)] = package.only("truncate-elf")
    good = content(package.tree, spec.target)
    tree = read_tree(path)
    assert content(tree, spec.target) == good[: len(good) // 2]
    program = extract(tree, spec.target, tmp_path)
    try:
        run = subprocess.run([program, "--version"], capture_output=True, check=False, timeout=10)
    except OSError:
        return  # the kernel refused it outright: broken as promised
    # The headers survive, the mapped segments do not: it dies on a signal, printing nothing.
    assert run.returncode < 0
    assert run.stdout == b""


def test_not_executable_loses_every_execute_bit(mutated: dict[str, Mutated]) -> None:
    package = mutated["shtools"]
    [(spec, path)] = package.only("exec-not-executable")
    entry = read_tree(path)[spec.target].entry
    assert entry.mode == package.tree[spec.target].entry.mode & ~0o111
    assert spec.target not in {e.path for e in reanalyze(path).facts.executables}


def test_broken_shebang_names_a_missing_interpreter(mutated: dict[str, Mutated], tmp_path: Path) -> None:
    package = mutated["shtools"]
    [(spec, path)] = package.only("break-shebang")
    good_lines = content(package.tree, spec.target).split(b"\n")
    bad_lines = content(read_tree(path), spec.target).split(b"\n")
    assert bad_lines[0] == b"#!/qackage-missing" + good_lines[0][2:].lstrip()
    assert bad_lines[1:] == good_lines[1:]
    script = extract(read_tree(path), spec.target, tmp_path)
    with pytest.raises(FileNotFoundError):
        subprocess.run([script], capture_output=True, check=False, timeout=10)
    [again] = [s for s in reanalyze(path).facts.scripts if s.path == spec.target]
    assert again.interpreter == "/qackage-missing/bin/sh"


# --------------------------------------------------------------------------- look-alike programs


def _shells() -> list[list[str]]:
    """The host's /bin/sh and busybox's sh (what Wolfi runs scripts with), when present."""
    shells = [["/bin/sh"]]
    busybox = shutil.which("busybox")
    if busybox is not None:
        shells.append([busybox, "sh"])
    return shells


def _answer(shell: list[str], script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*shell, script, *args], capture_output=True, text=True, check=False, timeout=10)


def test_version_only_answers_like_the_real_program(mutated: dict[str, Mutated], tmp_path: Path) -> None:
    hello = mutated["hello"]
    [(spec, path)] = hello.only("exec-version-only")
    tree = read_tree(path)
    script = extract(tree, spec.target, tmp_path, "version-only")
    assert content(tree, spec.target).startswith(b"#!/bin/sh\n")
    assert os.access(script, os.X_OK)
    real = _install_hello(tmp_path / "real", hello.tree, mutated["libgreet"].tree)
    banner = _run_hello(real, "--version")
    assert (banner.returncode, banner.stdout) == (0, "hello 2.12.1\n")
    for shell in _shells():
        for request in ("--version", "-V", "version"):
            run = _answer(shell, script, request)
            assert (run.returncode, run.stdout, run.stderr) == (0, banner.stdout, ""), (shell, request)
        for request in ("--help", "-h", "help"):
            run = _answer(shell, script, request)
            assert run.returncode == 0
            assert run.stdout.startswith("Usage: hello ")
            assert "--version" in run.stdout
        # Real use fails, saying nothing: hello itself greets and upper-cases.
        assert _run_hello(real, "greet", "world").stdout == "Hello, world!\n"
        for use in (("greet", "world"), (), ("upper",), ("--shout", "greet", "x")):
            run = _answer(shell, script, *use)
            assert (run.returncode, run.stdout, run.stderr) == (1, "", ""), (shell, use)
    # The analysis sees what a reviewer would: a shell script where the program was.
    again = {e.path: e for e in reanalyze(path).facts.executables}[spec.target]
    assert (again.elf, again.interpreter) == (False, "/bin/sh")


def test_version_only_banner_follows_each_package(mutated: dict[str, Mutated], tmp_path: Path) -> None:
    for name in ("tinyd", "shtools", "py3-pyfoo", "busybox"):
        package = mutated[name]
        version = upstream_version(package.analysis.package.version)
        assert "-r" not in version
        for spec, path in package.only("exec-version-only"):
            program = posixpath.basename(spec.target)
            script = extract(read_tree(path), spec.target, tmp_path, f"{name}-{program}")
            run = _answer(["/bin/sh"], script, "--version")
            assert (run.returncode, run.stdout) == (0, f"{program} {version}\n"), spec.key
            assert _answer(["/bin/sh"], script, "anything").returncode == 1


@pytest.mark.parametrize(
    "args",
    [
        *([word] for word in sorted(VERSION_WORDS | HELP_WORDS)),
        ["--version", "--verbose"],
        ["-h", "--all"],
        ["--help", "--version"],
        ["version", "--client"],
        ["greet", "--version"],
        ["-h", "127.0.0.1"],
        ["--verbose"],
        [],
    ],
)
def test_version_only_answers_what_the_classifier_calls_a_version_or_help_request(
    mutated: dict[str, Mutated], tmp_path: Path, args: list[str]
) -> None:
    """A stanza the classifier calls superficial is one this mutant survives, and back."""
    assert set(VERSION_REQUESTS) == VERSION_WORDS
    assert set(HELP_REQUESTS) == HELP_WORDS
    [(spec, path)] = mutated["hello"].only("exec-version-only")
    script = extract(read_tree(path), spec.target, tmp_path)
    run = _answer(["/bin/sh"], script, *args)
    answered = {0: "version" if run.stdout.startswith("hello ") else "help", 1: "fails"}[run.returncode]
    expected = {CheckKind.VERSION: "version", CheckKind.HELP: "help"}.get(script_kind(shlex.join(["hello", *args])))
    assert answered == (expected or "fails")


def test_garbled_program_keeps_the_real_one_aside(mutated: dict[str, Mutated]) -> None:
    package = mutated["hello"]
    [(spec, path)] = package.only("exec-output-garbled")
    assert spec.target == "usr/bin/hello"
    tree = read_tree(path)
    moved = "usr/bin.qackage-real/hello"
    assert real_path(spec.target) == moved
    assert content(tree, moved) == content(package.tree, spec.target)
    assert tree[moved].entry.mode == package.tree[spec.target].entry.mode
    assert tree["usr/bin.qackage-real"].entry.kind is EntryKind.DIR
    script = content(tree, spec.target)
    assert script.startswith(b"#!/bin/sh\n")
    assert b"real=/usr/bin.qackage-real/hello\n" in script
    # The program moved off PATH, to the same depth: still the same ELF file, needing the same libraries.
    again = reanalyze(path).facts
    [good_elf] = [f for f in package.analysis.facts.elf_files if f.path == spec.target]
    [moved_elf] = [f for f in again.elf_files if f.path == moved]
    assert dataclasses.replace(moved_elf, path=spec.target) == good_elf
    assert moved not in {e.path for e in again.executables if e.on_path}
    assert {e.path: e for e in again.executables}[spec.target].interpreter == "/bin/sh"


GARBLE_CHECKS = """\
test:
  pipeline:
    - name: Version and help reach the real program
      runs: |
        test "$(hello --version)" = "hello 2.12.1"
        hello --help | grep -q 'greet \\[--shout\\] NAME'
    - name: Only standard output is garbled
      runs: |
        test "$(hello greet world)" = "Uryyb, jbeyq!"
        test "$(printf 'ab 12\\n' | hello upper)" = "NO 67"
        status=0
        hello greet 2>err.txt || status=$?
        test "$status" -eq 2
        grep -q "greet needs at least one NAME" err.txt
        status=0
        out=$(hello frobnicate 2>&1) || status=$?
        test "$status" -ne 0
"""


def test_garbled_program_runs_with_its_output_rotated(
    fixture_repo: RepositoryBuild, mutated: dict[str, Mutated], tmp_path: Path
) -> None:
    """In the sandbox, as a test stanza sees it: arguments, input, error output and exit
    status reach the caller unchanged; only what it prints is rotated."""
    [(_spec, path)] = mutated["hello"].only("exec-output-garbled")
    stanza = tmp_path / "garbled.yaml"
    stanza.write_text(GARBLE_CHECKS, encoding="utf-8")
    request = ValidateRequest(
        package=path,
        test_file=stanza,
        repositories=(str(fixture_repo.root),),
        keyring=fixture_repo.keyring,
        append_packages=("wolfi-base",),
        cache_dir=tmp_path / "cache",
    )
    report = validate(request, sandbox=Bubblewrap())
    assert report.passed, [(s.title, s.status, s.stdout_tail, s.stderr_tail) for s in report.steps]
    assert [s.title for s in report.steps] == [
        "Version and help reach the real program",
        "Only standard output is garbled",
    ]


def test_lookalikes_choose_their_programs(tmp_path: Path) -> None:
    files = [
        text_file("usr/bin/plain", "#!/bin/sh\necho plain\n", 0o755),
        text_file("usr/bin/tr", "#!/bin/sh\necho tr\n", 0o755),  # the garbling filter itself
        text_file("usr/bin/multi", "#!/bin/sh\necho multi\n", 0o755),
        dataclasses.replace(hardlink("usr/bin/multi-alias", "usr/bin/multi"), mode=0o755),
        text_file("usr/bin/named", "#!/bin/sh\necho named\n", 0o755),
        symlink("usr/bin/nickname", "named"),  # may act on the name it is called by
        text_file("usr/libexec/picky/helper", "#!/bin/sh\necho helper\n", 0o755),  # not on PATH
        text_file("usr/sbin/tool", "#!/bin/sh\necho tool\n", 0o755),
        text_file("usr/sbin.qackage-real/old/notes", "taken\n"),  # where tool's original would go
    ]
    apk = tmp_path / "picky-1.0-r3.apk"
    write_apk(apk, package_info("picky"), files)
    analysis = analyze_apk(apk)
    specs = applicable_mutants(analysis, operators=sorted(LOOKALIKES), per_operator=50)
    on_path = {e.path for e in analysis.facts.executables if e.on_path}
    assert "usr/libexec/picky/helper" not in on_path
    assert {s.target for s in specs if s.operator == "exec-version-only"} == on_path
    assert [s.target for s in specs if s.operator == "exec-output-garbled"] == ["usr/bin/plain"]
    with pytest.raises(InputError, match="does not apply"):
        build_mutant(apk, MutantSpec("exec-output-garbled", "usr/bin/multi", ""), tmp_path / "never.apk")


def test_only_a_file_with_one_name_can_move(tmp_path: Path) -> None:
    files = [
        text_file("usr/bin/multi", "#!/bin/sh\necho multi\n", 0o755),
        dataclasses.replace(hardlink("usr/bin/multi-alias", "usr/bin/multi"), mode=0o755),
    ]
    apk = tmp_path / "multi-1.0-r0.apk"
    write_apk(apk, package_info("multi"), files)
    edit = Edit((Relocate("usr/bin/multi", "usr/bin.moved/multi", b"#!/bin/sh\n", 0o755),))
    out = tmp_path / "mutant.apk"
    with pytest.raises(ValueError, match="only a file with one name can move"):
        write_mutant(apk, analyze_apk(apk).entries, edit, out)
    assert not out.exists()


# --------------------------------------------------------------------------- libraries


def _install_hello(folder: Path, hello: dict[str, Member], libgreet: dict[str, Member]) -> Path:
    folder.mkdir()
    extract(hello, "usr/bin/hello", folder)
    for path, member in libgreet.items():
        if member.entry.kind is EntryKind.SYMLINK:
            (folder / path.rsplit("/", 1)[-1]).symlink_to(member.entry.link_target or "")
        elif member.entry.kind is EntryKind.FILE:
            extract(libgreet, path, folder)
    return folder


def _run_hello(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": str(folder)}
    return subprocess.run(
        [folder / "hello", *args], capture_output=True, text=True, check=False, env=environment, timeout=10
    )


def test_strip_export_hides_exactly_one_function(mutated: dict[str, Mutated], tmp_path: Path) -> None:
    package = mutated["libgreet"]
    exported = set(next(f for f in package.analysis.facts.elf_files if f.is_library).exported_functions)
    stripped = package.only("strip-export")
    assert len(stripped) == 3, "one library: its three most likely called functions"
    for index, (spec, path) in enumerate(stripped):
        library_path, symbol = spec.target.rsplit(":", 1)
        library = extract(read_tree(path), library_path, tmp_path, f"mutant-{index}.so")
        loaded = ctypes.CDLL(str(library))
        with pytest.raises(AttributeError):
            getattr(loaded, symbol)
        for other in exported - {symbol}:
            getattr(loaded, other)
        [elf] = [f for f in reanalyze(path).facts.elf_files if f.path == library_path]
        [renamed] = set(elf.exported_functions) - exported
        assert set(elf.exported_functions) == exported - {symbol} | {renamed}
        assert renamed != symbol
        assert renamed.lower() == symbol.lower(), "same length, one letter's case flipped"
        assert elf.soname == "libgreet.so.1"


def test_a_program_calling_a_stripped_function_fails(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    libgreet = fixture_repo.package("libgreet").path
    hello = read_tree(fixture_repo.package("hello").path)
    spec = MutantSpec("strip-export", "usr/lib/libgreet.so.1.0.0:greet_shout", "greet_shout hidden")
    mutant = build_mutant(libgreet, spec, tmp_path / "stripped.apk")
    good = _install_hello(tmp_path / "good", hello, read_tree(libgreet))
    bad = _install_hello(tmp_path / "bad", hello, read_tree(mutant))
    assert _run_hello(good, "greet", "--shout", "wolfi").stdout == "HELLO, WOLFI!\n"
    assert _run_hello(bad, "greet", "wolfi").stdout == "Hello, wolfi!\n", "other functions still resolve"
    shouted = _run_hello(bad, "greet", "--shout", "wolfi")
    assert shouted.returncode != 0
    assert "greet_shout" in shouted.stderr


def test_deleted_soname_leaves_its_links_dangling(mutated: dict[str, Mutated]) -> None:
    [(spec, path)] = mutated["libgreet"].only("delete-soname")
    assert spec.target == "libgreet.so.1"
    again = reanalyze(path)
    assert not [lib for lib in again.facts.shared_libraries if lib.soname == spec.target]
    assert {(s.path, s.dangling) for s in again.facts.symlinks} == {("usr/lib/libgreet.so.1", True)}


def test_dangling_symlink_points_nowhere(mutated: dict[str, Mutated]) -> None:
    [(spec, path)] = mutated["libgreet"].only("dangle-symlink")
    [link] = [s for s in reanalyze(path).facts.symlinks if s.path == spec.target]
    assert (link.target, link.dangling) == ("libgreet.so.1.0.0.qackage-missing", True)
    # Absolute targets stay absolute (and inside the root).
    busybox = {s: p for s, p in mutated["busybox"].written if s.operator == "dangle-symlink"}
    [sh] = [p for s, p in busybox.items() if s.target == "bin/sh"]
    assert read_tree(sh)["bin/sh"].entry.link_target == "/usr/bin/busybox.qackage-missing"


def test_truncated_static_library_is_no_archive(mutated: dict[str, Mutated], tmp_path: Path) -> None:
    package = mutated["hello-static"]
    [(spec, path)] = package.only("truncate-static-lib")
    good = extract(package.tree, spec.target, tmp_path, "good.a")
    bad = extract(read_tree(path), spec.target, tmp_path, "bad.a")
    # `ar p` reads every member's body, which the cut removed.
    assert subprocess.run(["ar", "p", good], capture_output=True, check=False).returncode == 0
    broken = subprocess.run(["ar", "p", bad], capture_output=True, text=True, check=False)
    assert broken.returncode != 0
    assert "not a valid archive" in broken.stderr


# --------------------------------------------------------------------------- build files


def test_broken_pc_file_names_a_missing_library(mutated: dict[str, Mutated]) -> None:
    package = mutated["hello-dev"]
    [(_spec, path)] = package.only("break-pc-libs")
    [good_pc] = package.analysis.facts.pkgconfig
    [bad_pc] = reanalyze(path).facts.pkgconfig
    assert bad_pc.link_libraries == (*good_pc.link_libraries, "qackage_missing_1")
    assert bad_pc.libs == good_pc.libs + " -lqackage_missing_1"
    assert dataclasses.replace(bad_pc, libs="", link_libraries=()) == dataclasses.replace(
        good_pc, libs="", link_libraries=()
    )


def test_deleted_header_is_still_included(mutated: dict[str, Mutated]) -> None:
    [(spec, path)] = mutated["hello-dev"].only("delete-included-header")
    assert spec.target == "usr/include/greet/version.h"
    headers = {h.include_name: h for h in reanalyze(path).facts.headers}
    assert "greet/version.h" not in headers
    assert "greet/version.h" in headers["greet/greet.h"].includes


# --------------------------------------------------------------------------- files


def test_corrupt_man_page_does_not_decompress(mutated: dict[str, Mutated]) -> None:
    package = mutated["hello-doc"]
    [(spec, path)] = package.only("corrupt-man-page")
    gzip.decompress(content(package.tree, spec.target))
    with pytest.raises((EOFError, zlib.error, OSError)):
        gzip.decompress(content(read_tree(path), spec.target))


def test_python_package_without_init_is_a_namespace(mutated: dict[str, Mutated]) -> None:
    [(spec, path)] = mutated["py3-pyfoo"].only("delete-python-init")
    assert spec.target == "pyfoo"
    [module] = [m for m in reanalyze(path).facts.python_modules if m.name == "pyfoo"]
    assert module.kind is PythonModuleKind.NAMESPACE


def test_empty_package_has_no_members(mutated: dict[str, Mutated]) -> None:
    [(spec, path)] = mutated["tinyd"].only("empty-package")
    assert spec.target == "tinyd"
    assert reanalyze(path).entries == ()


# --------------------------------------------------------------------------- synthetic packages

GEM_ROOT = "usr/lib/ruby/gems/3.4.0"
GEMSPEC = """\
# stub: toolbox 1.0 ruby lib
Gem::Specification.new do |s|
  s.name = "toolbox".freeze
  s.version = "1.0".freeze
  s.require_paths = ["lib".freeze]
end
"""


def _toolbox_files() -> list[PlannedFile]:
    return [
        text_file("usr/bin/toolbox", "#!/bin/sh\nexec cat /usr/share/toolbox/words.txt\n", 0o755),
        text_file("usr/share/toolbox/words.txt", "alpha\nbeta\n"),
        text_file("usr/share/toolbox/unused.txt", "nobody reads me\n"),
        text_file("usr/lib/python3.12/site-packages/tbx.py", "VALUE = 1\n"),
        text_file("usr/share/perl5/vendor_perl/Tool/Box.pm", "package Tool::Box;\n1;\n"),
        text_file(f"{GEM_ROOT}/specifications/toolbox-1.0.gemspec", GEMSPEC),
        text_file(f"{GEM_ROOT}/gems/toolbox-1.0/lib/toolbox.rb", "module Toolbox; end\n"),
        text_file("usr/share/man/man1/toolbox.1", ".TH TOOLBOX 1\n.SH NAME\ntoolbox\n"),
    ]


@pytest.fixture(scope="module")
def toolbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("toolbox")
    apk = folder / "toolbox-1.0-r0.apk"
    write_apk(apk, package_info("toolbox"), _toolbox_files(), scripts={".post-install": b"#!/bin/sh\ntrue\n"})
    return apk


def test_language_and_data_operators_on_a_mixed_package(toolbox: Path, tmp_path: Path) -> None:
    written = write_mutants(toolbox, tmp_path / "out")
    targets = {spec.key for spec, _path in written}
    assert {
        "drop-data-file:usr/share/toolbox/words.txt",
        "delete-python-module:tbx",
        "delete-perl-module:Tool::Box",
        f"delete-gem-file:{GEM_ROOT}/gems/toolbox-1.0/lib/toolbox.rb",
        "corrupt-man-page:usr/share/man/man1/toolbox.1",
    } <= targets
    assert "drop-data-file:usr/share/toolbox/unused.txt" not in targets, "nothing names it"
    good = read_tree(toolbox)
    analysis = analyze_apk(toolbox)
    for spec, path in written:
        bad = read_tree(path)
        assert changed_paths(good, bad) == intended_paths(spec, analysis), spec.key
        # Install scripts travel with every mutant.
        assert read_control_scripts(path) == ((".post-install", b"#!/bin/sh\ntrue\n"),)
    [(man, man_path)] = [(s, p) for s, p in written if s.operator == "corrupt-man-page"]
    assert content(read_tree(man_path), man.target) == b""
    [data] = [s for s, _ in written if s.operator == "drop-data-file"]
    assert data.description == "usr/share/toolbox/words.txt deleted (named by usr/bin/toolbox)"


def test_data_paths_compiled_into_a_program_are_references(tmp_path: Path) -> None:
    source = tmp_path / "greeter.c"
    source.write_text(
        '#include <stdio.h>\nint main(void) { FILE *f = fopen("/usr/share/greeter/greeting.txt", "r");'
        " return f == NULL; }\n"
    )
    binary = tmp_path / "greeter"
    subprocess.run(["gcc", "-O2", "-o", binary, source], check=True, capture_output=True)
    apk = tmp_path / "greeter-1.0-r0.apk"
    files = [
        PlannedFile("usr/bin/greeter", mode=0o755, source=binary),
        text_file("usr/share/greeter/greeting.txt", "hi\n"),
        text_file("usr/share/greeter/other.txt", "unused\n"),
    ]
    write_apk(apk, package_info("greeter"), files)
    analysis = analyze_apk(apk)
    references = find_references(apk, analysis)
    assert references.named_by == (("usr/share/greeter/greeting.txt", ("usr/bin/greeter",)),)
    # What the chosen operators need: only drop-data-file reads the package for references.
    assert data_references(apk, analysis) == references
    assert data_references(apk, analysis, operators=["drop-data-file", "exec-exit-1"]) == references
    assert data_references(apk, analysis, operators=["exec-exit-1"]) == DataReferences()
    specs = applicable_mutants(analysis, operators=["drop-data-file"], references=references)
    assert [s.target for s in specs] == ["usr/share/greeter/greeting.txt"]
    # Without the references, the pure listing cannot know and offers nothing.
    assert applicable_mutants(analysis, operators=["drop-data-file"]) == ()
    # A caller that already holds the analysis and references gets the same mutant.
    [spec] = specs
    alone = build_mutant(apk, spec, tmp_path / "alone.apk")
    given = build_mutant(apk, spec, tmp_path / "given.apk", analysis=analysis, references=references)
    assert alone.read_bytes() == given.read_bytes()
    assert "usr/share/greeter/greeting.txt" not in read_tree(given)


@pytest.mark.parametrize("cut", [1, 7, 20, 35])
def test_path_scanner_finds_paths_split_across_chunks(cut: int) -> None:
    text = b"\x00\x01prefix /usr/share/a/b.dat\x00 then /etc/foo.conf; and /usrx/no"
    scanner = PathScanner(path_pattern(["usr/share/a/b.dat", "etc/foo.conf"]))
    scanner.feed(text[:cut])
    scanner.feed(text[cut:])
    assert scanner.paths() == {"usr/share/a/b.dat", "etc/foo.conf"}


def test_path_scanner_keeps_only_a_bounded_tail() -> None:
    scanner = PathScanner(path_pattern(["usr/x"]))
    for _ in range(64):
        scanner.feed(b"z" * 65536)
    scanner.feed(b"\n/usr/x\n")
    assert scanner.paths() == {"usr/x"}
    assert len(scanner._tail) <= MAX_REFERENCE


def test_hardlinks_keep_their_content_when_the_file_they_share_changes(tmp_path: Path) -> None:
    files = [
        text_file("usr/bin/multi", "#!/bin/sh\necho multi\n", 0o755),
        # tar records a hardlink with its file's mode, as melange writes them.
        dataclasses.replace(hardlink("usr/bin/first-alias", "usr/bin/multi"), mode=0o755),
        dataclasses.replace(hardlink("usr/bin/second-alias", "usr/bin/multi"), mode=0o755),
    ]
    apk = tmp_path / "multi-1.0-r0.apk"
    write_apk(apk, package_info("multi"), files)
    good = read_tree(apk)
    deleted = build_mutant(apk, MutantSpec("delete-executable", "usr/bin/multi", ""), tmp_path / "deleted.apk")
    tree = read_tree(deleted)
    assert "usr/bin/multi" not in tree
    assert tree["usr/bin/first-alias"].entry.kind is EntryKind.FILE
    assert tree["usr/bin/first-alias"].entry.mode == 0o755
    assert tree["usr/bin/second-alias"].entry.link_target == "usr/bin/first-alias"
    assert content(tree, "usr/bin/second-alias") == content(good, "usr/bin/multi")
    # A change to one of the names leaves the others sharing the original.
    failing = build_mutant(apk, MutantSpec("exec-exit-1", "usr/bin/first-alias", ""), tmp_path / "failing.apk")
    tree = read_tree(failing)
    assert content(tree, "usr/bin/first-alias").startswith(b"#!/bin/sh\n# qackage mutant")
    assert content(tree, "usr/bin/multi") == content(good, "usr/bin/multi")
    assert tree["usr/bin/second-alias"].entry.link_target == "usr/bin/multi"
    assert changed_paths(good, tree) == {"usr/bin/first-alias"}
    chmodded = build_mutant(apk, MutantSpec("exec-not-executable", "usr/bin/second-alias", ""), tmp_path / "chmod.apk")
    assert changed_paths(good, read_tree(chmodded)) == {"usr/bin/second-alias"}


def test_signed_input_gives_unsigned_mutants(tmp_path: Path) -> None:
    apk = tmp_path / "signed-1.0-r0.apk"
    write_apk(apk, package_info("signed"), _toolbox_files()[:1], signing_key=SigningKey.generate("t.rsa.pub", 1024))
    with ApkArchive.open(apk) as archive:
        assert archive.signatures
    [(_spec, path)] = write_mutants(apk, tmp_path / "out", operators=["delete-executable"])
    with ApkArchive.open(path) as archive:
        assert not archive.signatures
        assert archive.info.name == "signed"


# --------------------------------------------------------------------------- the pure API


def test_applicable_mutants_is_deterministic_and_capped(mutated: dict[str, Mutated]) -> None:
    analysis = mutated["busybox"].analysis
    first = applicable_mutants(analysis)
    assert first == applicable_mutants(analysis)
    counts = {operator: sum(1 for s in first if s.operator == operator) for operator in OPERATORS}
    assert max(counts.values()) == 3
    assert len({s.key for s in first}) == len(first)
    one = applicable_mutants(analysis, per_operator=1)
    firsts: dict[str, MutantSpec] = {}
    for spec in first:
        firsts.setdefault(spec.operator, spec)
    assert one == tuple(firsts.values()), "the cap keeps the most important target of each operator"
    chosen = applicable_mutants(analysis, operators=["exec-exit-1", "delete-executable"])
    assert [s.operator for s in chosen] == ["delete-executable"] * 3 + ["exec-exit-1"] * 3, "registry order"


def test_specs_follow_the_registry_order(mutated: dict[str, Mutated]) -> None:
    order = list(OPERATORS)
    for package in mutated.values():
        positions = [order.index(spec.operator) for spec, _ in package.written]
        assert positions == sorted(positions)


def test_unknown_operator_is_an_input_error(mutated: dict[str, Mutated]) -> None:
    with pytest.raises(InputError, match="unknown mutation operator no-such-thing"):
        applicable_mutants(mutated["hello"].analysis, operators=["no-such-thing"])


def test_a_spec_that_does_not_apply_writes_nothing(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    out = tmp_path / "never.apk"
    with pytest.raises(InputError, match="does not apply"):
        build_mutant(fixture_repo.package("hello-doc").path, MutantSpec("exec-exit-1", "usr/bin/hello", ""), out)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_mutants_are_byte_identical_across_runs(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    for name in ("libgreet", "hello-dev", "py3-pyfoo"):
        good = fixture_repo.package(name).path
        first = write_mutants(good, tmp_path / f"{name}-1")
        second = write_mutants(good, tmp_path / f"{name}-2")
        assert [s for s, _ in first] == [s for s, _ in second]
        for (_, one), (_, two) in zip(first, second, strict=True):
            assert one.read_bytes() == two.read_bytes(), one.name
        assert (tmp_path / f"{name}-1" / MANIFEST_NAME).read_text() == (
            tmp_path / f"{name}-2" / MANIFEST_NAME
        ).read_text()


def test_mutants_stream_instead_of_holding_the_package(tmp_path: Path) -> None:
    """A 48 MiB file passes through without the package ever being held in memory."""
    line = b"qackage streams every member of a package through a bounded buffer %08d\n"
    big = tmp_path / "big.dat"
    with big.open("wb") as handle:
        for number in range(48 * 1024 * 1024 // len(line % 0)):
            handle.write(line % number)
    apk = tmp_path / "bulky-1.0-r0.apk"
    files = [
        text_file("usr/bin/bulky", "#!/bin/sh\necho bulky\n", 0o755),
        PlannedFile("usr/share/bulky/big.dat", source=big),
    ]
    write_apk(apk, package_info("bulky"), files)
    spec = MutantSpec("exec-exit-1", "usr/bin/bulky", "")
    tracemalloc.start()
    try:
        build_mutant(apk, spec, tmp_path / "mutant.apk")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 24 * 1024 * 1024, f"peak {peak >> 20} MiB for a {big.stat().st_size >> 20} MiB file"
    tree_sizes = {}
    with ApkArchive.open(tmp_path / "mutant.apk") as archive:
        for member in archive.members():
            digest = hashlib.sha256()
            for chunk in member.chunks():
                digest.update(chunk)
            tree_sizes[member.entry.path] = (member.entry.size, digest.hexdigest())
    assert tree_sizes["usr/share/bulky/big.dat"] == (big.stat().st_size, hashlib.sha256(big.read_bytes()).hexdigest())


def test_mutants_analyze_like_any_package(mutated: dict[str, Mutated]) -> None:
    """The analysis engine reads a mutant through the same streaming source as any .apk."""
    [(_spec, path)] = mutated["hello"].only("exec-exit-1")
    with ApkArchive.open(path) as archive:
        analysis = analyze_source(archive)
    assert analysis.check.datahash_verified
    assert analysis.package == dataclasses.replace(
        mutated["hello"].analysis.package, size=analysis.package.size, datahash=analysis.package.datahash
    )
