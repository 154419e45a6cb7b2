"""What running a test plan showed, step by step."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class StepStatus(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"  # an `if:` was false
    NOT_RUN = "not-run"  # an earlier step failed (melange stops at the first failure)


@dataclass(frozen=True, slots=True)
class StepResult:
    number: int
    title: str
    trail: tuple[str, ...]
    uses: str | None
    status: StepStatus
    exit_code: int | None = None
    duration: float = 0.0
    stdout_tail: str = ""
    stderr_tail: str = ""
    reason: str | None = None  # why it failed or was skipped, in words: "timed out after 30 s"


@dataclass(frozen=True, slots=True)
class InstalledPackage:
    name: str
    version: str
    source: str  # "package under test", a repository location, or "host"


@dataclass(frozen=True, slots=True)
class TestEnvironmentReport:
    mode: str  # "repository" (a root built from packages) or "host-base" (weaker; see warnings)
    installed: tuple[InstalledPackage, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TestReport:
    package: str
    passed: bool
    steps: tuple[StepResult, ...]
    environment: TestEnvironmentReport
    duration: float = 0.0
    attempts: int = 1
    flaky_steps: tuple[str, ...] = ()  # titles of steps whose outcome changed between attempts
