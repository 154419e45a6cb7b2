from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest
from conftest_repo import ARCH, RepoServer, build_apk, build_repo, pkg

from qackage.apk.pkginfo import parse_atom
from qackage.apk.repository import Repository
from qackage.apk.resolve import PREFERRED, Resolution, resolve
from qackage.cli.main import main
from qackage.cli.resolve_cmd import host_arch
from qackage.errors import InputError
from qackage.model import PackageInfo

# A small Wolfi-like world: a C library, a shell, and things that need them.
BASE = [
    pkg("glibc", "2.39-r5", provides="so:libc.so.6=6 so:ld-linux-x86-64.so.2=2"),
    pkg("ld-linux", "2.39-r5", depends="glibc"),
    pkg(
        "busybox",
        "1.36.1-r7",
        depends="so:libc.so.6",
        provides="cmd:sh=1.36.1-r7 cmd:ls=1.36.1-r7",
    ),
    pkg("zlib", "1.3.1-r0", depends="so:libc.so.6", provides="so:libz.so.1=1.3.1"),
    pkg("zlib", "1.2.13-r4", depends="so:libc.so.6", provides="so:libz.so.1=1.2.13"),
    pkg("curl", "8.8.0-r0", depends="libcurl-openssl4 so:libc.so.6 so:libz.so.1", provides="cmd:curl=8.8.0-r0"),
    pkg("libcurl-openssl4", "8.8.0-r0", depends="so:libc.so.6", provides="so:libcurl.so.4=4.8.0"),
]


def _repo(tmp_path: Path, name: str, packages: list[PackageInfo]) -> Repository:
    return Repository.open(str(build_repo(tmp_path / name, packages)), ARCH)


def _names(resolution: Resolution) -> list[str]:
    return [f"{p.info.name}-{p.info.version}" for p in resolution.packages]


def test_closure_by_name_so_and_cmd(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "os", BASE)
    resolution = resolve(["curl", "cmd:sh"], [repo])
    assert resolution.ok
    # breadth-first, in the order dependencies are written
    assert _names(resolution) == [
        "curl-8.8.0-r0",
        "busybox-1.36.1-r7",
        "libcurl-openssl4-8.8.0-r0",
        "glibc-2.39-r5",
        "zlib-1.3.1-r0",  # the highest version of a name wins
    ]
    curl = resolution.package("curl")
    assert curl is not None and curl.why == "requested" and curl.required_by is None
    zlib = resolution.package("zlib")
    assert zlib is not None
    assert zlib.required_by == "curl"
    assert str(zlib.dependency) == "so:libz.so.1"
    assert zlib.why == "dependency of curl"
    assert zlib.source == repo.name
    assert zlib.entry is not None and zlib.entry.filename == "zlib-1.3.1-r0.apk"
    assert resolution.package("ld-linux") is None  # nothing needs it


def test_deterministic(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "os", BASE)
    first = resolve(["curl", "busybox"], [repo])
    assert resolve(["curl", "busybox"], [repo]) == first


def test_version_constraints_pick_the_highest_that_fits(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "os", BASE)
    resolution = resolve(["zlib<1.3"], [repo])
    assert _names(resolution)[0] == "zlib-1.2.13-r4"
    resolution = resolve(["so:libz.so.1<1.3"], [repo])
    assert _names(resolution)[0] == "zlib-1.2.13-r4"
    resolution = resolve(["zlib~1.3"], [repo])
    assert _names(resolution)[0] == "zlib-1.3.1-r0"


def test_highest_version_wins_across_repositories_and_ties_go_to_the_first(tmp_path: Path) -> None:
    first = _repo(tmp_path, "first", [pkg("tool", "1.0-r0"), pkg("shared", "2.0-r0")])
    second = _repo(tmp_path, "second", [pkg("tool", "1.2-r0"), pkg("shared", "2.0-r0")])
    resolution = resolve(["tool", "shared"], [first, second])
    tool, shared = resolution.packages
    assert (tool.info.version, tool.source) == ("1.2-r0", second.name)
    assert (shared.info.version, shared.source) == ("2.0-r0", first.name)


def test_provider_priority_breaks_ties_between_providers(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        "os",
        [
            pkg("openssl-config-a", provides="openssl-config", priority=10),
            pkg("openssl-config-b", provides="openssl-config", priority=50),
            pkg("openssl-config-c", provides="openssl-config"),
            pkg("libssl-fips", "3.0-r0", provides="so:libssl.so.3=3", priority=5),
            pkg("libssl", "3.3-r0", provides="so:libssl.so.3=3", priority=20),
            pkg("libssl-old", "3.0-r0", provides="so:libssl.so.3=2"),
        ],
    )
    assert _names(resolve(["openssl-config"], [repo])) == ["openssl-config-b-1.0-r0"]
    # equal provided versions: the priority decides, whatever the package versions
    assert _names(resolve(["so:libssl.so.3"], [repo])) == ["libssl-3.3-r0"]


