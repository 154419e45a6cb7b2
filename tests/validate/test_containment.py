"""What the sandbox keeps in: network, host files, host secrets, runaway processes, leftovers.

Every check runs a real hostile script in real bwrap and then looks from the host.
"""

from __future__ import annotations

import os
import secrets
import select
import socket
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

# fixtures: pytest finds them in this module, the tests ask for them by name
from minroot import copy_root, root_fixture, run_step, sandbox_fixture, template_root_fixture, workspace_fixture  # noqa: F401

from qackage.validate.bubblewrap import Bubblewrap
from qackage.validate.cgroups import CgroupSupport, run_groups_of
from qackage.validate.sandboxing import SandboxLimits, SandboxOutcome


@pytest.fixture
def cgroup_support(sandbox: Bubblewrap) -> CgroupSupport:
    support = sandbox.cgroups()
    assert isinstance(support, CgroupSupport), support
    return support


def marker() -> int:
    """A sleep duration no other process on the host uses, to find it by its command line."""
    return 900_000 + secrets.randbelow(99_999)


def host_processes_with(argument: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # exited while we looked
        if argument.encode() in words:
            found.append(int(entry.name))
    return found


def assert_nothing_left(support: CgroupSupport, argument: str) -> None:
    assert host_processes_with(argument) == []
    assert run_groups_of(support, os.getpid()) == []


# --- secrets and host files ---------------------------------------------------------------


def test_host_secrets_are_nowhere_in_the_sandbox(
    sandbox: Bubblewrap, root: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "ghp_" + secrets.token_hex(12)
    monkeypatch.setenv("GITHUB_TOKEN", token)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + secrets.token_hex(12))
    # Not in our environment, and not in any process's, bwrap's own pid 1 included.
    outcome = run_step(sandbox, root, workspace, "env; cat /proc/[0-9]*/environ | tr '\\0' '\\n'")
    assert outcome.exit_code == 0
    assert "PATH=" in outcome.stdout_tail
    for name in ("GITHUB_TOKEN", "OPENAI_API_KEY", token, os.environ["OPENAI_API_KEY"]):
        assert name not in outcome.stdout_tail


def test_host_files_are_absent(sandbox: Bubblewrap, root: Path, workspace: Path, tmp_path: Path) -> None:
    host_secret = tmp_path / "host-only" / "secret.txt"
    host_secret.parent.mkdir()
    host_secret.write_text("host secret\n")
    assert Path("/etc/shadow").exists()  # the host has one; the sandbox must not see it
    outcome = run_step(
        sandbox,
        root,
        workspace,
        f"test ! -e /etc/shadow; test ! -e {host_secret.parent}; test ! -e {Path.cwd()}; "
        f"! grep -rs 'host secret' /etc /home /root /tmp /run; echo contained",
    )
    assert (outcome.exit_code, outcome.stdout_tail) == (0, "contained\n")


def test_only_sandbox_processes_are_visible(sandbox: Bubblewrap, root: Path, workspace: Path) -> None:
    outcome = run_step(
        sandbox, root, workspace, "cat /proc/[0-9]*/cmdline | tr '\\0' ' '; echo; ls -d /proc/[0-9]* | wc -l"
    )
    assert outcome.exit_code == 0
    assert "python" not in outcome.stdout_tail  # this test process is not among them
    assert int(outcome.stdout_tail.split()[-1]) <= 5  # bwrap's pid 1, the shell and its pipeline


def test_writes_reach_only_the_root_copy(sandbox: Bubblewrap, root: Path, workspace: Path) -> None:
    outside = Path("/var/tmp") / f"qackage-escape-{secrets.token_hex(6)}"  # not under a sandbox mount
    outcome = run_step(
        sandbox,
        root,
        workspace,
        f"echo root > /marker; mkdir -p {outside}; echo escaped > {outside}/file; echo private > /tmp/private",
    )
    assert outcome.exit_code == 0
    assert (root / "marker").read_text() == "root\n"
    assert not Path("/marker").exists()
    assert not outside.exists()  # the path was made inside the root copy, not on the host
    assert (root / outside.relative_to("/") / "file").read_text() == "escaped\n"
    assert not Path("/tmp/private").exists()  # /tmp inside is a private tmpfs
    assert not (root / "tmp" / "private").exists()


def test_the_host_tmp_is_invisible(sandbox: Bubblewrap, root: Path, workspace: Path) -> None:
    name = f"qackage-host-{secrets.token_hex(6)}"
    host_file = Path("/tmp") / name
    host_file.write_text("host\n")
    try:
        outcome = run_step(sandbox, root, workspace, f"test ! -e /tmp/{name}; touch /tmp/{name}-inside; ls -A /tmp")
    finally:
        host_file.unlink()
    assert (outcome.exit_code, outcome.stdout_tail) == (0, f"{name}-inside\n")
    assert not (Path("/tmp") / f"{name}-inside").exists()


# --- network ------------------------------------------------------------------------------


def test_no_network_but_loopback(sandbox: Bubblewrap, root: Path, workspace: Path) -> None:
    outcome = run_step(sandbox, root, workspace, "ip -o link | cut -d: -f2; ! nc 1.1.1.1 80 </dev/null")
    assert outcome.exit_code == 0, outcome.stderr_tail
    assert outcome.stdout_tail.split() == ["lo"]
    assert "Network is unreachable" in outcome.stderr_tail


def test_a_server_on_the_host_loopback_is_unreachable(sandbox: Bubblewrap, root: Path, workspace: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):
            pass  # reachable from the host itself
        server.accept()[0].close()
        outcome = run_step(sandbox, root, workspace, f"! nc 127.0.0.1 {port} </dev/null")
        readable, _, _ = select.select([server], [], [], 0.2)
    assert outcome.exit_code == 0
    assert "Connection refused" in outcome.stderr_tail
    assert readable == []  # nothing from the sandbox ever knocked


def test_loopback_inside_works_for_daemons(sandbox: Bubblewrap, root: Path, workspace: Path) -> None:
    outcome = run_step(
        sandbox,
        root,
        workspace,
        "nc -l -p 8123 > /tmp/received &\n"
        "for i in 1 2 3 4 5 6 7 8 9 10; do echo hello | nc 127.0.0.1 8123 && break; sleep 0.1; done\n"
        "wait; cat /tmp/received\n"
        "mkdir /tmp/www; echo page > /tmp/www/index.html\n"
        "httpd -p 127.0.0.1:8080 -h /tmp/www\n"
        "wget -q -O - http://127.0.0.1:8080/index.html",
    )
    assert (outcome.exit_code, outcome.stdout_tail) == (0, "hello\npage\n"), outcome.stderr_tail


# --- limits -------------------------------------------------------------------------------


def test_a_fork_bomb_is_stopped_by_the_process_limit(
    sandbox: Bubblewrap, root: Path, workspace: Path, cgroup_support: CgroupSupport
) -> None:
    limits = SandboxLimits(wall_seconds=60, max_processes=32)
    started = time.monotonic()
    # The script stays alive, as a test waiting on its daemon would: only the limit can end it early.
    outcome = run_step(sandbox, root, workspace, "bomb() { bomb | bomb & }; bomb; sleep 50", limits)
    assert outcome.reason == "process limit (32) reached"
    assert outcome.exit_code != 0
    assert time.monotonic() - started < 5
    assert run_groups_of(cgroup_support, os.getpid()) == []


def test_a_spawning_loop_is_ended_at_the_process_limit(
    sandbox: Bubblewrap, root: Path, workspace: Path, cgroup_support: CgroupSupport
) -> None:
    duration = marker()
    limits = SandboxLimits(wall_seconds=60, max_processes=16)
    outcome = run_step(sandbox, root, workspace, f"while true; do sleep {duration} & done", limits)
    assert outcome.reason == "process limit (16) reached"
    assert outcome.exit_code != 0  # None if we ended it first, 2 if the shell gave up on fork first
    assert outcome.duration < 5
    assert_nothing_left(cgroup_support, str(duration))


def test_a_memory_hog_is_stopped_by_the_memory_limit(
    sandbox: Bubblewrap, root: Path, workspace: Path, cgroup_support: CgroupSupport
) -> None:
    limits = SandboxLimits(wall_seconds=60, memory_bytes=64 << 20)
    # Command substitution keeps all 300 MB in the shell's memory.
    outcome = run_step(sandbox, root, workspace, "x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo ${#x}", limits)
    assert outcome.reason == "memory limit (64 MiB) exceeded"
    assert outcome.exit_code != 0
    assert outcome.stdout_tail == ""
    assert run_groups_of(cgroup_support, os.getpid()) == []


def test_the_wall_clock_deadline_kills_the_run(
    sandbox: Bubblewrap, root: Path, workspace: Path, cgroup_support: CgroupSupport
) -> None:
    duration = marker()
    outcome = run_step(sandbox, root, workspace, f"echo started; sleep {duration}", SandboxLimits(wall_seconds=1))
    assert (outcome.exit_code, outcome.reason) == (None, "timed out after 1 s")
    assert outcome.stdout_tail == "started\n"  # output up to the kill is kept
    assert 1 <= outcome.duration < 3
    assert_nothing_left(cgroup_support, str(duration))


def test_cpu_seconds_are_limited(sandbox: Bubblewrap, root: Path, workspace: Path) -> None:
    outcome = run_step(sandbox, root, workspace, "while :; do :; done", SandboxLimits(wall_seconds=30, cpu_seconds=1))
    assert (outcome.exit_code, outcome.reason) == (152, "CPU time limit (1 s) exceeded")
    assert outcome.duration < 10


# --- nothing survives ---------------------------------------------------------------------


def test_background_processes_and_daemons_do_not_survive(
    sandbox: Bubblewrap, root: Path, workspace: Path, cgroup_support: CgroupSupport
) -> None:
    duration = marker()
    outcome = run_step(
        sandbox,
        root,
        workspace,
        f"sleep {duration} &\nsetsid sleep {duration} &\nhttpd -p 127.0.0.1:8080 -h /tmp\necho started",
        uid=1000,
        gid=1000,
    )
    assert (outcome.exit_code, outcome.stdout_tail) == (0, "started\n")
    assert_nothing_left(cgroup_support, str(duration))
    assert host_processes_with("127.0.0.1:8080") == []


def test_output_tails_are_bounded(sandbox: Bubblewrap, root: Path, workspace: Path) -> None:
    limits = SandboxLimits(wall_seconds=60, output_tail_bytes=1000)
    tracemalloc.start()
    try:
        outcome = run_step(
            sandbox,
            root,
            workspace,
            "head -c 52428800 /dev/zero | tr '\\0' x; echo; echo THE-END; head -c 5000000 /dev/zero | tr '\\0' e >&2",
            limits,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.exit_code == 0
    assert outcome.stdout_tail == "x" * 991 + "\nTHE-END\n"
    assert outcome.stderr_tail == "e" * 1000
    assert peak < 2 << 20  # 55 MB went through; the sandbox held well under 2 MB of it


def test_concurrent_runs_stay_apart(sandbox: Bubblewrap, template_root: Path, tmp_path: Path) -> None:
    outcomes: dict[int, SandboxOutcome] = {}

    def one(number: int) -> None:
        base = tmp_path / str(number)
        root = copy_root(template_root, base / "root")
        (base / "ws").mkdir()
        outcomes[number] = run_step(sandbox, root, base / "ws", f"sleep 0.2; echo run {number}; exit {number}")

    threads = [threading.Thread(target=one, args=(number,)) for number in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {n: (o.exit_code, o.stdout_tail) for n, o in outcomes.items()} == {n: (n, f"run {n}\n") for n in range(1, 5)}


# --- without cgroups: rlimits and the pid namespace still contain the run --------------------


def test_fallback_without_cgroups_still_contains(root: Path, workspace: Path) -> None:
    fallback = Bubblewrap(use_cgroups=False)
    duration = marker()
    outcome = run_step(fallback, root, workspace, f"sleep {duration} & echo started")
    assert (outcome.exit_code, outcome.stdout_tail) == (0, "started\n")
    timed_out = run_step(fallback, root, workspace, f"sleep {duration}", SandboxLimits(wall_seconds=1))
    assert timed_out.reason == "timed out after 1 s"
    assert host_processes_with(str(duration)) == []
    # RLIMIT_AS stands in for the memory cgroup: the hog fails, without a named reason.
    hog = run_step(
        fallback,
        root,
        workspace,
        "x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo ${#x}",
        SandboxLimits(wall_seconds=60, memory_bytes=64 << 20),
    )
    assert hog.exit_code not in (0, None)
    assert hog.stdout_tail == ""
