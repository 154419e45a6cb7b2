"""A test stanza compiled into plain data: what to install and which scripts to run.

`qackage.validate.compile` turns a `Stanza` plus its substitution context and the
pipeline library into a `TestPlan`; the runner executes plans. Plans are data, so a
dry run prints one and tests check one without running anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from qackage.model import Accounts


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """One ``runs:`` script to execute (pipelines are flattened into their leaves)."""

    number: int  # 1-based position in the plan
    title: str  # what the report calls it: the step's name, its uses, or its first line
    trail: tuple[str, ...]  # where it came from: ("test/tw/ldd-check", "step 2") for nested steps
    uses: str | None  # the top-level `uses:` this step belongs to, if any
    script: str  # fully substituted shell text of `runs:`
    environment: tuple[tuple[str, str], ...]  # the complete environment, PATH included
    working_directory: str  # absolute path inside the sandbox
    skipped_reason: str | None = None  # set when an `if:` was false: reported, not run


@dataclass(frozen=True, slots=True)
class TestPlan:
    package: str  # the package under test (`${{context.name}}`)
    origin: str  # the main package of its origin (`${{package.name}}`)
    packages: tuple[str, ...]  # what the test image holds, sorted, de-duplicated
    steps: tuple[PlannedStep, ...]
    accounts: Accounts = Accounts()
