"""The fixture builder: recipes, substitution, generated dependencies, repositories, caching
and failures, on small scenarios written by each test."""

from __future__ import annotations

import argparse
import shutil
import textwrap
import time
from pathlib import Path

import pytest

from qackage.apk.archive import ApkArchive
from qackage.apk.index import read_index_file
from qackage.apk.signature import Keyring
from qackage.apk.writer import SigningKey
from qackage.build import build_repository, build_scenario, host_arch
from qackage.build.autodeps import (
    Generated,
    generate,
    merge,
    parse_pkgconfig,
    pkgconfig_modules,
    soname_version,
)
from qackage.build.recipe import PackageOptions, parse_recipe
from qackage.build.substitute import substitute
from qackage.build.tree import ElfFacts, PackageTree, TreeEntry
from qackage.cli import build_cmd
from qackage.errors import InputError
from qackage.model import Entry, EntryKind

# --------------------------------------------------------------------------- helpers


def scenario(root: Path, name: str, recipe: str, files: dict[str, str] | None = None) -> Path:
    folder = root / "scenarios" / name
    folder.mkdir(parents=True)
    (folder / "melange.yaml").write_text(textwrap.dedent(recipe))
    for path, text in (files or {}).items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return folder


def read_apk(path: Path, keyring: Path) -> tuple[dict[str, str], dict[str, Entry], dict[str, bytes]]:
    """(.PKGINFO as atoms, entries by path, file contents) of a signed, verified package."""
    with ApkArchive.open(path, keyring=Keyring.load(keyring)) as apk:
        entries: dict[str, Entry] = {}
        contents: dict[str, bytes] = {}
        for member in apk.members():
            entries[member.entry.path] = member.entry
            if member.entry.kind is EntryKind.FILE:
                contents[member.entry.path] = b"".join(member.chunks())
        assert apk.check.datahash_verified
        assert apk.check.signed_by is not None
        info = {
            "depends": " ".join(str(d) for d in apk.info.depends),
            "provides": " ".join(str(p) for p in apk.info.provides),
            "origin": apk.info.origin,
            "version": apk.info.version,
            "license": apk.info.license,
            "description": apk.info.description,
            "arch": apk.info.arch,
        }
    return info, entries, contents


def tree(name: str, *entries: TreeEntry) -> PackageTree:
    return PackageTree(name, entries)


def elf_file(path: str, **facts: object) -> TreeEntry:
    return TreeEntry(path, EntryKind.FILE, 0o755, elf=ElfFacts(arch="x86_64", **facts))  # type: ignore[arg-type]


SHELL_RECIPE = """\
package:
  name: demo
  version: "1.4.0"
  epoch: 3
  description: Demo tools
  copyright:
    - license: MIT
    - license: Apache-2.0
  dependencies:
    runtime:
      - busybox
vars:
  greeting: hi from ${{package.version}}
pipeline:
  - name: Install
    runs: |
      mkdir -p "${{targets.destdir}}"/usr/bin "${{targets.destdir}}"/usr/share/demo "${{targets.destdir}}"/var/empty
      printf '#!/usr/bin/env bash\\necho "%s"\\n' "${{vars.greeting}}" > "${{targets.destdir}}"/usr/bin/demo
      chmod 755 "${{targets.destdir}}"/usr/bin/demo
      printf 'secret\\n' > "${{targets.destdir}}"/usr/share/demo/token
      chmod 600 "${{targets.destdir}}"/usr/share/demo/token
      ln -s ./demo "${{targets.destdir}}"/usr/bin/demo-alias
      ln -s /usr/bin/demo "${{targets.destdir}}"/usr/share/demo/absolute
      ln "${{targets.destdir}}"/usr/bin/demo "${{targets.destdir}}"/usr/bin/demo-hard
  - name: Data
    working-directory: data
    environment:
      STAMP: from-env
    runs: |
      pwd | grep -q '/data$'
      echo "$STAMP" > "${{targets.destdir}}"/usr/share/demo/stamp
subpackages:
  - name: ${{package.name}}-dev
    description: Demo pkg-config data for ${{package.name}}
    pipeline:
      - runs: |
          mkdir -p "${{targets.subpkgdir}}"/usr/lib/pkgconfig
          cp pc/demo.pc pc/demo-extra.pc "${{targets.subpkgdir}}"/usr/lib/pkgconfig/
          test "${{context.name}}" = "${{subpkg.name}}"
  - name: ${{package.name}}-empty
    description: Nothing at all
"""

