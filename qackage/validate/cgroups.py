"""Per-run cgroup v1 groups that cap a sandbox's process count and memory.

Each sandbox run gets its own group in the ``pids`` and ``memory`` hierarchies, created as a
child of the group this process already belongs to (so limits set above us still apply).
The sandbox is moved in before its payload starts; afterwards the counters tell whether a
limit was hit, every process still inside is killed, and the groups are removed.

Discovery parses ``/proc/self/mountinfo`` and ``/proc/self/cgroup`` (pure functions below) and
then proves the hierarchies writable by creating and removing a group. When that fails the
caller gets a reason instead of a `CgroupSupport` and falls back to rlimits.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import signal
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import count
from pathlib import Path

from qackage.errors import EnvironmentProblem

CONTROLLERS = ("pids", "memory")
RUN_GROUP_PREFIX = "qackage-"
_run_numbers = count(1)
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True, slots=True)
class Hierarchy:
    """One mounted cgroup v1 hierarchy and where this process sits in it."""

    controller: str
    mountpoint: Path
    own_group: Path  # the directory of the group this process belongs to


@dataclass(frozen=True, slots=True)
class CgroupSupport:
    """Usable ``pids`` and ``memory`` hierarchies (found by `discover`)."""

    pids: Hierarchy
    memory: Hierarchy


@dataclass(frozen=True, slots=True)
class CgroupMount:
    root: str  # the part of the hierarchy the mount shows ("/" unless a container bind-mounted a subtree)
    mountpoint: Path


def parse_v1_mounts(mountinfo: str) -> dict[str, CgroupMount]:
    """Controller name -> mount, for every cgroup v1 mount in ``/proc/<pid>/mountinfo`` text."""
    mounts: dict[str, CgroupMount] = {}
    for line in mountinfo.splitlines():
        fields, separator, tail = line.partition(" - ")
        if not separator:
            continue
        filesystem, _source, super_options = [*tail.split(" "), "", ""][:3]
        columns = fields.split(" ")
        if filesystem != "cgroup" or len(columns) < 5:
            continue
        mount = CgroupMount(root=_unescape(columns[3]), mountpoint=Path(_unescape(columns[4])))
        for option in super_options.split(","):
            mounts.setdefault(option, mount)
    return mounts


def parse_memberships(proc_cgroup: str) -> dict[str, str]:
    """Controller name -> group path, from ``/proc/<pid>/cgroup`` text (v1 lines only)."""
    memberships: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or not parts[1]:
            continue  # the cgroup v2 line "0::/path" names no controller
        for controller in parts[1].split(","):
            memberships[controller] = parts[2]
    return memberships


def group_directory(mount: CgroupMount, membership: str) -> Path:
    """Where ``membership`` (a path in the whole hierarchy) appears under the mount."""
    root = mount.root.rstrip("/")
    relative = membership
    if root and (membership == root or membership.startswith(root + "/")):
        relative = membership[len(root) :]
    return mount.mountpoint / relative.lstrip("/")


def parse_pids_events(text: str) -> int:
    """How many forks the ``pids.max`` limit refused (the ``max`` counter of ``pids.events``)."""
    return _counter(text, "max") or 0


def parse_oom_kills(oom_control: str) -> int | None:
    """The ``oom_kill`` counter of ``memory.oom_control``; None on kernels too old to report it."""
    return _counter(oom_control, "oom_kill")


def discover(proc: Path = Path("/proc")) -> CgroupSupport | str:
    """The writable pids and memory hierarchies, or why per-run groups cannot be used."""
    try:
        mounts = parse_v1_mounts((proc / "self" / "mountinfo").read_text(encoding="utf-8"))
        memberships = parse_memberships((proc / "self" / "cgroup").read_text(encoding="utf-8"))
    except OSError as error:
        return f"cannot read this process's cgroups: {error.strerror}"
    found: dict[str, Hierarchy] = {}
    for controller in CONTROLLERS:
        if controller not in mounts or controller not in memberships:
            return f"the cgroup v1 {controller} controller is not mounted"
        mount = mounts[controller]
        found[controller] = Hierarchy(controller, mount.mountpoint, group_directory(mount, memberships[controller]))
    support = CgroupSupport(pids=found["pids"], memory=found["memory"])
    problem = _prove_writable(support)
    if problem:
        return problem
    remove_abandoned_groups(support)
    return support


class RunGroup:
    """The pids + memory groups of one sandbox run. Create with `RunGroup.create`."""

    def __init__(self, directories: Mapping[str, Path]) -> None:
        self._directories = dict(directories)

    @classmethod
    def create(cls, support: CgroupSupport, *, max_processes: int, memory_bytes: int) -> RunGroup:
        name = f"{RUN_GROUP_PREFIX}{os.getpid()}-{next(_run_numbers)}-{secrets.token_hex(3)}"
        group = cls({})
        try:
            for hierarchy in (support.pids, support.memory):
                directory = hierarchy.own_group / name
                directory.mkdir()
                group._directories[hierarchy.controller] = directory
            pids, memory = group._directories["pids"], group._directories["memory"]
            _write(pids / "pids.max", str(max_processes))
            _write(memory / "memory.limit_in_bytes", str(memory_bytes))
            # Without this, a machine with swap would let the payload swap past the limit.
            swap_limit = memory / "memory.memsw.limit_in_bytes"
            if swap_limit.exists():
                _write(swap_limit, str(memory_bytes))
        except OSError as error:
            with contextlib.suppress(EnvironmentProblem):
                group.remove()
            raise EnvironmentProblem(f"cannot set up a cgroup for the sandbox: {error}") from error
        return group

    @property
    def directories(self) -> Mapping[str, Path]:
        return dict(self._directories)

    def add(self, pid: int) -> None:
        """Move ``pid`` (alone: its existing children stay where they are) into both groups."""
        for directory in self._directories.values():
            _write(directory / "cgroup.procs", str(pid))

    def refused_forks(self) -> int:
        return parse_pids_events(_read(self._directories["pids"] / "pids.events"))

    def memory_kills(self) -> int:
        """Processes the kernel killed for exceeding the memory limit (failures to charge if unknown)."""
        memory = self._directories["memory"]
        kills = parse_oom_kills(_read(memory / "memory.oom_control"))
        if kills is not None:
            return kills
        failures = _read(memory / "memory.failcnt").strip()
        return int(failures) if failures.isdigit() else 0

    def members(self) -> set[int]:
        pids: set[int] = set()
        for directory in self._directories.values():
            pids.update(int(word) for word in _read(directory / "cgroup.procs").split())
        return pids

    def kill_all(self, timeout: float = 10.0) -> bool:
        """SIGKILL every member until none is left; False if some survived ``timeout`` seconds.

        Repeated because a member may fork between the listing and the kill; ``pids.max`` bounds
        how many it can make, so this converges.
        """
        deadline = time.monotonic() + timeout
        pause = 0.001
        while True:
            members = self.members()
            if not members:
                return True
            if time.monotonic() > deadline:
                return False
            for pid in members:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def remove(self, timeout: float = 10.0) -> None:
        """Kill what is left and remove the groups; EnvironmentProblem if that proves impossible."""
        if not self.kill_all(timeout):
            raise EnvironmentProblem(f"sandbox processes survived SIGKILL in {sorted(self._directories.values())}")
        deadline = time.monotonic() + timeout
        for directory in self._directories.values():
            _remove_directory(directory, deadline)
        self._directories.clear()


def remove_abandoned_groups(support: CgroupSupport) -> None:
    """Remove empty run groups left behind by qackage processes that no longer exist."""
    for hierarchy in (support.pids, support.memory):
        for directory in _run_groups(hierarchy.own_group.iterdir()):
            owner = _owner_pid(directory.name)
            if owner is None or owner == os.getpid() or _alive(owner):
                continue
            with contextlib.suppress(OSError):
                directory.rmdir()  # fails (EBUSY) when it still holds processes: left alone


def run_groups_of(support: CgroupSupport, owner: int) -> list[Path]:
    """The run groups that process ``owner`` has created and not yet removed."""
    prefix = f"{RUN_GROUP_PREFIX}{owner}-"
    return [
        directory
        for hierarchy in (support.pids, support.memory)
        for directory in _run_groups(hierarchy.own_group.iterdir())
        if directory.name.startswith(prefix)
    ]


def _prove_writable(support: CgroupSupport) -> str | None:
    try:
        RunGroup.create(support, max_processes=1, memory_bytes=1 << 20).remove()
    except EnvironmentProblem as problem:
        return problem.message
    return None


def _run_groups(entries: Iterable[Path]) -> list[Path]:
    return [entry for entry in entries if entry.name.startswith(RUN_GROUP_PREFIX) and entry.is_dir()]


def _owner_pid(name: str) -> int | None:
    owner = name.removeprefix(RUN_GROUP_PREFIX).split("-", 1)[0]
    return int(owner) if owner.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_directory(directory: Path, deadline: float) -> None:
    # A killed task leaves the group a moment after it dies, so EBUSY is retried briefly.
    while True:
        try:
            directory.rmdir()
        except FileNotFoundError:
            return
        except OSError as error:
            if error.errno != errno.EBUSY or time.monotonic() > deadline:
                raise EnvironmentProblem(f"cannot remove the sandbox cgroup {directory}: {error.strerror}") from error
            time.sleep(0.002)
        else:
            return


def _counter(text: str, name: str) -> int | None:
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == name and value.strip().isdigit():
            return int(value)
    return None


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash in paths as octal escapes.
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def _read(path: Path) -> str:
    return path.read_text(encoding="ascii")


def _write(path: Path, value: str) -> None:
    # cgroup files want one write(2) per value; open without truncating or buffering tricks.
    descriptor = os.open(path, os.O_WRONLY)
    try:
        os.write(descriptor, value.encode("ascii"))
    finally:
        os.close(descriptor)
