"""``qackage score PKG.apk --test FILE``: how many broken copies of the package the test catches."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qackage.cli.output import dump_json, emit, for_terminal
from qackage.cli.validate_cmd import add_environment_options, request_from
from qackage.jsonout import to_jsonable
from qackage.validate.bubblewrap import Bubblewrap
from qackage.validate.mutants import OPERATORS
from qackage.validate.scorecache import ScoreCache, default_score_folder
from qackage.validate.strength import DEFAULT_WORKERS, MutantOutcome, StrengthReport, Verdict, score

NAME = "score"
HELP = "score a test stanza by the broken copies (mutants) of the package it catches"
_OUTPUT_LINES = 12


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "mutation operators:\n" + "\n".join(
        f"  {name:<22} {description}" for name, description in sorted(OPERATORS.items())
    )
    parser.add_argument("package", metavar="PKG.apk", help="the good package")
    parser.add_argument(
        "--test", required=True, metavar="FILE", help="a melange package YAML or a file whose top level is test:"
    )
    parser.add_argument(
        "--package", dest="package_name", metavar="NAME", help="which package's test: in FILE (default: the APK's name)"
    )
    add_environment_options(parser)
    parser.add_argument(
        "--operator",
        action="append",
        choices=sorted(OPERATORS),
        metavar="NAME",
        help="only this mutation operator (repeatable; default: every operator that applies)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        metavar="N",
        help="mutants validated at the same time (default: %(default)s)",
    )
    parser.add_argument("--no-cache", action="store_true", help="run everything, even outcomes scored before")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")


def run(args: argparse.Namespace) -> int:
    request = request_from(args, Path(args.package), Path(args.test), args.package_name)
    sandbox = Bubblewrap()
    sandbox.probe()
    cache = None if args.no_cache else ScoreCache(default_score_folder(request.cache_dir))
    report = score(
        request,
        sandbox=sandbox,
        operators=args.operator,
        cache=cache,
        workers=args.workers,
        progress=_print_progress if sys.stderr.isatty() else None,
    )
    text = dump_json(to_jsonable(report), pretty=for_terminal(args.output)) if args.json else render_strength(report)
    emit(text, args.output)
    return 0 if report.verdict is Verdict.STRONG else 1


def _print_progress(outcome: MutantOutcome) -> None:
    state = "not scored" if not outcome.scored else "killed" if outcome.killed else "SURVIVED"
    print(f"qackage: {outcome.key}: {state}{' (cached)' if outcome.cached else ''}", file=sys.stderr)


def _steps(count: int) -> str:
    return f"{count} step" if count == 1 else f"{count} steps"


def render_strength(report: StrengthReport) -> str:
    """The report for people: verdict and kill rate first, then survivors, kills and why."""
    if report.kill_rate is None:
        rate = "nothing scored"
    else:
        rate = f"{report.killed} of {report.applicable} mutants killed ({report.kill_rate:.0%})"
    lines = [f"{report.package} {report.version}: {report.verdict.value}, {rate}"]
    baseline = report.baseline
    state = "passed" if baseline.passed else "FAILED"
    lines.append(
        f"  baseline: {state} on the good package ({_steps(baseline.steps)}, {baseline.duration:.2f} s"
        + (", cached" if baseline.cached else "")
        + ")"
    )
    if not baseline.passed:
        lines.append(f"    failed step: {baseline.failed_step}")
        lines.append(f"    reason: {baseline.reason}")
        lines += [f"    | {line}" for line in baseline.output_tail.splitlines()[-_OUTPUT_LINES:]]
    lines.append("  checks:")
    lines += [f"    {check.kind.value:<11} {check.title}" for check in report.checks]
    if report.survivors:
        lines.append("  survivors (the test passes on these broken packages):")
        for outcome in report.survivors:
            lines += [f"    {outcome.operator} {outcome.target}", f"        {outcome.description}"]
    killed = [outcome for outcome in report.outcomes if outcome.killed]
    if killed:
        lines.append("  killed:")
        lines += [f"    {o.operator} {o.target}  by {o.killing_step}" for o in killed]
    unscored = [outcome for outcome in report.outcomes if not outcome.scored]
    if unscored:
        lines.append("  not scored:")
        lines += [f"    {outcome.operator} {outcome.target}: {outcome.error}" for outcome in unscored]
    lines.append("  why:")
    lines += [f"    - {reason}" for reason in report.reasons]
    return "\n".join(lines) + "\n"