def test_higher_provided_version_beats_priority(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        "os",
        [
            pkg("python-3.11", "3.11.9-r0", provides="python3=3.11.9", priority=100),
            pkg("python-3.12", "3.12.4-r0", provides="python3=3.12.4"),
        ],
    )
    assert _names(resolve(["python3"], [repo])) == ["python-3.12-3.12.4-r0"]
    assert _names(resolve(["python3~3.11"], [repo])) == ["python-3.11-3.11.9-r0"]


def test_unversioned_provides_do_not_meet_versioned_dependencies(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "os", [pkg("virtual-sh", provides="cmd:sh")])
    assert resolve(["cmd:sh"], [repo]).ok
    resolution = resolve(["cmd:sh>=1"], [repo])
    (missing,) = resolution.unresolved
    assert "available only as (unversioned)" in missing.reason


def test_preferred_package_owns_its_name(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "os", [*BASE, pkg("mytool", "9.9-r0", depends="zlib")])
    local = pkg("mytool", "1.0-r0", depends="so:libz.so.1 cmd:sh")
    resolution = resolve(["mytool"], [repo], preferred=[local])
    assert resolution.ok
    mytool = resolution.package("mytool")
    assert mytool is not None
    assert (mytool.info, mytool.source, mytool.repository, mytool.entry) == (local, PREFERRED, None, None)
    assert _names(resolution) == ["mytool-1.0-r0", "zlib-1.3.1-r0", "busybox-1.36.1-r7", "glibc-2.39-r5"]


def test_preferred_package_name_beats_a_provider_of_that_name(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "os", [pkg("foo-compat", "1.0-r0", provides="foo=9.0")])
    resolution = resolve(["foo"], [repo], preferred=[pkg("foo", "1.0-r0")])
    assert _names(resolution) == ["foo-1.0-r0"]
    assert _names(resolve(["foo"], [repo])) == ["foo-compat-1.0-r0"]


def test_preferred_package_provides_win_ties(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "os", [pkg("libfoo", "1.0-r0", provides="so:libfoo.so.1=1")])
    local = pkg("libfoo-ng", "0.1-r0", provides="so:libfoo.so.1=1")
    resolution = resolve(["so:libfoo.so.1"], [repo], preferred=[local])
    assert _names(resolution) == ["libfoo-ng-0.1-r0"]


def test_preferred_package_is_used_even_when_it_cannot_satisfy(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "os", [pkg("mylib", "2.0-r0")])
    resolution = resolve(["mylib>=2"], [repo], preferred=[pkg("mylib", "1.0-r0")])
    assert not resolution.ok
    (missing,) = resolution.unresolved
    assert missing.reason == "mylib is available only as 1.0-r0"


def test_two_preferred_packages_with_one_name_are_refused() -> None:
    with pytest.raises(InputError, match="two preferred packages"):
        resolve(["a"], [], preferred=[pkg("a"), pkg("a", "2")])


def test_unresolved_are_reported_with_who_needs_them(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        "os",
        [*BASE, pkg("app", depends="so:libmissing.so.1 zlib>=2 busybox")],
    )
    resolution = resolve(["app", "nonexistent"], [repo])
    assert not resolution.ok
    assert [(str(u.dependency), u.required_by, u.reason) for u in resolution.unresolved] == [
        ("nonexistent", None, "nothing provides nonexistent"),
        ("so:libmissing.so.1", "app", "nothing provides so:libmissing.so.1"),
        ("zlib>=2", "app", "zlib is available only as 1.2.13-r4, 1.3.1-r0"),
    ]
    # what could be resolved still is
    assert _names(resolution) == ["app-1.0-r0", "busybox-1.36.1-r7", "glibc-2.39-r5"]


def test_one_version_per_name(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        "os",
        [*BASE, pkg("old-app", depends="zlib<1.3"), pkg("new-app", depends="zlib>=1.3")],
    )
    resolution = resolve(["old-app", "new-app"], [repo])
    (clash,) = resolution.unresolved
    assert str(clash.dependency) == "zlib>=1.3"
    assert clash.required_by == "new-app"
    assert clash.reason == "zlib-1.2.13-r4 was chosen already and does not satisfy zlib>=1.3"


def test_conflict_with_an_already_chosen_package(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        "os",
        [pkg("tool", depends="legacy"), pkg("legacy", "0.9-r0"), pkg("app", depends="!legacy")],
    )
    # breadth-first: legacy (for tool) is chosen before app's "!legacy" is read
    resolution = resolve(["tool", "app"], [repo])
    assert not resolution.ok
    assert resolution.unresolved == ()
    (conflict,) = resolution.conflicts
    assert (str(conflict.dependency), conflict.required_by, conflict.package) == ("!legacy", "app", "legacy-0.9-r0")


