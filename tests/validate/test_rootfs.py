"""Test roots built from the real fixture repository and from small repositories made here."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from conftest_repo import pkg
from elftools.elf.elffile import ELFFile
from rawtar import apk, end, header, member

from qackage.apk.index import write_index
from qackage.apk.installed import InstalledSource, RootFS, read_installed_db
from qackage.apk.repository import Repository
from qackage.apk.signature import Keyring
from qackage.apk.writer import PlannedFile, write_apk
from qackage.build import RepositoryBuild, host_arch
from qackage.errors import InputError, QackageError, ResolutionError, UnsafeArchiveError
from qackage.model import Account, Accounts, Entry, EntryKind, Group, PackageInfo
from qackage.validate.extract import ExtractCache
from qackage.validate.report import InstalledPackage
from qackage.validate.rootfs import UNDER_TEST, RootInfo, applied_mode, build_root, write_layout
from qackage.validate.rootplan import Layout, Overwrite, overwrite_decision

ARCH = host_arch()
Planned = tuple[PackageInfo, Sequence[PlannedFile]]
Refused = TypeVar("Refused", bound=QackageError)


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def repo(fixture_repo: RepositoryBuild) -> Repository:
    return Repository.open(str(fixture_repo.root), fixture_repo.arch, keyring=Keyring.load(fixture_repo.keyring))


@pytest.fixture
def cache(tmp_path: Path) -> ExtractCache:
    return ExtractCache(tmp_path / "cache")


def make_repo(folder: Path, packages: Sequence[Planned]) -> Repository:
    arch_dir = folder / ARCH
    built = []
    for info, files in packages:
        path = arch_dir / f"{info.name}-{info.version}.apk"
        built.append((write_apk(path, dataclasses.replace(info, arch=ARCH), files), path))
    write_index(arch_dir, built)
    return Repository.open(str(folder), ARCH)


@dataclass(frozen=True)
class Builder:
    """`build_root` for one test: its cache, the host's arch, roots made in its folder."""

    cache: ExtractCache
    folder: Path

    def __call__(
        self,
        packages: Sequence[str],
        *repositories: Repository,
        into: str = "root",
        under_test: Path | None = None,
        accounts: Accounts = Accounts(),
        arch: str = ARCH,
    ) -> RootInfo:
        return build_root(
            self.folder / into,
            package_under_test=under_test,
            packages=packages,
            repositories=repositories,
            cache=self.cache,
            arch=arch,
            accounts=accounts,
        )

    @contextmanager
    def refused(
        self, error: type[Refused], match: str | None = None, into: str = "root"
    ) -> Iterator[pytest.ExceptionInfo[Refused]]:
        """The build in the block fails with ``error`` and leaves ``into`` as it was given."""
        dest = self.folder / into
        before = _listing(dest)
        with pytest.raises(error, match=match) as caught:
            yield caught
        assert _listing(dest) == before

    def repository(self, *packages: Planned) -> Repository:
        return make_repo(self.folder / "repo", packages)


@pytest.fixture
def build(cache: ExtractCache, tmp_path: Path) -> Builder:
    return Builder(cache, tmp_path)


def _listing(folder: Path) -> list[str] | None:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else None


def text_file(path: str, text: str, mode: int = 0o644) -> PlannedFile:
    return PlannedFile(path, mode=mode, data=text.encode())


def installed_names(root: Path) -> list[str]:
    return [record.info.name for record in read_installed_db(root)]


def verify_installed(root: Path) -> None:
    """Every package's files in the root match the checksums of the apk database."""
    for name in installed_names(root):
        with InstalledSource(root, name) as source:
            for item in source.members():
                for _ in item.chunks():
                    pass
            assert source.modified == (), name
            assert source.check.datahash_verified, name


