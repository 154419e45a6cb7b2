"""The bubblewrap sandbox: one test step in a private root, with hard limits and no leftovers.

`Bubblewrap.run` starts ``bwrap`` with every namespace unshared (the network has only its
own loopback), the request's root at ``/``, the workspace at ``/home/build`` and exactly the
requested environment. bwrap is told to stop before it starts the payload (``--block-fd``)
and to report the sandbox's first process (``--json-status-fd``); in that pause both bwrap
processes are moved into a fresh cgroup (process count, memory) and given RLIMIT_CPU, so
everything the script forks is born inside the limits. When cgroups cannot be used, rlimits
stand in for them (weaker: per process, and no reason reported when they bite).

Whatever happens, the run ends with no process left: bwrap's own process is killed (its
``--die-with-parent`` takes the pid namespace, daemons included, down with it) and then
every member of the cgroup is killed before the groups are removed.

Overlays (host-base roots) are mounted before bwrap starts, in a private mount namespace
(`qackage.validate.overlay`): bwrap's recursive bind of the root carries them into the
sandbox, the host never sees them, and they vanish with the last process of the run.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import posixpath
import resource
import selectors
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qackage.errors import EnvironmentProblem, InputError
from qackage.validate.cgroups import CgroupSupport, RunGroup, discover
from qackage.validate.overlay import MESSAGE_PREFIX as OVERLAY_MESSAGE_PREFIX
from qackage.validate.overlay import OverlayTools, check_overlays, find_overlay_tools, overlay_prefix, plain_directory
from qackage.validate.sandboxing import SandboxLimits, SandboxOutcome, SandboxRequest

WORKSPACE_MOUNT = "/home/build"
DEFAULT_HOSTNAME = "qackage"
# bwrap's monitor (outside) and the namespace's init (pid 1) live in the run's cgroup too.
BWRAP_PROCESSES = 2
_TICK = 0.05  # seconds between looks at the process-limit counter
_DRAIN_SECONDS = 2.0  # output still in flight after the last process died
_PROBE_SECONDS = 30.0
_READ_CHUNK = 1 << 16


class Ending(enum.Enum):
    """Why supervision stopped."""

    EXITED = "exited"
    TIMED_OUT = "timed out"
    PROCESS_LIMIT = "process limit"


@dataclass(frozen=True, slots=True)
class Observation:
    """What one run looked like from outside; `explain` turns it into an exit code and reason."""

    ending: Ending
    monitor_status: int | None  # bwrap's own return code (negative: killed by that signal)
    payload_status: int | None  # the script's status as bwrap reported it; None if it never ran
    refused_forks: int = 0
    memory_kills: int = 0
    setup_error: str | None = None  # bwrap's message when it failed before the script started


@dataclass(frozen=True, slots=True)
class SandboxProbe:
    """What `Bubblewrap.probe` found: the runner logs it once."""

    executable: str
    version: str
    cgroup_limits: bool  # False: memory and process limits fall back to per-process rlimits
    fallback_reason: str | None = None  # why cgroups are not used


class OutputTail:
    """Keeps the last ``limit`` bytes of a stream, however much passes through."""

    def __init__(self, limit: int) -> None:
        self._limit = max(limit, 0)
        self._buffer = bytearray()
        self._truncated = False

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        # Trim only once the buffer has doubled, so a stream costs O(total) copying.
        if len(self._buffer) > 2 * self._limit + _READ_CHUNK:
            del self._buffer[: len(self._buffer) - self._limit]
            self._truncated = True

    def text(self) -> str:
        kept = bytes(self._buffer[len(self._buffer) - self._limit :]) if self._limit else b""
        if self._truncated or len(kept) < len(self._buffer):
            kept = _skip_partial_character(kept)
        return kept.decode("utf-8", errors="replace")


def bwrap_arguments(
    request: SandboxRequest,
    *,
    executable: str,
    hostname: str,
    directory: str,
    status_fd: int,
    block_fd: int,
) -> list[str]:
    """The bwrap command line for ``request`` (no I/O)."""
    arguments = [
        executable,
        "--unshare-all",
        "--unshare-user",  # --unshare-all only tries; uid/gid mapping needs it for sure
        "--uid",
        str(request.uid),
        "--gid",
        str(request.gid),
        "--hostname",
        hostname,
        "--die-with-parent",
        "--new-session",
        "--clearenv",
    ]
    for name, value in request.environment.items():
        arguments += ["--setenv", name, value]
    arguments += [
        "--bind",
        str(request.root),
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--tmpfs",
        "/run",
        "--bind",
        str(request.workspace),
        WORKSPACE_MOUNT,
        "--chdir",
        directory,
        "--json-status-fd",
        str(status_fd),
        "--block-fd",
        str(block_fd),
        "--",
        *request.shell,
        "-c",
        request.script,
    ]
    return arguments


def explain(observation: Observation, limits: SandboxLimits) -> tuple[int | None, str | None]:
    """The outcome's exit code and reason for what was observed."""
    if observation.ending is Ending.TIMED_OUT:
        return None, f"timed out after {describe_seconds(limits.wall_seconds)}"
    if observation.ending is Ending.PROCESS_LIMIT:
        return None, process_limit_reason(limits)
    status = observation.payload_status
    if status is None:
        if observation.memory_kills:
            return None, memory_limit_reason(limits)
        if observation.monitor_status is not None and observation.monitor_status < 0:
            return None, signal_reason(-observation.monitor_status)
        return None, f"sandbox setup failed: {observation.setup_error or 'bwrap gave no reason'}"
    # A limit that bit fails the run even if the script shrugged it off (``cmd || true``).
    if observation.memory_kills:
        return status, memory_limit_reason(limits)
    if observation.refused_forks:
        return status, process_limit_reason(limits)
    if status == 0:
        return 0, None
    signal_number = status - 128
    if signal_number == signal.SIGXCPU:
        return status, f"CPU time limit ({limits.cpu_seconds} s) exceeded"
    # A shell reports a command killed by signal N as status 128+N (so does bwrap for the shell).
    if signal_number > 0 and _signal_name(signal_number):
        return status, signal_reason(signal_number)
    return status, None


