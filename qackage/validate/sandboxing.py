"""The interface between the runner and a sandbox implementation (bubblewrap)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    wall_seconds: float = 300.0
    cpu_seconds: int = 600
    memory_bytes: int = 4 << 30
    max_processes: int = 256
    output_tail_bytes: int = 8192  # how much of stdout/stderr the report keeps (the end)


@dataclass(frozen=True, slots=True)
class OverlayMount:
    """An overlayfs mounted at ``root/target`` for the run (host-base mode): the package
    tree above the host's directory, writes going to ``upper``."""

    target: str  # relative to the root: "usr", "etc" ...
    lower: tuple[Path, ...]  # highest priority first
    upper: Path
    work: Path


@dataclass(frozen=True, slots=True)
class SandboxRequest:
    """Run ``script`` with ``/bin/sh -c 'set -eo pipefail; ...'`` inside ``root``."""

    root: Path  # becomes / (writable: each test block gets its own copy)
    workspace: Path  # bound at /home/build
    script: str
    environment: Mapping[str, str]  # exactly what the process sees; nothing leaks from the host
    working_directory: str = "/home/build"
    uid: int = 0
    gid: int = 0
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    overlays: tuple[OverlayMount, ...] = ()
    # melange runs /bin/sh (busybox ash in Wolfi). A host-base root may pick another
    # shell that understands `set -o pipefail` when the host's sh (dash) does not.
    shell: tuple[str, ...] = ("/bin/sh",)


@dataclass(frozen=True, slots=True)
class SandboxOutcome:
    exit_code: int | None  # None when killed before it could exit
    duration: float
    stdout_tail: str
    stderr_tail: str
    reason: str | None = None  # "timed out after 30 s", "process limit (256) reached", ...


class Sandbox(Protocol):
    def run(self, request: SandboxRequest) -> SandboxOutcome: ...
