"""How strong is a test stanza? Run it on broken copies of the package and count the catches.

    report = score(ValidateRequest(package=Path("hello.apk"), test_file=Path("hello.yaml"),
                                   repositories=("repo",)), sandbox=Bubblewrap(),
                   cache=ScoreCache(default_score_folder()))

The stanza runs on the good package first: a test that fails there proves nothing, so a
failing baseline scores nothing. Then each applicable mutant (`qackage.validate.mutants`)
is built and the same stanza runs with the mutant as the package under test; the mutant
is *killed* when any step fails. The verdict is ``strong`` when every mutant is killed,
``weak`` when some survive, and ``superficial`` when the stanza only asks for versions,
help texts or imports, whatever it killed: such checks pass on many broken packages
(what a step checks is `qackage.validate.checkkind`'s reading of it).

Outcomes are cached per (package bytes, compiled plan, environment, mutant), so scoring
the same thing again runs nothing.
"""

from __future__ import annotations

import dataclasses
import enum
import shutil
import tempfile
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qackage.errors import InputError, ResolutionError
from qackage.melange.config import load_config
from qackage.model import Analysis, CheckKind
from qackage.validate import mutants
from qackage.validate.checkkind import classify_step
from qackage.validate.mutants import (
    DataReferences,
    MutantSpec,
    analyze_apk,
    applicable_mutants,
    build_mutant,
    data_references,
)
from qackage.validate.report import StepResult, StepStatus, TestReport
from qackage.validate.sandboxing import Sandbox
from qackage.validate.scorecache import (
    BASELINE,
    ScoreCache,
    ScoreKey,
    environment_sha256,
    file_sha256,
    operators_fingerprint,
    plan_sha256,
)
from qackage.validate.session import (
    ValidateRequest,
    choose_test,
    extract_cache,
    plan_for,
    read_package_info,
    validate,
)

DEFAULT_WORKERS = 2
OUTPUT_TAIL_CHARS = 2000  # how much of a failing baseline step's output the report keeps

# --------------------------------------------------------------------------- reports


class Verdict(enum.StrEnum):
    STRONG = "strong"  # every applicable mutant was killed
    WEAK = "weak"  # some mutants survived
    SUPERFICIAL = "superficial"  # only version/help/import checks, whatever they killed
    BASELINE_FAILED = "baseline-failed"  # the test fails on the good package: nothing scored
    UNSCORED = "unscored"  # no mutant applies to the package


@dataclass(frozen=True, slots=True)
class StepCheck:
    """A top-level step of the stanza and what it checks."""

    title: str
    kind: CheckKind


@dataclass(frozen=True, slots=True)
class BaselineSummary:
    """The stanza's run on the good package."""

    passed: bool
    steps: int  # steps in the plan (pipelines expanded)
    failed_step: str | None = None
    reason: str | None = None
    output_tail: str = ""  # the failing step's stderr, then stdout (the end of each)
    duration: float = 0.0
    cached: bool = False