def process_limit_reason(limits: SandboxLimits) -> str:
    return f"process limit ({limits.max_processes}) reached"


def memory_limit_reason(limits: SandboxLimits) -> str:
    return f"memory limit ({describe_bytes(limits.memory_bytes)}) exceeded"


def signal_reason(number: int) -> str:
    name = _signal_name(number)
    return f"killed by signal {number} ({name})" if name else f"killed by signal {number}"


def describe_seconds(seconds: float) -> str:
    return f"{seconds:g} s"


def describe_bytes(count: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{count} bytes"


def starting_directory(request: SandboxRequest) -> str:
    """The directory to start in: the working directory when it already exists, else the workspace.

    melange's wrapper (already in the script) creates and enters a missing working directory
    itself, so falling back is harmless. Existence is checked on the host side of the bind
    mounts without following symlinks, which could point anywhere on the host.
    """
    wanted = posixpath.normpath(posixpath.join(WORKSPACE_MOUNT, request.working_directory))
    if wanted == WORKSPACE_MOUNT or wanted.startswith(WORKSPACE_MOUNT + "/"):
        base, inner = request.workspace, posixpath.relpath(wanted, WORKSPACE_MOUNT)
    else:
        base, inner = request.root, wanted.lstrip("/")
    return wanted if plain_directory(base, inner) else WORKSPACE_MOUNT


class Bubblewrap:
    """A `Sandbox` that runs each request in its own bwrap container.

    ``executable`` defaults to ``bwrap`` on PATH; ``use_cgroups=False`` forces the rlimit
    fallback (used where cgroups are unavailable, and by tests of that path).
    """

    def __init__(
        self, executable: str | None = None, *, hostname: str = DEFAULT_HOSTNAME, use_cgroups: bool = True
    ) -> None:
        self._requested = executable or "bwrap"
        self._hostname = hostname
        self._use_cgroups = use_cgroups
        self._lock = threading.Lock()
        self._cgroups: CgroupSupport | str | None = None

    @classmethod
    def available(cls, executable: str | None = None) -> str | None:
        """None when bubblewrap can run sandboxes here, else the reason it cannot."""
        try:
            cls(executable).probe()
        except EnvironmentProblem as problem:
            return problem.message
        return None

    def probe(self) -> SandboxProbe:
        """Check that bwrap runs and can create namespaces; EnvironmentProblem when not."""
        executable = self.executable()
        version = _run_probe([executable, "--version"]).stdout.strip()
        # The same namespaces a run uses, around a program the host surely has: bwrap itself.
        namespaces = ["--unshare-all", "--unshare-user", "--die-with-parent"]
        mounts = ["--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"]
        trial = _run_probe([executable, *namespaces, *mounts, "--", executable, "--version"])
        if trial.returncode != 0:
            raise EnvironmentProblem(
                f"bubblewrap cannot create a sandbox here ({_last_line(trial.stderr) or trial.returncode})"
                f"{_user_namespace_hint()}"
            )
        support = self.cgroups()
        if isinstance(support, CgroupSupport):
            return SandboxProbe(executable, version, cgroup_limits=True)
        return SandboxProbe(executable, version, cgroup_limits=False, fallback_reason=support)

    def executable(self) -> str:
        found = shutil.which(self._requested)
        if found is None:
            raise EnvironmentProblem(
                f"bubblewrap ({self._requested}) is not installed or not on PATH; install the bubblewrap package"
            )
        return found

    def overlay_tools(self) -> OverlayTools:
        """The host programs overlays need; EnvironmentProblem when they cannot be used."""
        return find_overlay_tools()

    def cgroups(self) -> CgroupSupport | str:
        """The cgroup hierarchies runs use, or why they use rlimits instead (looked up once)."""
        with self._lock:
            if self._cgroups is None:
                self._cgroups = discover() if self._use_cgroups else "cgroup limits were turned off"
            return self._cgroups

    def run(self, request: SandboxRequest) -> SandboxOutcome:
        executable = self.executable()
        _check_request(request)
        check_overlays(request.overlays, request.root)
        launcher = overlay_prefix(request.overlays, request.root, self.overlay_tools()) if request.overlays else []
        support = self.cgroups()
        limits = request.limits
        group = None
        if isinstance(support, CgroupSupport):
            group = RunGroup.create(
                support, max_processes=limits.max_processes + BWRAP_PROCESSES, memory_bytes=limits.memory_bytes
            )
        try:
            return _Run(request, launcher, executable, self._hostname, group).execute()
        finally:
            if group is not None:
                group.remove()


class _Run:
    """One execution: start bwrap, confine it, supervise, tear everything down."""

    def __init__(
        self, request: SandboxRequest, launcher: list[str], executable: str, hostname: str, group: RunGroup | None
    ) -> None:
        self.request = request
        self.launcher = launcher  # what execs bwrap after mounting overlays; empty without overlays
        self.executable = executable
        self.hostname = hostname
        self.group = group
        self.stdout = OutputTail(request.limits.output_tail_bytes)
        self.stderr = OutputTail(request.limits.output_tail_bytes)

    def execute(self) -> SandboxOutcome:
        limits = self.request.limits
        started = time.monotonic()
        deadline = started + limits.wall_seconds
        with _Pipe() as status_pipe, _Pipe() as block_pipe:
            arguments = self.launcher + bwrap_arguments(
                self.request,
                executable=self.executable,
                hostname=self.hostname,
                directory=starting_directory(self.request),
                status_fd=status_pipe.write_end,
                block_fd=block_pipe.read_end,
            )
            process = _start(arguments, keep=(status_pipe.write_end, block_pipe.read_end))
            # Only bwrap may hold these ends: EOF on the status pipe then means bwrap is gone.
            status_pipe.close_write_end()
            block_pipe.close_read_end()
            with process, _ExitNotice(process) as exit_notice:
                status = _StatusReader(status_pipe.read_end)
                ending = Ending.EXITED
                started_sandbox = False
                try:
                    child = status.child_pid(deadline)
                    if child is not None:
                        started_sandbox = True
                        self._confine(process.pid, child)
                        with contextlib.suppress(BrokenPipeError):
                            os.write(block_pipe.write_end, b"\n")  # the payload starts now
                        ending = self._supervise(process, exit_notice, deadline)
                    elif process.poll() is None and time.monotonic() >= deadline:
                        ending = Ending.TIMED_OUT
                finally:
                    self._stop(process)
                if not started_sandbox and ending is Ending.EXITED:
                    # No namespaces, no child: the machine is at fault, not the test.
                    stderr = self.stderr.text()
                    message = _bwrap_message(stderr) or _last_line(stderr) or f"exit status {process.returncode}"
                    raise EnvironmentProblem(f"the sandbox could not start: {message}")
                observation = Observation(
                    ending=ending,
                    monitor_status=process.returncode,
                    payload_status=status.exit_code(),
                    refused_forks=self.group.refused_forks() if self.group else 0,
                    memory_kills=self.group.memory_kills() if self.group else 0,
                    setup_error=_bwrap_message(self.stderr.text()),
                )
        exit_code, reason = explain(observation, limits)
        return SandboxOutcome(
            exit_code=exit_code,
            duration=time.monotonic() - started,
            stdout_tail=self.stdout.text(),
            stderr_tail=self.stderr.text(),
            reason=reason,
        )

    def _confine(self, monitor: int, child: int) -> None:
        """Put both bwrap processes under the limits while the payload is still blocked."""
        limits = self.request.limits
        try:
            if self.group is not None:
                self.group.add(monitor)
                self.group.add(child)
            # Soft limit sends SIGXCPU (reported as the CPU reason); a second later SIGKILL follows.
            resource.prlimit(child, resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
            resource.prlimit(child, resource.RLIMIT_CORE, (0, 0))
            if self.group is None:
                resource.prlimit(child, resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
                if os.getuid() != 0:  # root ignores RLIMIT_NPROC
                    # It counts every process of the (host) user, so leave room for those running now.
                    cap = limits.max_processes + _processes_of(os.getuid())
                    resource.prlimit(child, resource.RLIMIT_NPROC, (cap, cap))
        except ProcessLookupError:
            return  # bwrap died during setup; the outcome reports its message
        except OSError as error:
            raise EnvironmentProblem(f"cannot apply the sandbox limits: {error}") from error

    def _supervise(self, process: subprocess.Popen[bytes], exit_notice: int | None, deadline: float) -> Ending:
        with _OutputPump(process, self.stdout, self.stderr, exit_notice) as pump:
            next_check = 0.0
            while True:
                now = time.monotonic()
                if process.poll() is not None:
                    return Ending.EXITED
                if now >= deadline:
                    return Ending.TIMED_OUT
                if self.group is not None and now >= next_check:
                    if self.group.refused_forks():
                        return Ending.PROCESS_LIMIT
                    next_check = now + _TICK
                pump.pump(min(deadline - now, _TICK))

    def _stop(self, process: subprocess.Popen[bytes]) -> None:
        """Leave nothing running, then collect the output still in the pipes."""
        if process.poll() is None:
            process.kill()  # --die-with-parent: the namespace's init and all under it die too
        process.wait()
        if self.group is not None and not self.group.kill_all():
            raise EnvironmentProblem("sandbox processes survived SIGKILL")
        with _OutputPump(process, self.stdout, self.stderr, None) as pump:
            pump.drain(time.monotonic() + _DRAIN_SECONDS)


class _StatusReader:
    """Reads bwrap's ``--json-status-fd`` lines: the child pid first, the exit code last."""

    def __init__(self, descriptor: int) -> None:
        self._descriptor = descriptor
        self._pending = b""
        self._records: list[dict[str, object]] = []
        self._closed = False

    def child_pid(self, deadline: float) -> int | None:
        """The sandbox's first process (host pid); None if bwrap ended or ``deadline`` passed first."""
        while True:
            for record in self._records:
                pid = record.get("child-pid")
                if isinstance(pid, int):
                    return pid
            remaining = deadline - time.monotonic()
            if self._closed or remaining <= 0:
                return None
            self._read(remaining)

    def exit_code(self) -> int | None:
        """The script's exit status, present only if the script really started. Call after bwrap exited."""
        while not self._closed and self._read(_DRAIN_SECONDS):
            pass
        for record in self._records:
            code = record.get("exit-code")
            if isinstance(code, int):
                return code
        return None

    def _read(self, timeout: float) -> bool:
        """Read what is there within ``timeout``; False if nothing came."""
        with selectors.DefaultSelector() as selector:
            selector.register(self._descriptor, selectors.EVENT_READ)
            if not selector.select(timeout):
                return False
        chunk = os.read(self._descriptor, _READ_CHUNK)
        if not chunk:
            self._closed = True
        self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        for line in lines:
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    self._records.append(record)
        return True


class _OutputPump:
    """Moves whatever stdout/stderr have into their tails without ever blocking long."""

    def __init__(
        self, process: subprocess.Popen[bytes], stdout: OutputTail, stderr: OutputTail, exit_notice: int | None
    ) -> None:
        self._selector = selectors.DefaultSelector()
        for stream, tail in ((process.stdout, stdout), (process.stderr, stderr)):
            if stream is not None and not stream.closed:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.register(stream.fileno(), selectors.EVENT_READ, tail)
        self._exit_notice = exit_notice
        if exit_notice is not None:
            self._selector.register(exit_notice, selectors.EVENT_READ, None)

    def __enter__(self) -> _OutputPump:
        return self

    def __exit__(self, *_: object) -> None:
        self._selector.close()

    def pump(self, timeout: float) -> None:
        for key, _events in self._selector.select(max(timeout, 0.0)):
            if key.data is None:
                self._selector.unregister(key.fd)  # the exit notice: stays readable, look once
                continue
            chunk = os.read(key.fd, _READ_CHUNK)
            if chunk:
                key.data.feed(chunk)
            else:
                self._selector.unregister(key.fd)

    def drain(self, deadline: float) -> None:
        while self._open_streams() and time.monotonic() < deadline:
            self.pump(deadline - time.monotonic())

    def _open_streams(self) -> bool:
        return any(key.data is not None for key in self._selector.get_map().values())


class _ExitNotice:
    """A pidfd that becomes readable when the process exits (None where the kernel has none)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._descriptor: int | None = None
        with contextlib.suppress(OSError, AttributeError):
            self._descriptor = os.pidfd_open(process.pid)

    def __enter__(self) -> int | None:
        return self._descriptor

    def __exit__(self, *_: object) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)


class _Pipe:
    """An os.pipe() whose ends are closed exactly once (a second close could hit a reused number)."""

    def __init__(self) -> None:
        self.read_end, self.write_end = os.pipe()

    def close_read_end(self) -> None:
        if self.read_end >= 0:
            os.close(self.read_end)
            self.read_end = -1

    def close_write_end(self) -> None:
        if self.write_end >= 0:
            os.close(self.write_end)
            self.write_end = -1

    def __enter__(self) -> _Pipe:
        return self

    def __exit__(self, *_: object) -> None:
        self.close_read_end()
        self.close_write_end()


def _start(arguments: Sequence[str], *, keep: tuple[int, ...]) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            arguments,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=keep,
            # bwrap stays pid 1 of the sandbox, and its /proc/1/environ is readable inside.
            env={},
            start_new_session=True,  # a terminal's Ctrl-C reaches us, and we tear the sandbox down
        )
    except OSError as error:
        raise EnvironmentProblem(f"cannot start bubblewrap ({arguments[0]}): {error.strerror}") from error


def _check_request(request: SandboxRequest) -> None:
    for label, path in (("root", request.root), ("workspace", request.workspace)):
        if not path.is_dir():
            raise InputError(f"sandbox {label} {path} is not a directory")
    for name, value in request.environment.items():
        if not name or "=" in name or "\0" in name or "\0" in value:
            raise InputError(f"environment variable {name!r} cannot be passed to a process")
    if "\0" in request.script:
        raise InputError("the test script contains a NUL byte")
    if request.uid < 0 or request.gid < 0:
        raise InputError(f"invalid sandbox uid/gid {request.uid}/{request.gid}")


def _run_probe(arguments: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            arguments,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_PROBE_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise EnvironmentProblem(f"cannot run bubblewrap ({arguments[0]}): {error}") from error


def _user_namespace_hint() -> str:
    try:
        allowed = Path("/proc/sys/user/max_user_namespaces").read_text(encoding="ascii").strip()
    except OSError:
        return ""
    return "; user namespaces are disabled (sysctl user.max_user_namespaces=0)" if allowed == "0" else ""


def _bwrap_message(stderr: str) -> str | None:
    """The last line bwrap (or the overlay mounter) wrote about its own failure."""
    lines = [line for line in stderr.splitlines() if line.startswith(("bwrap: ", OVERLAY_MESSAGE_PREFIX))]
    return lines[-1] if lines else None


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def _processes_of(uid: int) -> int:
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                count += entry.stat().st_uid == uid
    return count


def _signal_name(number: int) -> str | None:
    try:
        return signal.Signals(number).name
    except ValueError:
        return None


def _skip_partial_character(data: bytes) -> bytes:
    # A cut tail may start inside a UTF-8 sequence: drop its continuation bytes (at most 3).
    start = 0
    while start < min(3, len(data)) and data[start] & 0xC0 == 0x80:
        start += 1
    return data[start:]
