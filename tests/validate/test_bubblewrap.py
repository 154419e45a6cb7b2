"""The bubblewrap sandbox as the runner uses it: scripts, exit codes, environment, output.

Runs are real: bwrap, real processes, a root made from the host's static busybox.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from tempfile import TemporaryDirectory

import pytest

# fixtures: pytest finds them in this module, the tests ask for them by name
from minroot import (  # noqa: F401
    copy_root,
    melange_environment,
    melange_script,
    root_fixture,
    run_step,
    sandbox_fixture,
    template_root_fixture,
    workspace_fixture,
)

from qackage.errors import EnvironmentProblem, InputError
from qackage.validate.bubblewrap import (
    WORKSPACE_MOUNT,
    Bubblewrap,
    Ending,
    Observation,
    OutputTail,
    bwrap_arguments,
    describe_bytes,
    describe_seconds,
    explain,
    starting_directory,
)
from qackage.validate.cgroups import (
    CgroupMount,
    group_directory,
    parse_memberships,
    parse_oom_kills,
    parse_pids_events,
    parse_v1_mounts,
)
from qackage.validate.overlay import OverlayTools, check_overlays, overlay_prefix
from qackage.validate.sandboxing import OverlayMount, SandboxLimits, SandboxOutcome, SandboxRequest

# --- the command line and the pure helpers -------------------------------------------------


def test_command_line_isolates_everything_and_runs_the_script_unchanged(tmp_path: Path) -> None:
    request = SandboxRequest(
        root=tmp_path / "root",
        workspace=tmp_path / "ws",
        script="set -eo pipefail; true\nexit 0",
        environment={"PATH": "/usr/bin", "A": "x y"},
        uid=1000,
        gid=1001,
    )
    arguments = bwrap_arguments(
        request, executable="/usr/bin/bwrap", hostname="box", directory="/home/build", status_fd=7, block_fd=8
    )
    assert arguments[0] == "/usr/bin/bwrap"
    assert arguments[-4:] == ["--", "/bin/sh", "-c", request.script]
    for flag in ("--unshare-all", "--unshare-user", "--die-with-parent", "--new-session"):
        assert flag in arguments
    assert "--share-net" not in arguments
    joined = " ".join(arguments[:-1])
    assert "--uid 1000 --gid 1001" in joined
    assert f"--bind {tmp_path / 'root'} / " in joined
    assert f"--bind {tmp_path / 'ws'} /home/build" in joined
    assert "--proc /proc --dev /dev --tmpfs /tmp --tmpfs /run" in joined
    assert "--json-status-fd 7 --block-fd 8" in joined
    # --clearenv first, then exactly the requested variables.
    clear = arguments.index("--clearenv")
    setenvs = [arguments[i + 1 : i + 3] for i, word in enumerate(arguments) if word == "--setenv"]
    assert setenvs == [["PATH", "/usr/bin"], ["A", "x y"]]
    assert all(arguments.index("--setenv") > clear for _ in setenvs)


@pytest.mark.parametrize(
    ("count", "text"),
    [(4 << 30, "4 GiB"), (64 << 20, "64 MiB"), (3 << 29, "1.5 GiB"), (1536, "1.5 KiB"), (100, "100 bytes")],
)
def test_describe_bytes(count: int, text: str) -> None:
    assert describe_bytes(count) == text


def test_describe_seconds() -> None:
    assert describe_seconds(30.0) == "30 s"
    assert describe_seconds(0.5) == "0.5 s"


LIMITS = SandboxLimits(wall_seconds=30, cpu_seconds=60, memory_bytes=1 << 30, max_processes=64)


@pytest.mark.parametrize(
    ("observation", "expected"),
    [
        (Observation(Ending.EXITED, 0, 0), (0, None)),
        (Observation(Ending.EXITED, 3, 3), (3, None)),
        (Observation(Ending.TIMED_OUT, -9, None), (None, "timed out after 30 s")),
        (Observation(Ending.PROCESS_LIMIT, -9, None, refused_forks=5), (None, "process limit (64) reached")),
        # A limit that bit fails the run even when the script exited 0.
        (Observation(Ending.EXITED, 0, 0, refused_forks=1), (0, "process limit (64) reached")),
        (Observation(Ending.EXITED, 137, 137, memory_kills=1), (137, "memory limit (1 GiB) exceeded")),
        (Observation(Ending.EXITED, -9, None, memory_kills=2), (None, "memory limit (1 GiB) exceeded")),
        (Observation(Ending.EXITED, 152, 152), (152, "CPU time limit (60 s) exceeded")),
        (Observation(Ending.EXITED, 139, 139), (139, "killed by signal 11 (SIGSEGV)")),
        (Observation(Ending.EXITED, -15, None), (None, "killed by signal 15 (SIGTERM)")),
        (
            Observation(Ending.EXITED, 1, None, setup_error="bwrap: execvp /bin/sh: No such file or directory"),
            (None, "sandbox setup failed: bwrap: execvp /bin/sh: No such file or directory"),
        ),
    ],
)
def test_explain(observation: Observation, expected: tuple[int | None, str | None]) -> None:
    assert explain(observation, LIMITS) == expected


def test_output_tail_keeps_only_the_end() -> None:
    tail = OutputTail(10)
    for number in range(100_000):
        tail.feed(f"{number}\n".encode())
    assert tail.text() == "998\n99999\n"
    short = OutputTail(1000)
    short.feed(b"all of it\n")
    assert short.text() == "all of it\n"


def test_output_tail_drops_a_cut_character_and_replaces_bad_bytes() -> None:
    tail = OutputTail(4)
    tail.feed("aaaé€".encode())  # é = 2 bytes, € = 3 bytes: the last 4 bytes start inside é
    assert tail.text() == "€"
    bad = OutputTail(100)
    bad.feed(b"ok \xff\xfe end")
    assert bad.text() == "ok \ufffd\ufffd end"
    assert OutputTail(0).text() == ""


def test_starting_directory(tmp_path: Path) -> None:
    root, workspace = tmp_path / "root", tmp_path / "ws"
    (workspace / "src").mkdir(parents=True)
    (root / "opt" / "app").mkdir(parents=True)
    (root / "link").symlink_to("/etc")

    def start(working_directory: str) -> str:
        request = SandboxRequest(root, workspace, "true", {}, working_directory=working_directory)
        return starting_directory(request)

    assert start("/home/build") == WORKSPACE_MOUNT
    assert start("/home/build/src") == "/home/build/src"
    assert start("src") == "/home/build/src"  # relative: joined to the workspace, as melange does
    assert start("/opt/app") == "/opt/app"
    assert start("/home/build/missing") == WORKSPACE_MOUNT  # the script's own mkdir -p; cd handles it
    assert start("/link") == WORKSPACE_MOUNT  # never judged by following a symlink on the host


MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:8 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 /docker/abc /mnt/my\\040pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""

PROC_CGROUP = """\
9:name=systemd:/
8:pids:/docker/abc/inner
4:memory:/process_api/f0a1
2:cpu,cpuacct:/
0::/
"""


def test_cgroup_mounts_and_memberships() -> None:
    mounts = parse_v1_mounts(MOUNTINFO)
    assert mounts["memory"] == CgroupMount("/", Path("/sys/fs/cgroup/memory"))
    assert mounts["cpuacct"].mountpoint == Path("/sys/fs/cgroup/cpu,cpuacct")
    assert mounts["pids"] == CgroupMount("/docker/abc", Path("/mnt/my pids"))
    assert "cgroup2" not in mounts and "tmpfs" not in mounts
    memberships = parse_memberships(PROC_CGROUP)
    assert memberships == {
        "name=systemd": "/",
        "pids": "/docker/abc/inner",
        "memory": "/process_api/f0a1",
        "cpu": "/",
        "cpuacct": "/",
    }
    # A container sees only its subtree: the membership is made relative to the mount's root.
    assert group_directory(mounts["pids"], memberships["pids"]) == Path("/mnt/my pids/inner")
    assert group_directory(mounts["memory"], memberships["memory"]) == Path("/sys/fs/cgroup/memory/process_api/f0a1")


def test_cgroup_counters() -> None:
    assert parse_pids_events("max 17\n") == 17
    assert parse_pids_events("") == 0
    control = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"
    assert parse_oom_kills(control) == 2
    assert parse_oom_kills("oom_kill_disable 0\nunder_oom 0\n") is None


# --- real runs ----------------------------------------------------------------------------


def test_probe_reports_bwrap_and_cgroup_limits(sandbox: Bubblewrap) -> None:
    probe = sandbox.probe()
    assert probe.version.startswith("bubblewrap ")
    assert Path(probe.executable).name == "bwrap"
    assert probe.cgroup_limits, probe.fallback_reason  # this machine (and CI) has cgroup v1 pids+memory
    without = Bubblewrap(use_cgroups=False).probe()
    assert not without.cgroup_limits
    assert without.fallback_reason == "cgroup limits were turned off"


def test_passing_script(sandbox: Bubblewrap, root: Path, workspace: Path) -> None:
    outcome = run_step(sandbox, root, workspace, "echo hello; echo oops >&2; pwd")
    assert outcome == SandboxOutcome(0, outcome.duration, "hello\n/home/build\n", "oops\n", None)
    assert 0 < outcome.duration < 10


def test_failing_script_reports_its_exit_code(sandbox: Bubblewrap, root: Path, workspace: Path) -> None:
    outcome = run_step(sandbox, root, workspace, "echo before; exit 3; echo after")
    assert (outcome.exit_code, outcome.reason, outcome.stdout_tail) == (3, None, "before\n")


def test_set_e_stops_at_the_first_failing_command(sandbox: Bubblewrap, root: Path, workspace: Path) -> None:
    outcome = run_step(sandbox, root, workspace, "echo one; false; echo two")
    assert (outcome.exit_code, outcome.stdout_tail) == (1, "one\n")


def test_pipefail_fails_a_pipeline_whose_first_command_fails(sandbox: Bubblewrap, root: Path, workspace: Path) -> None:
    outcome = run_step(sandbox, root, workspace, "grep needle /nonexistent | cat; echo unreachable")
    assert outcome.exit_code == 2
    assert "unreachable" not in outcome.stdout_tail
    assert "nonexistent" in outcome.stderr_tail


def test_signal_deaths_are_named(sandbox: Bubblewrap, root: Path, workspace: Path) -> None:
    outcome = run_step(sandbox, root, workspace, "kill -SEGV $$")
    assert (outcome.exit_code, outcome.reason) == (128 + signal.SIGSEGV, "killed by signal 11 (SIGSEGV)")


def test_environment_is_exactly_the_request(
    sandbox: Bubblewrap, root: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_host_secret_0123")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-host-secret-4567")
    wanted = melange_environment(GOPATH="/home/build/.cache/go", SPACED="a b  c", EMPTY="")
    outcome = run_step(sandbox, root, workspace, "env", environment=wanted)
    seen = dict(line.split("=", 1) for line in outcome.stdout_tail.splitlines())
    # The shell adds PWD and SHLVL, the wrapper's cd OLDPWD; everything else is what was asked for.
    assert seen == {**wanted, "PWD": "/home/build", "OLDPWD": "/home/build", "SHLVL": "1"}


def test_uid_and_gid_from_the_request(sandbox: Bubblewrap, root: Path, workspace: Path) -> None:
    outcome = run_step(sandbox, root, workspace, "id -u; id -g; id -un; touch made-by-build", uid=1000, gid=1000)
    assert (outcome.exit_code, outcome.stdout_tail) == (0, "1000\n1000\nbuild\n")
    assert (workspace / "made-by-build").is_file()
    assert run_step(sandbox, root, workspace, "id -u").stdout_tail == "0\n"


def test_workspace_and_working_directory(sandbox: Bubblewrap, root: Path, workspace: Path) -> None:
    (workspace / "src").mkdir()
    (workspace / "src" / "input.txt").write_text("from the workspace\n")
    request = SandboxRequest(
        root,
        workspace,
        melange_script("pwd; cat input.txt; echo result > output.txt", "/home/build/src"),
        melange_environment(),
        working_directory="/home/build/src",
    )
    outcome = sandbox.run(request)
    assert (outcome.exit_code, outcome.stdout_tail) == (0, "/home/build/src\nfrom the workspace\n")
    assert (workspace / "src" / "output.txt").read_text() == "result\n"
    # A working directory that does not exist yet: melange's wrapper creates it.
    fresh = SandboxRequest(
        root, workspace, melange_script("pwd", "/home/build/new/dir"), {}, working_directory="/home/build/new/dir"
    )
    assert sandbox.run(fresh).stdout_tail == "/home/build/new/dir\n"


def test_hostname_and_stdin(sandbox: Bubblewrap, root: Path, workspace: Path) -> None:
    outcome = run_step(sandbox, root, workspace, "hostname; cat; echo stdin-was-empty")
    assert outcome.stdout_tail == "qackage\nstdin-was-empty\n"
    named = Bubblewrap(hostname="wolfi-test").run(
        SandboxRequest(root, workspace, melange_script("hostname"), melange_environment())
    )
    assert named.stdout_tail == "wolfi-test\n"


def test_output_is_decoded_with_replacement(sandbox: Bubblewrap, root: Path, workspace: Path) -> None:
    outcome = run_step(sandbox, root, workspace, r"printf 'caf\303\251 \377\n'")
    assert outcome.stdout_tail == "café \ufffd\n"


def test_a_root_without_a_shell_is_a_setup_failure(sandbox: Bubblewrap, workspace: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty-root"
    empty.mkdir()
    outcome = sandbox.run(SandboxRequest(empty, workspace, "true", {}))
    assert outcome.exit_code is None
    assert outcome.reason is not None
    assert outcome.reason.startswith("sandbox setup failed: bwrap: execvp /bin/sh")


def test_missing_bwrap_is_an_environment_problem(root: Path, workspace: Path) -> None:
    reason = Bubblewrap.available("/nonexistent/bwrap")
    assert reason is not None and "bubblewrap" in reason and "not installed" in reason
    with pytest.raises(EnvironmentProblem, match="not installed"):
        Bubblewrap("/nonexistent/bwrap").run(SandboxRequest(root, workspace, "true", {}))
    with pytest.raises(EnvironmentProblem):
        Bubblewrap("/nonexistent/bwrap").probe()


def test_bad_requests_are_input_errors(sandbox: Bubblewrap, root: Path, workspace: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="root"):
        sandbox.run(SandboxRequest(tmp_path / "nowhere", workspace, "true", {}))
    with pytest.raises(InputError, match="workspace"):
        sandbox.run(SandboxRequest(root, tmp_path / "nowhere", "true", {}))
    with pytest.raises(InputError, match="environment variable"):
        sandbox.run(SandboxRequest(root, workspace, "true", {"A=B": "c"}))
    with pytest.raises(InputError, match="NUL"):
        sandbox.run(SandboxRequest(root, workspace, "echo \0", {}))


def test_each_run_starts_from_its_own_root(sandbox: Bubblewrap, template_root: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    first = copy_root(template_root, tmp_path / "first")
    second = copy_root(template_root, tmp_path / "second")
    assert run_step(sandbox, first, workspace, "echo state > /etc/marker").exit_code == 0
    outcome = run_step(sandbox, second, workspace, "test ! -e /etc/marker && echo clean")
    assert outcome.stdout_tail == "clean\n"
    assert (first / "etc" / "marker").read_text() == "state\n"
    assert not (template_root / "etc" / "marker").exists()
    assert os.path.lexists(second / "bin" / "sh")


# --- overlays (host-base roots) -------------------------------------------------------------


def make_overlay(base: Path, target: str = "opt") -> OverlayMount:
    high, low, upper, work = (base / name for name in ("high", "low", "upper", "work"))
    for folder in (high, low, upper, work):
        folder.mkdir(parents=True)
    (high / "shared").write_text("from high\n")
    (low / "shared").write_text("from low\n")
    (low / "only-low").write_text("low only\n")
    return OverlayMount(target=target, lower=(high, low), upper=upper, work=work)


def test_overlay_command_mounts_privately_then_execs_bwrap(tmp_path: Path) -> None:
    overlay = OverlayMount("usr", (Path("/a"), Path("/b")), Path("/u"), Path("/w"))
    tools = OverlayTools(unshare="/usr/bin/unshare", shell="/bin/sh", mount="/bin/mount")
    words = overlay_prefix([overlay], tmp_path, tools)
    assert words[:5] == ["/usr/bin/unshare", "--mount", "--propagation", "private", "--"]
    assert words[5:7] == ["/bin/sh", "-c"]
    assert words[8:] == ["qackage-overlays", "/bin/mount", "1", "/a:/b", "/u", "/w", str(tmp_path / "usr")]
    assert overlay_prefix([], tmp_path, tools) == []


def test_overlays_are_checked(root: Path, tmp_path: Path) -> None:
    good = make_overlay(tmp_path / "layers")
    (root / "opt").mkdir()
    check_overlays([good], root)
    (root / "linked").symlink_to("/usr")
    bad_targets = ["", "/opt", "../opt", "missing", "linked"]
    for target in bad_targets:
        with pytest.raises(InputError, match="overlay target"):
            check_overlays([OverlayMount(target, good.lower, good.upper, good.work)], root)
    with pytest.raises(InputError, match="no lower"):
        check_overlays([OverlayMount("opt", (), good.upper, good.work)], root)
    odd = tmp_path / "a:b"
    odd.mkdir()
    with pytest.raises(InputError, match="contains"):
        check_overlays([OverlayMount("opt", (odd,), good.upper, good.work)], root)
    with pytest.raises(InputError, match="not an existing"):
        check_overlays([OverlayMount("opt", good.lower, tmp_path / "absent", good.work)], root)


def test_overlays_are_seen_inside_and_never_on_the_host(
    sandbox: Bubblewrap, root: Path, workspace: Path, tmp_path: Path
) -> None:
    overlay = make_overlay(tmp_path / "layers")
    (root / "opt").mkdir()
    request = SandboxRequest(
        root,
        workspace,
        melange_script("cat /opt/shared /opt/only-low; echo written > /opt/new; rm /opt/only-low; ls /opt"),
        melange_environment(),
        overlays=(overlay,),
    )
    outcome = sandbox.run(request)
    assert (outcome.exit_code, outcome.stdout_tail) == (0, "from high\nlow only\nnew\nshared\n"), outcome.stderr_tail
    assert (overlay.upper / "new").read_text() == "written\n"  # writes land in the upper folder
    assert (overlay.lower[1] / "only-low").read_text() == "low only\n"  # lower folders never change
    assert list((root / "opt").iterdir()) == []  # mounted only in the run's private namespace
    assert str(overlay.upper) not in Path("/proc/self/mountinfo").read_text()


def test_a_failed_overlay_mount_is_an_environment_problem(
    sandbox: Bubblewrap, root: Path, workspace: Path, tmp_path: Path
) -> None:
    overlay = make_overlay(tmp_path / "layers")
    (root / "opt").mkdir()
    # overlayfs refuses a work folder on another file system than the upper one (/dev/shm is tmpfs).
    with TemporaryDirectory(dir="/dev/shm") as elsewhere:
        mismatched = OverlayMount("opt", overlay.lower, overlay.upper, Path(elsewhere))
        with pytest.raises(EnvironmentProblem, match="sandbox could not start: qackage-overlays: cannot mount"):
            sandbox.run(SandboxRequest(root, workspace, "true", {}, overlays=(mismatched,)))