PC_FILES = {
    "pc/demo.pc": (
        "prefix=/usr\nv=1.4.0\nName: demo\nDescription: d\nVersion: ${v}-rc1\nRequires: zlib >= 1.2, demo-extra\n"
    ),
    "pc/demo-extra.pc": "Name: demo-extra\nDescription: e\nVersion: 2.0\nRequires.private: openssl\n",
}


# --------------------------------------------------------------------------- recipes


def test_recipe_substitutes_metadata_and_keeps_runs_raw() -> None:
    recipe = parse_recipe(SHELL_RECIPE, "demo/melange.yaml")
    assert recipe.name == "demo"
    assert recipe.full_version == "1.4.0-r3"
    assert recipe.license == "MIT AND Apache-2.0"
    assert [p.name for p in recipe.packages] == ["demo", "demo-dev", "demo-empty"]
    assert recipe.subpackages[0].description == "Demo pkg-config data for demo"
    assert dict(recipe.variables)["vars.greeting"] == "hi from 1.4.0"
    assert recipe.main.runtime == ("busybox",)
    install, data = recipe.main.pipeline
    assert install.label == "Install" and "${{targets.destdir}}" in install.runs
    assert data.working_directory == "data" and data.environment == (("STAMP", "from-env"),)
    assert recipe.subpackages[1].pipeline == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("package: [unclosed", "not valid YAML at line 1"),
        ("package:\n  name: x\n  version: '1'\nsources: []\n", "unknown key 'sources'"),
        ("package:\n  name: x\n  version: 1.10\n", "reads as a number: quote it"),
        ("package:\n  name: x\n", "package.version is missing"),
        ("package:\n  name: x\n  version: '1-r2'\n", "not a valid apk version"),
        ("package:\n  name: x\n  version: '1'\n  epoch: -1\n", "epoch must be"),
        (
            "package:\n  name: x\n  version: '1'\npipeline:\n  - uses: autoconf/make\n",
            "'uses' is not supported by the fixture builder",
        ),
        ("package:\n  name: x\n  version: '1'\npipeline:\n  - name: nothing\n", "step 'nothing' has no 'runs:'"),
        (
            "package:\n  name: x\n  version: '1'\nsubpackages:\n  - name: ${{vars.nope}}-dev\n",
            "variable vars.nope not defined",
        ),
        ("package:\n  name: x\n  version: '1'\nsubpackages:\n  - name: x\n", "package name 'x' is used twice"),
        ("package:\n  name: x y\n  version: '1'\n", "not a valid package name"),
        ("package:\n  name: x\n  version: '1'\n  options:\n    no-provides: maybe\n", "must be true or false"),
        ("package:\n  name: x\n  version: '1'\nsubpackages:\n  - name: y\n    range: r\n", "'range' is not supported"),
    ],
)
def test_recipe_errors_are_one_line_and_name_the_file(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_recipe(text, "demo/melange.yaml")
    assert message in caught.value.message
    assert caught.value.message.startswith("demo/melange.yaml: ")
    assert "\n" not in caught.value.message


def test_substitute_rejects_unknown_and_malformed_expressions() -> None:
    assert substitute("${{ package.name }}-${{vars.x}}", {"package.name": "a", "vars.x": "b"}, "here") == "a-b"
    with pytest.raises(InputError, match=r"^here: variable targets.nope not defined$"):
        substitute("${{targets.nope}}", {}, "here")
    with pytest.raises(InputError, match="malformed substitution"):
        substitute("echo ${{package.name", {"package.name": "a"}, "here")


# --------------------------------------------------------------------------- generated dependencies


@pytest.mark.parametrize(
    ("soname", "version"),
    [("libc.so.6", "6"), ("libfoo.so.1.2.3", "1.2.3"), ("libfoo.so", "0"), ("libfoo.so.1a", "0")],
)
def test_soname_version(soname: str, version: str) -> None:
    assert soname_version(soname) == version


def test_pkgconfig_parsing_expands_variables_and_reads_requires() -> None:
    parsed = parse_pkgconfig("v=2\nfull=${v}.1\nName: x\nVersion: ${full}\nRequires: a >= 1, b,c < 3 d\n")
    assert parsed.version == "2.1"
    assert parsed.requires == ("a", "b", "c", "d")
    assert pkgconfig_modules("glib-2.0>=2.50 gio-2.0") == ("glib-2.0", "gio-2.0")
    assert pkgconfig_modules("") == ()


def test_shared_objects_commands_and_self_provided_dependencies() -> None:
    library = elf_file("usr/lib/libx.so.2.0.1", soname="libx.so.2", needed=("libc.so.6", "libm.so.6"))
    program = elf_file("usr/bin/xtool", interpreter="/lib64/ld-linux-x86-64.so.2", needed=("libx.so.2", "libc.so.6"))
    plugin = elf_file("usr/lib/x/plugin.so", soname="plugin.so.1")  # vendored: not in a lib dir
    not_executable = TreeEntry("usr/bin/readme", EntryKind.FILE, 0o644)
    pkg = tree(
        "x",
        library,
        program,
        plugin,
        not_executable,
        TreeEntry("usr/lib/libx.so.2", EntryKind.SYMLINK, 0o777, link_target="libx.so.2.0.1"),
        TreeEntry("usr/bin/xtool2", EntryKind.HARDLINK, 0o755, link_target="usr/bin/xtool"),
    )
    generated = generate(pkg, [pkg], "2.0.1-r0", PackageOptions())
    assert generated.provides == (
        "cmd:xtool2=2.0.1-r0",
        "cmd:xtool=2.0.1-r0",
        "so:libx.so.2=2",
    )
    assert generated.runtime == (
        "so:ld-linux-x86-64.so.2",
        "so:libc.so.6",
        "so:libm.so.6",
        "so:libx.so.2",
    )
    depends, provides = merge("x", ["busybox", "x"], ["x-compat=1"], generated)
    assert depends == ("busybox", "so:ld-linux-x86-64.so.2", "so:libc.so.6", "so:libm.so.6")
    assert provides[0] == "x-compat=1"


def test_dev_symlink_depends_on_the_library_in_a_sibling_package() -> None:
    lib = tree(
        "libx",
        elf_file("usr/lib/libx.so.2.0.1", soname="libx.so.2"),
        TreeEntry("usr/lib/libx.so.2", EntryKind.SYMLINK, 0o777, link_target="libx.so.2.0.1"),
    )
    dev = tree("x-dev", TreeEntry("usr/lib/libx.so", EntryKind.SYMLINK, 0o777, link_target="libx.so.2"))
    assert generate(dev, [lib, dev], "1-r0", PackageOptions()).runtime == ("so:libx.so.2",)


def test_options_python_and_shebang_generators() -> None:
    pkg = tree(
        "py3-x",
        TreeEntry("usr/lib/python3.12/site-packages", EntryKind.DIR, 0o755),
        TreeEntry("usr/bin/x", EntryKind.FILE, 0o755, head=b"#!/usr/bin/env -S perl -w\n"),
        TreeEntry("usr/bin/y", EntryKind.FILE, 0o755, head=b"#!/bin/sh\n"),
        TreeEntry("bin/z", EntryKind.FILE, 0o755, head=b"#!/usr/bin/python3\n"),
        TreeEntry("usr/libexec/w", EntryKind.FILE, 0o755, head=b"#!/usr/bin/ruby\n"),
    )
    generated = generate(pkg, [pkg], "1-r0", PackageOptions())
    assert generated.runtime == ("cmd:perl", "python-3.12-base")
    assert generated.provides == ("cmd:x=1-r0", "cmd:y=1-r0", "cmd:z=1-r0")
    # A declared python dependency replaces the generated one, as in melange.
    assert "python-3.12-base" not in generate(pkg, [pkg], "1-r0", PackageOptions(), ["python3"]).runtime
    assert generate(pkg, [pkg], "1-r0", PackageOptions(no_depends=True)).runtime == ()
    assert generate(pkg, [pkg], "1-r0", PackageOptions(no_provides=True)).provides == ()
    assert generate(pkg, [pkg], "1-r0", PackageOptions(no_commands=True)).provides == ()


def test_merge_keeps_conflicts_and_declared_order() -> None:
    generated = Generated(runtime=("so:libc.so.6", "so:liby.so.1"), provides=("so:liby.so.1=1",))
    depends, provides = merge("y", ["!y-old", "zlib"], [], generated)
    assert depends == ("!y-old", "zlib", "so:libc.so.6")
    assert provides == ("so:liby.so.1=1",)


# --------------------------------------------------------------------------- building


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return scenario(tmp_path, "demo", SHELL_RECIPE, {**PC_FILES, "data/.keep": ""})


def test_builds_signed_packages_with_trees_and_generated_metadata(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "repo"
    result = build_scenario(demo, out)
    arch = host_arch()
    assert result.rebuilt
    assert [p.path.name for p in result.packages] == [
        "demo-1.4.0-r3.apk",
        "demo-dev-1.4.0-r3.apk",
        "demo-empty-1.4.0-r3.apk",
    ]
    keyring = out / "keyring"
    info, entries, contents = read_apk(out / arch / "demo-1.4.0-r3.apk", keyring)
    assert info["depends"] == "busybox cmd:bash"
    assert info["provides"] == "cmd:demo-hard=1.4.0-r3 cmd:demo=1.4.0-r3"
    assert info["license"] == "MIT AND Apache-2.0"
    assert info["arch"] == arch
    assert contents["usr/bin/demo"] == b'#!/usr/bin/env bash\necho "hi from 1.4.0"\n'
    assert entries["usr/bin/demo"].mode == 0o755
    assert entries["usr/share/demo/token"].mode == 0o600
    assert entries["usr/bin/demo-alias"].link_target == "./demo"  # verbatim, not normalised
    assert entries["usr/share/demo/absolute"].link_target == "/usr/bin/demo"
    assert entries["usr/bin/demo-hard"].kind is EntryKind.HARDLINK
    assert entries["usr/bin/demo-hard"].link_target == "usr/bin/demo"
    assert entries["var/empty"].kind is EntryKind.DIR
    assert contents["usr/share/demo/stamp"] == b"from-env\n"

    dev, dev_entries, _ = read_apk(out / arch / "demo-dev-1.4.0-r3.apk", keyring)
    assert dev["origin"] == "demo"
    assert dev["provides"] == "pc:demo-extra=2.0 pc:demo=1.4.0_rc1"
    assert dev["depends"] == "pc:zlib"  # demo-extra is provided by the package itself
    assert "usr/lib/pkgconfig/demo.pc" in dev_entries

    empty, empty_entries, _ = read_apk(out / arch / "demo-empty-1.4.0-r3.apk", keyring)
    assert empty_entries == {}
    assert empty["depends"] == "" and empty["description"] == "Nothing at all"


def test_repository_index_lists_every_package_and_verifies(demo: Path, tmp_path: Path) -> None:
    other = scenario(
        tmp_path,
        "other",
        """\
        package:
          name: other
          version: "0.1"
          description: Other
          dependencies:
            runtime: [demo]
        """,
    )
    out = tmp_path / "repo"
    repo = build_repository([demo, other], out)
    assert sorted(p.name for p in repo.keyring.iterdir()) == [repo.key_name]
    assert repo.key_name.endswith(".rsa.pub")
    assert [p.name for p in (out / "signing").iterdir()] == [repo.key_name.removesuffix(".pub")]
    assert oct((out / "signing" / repo.key_name.removesuffix(".pub")).stat().st_mode & 0o777) == "0o600"
    index = read_index_file(repo.index, keyring=Keyring.load(repo.keyring))
    assert index.signed_by == repo.key_name
    listed = sorted((e.info.name, e.info.version) for e in index.entries)
    assert listed == sorted((p.info.name, p.info.version) for p in repo.packages)
    assert sorted(p.name for p in repo.arch_dir.glob("*.apk")) == sorted(p.path.name for p in repo.packages)
    assert repo.package("other").info.depends[0].name == "demo"
    with pytest.raises(LookupError):
        repo.package("nope")


def test_unchanged_scenarios_are_not_rebuilt(demo: Path, tmp_path: Path) -> None:
    other = scenario(tmp_path, "other", "package:\n  name: other\n  version: '1'\n")
    out = tmp_path / "repo"
    first = build_repository([demo, other], out)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}

    again = build_repository([demo, other], out)
    assert [r.rebuilt for r in again.scenarios] == [False, False]
    assert again.packages == first.packages
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps

    (demo / "pc" / "demo-extra.pc").write_text(PC_FILES["pc/demo-extra.pc"].replace("2.0", "2.1"))
    changed = build_repository([demo, other], out)
    assert [r.rebuilt for r in changed.scenarios] == [True, False]
    assert "pc:demo-extra=2.1" in [str(p) for p in changed.package("demo-dev").info.provides]
    index = read_index_file(changed.index, keyring=Keyring.load(changed.keyring))
    assert len(index.entries) == 4


def test_deleted_package_file_triggers_a_rebuild(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "repo"
    built = build_scenario(demo, out)
    built.packages[0].path.unlink()
    again = build_scenario(demo, out)
    assert again.rebuilt
    assert again.packages[0].path.is_file()


def test_build_scenario_adds_and_build_repository_prunes(demo: Path, tmp_path: Path) -> None:
    other = scenario(tmp_path, "other", "package:\n  name: other\n  version: '1'\n")
    out = tmp_path / "repo"
    build_scenario(demo, out)
    build_scenario(other, out)
    names = {e.info.name for e in read_index_file(out / host_arch() / "APKINDEX.tar.gz").entries}
    assert names == {"demo", "demo-dev", "demo-empty", "other"}

    repo = build_repository([other], out)
    assert [r.rebuilt for r in repo.scenarios] == [False]
    assert {e.info.name for e in read_index_file(repo.index).entries} == {"other"}
    assert sorted(p.name for p in repo.arch_dir.glob("*.apk")) == ["other-1-r0.apk"]
    assert sorted(p.name for p in (out / ".build" / host_arch()).iterdir()) == ["other.json"]


def test_a_given_signing_key_signs_everything(demo: Path, tmp_path: Path) -> None:
    key = SigningKey.generate("team.rsa.pub")
    repo = build_repository([demo], tmp_path / "repo", signing_key=key)
    assert repo.key_name == "team.rsa.pub"
    assert [p.name for p in repo.keyring.iterdir()] == ["team.rsa.pub"]
    assert not (tmp_path / "repo" / "signing").exists()  # the caller keeps its private key
    read_apk(repo.packages[0].path, repo.keyring)
    # Another key cannot join packages it did not sign into one index.
    other = scenario(tmp_path, "other", "package:\n  name: other\n  version: '1'\n")
    with pytest.raises(InputError, match="signed with another key"):
        build_scenario(other, tmp_path / "repo", signing_key=SigningKey.generate("else.rsa.pub"))


def test_failing_step_is_one_line_and_leaves_no_output(tmp_path: Path) -> None:
    broken = scenario(
        tmp_path,
        "broken",
        """\
        package:
          name: broken
          version: "1"
        pipeline:
          - name: Compile
            runs: |
              echo "compiling"
              echo "error: widget.c: no such file" >&2
              exit 3
        """,
    )
    out = tmp_path / "out" / "repo"
    with pytest.raises(InputError) as caught:
        build_repository([broken], out)
    assert caught.value.message == (
        "broken/melange.yaml: broken pipeline step 'Compile' failed (exit 3): error: widget.c: no such file"
    )
    assert not out.exists()
    assert list((tmp_path / "out").iterdir()) == []  # no staging folder left behind


def test_failure_keeps_the_previous_repository(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "repo"
    build_repository([demo], out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (demo / "melange.yaml").write_text(SHELL_RECIPE.replace("cp pc/demo.pc", "cp pc/missing.pc"))
    with pytest.raises(InputError, match=r"demo-dev pipeline step 'step 1' failed \(exit 1\): cp: .*missing"):
        build_repository([demo], out)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(
    ("name", "pipeline", "message"),
    [
        pytest.param(
            "bad",
            "  - name: Use\n    runs: echo ${{targets.subpkgdir}}\n",
            r"^bad/melange.yaml: bad pipeline step 'Use': variable targets.subpkgdir",
            id="undefined-variable-names-the-step",
        ),
        pytest.param(
            "fifo",
            '  - runs: mkfifo "${{targets.destdir}}"/pipe\n',
            r"^fifo/melange.yaml: pipe is a device, socket or FIFO",
            id="special-files-cannot-be-packaged",
        ),
    ],
)
def test_a_recipe_that_cannot_build_says_why_and_writes_nothing(
    tmp_path: Path, name: str, pipeline: str, message: str
) -> None:
    folder = scenario(tmp_path, name, f"package:\n  name: {name}\n  version: '1'\npipeline:\n{pipeline}")
    with pytest.raises(InputError, match=message):
        build_scenario(folder, tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


def test_scenario_without_recipe_and_duplicate_names(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no melange build file"):
        build_scenario(empty, tmp_path / "repo")
    one = scenario(tmp_path / "a", "same", "package:\n  name: one\n  version: '1'\n")
    two = scenario(tmp_path / "b", "same", "package:\n  name: two\n  version: '1'\n")
    with pytest.raises(InputError, match="two scenarios are named 'same'"):
        build_repository([one, two], tmp_path / "repo")
    clash = scenario(tmp_path, "clash", "package:\n  name: one\n  version: '2'\n")
    with pytest.raises(InputError, match="scenarios same and clash both build the package 'one'"):
        build_repository([one, clash], tmp_path / "repo")


def test_several_recipes_in_one_scenario_and_target_architecture(tmp_path: Path) -> None:
    folder = scenario(tmp_path, "multi", "package:\n  name: first\n  version: '1'\n")
    (folder / "second.yaml").write_text("package:\n  name: second\n  version: '2'\n  epoch: 1\n")
    (folder / "elsewhere.yaml").write_text(
        "package:\n  name: elsewhere\n  version: '1'\n  target-architecture: [riscv64-only]\n"
    )
    result = build_scenario(folder, tmp_path / "repo")
    assert sorted(p.path.name for p in result.packages) == ["first-1-r0.apk", "second-2-r1.apk"]


def test_build_variables_point_into_the_workspace(tmp_path: Path) -> None:
    folder = scenario(
        tmp_path,
        "vars",
        """\
        package:
          name: vars
          version: "1"
        pipeline:
          - runs: |
              mkdir -p "${{targets.destdir}}"/etc
              echo "${{build.arch}} ${{context.name}}" > "${{targets.contextdir}}"/etc/facts
              test "${{targets.destdir}}" = "${{targets.outdir}}/vars"
              test "${{targets.package.vars-doc}}" = "${{targets.outdir}}/vars-doc"
              test "$HOME" = "$PWD"
        subpackages:
          - name: vars-doc
            pipeline:
              - runs: |
                  test "${{targets.subpkgdir}}" = "${{targets.contextdir}}"
                  mkdir -p "${{targets.subpkgdir}}"/usr/share/doc
                  echo "${{subpkg.name}}" > "${{targets.subpkgdir}}"/usr/share/doc/name
        """,
    )
    out = tmp_path / "repo"
    result = build_scenario(folder, out)
    _, _, contents = read_apk(result.package("vars").path, out / "keyring")
    assert contents["etc/facts"] == f"{host_arch()} vars\n".encode()
    _, _, doc = read_apk(result.package("vars-doc").path, out / "keyring")
    assert doc["usr/share/doc/name"] == b"vars-doc\n"


def test_binaries_for_another_arch_are_refused(tmp_path: Path) -> None:
    true = shutil.which("true")
    assert true is not None
    folder = scenario(
        tmp_path,
        "native",
        f"package:\n  name: native\n  version: '1'\npipeline:\n"
        f'  - runs: install -Dm755 {true} "${{{{targets.destdir}}}}"/usr/bin/true\n',
    )
    wrong = "aarch64" if host_arch() != "aarch64" else "x86_64"
    with pytest.raises(InputError, match=rf"native: usr/bin/true is built for {host_arch()}, not {wrong}"):
        build_scenario(folder, tmp_path / "repo", arch=wrong)


def test_background_processes_do_not_hang_the_build_and_are_ended(tmp_path: Path) -> None:
    pid_file = tmp_path / "sleeper.pid"
    folder = scenario(
        tmp_path,
        "bg",
        f"""\
        package:
          name: bg
          version: "1"
        pipeline:
          - runs: |
              sleep 60 &
              echo "$!" > {pid_file}
              mkdir -p "${{{{targets.destdir}}}}"/etc && echo ok > "${{{{targets.destdir}}}}"/etc/bg
        """,
    )
    started = time.monotonic()
    result = build_scenario(folder, tmp_path / "repo")
    assert time.monotonic() - started < 30
    assert result.packages[0].info.size == 3
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(pid)


def running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


# --------------------------------------------------------------------------- command line


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    build_cmd.configure(parser)
    return parser.parse_args(argv)


def test_build_fixtures_command(demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "repo"
    assert build_cmd.run(parse([str(demo), "--out", str(out)])) == 0
    printed = capsys.readouterr().out
    assert "demo: built, 3 packages (demo demo-dev demo-empty)" in printed
    assert f"index: {out / host_arch() / 'APKINDEX.tar.gz'}" in printed
    assert build_cmd.run(parse([str(demo), "--out", str(out)])) == 0
    assert "demo: up to date, 3 packages" in capsys.readouterr().out


def test_build_fixtures_command_with_a_key_file(demo: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "team.rsa"
    key_file.write_bytes(SigningKey.generate("team.rsa.pub").private_pem())
    out = tmp_path / "repo"
    assert build_cmd.run(parse([str(demo), "--out", str(out), "--signing-key", str(key_file)])) == 0
    assert [p.name for p in (out / "keyring").iterdir()] == ["team.rsa.pub"]
    (tmp_path / "junk.rsa").write_text("not a key")
    with pytest.raises(InputError, match="not a readable RSA private key"):
        build_cmd.run(parse([str(demo), "--out", str(out), "--signing-key", str(tmp_path / "junk.rsa")]))