@dataclass(frozen=True, slots=True)
class MutantOutcome:
    """The stanza's run on one mutant."""

    operator: str
    target: str
    description: str
    killed: bool
    killing_step: str | None = None  # the first step that failed
    duration: float = 0.0
    cached: bool = False
    error: str | None = None  # the mutant could not be built or installed: not counted

    @property
    def key(self) -> str:
        return f"{self.operator}:{self.target}"

    @property
    def scored(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class StrengthReport:
    """How many broken copies of a package a test stanza catches."""

    package: str
    version: str
    checksum: str  # sha256 of the good package's .apk
    checks: tuple[StepCheck, ...]
    baseline_passed: bool
    baseline: BaselineSummary
    outcomes: tuple[MutantOutcome, ...]  # in the order the operators list them
    applicable: int  # mutants that were built and run
    killed: int
    kill_rate: float | None  # killed / applicable; None when nothing was scored
    survivors: tuple[MutantOutcome, ...]
    verdict: Verdict
    reasons: tuple[str, ...]


def step_label(result: StepResult) -> str:
    """A failed step as the validate report names it: a pipeline's inner step under its name."""
    if result.uses and result.uses != result.title:
        return f"{result.uses}: {result.title}"
    return result.title


def summarize_baseline(report: TestReport) -> BaselineSummary:
    failed = next((step for step in report.steps if step.status is StepStatus.FAILED), None)
    if failed is None:
        return BaselineSummary(passed=report.passed, steps=len(report.steps), duration=report.duration)
    output = "\n".join(part.rstrip("\n") for part in (failed.stderr_tail, failed.stdout_tail) if part.strip())
    return BaselineSummary(
        passed=False,
        steps=len(report.steps),
        failed_step=step_label(failed),
        reason=failed.reason,
        output_tail=output[-OUTPUT_TAIL_CHARS:],
        duration=report.duration,
    )


def judge(
    baseline: BaselineSummary, checks: Sequence[StepCheck], outcomes: Sequence[MutantOutcome]
) -> tuple[Verdict, tuple[str, ...]]:
    """The verdict and the reasons for it, from the parts of a report."""
    if not baseline.passed:
        where = f" at {baseline.failed_step!r}" if baseline.failed_step else ""
        why = f" ({baseline.reason})" if baseline.reason else ""
        return Verdict.BASELINE_FAILED, (
            f"the test fails on the good package{where}{why}: a test that fails there proves nothing; "
            "fix the test before scoring it",
        )
    reasons: list[str] = []
    scored = [o for o in outcomes if o.scored]
    survivors = [o for o in scored if not o.killed]
    for outcome in outcomes:
        if not outcome.scored:
            reasons.append(f"mutant {outcome.key} was not scored: {outcome.error}")
    superficial = all(check.kind.superficial for check in checks)
    if superficial:
        kinds = sorted({check.kind.value for check in checks})
        reasons.insert(
            0,
            f"every step only checks {'/'.join(kinds) or 'nothing'}: such checks pass on many broken packages; "
            "add a step that exercises what the package does",
        )
    if not scored:
        reasons.append("no mutation operator applies to this package: nothing could be scored")
        return (Verdict.SUPERFICIAL if superficial else Verdict.UNSCORED), tuple(reasons)
    if survivors:
        reasons.append(
            f"{len(survivors)} of {len(scored)} mutants survived: the test passes on packages broken that way"
        )
    else:
        reasons.append(f"every one of the {len(scored)} applicable mutants made the test fail")
    if superficial:
        return Verdict.SUPERFICIAL, tuple(reasons)
    return (Verdict.WEAK if survivors else Verdict.STRONG), tuple(reasons)


def build_report(
    *,
    package: str,
    version: str,
    checksum: str,
    checks: Sequence[StepCheck],
    baseline: BaselineSummary,
    outcomes: Sequence[MutantOutcome],
) -> StrengthReport:
    scored = [o for o in outcomes if o.scored]
    killed = sum(1 for o in scored if o.killed)
    verdict, reasons = judge(baseline, checks, outcomes)
    return StrengthReport(
        package=package,
        version=version,
        checksum=checksum,
        checks=tuple(checks),
        baseline_passed=baseline.passed,
        baseline=baseline,
        outcomes=tuple(outcomes),
        applicable=len(scored),
        killed=killed,
        kill_rate=round(killed / len(scored), 4) if scored else None,
        survivors=tuple(o for o in scored if not o.killed),
        verdict=verdict,
        reasons=reasons,
    )


# --------------------------------------------------------------------------- cached values


def _baseline_value(summary: BaselineSummary) -> dict[str, Any]:
    return {
        "passed": summary.passed,
        "steps": summary.steps,
        "failed_step": summary.failed_step,
        "reason": summary.reason,
        "output_tail": summary.output_tail,
        "duration": summary.duration,
    }


def _baseline_from(value: dict[str, Any]) -> BaselineSummary | None:
    try:
        summary = BaselineSummary(
            passed=value["passed"],
            steps=value["steps"],
            failed_step=value["failed_step"],
            reason=value["reason"],
            output_tail=value["output_tail"],
            duration=value["duration"],
            cached=True,
        )
    except KeyError:
        return None
    well_typed = (
        isinstance(summary.passed, bool)
        and isinstance(summary.steps, int)
        and isinstance(summary.failed_step, str | None)
        and isinstance(summary.reason, str | None)
        and isinstance(summary.output_tail, str)
        and isinstance(summary.duration, int | float)
    )
    return summary if well_typed else None


def _outcome_value(outcome: MutantOutcome) -> dict[str, Any]:
    return {"killed": outcome.killed, "killing_step": outcome.killing_step, "duration": outcome.duration}


def _outcome_from(spec: MutantSpec, value: dict[str, Any]) -> MutantOutcome | None:
    killed, killing_step, duration = value.get("killed"), value.get("killing_step"), value.get("duration")
    if not (isinstance(killed, bool) and isinstance(killing_step, str | None) and isinstance(duration, int | float)):
        return None
    return _outcome(spec, killed=killed, killing_step=killing_step, duration=float(duration), cached=True)


def _outcome(spec: MutantSpec, **details: Any) -> MutantOutcome:
    return MutantOutcome(operator=spec.operator, target=spec.target, description=spec.description, **details)


# --------------------------------------------------------------------------- scoring


Progress = Callable[[MutantOutcome], None]


def check_operators(operators: Collection[str] | None) -> None:
    if operators is None:
        return
    unknown = sorted(set(operators) - set(mutants.OPERATORS))
    if unknown:
        raise InputError(
            f"unknown mutation operator {', '.join(unknown)}; known: {', '.join(sorted(mutants.OPERATORS))}"
        )


def score(
    request: ValidateRequest,
    *,
    sandbox: Sandbox,
    operators: Collection[str] | None = None,
    cache: ScoreCache | None = None,
    workers: int = DEFAULT_WORKERS,
    progress: Progress | None = None,
) -> StrengthReport:
    """Score the stanza of ``request`` on the package of ``request``.

    ``operators`` limits the mutation operators (all by default); ``cache`` remembers
    outcomes (None: run everything); ``workers`` mutants are validated at a time;
    ``progress`` hears of each mutant's outcome as it is known (in the calling thread).
    """
    if workers < 1:
        raise InputError("the number of workers must be at least 1")
    check_operators(operators)
    return _Scorer(request, sandbox, cache, workers, progress).run(operators)


@dataclass(frozen=True, slots=True)
class _GoodPackage:
    """The good package's analysis and data references, shared by every mutant's build."""

    analysis: Analysis
    references: DataReferences


class _Scorer:
    def __init__(
        self,
        request: ValidateRequest,
        sandbox: Sandbox,
        cache: ScoreCache | None,
        workers: int,
        progress: Progress | None,
    ) -> None:
        self.request = request
        self.sandbox = sandbox
        self.cache = cache
        self.workers = workers
        self.progress = progress
        # Two operators can make byte-identical mutants; their runs must not overlap,
        # since each removes its mutant from the extraction cache when done.
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def run(self, operators: Collection[str] | None) -> StrengthReport:
        request = self.request
        info = read_package_info(request.package, None, request.limits)
        plan = plan_for(request, info)  # InputError for a bad test file, before anything runs
        assert request.test_file is not None  # plan_for refuses a request without one
        stanza, _ = choose_test(
            load_config(request.test_file, str(request.test_file)), info, request.package_name, request.arch
        )
        checks = tuple(StepCheck(title=step.title, kind=classify_step(step)) for step in stanza.pipeline)
        checksum = file_sha256(request.package)
        base_key = ScoreKey(
            package=checksum,
            stanza=plan_sha256(plan),
            options=environment_sha256(request),
            subject=BASELINE,
        )
        baseline = self._baseline(base_key)
        outcomes: tuple[MutantOutcome, ...] = ()
        if baseline.passed:
            good = self._good_package(operators)
            specs = _unique(applicable_mutants(good.analysis, operators=operators, references=good.references))
            outcomes = self._mutants(good, specs, base_key)
        return build_report(
            package=info.name,
            version=info.version,
            checksum=checksum,
            checks=checks,
            baseline=baseline,
            outcomes=outcomes,
        )

    def _good_package(self, operators: Collection[str] | None) -> _GoodPackage:
        """Read once what every mutant is built from: each build then only streams the package."""
        package, limits = self.request.package, self.request.limits
        analysis = analyze_apk(package, limits=limits)
        return _GoodPackage(analysis, data_references(package, analysis, operators=operators, limits=limits))

    # -- the good package ----------------------------------------------------------------

    def _baseline(self, key: ScoreKey) -> BaselineSummary:
        stored = self.cache.get(key) if self.cache is not None else None
        summary = _baseline_from(stored) if stored is not None else None
        if summary is not None:
            return summary
        summary = summarize_baseline(validate(self.request, sandbox=self.sandbox))
        if self.cache is not None:
            self.cache.put(key, _baseline_value(summary))
        return summary

    # -- the mutants ---------------------------------------------------------------------

    def _mutants(
        self, good: _GoodPackage, specs: Sequence[MutantSpec], base_key: ScoreKey
    ) -> tuple[MutantOutcome, ...]:
        fingerprint = operators_fingerprint()
        keys = [dataclasses.replace(base_key, subject=f"{spec.key}@{fingerprint}") for spec in specs]
        results: list[MutantOutcome | None] = [None] * len(specs)
        pending: list[int] = []
        for index, (spec, key) in enumerate(zip(specs, keys, strict=True)):
            stored = self.cache.get(key) if self.cache is not None else None
            results[index] = _outcome_from(spec, stored) if stored is not None else None
            if results[index] is None:
                pending.append(index)
            else:
                self._report(results[index])
        if pending:
            with (
                tempfile.TemporaryDirectory(prefix="qackage-mutants-", dir=self.request.run.scratch_dir) as scratch,
                ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="qackage-score") as pool,
            ):
                futures = {pool.submit(self._score_one, good, specs[i], Path(scratch) / f"{i:04d}"): i for i in pending}
                try:
                    for future in as_completed(futures):
                        index = futures[future]
                        outcome = future.result()
                        results[index] = outcome
                        if self.cache is not None and outcome.scored:
                            self.cache.put(keys[index], _outcome_value(outcome))
                        self._report(outcome)
                except BaseException:
                    # A broken sandbox or an interrupt: do not run the mutants still queued.
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
        return tuple(outcome for outcome in results if outcome is not None)

    def _report(self, outcome: MutantOutcome | None) -> None:
        if self.progress is not None and outcome is not None:
            self.progress(outcome)

    def _score_one(self, good: _GoodPackage, spec: MutantSpec, folder: Path) -> MutantOutcome:
        folder.mkdir()
        try:
            try:
                mutant = build_mutant(
                    self.request.package,
                    spec,
                    folder / "mutant.apk",
                    limits=self.request.limits,
                    analysis=good.analysis,
                    references=good.references,
                )
                report = self._validate_mutant(mutant)
            except (InputError, ResolutionError) as exc:
                return _outcome(spec, killed=False, error=exc.message)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        failed = next((step for step in report.steps if step.status is StepStatus.FAILED), None)
        return _outcome(
            spec,
            killed=not report.passed,
            killing_step=step_label(failed) if failed is not None else None,
            duration=report.duration,
        )

    def _validate_mutant(self, mutant: Path) -> TestReport:
        request = dataclasses.replace(self.request, package=mutant)
        extracted = extract_cache(request)
        key = extracted.key_for(mutant)
        good = extracted.key_for(self.request.package)
        with self._lock_for(key):
            try:
                return validate(request, sandbox=self.sandbox)
            finally:
                # A mutant's unpacked tree is of no use once it has run: keep the cache small.
                if key != good:
                    extracted.discard(key)

    def _lock_for(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())


def _unique(specs: Iterable[MutantSpec]) -> tuple[MutantSpec, ...]:
    """The specs in order, each key once."""
    seen: dict[str, MutantSpec] = {}
    for spec in specs:
        seen.setdefault(spec.key, spec)
    return tuple(seen.values())