def run_hello(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the root's hello through the loader its ELF header names, resolved inside the root."""
    program = root / "usr/bin/hello"
    with program.open("rb") as handle:
        interpreter = next(
            segment.data().rstrip(b"\0").decode()
            for segment in ELFFile(handle).iter_segments()
            if segment["p_type"] == "PT_INTERP"
        )
    rootfs = RootFS(root)
    try:
        loader = root / rootfs.resolve(interpreter)
    finally:
        rootfs.close()
    command = [str(loader), "--library-path", str(root / "usr/lib"), str(program), *args]
    return subprocess.run(command, capture_output=True, text=True, check=False, env={})


# --------------------------------------------------------------------------- from the fixture repository


def test_root_for_hello_holds_exactly_its_closure(repo: Repository, build: Builder) -> None:
    info = build(["hello"], repo)
    root = info.root
    names = [p.name for p in info.installed]
    assert sorted(names) == ["glibc", "hello", "libgreet"]
    assert names.index("glibc") < names.index("libgreet") < names.index("hello")  # dependencies first
    assert installed_names(root) == names
    assert all(p.source == repo.name for p in info.installed)
    assert InstalledPackage("hello", repo.find("hello")[0].info.version, repo.name) in info.installed
    assert (root / "usr/bin/hello").is_file()
    assert (root / "usr/lib/libgreet.so.1").is_symlink()
    assert (root / "usr/lib/libc.so.6").is_file()
    assert not (root / "usr/bin/busybox").exists()
    verify_installed(root)
    assert (root / "etc/apk/world").read_text() == "hello\n"
    assert (root / "etc/apk/arch").read_text() == f"{ARCH}\n"
    assert info.installed_db == root / "lib/apk/db/installed"
    assert (info.uid, info.gid, info.world) == (0, 0, ("hello",))
    assert info.environment_report().mode == "repository"
    assert info.environment_report().installed == info.installed


def test_root_has_accounts_and_mount_points(repo: Repository, build: Builder) -> None:
    info = build(["hello"], repo)
    root = info.root
    passwd = (root / "etc/passwd").read_text().splitlines()
    assert "root:x:0:0:root:/root:/bin/sh" in passwd
    assert "build:x:1000:1000:build:/home/build:/bin/sh" in passwd
    assert "build:x:1000:build" in (root / "etc/group").read_text().splitlines()
    for folder in ("home/build", "tmp", "var/tmp", "run", "proc", "dev", "root"):
        assert (root / folder).is_dir(), folder
        assert not (root / folder).is_symlink(), folder
    assert stat.S_IMODE((root / "tmp").stat().st_mode) == 0o1777
    assert stat.S_IMODE((root / "var/tmp").stat().st_mode) == 0o1777
    assert info.workspace == root / "home/build"
    if os.geteuid() == 0:
        assert (root / "home/build").stat().st_uid == 1000


def test_hello_runs_through_its_packaged_loader(repo: Repository, build: Builder) -> None:
    result = run_hello(build(["hello"], repo).root, "greet", "x")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello, x!\n"


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("chroot", path="/usr/sbin:/sbin:/usr/bin"), reason="root only"
)
def test_hello_and_wolfi_base_work_as_a_whole_system(repo: Repository, build: Builder) -> None:
    root = build(["hello", "wolfi-base"], repo).root
    chroot = shutil.which("chroot", path="/usr/sbin:/sbin:/usr/bin")
    assert chroot is not None
    script = "hello greet world && cd /tmp && echo ok > probe && cat probe && id -un && ls /home/build"
    result = subprocess.run(
        [chroot, str(root), "/bin/sh", "-c", script],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Hello, world!", "ok", "root"]


# --------------------------------------------------------------------------- the package under test


def test_local_package_wins_over_a_higher_repository_version(repo: Repository, build: Builder, tmp_path: Path) -> None:
    local = tmp_path / "hello-0.1-r0.apk"
    write_apk(local, pkg("hello", "0.1-r0", arch=ARCH), [text_file("usr/bin/hello", "#!/bin/sh\necho local\n", 0o755)])
    info = build(["wolfi-base"], repo, under_test=local)
    root = info.root
    assert InstalledPackage("hello", "0.1-r0", UNDER_TEST) in info.installed
    assert (root / "usr/bin/hello").read_text() == "#!/bin/sh\necho local\n"
    assert "libgreet" not in installed_names(root)  # the repository's hello (and its needs) never came in
    assert info.world == ("hello", "wolfi-base")
    verify_installed(root)


def test_broken_local_copy_of_the_same_version_is_what_gets_tested(
    repo: Repository, build: Builder, tmp_path: Path
) -> None:
    """A mutant keeps name and version: the local file must still win over the repository's."""
    version = repo.find("hello")[0].info.version
    broken = pkg("hello", version, depends="so:libgreet.so.1", arch=ARCH)
    local = tmp_path / "broken" / f"hello-{version}.apk"
    write_apk(local, broken, [text_file("usr/bin/hello", "#!/bin/sh\nexit 1\n", 0o755)])
    info = build([], repo, under_test=local)
    assert (info.root / "usr/bin/hello").read_text() == "#!/bin/sh\nexit 1\n"
    assert [p.source for p in info.installed if p.name == "hello"] == [UNDER_TEST]
    assert {p.name for p in info.installed} == {"hello", "libgreet", "glibc"}


def test_local_package_for_another_arch_is_refused(repo: Repository, build: Builder, tmp_path: Path) -> None:
    local = tmp_path / "hello-0.1-r0.apk"
    other = "aarch64" if ARCH != "aarch64" else "x86_64"
    write_apk(local, pkg("hello", "0.1-r0", arch=other), [])
    with build.refused(InputError, f"built for {other}"):
        build([], repo, under_test=local)
    assert not (tmp_path / "root").exists()


def test_hostile_package_under_test_leaves_nothing(
    repo: Repository, build: Builder, cache: ExtractCache, tmp_path: Path
) -> None:
    local = tmp_path / "evil.apk"
    local.write_bytes(apk(member("usr/", typeflag=b"5") + header("usr/x", typeflag=b"2", linkname="../../etc") + end()))
    with build.refused(UnsafeArchiveError, "escapes"):
        build([], repo, under_test=local)
    assert not (tmp_path / "root").exists()
    assert not cache.folder.exists() or list(cache.folder.iterdir()) == []


# --------------------------------------------------------------------------- resolution errors


def test_unresolvable_names_say_what_why_and_who(repo: Repository, build: Builder, tmp_path: Path) -> None:
    extra = make_repo(tmp_path / "extra", [(pkg("needy", depends="glibc so:libmissing.so.9"), [])])
    root = tmp_path / "root"
    root.mkdir()
    with build.refused(ResolutionError) as caught:
        build(["needy", "no-such-package", "hello>=99"], repo, extra)
    message = caught.value.message
    assert "so:libmissing.so.9 (needed by needy): nothing provides so:libmissing.so.9" in message
    assert "no-such-package (requested): nothing provides no-such-package" in message
    assert "hello>=99 (requested): hello is available only as" in message
    assert list(root.iterdir()) == []  # an empty folder we were given stays, empty


def test_dest_must_be_new_or_empty(repo: Repository, build: Builder, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "keep").write_text("mine")
    with build.refused(InputError, "new or empty"):
        build(["hello"], repo)
    assert (root / "keep").read_text() == "mine"


def test_repository_for_another_arch_is_refused(repo: Repository, build: Builder) -> None:
    with build.refused(InputError, "opened for"):
        build(["hello"], repo, arch="s390x")


# --------------------------------------------------------------------------- file conflicts


def test_conflicting_files_name_both_packages(build: Builder, tmp_path: Path) -> None:
    repository = build.repository(
        (pkg("alpha"), [text_file("usr/bin/clash", "alpha\n")]),
        (pkg("beta", depends="alpha"), [text_file("usr/bin/clash", "beta\n")]),
    )
    with build.refused(ResolutionError) as caught:
        build(["beta"], repository)
    message = caught.value.message
    assert "/usr/bin/clash: shipped by both alpha-1.0-r0 and beta-1.0-r0" in message
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize(
    ("installed", "incoming", "winner"),
    [
        # replaces lets the replacing package own the file
        (pkg("alpha"), dataclasses.replace(pkg("beta", depends="alpha"), replaces=("alpha",)), "beta"),
        # an installed package that replaces keeps its file
        (dataclasses.replace(pkg("alpha"), replaces=("beta",)), pkg("beta", depends="alpha"), "alpha"),
        # subpackages of one origin may share files
        (
            dataclasses.replace(pkg("tool"), origin="tool"),
            dataclasses.replace(pkg("tool-extra", depends="tool"), origin="tool"),
            "tool-extra",
        ),
    ],
    ids=["replaces", "installed-replaces", "same-origin"],
)
def test_a_shared_file_belongs_to_the_package_apk_lets_win(
    build: Builder, installed: PackageInfo, incoming: PackageInfo, winner: str
) -> None:
    shared = "usr/share/common/data"
    repository = build.repository(
        (installed, [text_file(shared, f"{installed.name}\n")]),
        (incoming, [text_file(shared, f"{incoming.name}\n")]),
    )
    root = build([incoming.name], repository).root
    assert (root / shared).read_text() == f"{winner}\n"
    owners = {r.info.name: set(r.paths()) for r in read_installed_db(root)}
    assert {name for name, paths in owners.items() if shared in paths} == {winner}
    verify_installed(root)


def test_file_where_another_package_has_a_folder_is_a_conflict(build: Builder) -> None:
    repository = build.repository(
        (pkg("alpha"), [text_file("opt/thing/inside", "a\n")]),
        (pkg("beta", depends="alpha"), [text_file("opt/thing", "b\n")]),
    )
    with build.refused(ResolutionError, re.escape("/opt/thing: a file in beta-1.0-r0 but a folder from alpha-1.0-r0")):
        build(["beta"], repository)


def test_overwrite_rules_follow_apk() -> None:
    alpha, beta = pkg("alpha"), pkg("beta")
    assert overwrite_decision(alpha, beta) is Overwrite.CONFLICT
    assert overwrite_decision(alpha, dataclasses.replace(alpha, version="2.0-r0")) is Overwrite.REPLACE
    assert overwrite_decision(alpha, dataclasses.replace(beta, origin="alpha")) is Overwrite.REPLACE
    assert overwrite_decision(alpha, dataclasses.replace(beta, replaces=("alpha",))) is Overwrite.REPLACE
    assert overwrite_decision(alpha, dataclasses.replace(beta, replaces=("alpha<1.0",))) is Overwrite.CONFLICT
    assert overwrite_decision(dataclasses.replace(alpha, replaces=("beta",)), beta) is Overwrite.KEEP
    both_alpha = dataclasses.replace(alpha, replaces=("beta",), extra=(("replaces_priority", "10"),))
    both_beta = dataclasses.replace(beta, replaces=("alpha",), extra=(("replaces_priority", "5"),))
    assert overwrite_decision(both_alpha, both_beta) is Overwrite.KEEP
    assert overwrite_decision(both_beta, both_alpha) is Overwrite.REPLACE


# --------------------------------------------------------------------------- paths through symlinks


def test_folders_another_package_made_symlinks_are_entered_inside_the_root(build: Builder) -> None:
    repository = build.repository(
        (
            pkg("layout"),
            [
                PlannedFile("bin", EntryKind.SYMLINK, link_target="usr/bin"),
                PlannedFile("usr/bin", EntryKind.DIR, 0o755),
            ],
        ),
        (
            pkg("tool", depends="layout"),
            [
                text_file("bin/tool", "#!/bin/sh\n", 0o755),
                PlannedFile("sbin", EntryKind.SYMLINK, link_target="/usr/bin"),
            ],
        ),
    )
    root = build(["tool"], repository).root
    assert (root / "bin").is_symlink()
    assert (root / "usr/bin/tool").is_file()
    assert not (root / "usr/bin/tool").is_symlink()
    verify_installed(root)


def test_a_symlink_pointing_out_of_the_root_is_never_written_through(build: Builder, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    repository = build.repository(
        (pkg("trap"), [PlannedFile("usr/lib/escape", EntryKind.SYMLINK, link_target=str(host))]),
        (pkg("victim", depends="trap"), [text_file("usr/lib/escape/payload", "pwned\n")]),
    )
    with build.refused(ResolutionError, re.escape("/usr/lib/escape: a folder in victim-1.0-r0, but")):
        build(["victim"], repository)
    assert list(host.iterdir()) == []


def test_account_file_symlinked_out_of_the_root_is_never_written_through(build: Builder, tmp_path: Path) -> None:
    host = tmp_path / "host-passwd"
    host.write_text("host\n")
    repository = build.repository(
        (
            pkg("sneaky"),
            [
                PlannedFile("etc", EntryKind.DIR, 0o755),
                PlannedFile("etc/passwd", EntryKind.SYMLINK, link_target=str(host)),
            ],
        )
    )
    with build.refused(ResolutionError, "/etc/passwd: cannot be written"):
        build(["sneaky"], repository)
    assert host.read_text() == "host\n"


# --------------------------------------------------------------------------- the cache


def test_cache_is_reused_and_survives_a_test_scribbling_on_its_root(
    repo: Repository, build: Builder, cache: ExtractCache
) -> None:
    first = build(["hello"], repo, into="first").root
    assert cache.extractions == 3
    hello = first / "usr/bin/hello"
    entry = cache.lookup(cache.key_for(repo.fetch(repo.find("hello")[0])))
    assert entry is not None
    cached_hello = entry.tree / "usr/bin/hello"
    original = cached_hello.read_bytes()
    assert hello.stat().st_ino != cached_hello.stat().st_ino  # a copy, not a link into the cache
    assert hello.stat().st_nlink == 1
    hello.write_bytes(b"scribbled")
    hello.chmod(0o600)
    (first / "usr/lib/libc.so.6").unlink()
    (first / "usr/lib/libgreet.so.1").write_bytes(b"through the symlink")
    assert cached_hello.read_bytes() == original
    second = build(["hello"], repo, into="second").root
    assert cache.extractions == 3  # nothing unpacked again
    assert cache.hits == 3
    verify_installed(second)
    assert run_hello(second, "greet", "again").stdout == "Hello, again!\n"


def test_damaged_cache_entry_is_replaced_and_the_root_built(
    repo: Repository, build: Builder, cache: ExtractCache
) -> None:
    build(["hello"], repo, into="first")
    damaged = cache.get(repo.fetch(repo.find("libgreet")[0])).folder
    next((damaged / "tree").rglob("libgreet.so.1.*")).unlink()  # something cleaned the cache
    second = build(["hello"], repo, into="second").root
    assert cache.extractions == 4
    verify_installed(second)


# --------------------------------------------------------------------------- accounts and ownership


def test_run_as_and_extra_accounts(repo: Repository, build: Builder, tmp_path: Path) -> None:
    accounts = Accounts(
        run_as="build",
        users=(Account("svc", 700, 701, homedir="/var/lib/svc"),),
        groups=(Group("svc", 701, ("svc", "build")),),
    )
    info = build(["hello"], repo, accounts=accounts)
    root = info.root
    assert (info.uid, info.gid) == (1000, 1000)
    assert "svc:x:700:701:svc:/var/lib/svc:/bin/sh" in (root / "etc/passwd").read_text().splitlines()
    assert "svc:x:701:svc,build" in (root / "etc/group").read_text().splitlines()
    assert (root / "var/lib/svc").is_dir()
    if os.geteuid() == 0:
        assert ((root / "var/lib/svc").stat().st_uid, (root / "var/lib/svc").stat().st_gid) == (700, 701)
    numeric = build(["hello"], repo, into="numeric", accounts=Accounts(run_as="4242"))
    assert (numeric.uid, numeric.gid) == (4242, 4242)
    with build.refused(InputError, "no user named 'nobody-here'", into="bad"):
        build(["hello"], repo, into="bad", accounts=Accounts(run_as="nobody-here"))
    assert not (tmp_path / "bad").exists()


def test_shipped_account_files_are_merged(build: Builder) -> None:
    passwd = "root:x:0:0:root:/root:/bin/ash\nnginx:x:101:101:nginx:/var/lib/nginx:/sbin/nologin\n"
    repository = build.repository(
        (pkg("baselayout"), [text_file("etc/passwd", passwd), text_file("etc/group", "root:x:0:\nnginx:x:101:\n")])
    )
    info = build(["baselayout"], repository, accounts=Accounts(run_as="nginx"))
    assert (info.root / "etc/passwd").read_text().splitlines() == [
        "root:x:0:0:root:/root:/bin/ash",
        "nginx:x:101:101:nginx:/var/lib/nginx:/sbin/nologin",
        "build:x:1000:1000:build:/home/build:/bin/sh",
    ]
    assert (info.uid, info.gid) == (101, 101)
    records = read_installed_db(info.root)
    assert "etc/passwd" in set(records[0].paths())  # still the package's file, as apk sees it


def test_owners_and_set_uid_bits(build: Builder) -> None:
    files = [
        PlannedFile("usr/bin/su", mode=0o4755, data=b"#!/bin/sh\n"),
        PlannedFile("var/lib/svc", EntryKind.DIR, 0o750, uid=700, gid=701),
        PlannedFile("var/lib/svc/state", mode=0o640, data=b"state\n", uid=700, gid=701),
    ]
    root = build(["suid"], build.repository((pkg("suid"), files))).root
    su, state = (root / "usr/bin/su").stat(), (root / "var/lib/svc/state").stat()
    if os.geteuid() == 0:
        assert stat.S_IMODE(su.st_mode) == 0o4755
        assert (state.st_uid, state.st_gid) == (700, 701)
        assert ((root / "var/lib/svc").stat().st_uid, stat.S_IMODE((root / "var/lib/svc").stat().st_mode)) == (
            700,
            0o750,
        )
    else:
        assert stat.S_IMODE(su.st_mode) == 0o755
    assert stat.S_IMODE(state.st_mode) == 0o640


def test_unprivileged_writes_strip_set_uid_and_keep_owners(tmp_path: Path) -> None:
    layout = Layout()
    layout.add_package(pkg("gen"), (), None)
    layout.ensure_folder("usr/bin")
    layout.put_file("usr/bin/su", b"#!/bin/sh\n", 0o4755)
    layout.ensure_folder("srv/ro", 0o555)
    root = tmp_path / "root"
    root.mkdir()
    write_layout(layout, root, privileged=False)
    assert stat.S_IMODE((root / "usr/bin/su").stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "srv/ro").stat().st_mode) == 0o555
    assert applied_mode(0o4755, privileged=True) == 0o4755
    assert applied_mode(stat.S_IFREG | 0o6755, privileged=False) == 0o755
    assert applied_mode(0o1777, privileged=False) == 0o1777


def test_layout_resolves_with_chroot_semantics() -> None:
    layout = Layout()
    layout.add_package(
        pkg("links"),
        [
            Entry("usr", EntryKind.DIR, 0o755),
            Entry("usr/lib", EntryKind.DIR, 0o755),
            Entry("lib", EntryKind.SYMLINK, 0o777, link_target="usr/lib"),
            Entry("usr/lib/up", EntryKind.SYMLINK, 0o777, link_target="../../../../../usr"),
            Entry("usr/lib/abs", EntryKind.SYMLINK, 0o777, link_target="/lib"),
            Entry("loop", EntryKind.SYMLINK, 0o777, link_target="loop"),
        ],
        None,
    )
    assert layout.resolve("lib/x") == "usr/lib/x"
    assert layout.resolve("usr/lib/up/lib") == "usr/lib"
    assert layout.resolve("usr/lib/abs") == "usr/lib"
    assert layout.resolve("usr/lib/abs", follow_last=False) == "usr/lib/abs"
    assert layout.find_file("usr/lib") is None
    assert layout.ensure_folder("loop/inside") is None
    assert "too many symlinks" in layout.problems[-1]


def test_workspace_exists_even_when_build_lives_elsewhere(repo: Repository, build: Builder) -> None:
    accounts = Accounts(users=(Account("build", 1000, 1000, homedir="/srv/build"),))
    info = build(["hello"], repo, accounts=accounts)
    assert info.workspace.is_dir()
    assert (info.root / "srv/build").is_dir()
    assert "build:x:1000:1000:build:/srv/build:/bin/sh" in (info.root / "etc/passwd").read_text().splitlines()
