"""Run probe commands in the package's test root and record what they showed.

Probes are how the proposer learns what a package does before it proposes a check: each
runs exactly like a test step (same root, same sandbox, same melange wrapper and
environment), so what a probe observed is what a step asserting it will see.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from qackage.melange.substitution import DEFAULT_BUILD_ENVIRONMENT
from qackage.model import ProbeCommand, ProbeResult
from qackage.validate.compile import DEFAULT_PATH, runner_script
from qackage.validate.runner import PreparedRoot
from qackage.validate.sandboxing import Sandbox, SandboxLimits, SandboxRequest

WORKSPACE = "/home/build"
# Probes print help texts and sample outputs; more than this is never needed to propose.
PROBE_OUTPUT_BYTES = 64 * 1024

# Builds a root holding the package under test plus the named extra packages.
ProbeRootFactory = Callable[[Path, tuple[str, ...]], PreparedRoot]


def probe_environment() -> dict[str, str]:
    return {**dict(DEFAULT_BUILD_ENVIRONMENT), "PATH": DEFAULT_PATH}


def _grouped(commands: Sequence[ProbeCommand]) -> dict[tuple[str, ...], list[ProbeCommand]]:
    """Commands by the extra packages their root needs, so each root is built once."""
    groups: dict[tuple[str, ...], list[ProbeCommand]] = {}
    for command in commands:
        groups.setdefault(tuple(sorted(set(command.packages))), []).append(command)
    return groups


def run_probes(
    commands: Sequence[ProbeCommand],
    *,
    make_root: ProbeRootFactory,
    sandbox: Sandbox,
    limits: SandboxLimits | None = None,
    scratch_dir: Path | None = None,
) -> dict[str, ProbeResult]:
    """Run every command; each gets a fresh workspace, commands needing the same extra
    packages share one root. Results are keyed by `ProbeCommand.key`."""
    base_limits = dataclasses.replace(limits or SandboxLimits(), output_tail_bytes=PROBE_OUTPUT_BYTES)
    keys = [c.key for c in commands]
    if len(set(keys)) != len(keys):
        raise ValueError("probe keys must be unique")
    results: dict[str, ProbeResult] = {}
    environment = probe_environment()
    for packages, group in _grouped(commands).items():
        with tempfile.TemporaryDirectory(prefix="qackage-probe-", dir=scratch_dir) as scratch:
            root_dir = Path(scratch) / "root"
            root_dir.mkdir()
            prepared = make_root(root_dir, packages)
            for number, command in enumerate(group):
                workspace = Path(scratch) / f"workspace-{number}"
                workspace.mkdir()
                outcome = sandbox.run(
                    SandboxRequest(
                        root=prepared.root,
                        workspace=workspace,
                        script=runner_script(WORKSPACE, command.script),
                        environment=environment,
                        working_directory=WORKSPACE,
                        uid=prepared.uid,
                        gid=prepared.gid,
                        limits=dataclasses.replace(
                            base_limits,
                            wall_seconds=command.timeout,
                            cpu_seconds=max(int(command.timeout) + 1, 1),
                        ),
                        overlays=prepared.overlays,
                        shell=prepared.shell,
                    )
                )
                results[command.key] = ProbeResult(
                    key=command.key,
                    exit_code=outcome.exit_code,
                    stdout=outcome.stdout_tail,
                    stderr=outcome.stderr_tail,
                    duration=round(outcome.duration, 3),
                    reason=outcome.reason,
                )
    return results
