"""The orchestrator: probe -> propose -> validate -> repair -> score, for one package.

`propose` stays pure and `validate` knows nothing of proposals; this module alternates
between them. Every step it prints has passed in the sandbox on the good package;
every step it dropped is reported with the reason ("skipped, with a reason" is a value).
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qackage.analyze.engine import analyze_source
from qackage.apk.archive import ApkArchive
from qackage.apk.repository import Repository
from qackage.apk.signature import Keyring
from qackage.melange.substitution import SubstitutionContext
from qackage.model import (
    Analysis,
    Candidate,
    CheckKind,
    ProbeCommand,
    ProbeResult,
    Stanza,
    Step,
    TestEnvironment,
)
from qackage.propose.assemble import assemble
from qackage.propose.base import MAX_PROBE_ROUNDS, Proposer
from qackage.propose.registry import default_proposers
from qackage.propose.yamfmt import format_stanza
from qackage.validate.compile import compile_test
from qackage.validate.pipelines import PipelineLibrary
from qackage.validate.probe import run_probes
from qackage.validate.report import StepStatus, TestReport
from qackage.validate.runner import run_plan
from qackage.validate.sandboxing import Sandbox
from qackage.validate.scorecache import ScoreCache
from qackage.validate.session import (
    ValidateRequest,
    extract_cache,
    open_repositories,
    probe_root_factory,
    root_factory,
)
from qackage.validate.strength import StrengthReport, score

# "foo: not found" (busybox/dash) and "command not found" (bash): a missing tool.
_MISSING_COMMAND = re.compile(r"(?:^|\s)([\w.+-]+): (?:command )?not found", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Kept:
    candidate: Candidate
    note: str = ""  # how it was repaired, if it was


@dataclass(frozen=True, slots=True)
class Dropped:
    candidate: Candidate
    reason: str


@dataclass(frozen=True, slots=True)
class StrengthComparison:
    """The first draft (conventional checks only) against the final stanza, scored on
    the same mutants: how much the functional steps added."""

    draft: StrengthReport
    final: StrengthReport


@dataclass(frozen=True, slots=True)
class Suggestion:
    package: str
    stanza: Stanza
    kept: tuple[Kept, ...]
    dropped: tuple[Dropped, ...]
    validated: bool
    probes: int = 0
    notes: tuple[str, ...] = ()
    strength: StrengthComparison | None = None

    @property
    def text(self) -> str:
        return format_stanza(self.stanza)


@dataclass(frozen=True)
class SuggestRequest:
    validate: ValidateRequest  # package, repositories, pipelines, appended packages, run options
    run_validation: bool = True
    strength: bool = True  # score the draft and the final stanza on mutants (needs validation)
    proposers: tuple[Proposer, ...] = field(default_factory=default_proposers)
    score_cache: ScoreCache | None = None


def _analysis(package: Path, request: ValidateRequest) -> Analysis:
    with ApkArchive.open(package, limits=request.limits) as archive:
        return analyze_source(archive)


def gather_observations(
    analysis: Analysis, proposers: Sequence[Proposer], run: Callable[[Sequence[ProbeCommand]], dict[str, ProbeResult]]
) -> dict[str, ProbeResult]:
    """Ask every proposer for probes until none wants more (bounded rounds)."""
    seen: dict[str, ProbeResult] = {}
    for _ in range(MAX_PROBE_ROUNDS):
        wanted: dict[str, ProbeCommand] = {}
        for proposer in proposers:
            for command in proposer.probes(analysis, seen):
                if command.key not in seen:
                    wanted.setdefault(command.key, command)
        if not wanted:
            break
        seen.update(run(list(wanted.values())))
    return seen


def _stanza_for(step: Step, packages: Sequence[str]) -> Stanza:
    return Stanza(pipeline=(step,), environment=TestEnvironment(packages=tuple(packages)))


def missing_commands(report: TestReport) -> tuple[str, ...]:
    """Commands a failing step could not find, from its stderr."""
    found: list[str] = []
    for step in report.steps:
        if step.status is StepStatus.FAILED:
            found += _MISSING_COMMAND.findall(step.stderr_tail + step.stdout_tail)
    return tuple(dict.fromkeys(found))


def provider_of(command: str, repositories: Sequence[Repository]) -> str | None:
    """The package that provides ``cmd:<command>`` in the repositories, if any."""
    for repository in repositories:
        for entry in repository.entries:
            if command in entry.info.cmd_provides or entry.info.name == command:
                return entry.info.name
    return None


class _Prover:
    """Runs single-step stanzas on the good package."""

    def __init__(self, request: ValidateRequest, sandbox: Sandbox, context: SubstitutionContext) -> None:
        self._request = request
        self._sandbox = sandbox
        self._context = context
        self._library = PipelineLibrary(request.pipeline_dirs)
        keyring = Keyring.load(request.keyring) if request.keyring else None
        self.repositories = open_repositories(request, keyring)
        self._cache = extract_cache(request)

    def run(self, step: Step, packages: Sequence[str]) -> TestReport:
        plan = compile_test(
            _stanza_for(step, packages),
            self._context,
            self._library,
            package_under_test=self._context.context_name,
            append_packages=self._request.append_packages,
        )
        make_root = root_factory(self._request, plan.packages, plan.accounts, self.repositories, self._cache)
        options = dataclasses.replace(self._request.run, keep_going=False)
        return run_plan(plan, make_root=make_root, sandbox=self._sandbox, options=options)

    def probe(self, commands: Sequence[ProbeCommand]) -> dict[str, ProbeResult]:
        make_root = probe_root_factory(self._request, self.repositories, self._cache)
        return run_probes(commands, make_root=make_root, sandbox=self._sandbox, limits=self._request.run.limits)


# Lines that say what went wrong, preferred over a closing summary line.
_TELLING_LINE = re.compile(r"not found|no such|cannot|can't|error|missing|denied|undefined", re.IGNORECASE)


def _failure(report: TestReport) -> str:
    failed = next((s for s in report.steps if s.status is StepStatus.FAILED), None)
    if failed is None:
        return "failed"
    lines = [line.strip() for line in (failed.stderr_tail + "\n" + failed.stdout_tail).splitlines() if line.strip()]
    telling = [line for line in lines if _TELLING_LINE.search(line)]
    detail = (telling or lines)[-1][:200] if lines else ""
    return f"{failed.reason}: {detail}" if detail else str(failed.reason)


def prove(candidate: Candidate, prover: _Prover) -> Kept | Dropped:
    """Run the candidate; on failure try its fallbacks, then a missing-tool repair."""
    attempts = [(candidate.step, "")] + [
        (alt, f"repaired: used the alternative {alt.title!r}") for alt in candidate.fallbacks
    ]
    reason = ""
    for step, note in attempts:
        packages = list(candidate.packages)
        report = prover.run(step, packages)
        if report.passed and not report.flaky_steps:
            return Kept(dataclasses.replace(candidate, step=step), note)
        if report.flaky_steps:
            reason = "flaky: passed and failed across repeated runs"
            continue
        reason = _failure(report)
        for command in missing_commands(report):
            provider = provider_of(command, prover.repositories)
            if provider is None or provider in packages:
                continue
            retried = prover.run(step, [*packages, provider])
            if retried.passed and not retried.flaky_steps:
                repaired = dataclasses.replace(candidate, step=step, packages=(*candidate.packages, provider))
                return Kept(repaired, f"repaired: added {provider} to the test environment for {command}")
    return Dropped(candidate, reason)


def suggest(request: SuggestRequest, *, sandbox: Sandbox) -> Suggestion:
    validate = request.validate
    analysis = _analysis(validate.package, validate)
    name = analysis.package.name
    context = SubstitutionContext.for_built_package(analysis.package, arch=validate.arch)
    if not request.run_validation:
        candidates = [c for p in request.proposers for c in p.candidates(analysis, {})]
        return Suggestion(
            package=name,
            stanza=assemble(candidates, package=name, origin=analysis.package.origin),
            kept=tuple(Kept(c) for c in candidates),
            dropped=(),
            validated=False,
            notes=("not validated (--no-validate): no step was run, probes were skipped",),
        )
    prover = _Prover(validate, sandbox, context)
    seen = gather_observations(analysis, request.proposers, prover.probe)
    candidates = [c for p in request.proposers for c in p.candidates(analysis, seen)]
    kept: list[Kept] = []
    dropped: list[Dropped] = []
    for candidate in candidates:
        outcome = prove(candidate, prover)
        (kept if isinstance(outcome, Kept) else dropped).append(outcome)  # type: ignore[arg-type]
    origin = analysis.package.origin
    stanza = assemble([k.candidate for k in kept], package=name, origin=origin)
    comparison = None
    if request.strength and kept:
        draft = assemble(
            [k.candidate for k in kept if k.candidate.kind is not CheckKind.FUNCTIONAL], package=name, origin=origin
        )
        comparison = compare_strength(draft, stanza, request, sandbox)
    return Suggestion(
        package=name,
        stanza=stanza,
        kept=tuple(kept),
        dropped=tuple(dropped),
        validated=True,
        probes=len(seen),
        strength=comparison,
    )


def compare_strength(draft: Stanza, final: Stanza, request: SuggestRequest, sandbox: Sandbox) -> StrengthComparison:
    """Score both stanzas on the package's mutants (each score is cached)."""
    with tempfile.TemporaryDirectory(prefix="qackage-suggest-") as folder:
        reports = []
        for stanza in (draft, final):
            test_file = scratch_test_file(stanza, Path(folder))
            scoring = dataclasses.replace(request.validate, test_file=test_file, package_name=None)
            reports.append(score(scoring, sandbox=sandbox, cache=request.score_cache))
    return StrengthComparison(draft=reports[0], final=reports[1])


def scratch_test_file(stanza: Stanza, folder: Path) -> Path:
    """The stanza as a `test:` fragment file (what validate and score read)."""
    path = Path(tempfile.mkstemp(prefix="stanza-", suffix=".yaml", dir=folder)[1])
    path.write_text(format_stanza(stanza), encoding="utf-8")
    return path
