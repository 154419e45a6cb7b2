"""Benchmark: scoring a package's own test stanza against its mutants.

    python bench/bench_score.py [--package bash] [--test fixtures/toolchain/bash.yaml] [--workers 2]

Builds the fixture scenarios into a temporary repository, then scores the package's own
stanza (``bash``: 10 mutants) three times:

* cold: empty extraction cache, no score cache (every repository package is unpacked,
  every mutant is built and run);
* warm root cache: the extraction cache the cold run filled, still no score cache (what
  scoring a changed stanza costs: every mutant runs again, nothing is unpacked again
  except the mutants themselves);
* warm score cache: both caches filled (a re-run: nothing runs in the sandbox).

Prints the median wall time of each over ``--runs``, the number of mutants and the
sandboxed steps a run took.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from qackage.build import build_repository
from qackage.validate.bubblewrap import Bubblewrap
from qackage.validate.sandboxing import Sandbox, SandboxOutcome, SandboxRequest
from qackage.validate.scorecache import ScoreCache
from qackage.validate.session import ValidateRequest
from qackage.validate.strength import StrengthReport, score

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SCENARIOS = ("base", "hello", "hello-meta", "py3-pyfoo", "tinyd", "shtools", "toolchain")


class CountingSandbox:
    """Bubblewrap, counting the steps it runs."""

    def __init__(self, inner: Sandbox) -> None:
        self.inner = inner
        self.runs = 0
        self._lock = threading.Lock()

    def run(self, request: SandboxRequest) -> SandboxOutcome:
        with self._lock:
            self.runs += 1
        return self.inner.run(request)


def timed(
    request: ValidateRequest, sandbox: Sandbox, cache: ScoreCache | None, workers: int
) -> tuple[float, int, StrengthReport]:
    counting = CountingSandbox(sandbox)
    os.sync()  # one run's writeback must not throttle the next
    started = time.perf_counter()
    report = score(request, sandbox=counting, cache=cache, workers=workers)
    return time.perf_counter() - started, counting.runs, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", default="bash", help="a fixture package (default: %(default)s)")
    parser.add_argument(
        "--test",
        type=Path,
        default=FIXTURES / "toolchain" / "bash.yaml",
        help="the melange YAML with its test: stanza (default: fixtures/toolchain/bash.yaml)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3, help="medians of this many runs (default: %(default)s)")
    args = parser.parse_args(argv)
    sandbox = Bubblewrap()
    print(sandbox.probe())
    cold: list[float] = []
    warm_roots: list[float] = []
    warm_scores: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-score-") as scratch:
        folder = Path(scratch)
        repo = build_repository([FIXTURES / name for name in SCENARIOS], folder / "repo")
        base = ValidateRequest(
            package=repo.package(args.package).path,
            test_file=args.test,
            repositories=(str(repo.root),),
            keyring=repo.keyring,
            append_packages=("wolfi-base",),
        )
        for number in range(args.runs):
            # cold: a fresh extraction cache, no score cache
            request = dataclasses.replace(base, cache_dir=folder / f"cache-{number}")
            seconds, runs, report = timed(request, sandbox, None, args.workers)
            cold.append(seconds)
            if not report.baseline_passed:
                sys.exit(f"bench_score: the stanza fails on the good package: {report.baseline}")
            # warm root cache: the extraction cache just filled, no score cache
            seconds, warm_runs, _ = timed(request, sandbox, None, args.workers)
            warm_roots.append(seconds)
        # warm score cache: one run fills it, the timed runs find everything in it
        scores = ScoreCache(folder / "scores")
        timed(request, sandbox, scores, args.workers)
        for _ in range(args.runs):
            seconds, cached_runs, again = timed(request, sandbox, scores, args.workers)
            warm_scores.append(seconds)
            if cached_runs or not all(outcome.cached for outcome in again.outcomes):
                sys.exit("bench_score: the warm score cache still ran something")
    mutants = len(report.outcomes)
    warm = statistics.median(warm_roots)
    print(f"{report.package}: {mutants} mutants, kill rate {report.kill_rate}, verdict {report.verdict.value}")
    print(f"medians of {args.runs} runs, {args.workers} workers:")
    print(f"  cold (empty caches):  {statistics.median(cold):7.2f} s  {runs:3} sandboxed steps")
    print(
        f"  warm root cache:      {warm:7.2f} s  {warm_runs:3} sandboxed steps  ({warm / max(mutants, 1):.2f} s/mutant)"
    )
    print(f"  warm score cache:     {statistics.median(warm_scores):7.3f} s    0 sandboxed steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
