"""Execute a `TestPlan`: a fresh root per attempt, each step in the sandbox, one report.

Effects are passed in: ``make_root`` builds a test root into a folder (from
repositories, or a host base), ``sandbox`` runs one script, ``clock`` times things.
Tests swap none of them for fakes of our own code; they pass the real ones.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from qackage.validate.plan import PlannedStep, TestPlan
from qackage.validate.report import (
    InstalledPackage,
    StepResult,
    StepStatus,
    TestEnvironmentReport,
    TestReport,
)
from qackage.validate.sandboxing import OverlayMount, Sandbox, SandboxLimits, SandboxRequest


@dataclass(frozen=True, slots=True)
class PreparedRoot:
    """What a root factory returns: where the root is and who runs in it."""

    root: Path
    uid: int = 0
    gid: int = 0
    installed: tuple[InstalledPackage, ...] = ()
    mode: str = "repository"
    warnings: tuple[str, ...] = ()
    overlays: tuple[OverlayMount, ...] = ()
    shell: tuple[str, ...] = ("/bin/sh",)


RootFactory = Callable[[Path], PreparedRoot]


@dataclass(frozen=True, slots=True)
class RunOptions:
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    repeat: int = 1
    # Run every step even after a failure (melange stops at the first); the proposer
    # uses it to learn which of its candidate steps pass.
    keep_going: bool = False
    # Files copied into /home/build before the first step (melange's --source-dir).
    source_dir: Path | None = None
    scratch_dir: Path | None = None  # where roots are built; a private temp dir by default


def _copy_sources(source_dir: Path | None, workspace: Path) -> None:
    """Regular files from the source dir, as melange binds them into the workspace."""
    if source_dir is None:
        return
    for path in sorted(source_dir.rglob("*")):
        if path.is_file() and not path.is_symlink():
            target = workspace / path.relative_to(source_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def _result(step: PlannedStep, status: StepStatus, **details: object) -> StepResult:
    return StepResult(
        number=step.number,
        title=step.title,
        trail=step.trail,
        uses=step.uses,
        status=status,
        **details,  # type: ignore[arg-type]
    )


def _run_once(
    plan: TestPlan, make_root: RootFactory, sandbox: Sandbox, options: RunOptions, scratch: Path
) -> tuple[tuple[StepResult, ...], PreparedRoot]:
    root_dir = scratch / "root"
    workspace = scratch / "workspace"
    root_dir.mkdir()
    workspace.mkdir()
    prepared = make_root(root_dir)
    _copy_sources(options.source_dir, workspace)
    results: list[StepResult] = []
    failed = False
    for step in plan.steps:
        if step.skipped_reason is not None:
            results.append(_result(step, StepStatus.SKIPPED, reason=step.skipped_reason))
            continue
        if failed and not options.keep_going:
            results.append(_result(step, StepStatus.NOT_RUN, reason="an earlier step failed"))
            continue
        outcome = sandbox.run(
            SandboxRequest(
                root=prepared.root,
                workspace=workspace,
                script=step.script,
                environment=dict(step.environment),
                working_directory=step.working_directory,
                uid=prepared.uid,
                gid=prepared.gid,
                limits=options.limits,
                overlays=prepared.overlays,
                shell=prepared.shell,
            )
        )
        passed = outcome.exit_code == 0 and outcome.reason is None
        failed = failed or not passed
        results.append(
            _result(
                step,
                StepStatus.PASSED if passed else StepStatus.FAILED,
                exit_code=outcome.exit_code,
                duration=round(outcome.duration, 3),
                stdout_tail=outcome.stdout_tail,
                stderr_tail=outcome.stderr_tail,
                reason=outcome.reason or (None if passed else f"exit code {outcome.exit_code}"),
            )
        )
    return tuple(results), prepared


def _flaky(attempts: list[tuple[StepResult, ...]]) -> tuple[str, ...]:
    """Steps that passed in one attempt and failed in another."""
    flaky: list[str] = []
    for position, first in enumerate(attempts[0]):
        statuses = {attempt[position].status for attempt in attempts}
        if {StepStatus.PASSED, StepStatus.FAILED} <= statuses:
            flaky.append(first.title)
    return tuple(flaky)


def run_plan(
    plan: TestPlan,
    *,
    make_root: RootFactory,
    sandbox: Sandbox,
    options: RunOptions | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> TestReport:
    """Run ``plan`` ``options.repeat`` times, each time in a freshly built root.

    The report shows the last attempt's steps; it passes only when every attempt
    passed, and names the steps whose outcome changed between attempts.
    """
    chosen = options or RunOptions()
    if chosen.repeat < 1:
        raise ValueError("repeat must be at least 1")
    started = clock()
    attempts: list[tuple[StepResult, ...]] = []
    prepared: PreparedRoot | None = None
    for _ in range(chosen.repeat):
        with tempfile.TemporaryDirectory(prefix="qackage-test-", dir=chosen.scratch_dir) as scratch:
            results, prepared = _run_once(plan, make_root, sandbox, chosen, Path(scratch))
            attempts.append(results)
    assert prepared is not None
    passed = all(all(r.status is not StepStatus.FAILED for r in attempt) for attempt in attempts)
    return TestReport(
        package=plan.package,
        passed=passed,
        steps=attempts[-1],
        environment=TestEnvironmentReport(mode=prepared.mode, installed=prepared.installed, warnings=prepared.warnings),
        duration=round(clock() - started, 3),
        attempts=len(attempts),
        flaky_steps=_flaky(attempts),
    )