def test_conflict_known_first_keeps_the_package_out(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        "os",
        [
            pkg("tool", depends="cmd:awk"),
            pkg("gawk", "5.3-r0", provides="cmd:awk=5.3"),
            pkg("mawk", "1.3-r0", provides="cmd:awk=1.3"),
            pkg("app", depends="!gawk tool"),
        ],
    )
    resolution = resolve(["app"], [repo])
    # gawk would win on version, but app forbids it: the other provider is taken
    assert _names(resolution) == ["app-1.0-r0", "tool-1.0-r0", "mawk-1.3-r0"]
    assert resolution.ok
    only_gawk = _repo(tmp_path, "only-gawk", [pkg("tool", depends="cmd:awk"), pkg("gawk", provides="cmd:awk=5")])
    resolution = resolve(["!gawk", "tool"], [only_gawk])
    (missing,) = resolution.unresolved
    assert missing.reason == "every provider of cmd:awk conflicts with !gawk (from the request)"


def test_versioned_conflict(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "os", [pkg("lib", "2.0-r0"), pkg("app", depends="lib !lib<2")])
    assert resolve(["app"], [repo]).ok
    repo_old = _repo(tmp_path, "old", [pkg("lib", "1.5-r0"), pkg("app", depends="lib !lib<2")])
    (conflict,) = resolve(["app"], [repo_old]).conflicts
    assert conflict.package == "lib-1.5-r0"


def test_a_package_may_conflict_with_what_it_provides_itself(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "os", [pkg("busybox-full", provides="cmd:sh=1", depends="!cmd:sh")])
    assert resolve(["busybox-full"], [repo]).ok


def test_install_if(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        "os",
        [
            pkg("foo"),
            pkg("docs"),
            pkg("foo-doc", install_if="foo docs", depends="man-db"),
            pkg("man-db"),
            pkg("foo-bash-completion", install_if="foo bash"),
        ],
    )
    assert _names(resolve(["foo"], [repo])) == ["foo-1.0-r0"]
    resolution = resolve(["foo", "docs"], [repo])
    assert _names(resolution) == ["foo-1.0-r0", "docs-1.0-r0", "foo-doc-1.0-r0", "man-db-1.0-r0"]
    doc = resolution.package("foo-doc")
    assert doc is not None and doc.why == "install_if: foo docs"
    man = resolution.package("man-db")
    assert man is not None and man.required_by == "foo-doc"
    assert _names(resolve(["foo", "docs"], [repo], install_if=False)) == ["foo-1.0-r0", "docs-1.0-r0"]


def test_requests_may_be_atoms(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "os", BASE)
    resolution = resolve([parse_atom("zlib=1.2.13-r4")], [repo])
    assert _names(resolution) == ["zlib-1.2.13-r4", "glibc-2.39-r5"]


# --------------------------------------------------------------------------- qackage resolve


def test_cli_text_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = build_repo(tmp_path / "os", BASE)
    assert main(["resolve", "curl", "--repository", str(root), "--arch", ARCH]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "4 package(s):"
    assert "curl-8.8.0-r0" in out
    assert "zlib-1.3.1-r0" in out and "dependency of curl (so:libz.so.1)" in out
    assert "unresolved" not in out


def test_cli_unresolved_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = build_repo(tmp_path / "os", BASE)
    assert main(["resolve", "curl", "so:libnope.so.9", "-r", str(root), "--arch", ARCH]) == 1
    out = capsys.readouterr().out
    assert "1 unresolved:" in out
    assert "so:libnope.so.9  (requested): nothing provides so:libnope.so.9" in out


def test_cli_local_package_json_over_http(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = build_repo(tmp_path / "os", [*BASE, pkg("mytool", "9.0-r0")])
    local_info, local = build_apk(tmp_path / "local", pkg("mytool", "1.0-r0", depends="so:libz.so.1 cmd:nope"))
    with RepoServer(root) as server:
        code = main(
            ["resolve", str(local), "-r", server.url, "--arch", ARCH, "--json", "--cache-dir", str(tmp_path / "c")]
        )
    assert code == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["arch"] == ARCH
    assert report["repositories"] == [
        {"name": server.url, "location": f"{server.url}/{ARCH}", "packages": len(BASE) + 1, "signed_by": None}
    ]
    first, *rest = report["packages"]
    assert first == {
        "name": "mytool",
        "version": "1.0-r0",
        "source": "preferred",
        "filename": None,
        "required_by": None,
        "dependency": "mytool=1.0-r0",
        "why": "requested",
    }
    assert [(p["name"], p["required_by"]) for p in rest] == [("zlib", "mytool"), ("glibc", "zlib")]
    assert rest[0]["filename"] == "zlib-1.3.1-r0.apk"
    assert report["unresolved"] == [
        {"dependency": "cmd:nope", "required_by": "mytool", "reason": "nothing provides cmd:nope"}
    ]
    assert report["conflicts"] == []
    assert local_info.name == "mytool"


def test_cli_repository_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resolve", "curl", "-r", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err == f"qackage: error: {tmp_path / 'missing'}: no such folder\n"


@pytest.mark.parametrize(
    ("machine", "arch"), [("x86_64", "x86_64"), ("AMD64", "x86_64"), ("arm64", "aarch64"), ("riscv64", "riscv64")]
)
def test_cli_host_arch(monkeypatch: pytest.MonkeyPatch, machine: str, arch: str) -> None:
    monkeypatch.setattr(platform, "machine", lambda: machine)
    assert host_arch() == arch
