"""Benchmark: `suggest --no-validate` throughput over a folder of APKs with 2 workers.

    python bench/bench_suggest.py [--packages 200] [--workers 2]

Builds (once, cached under bench/.cache/) a folder of at least ``--packages`` APKs made
from the fixture scenarios (each fixture package copied under new names, so the mix of
kinds is realistic: CLIs, libraries, -dev, -doc, Python, daemons, scripts, metapackages),
then proposes a stanza for every one with a pool of worker processes and prints
packages per second. Target (issue 4): a 20,000-definition catalog in <= 30 minutes on
2 cores, i.e. >= 11.1 packages per second.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

from qackage.apk.writer import read_package, write_apk
from qackage.build import build_repository
from qackage.suggest import SuggestRequest, suggest
from qackage.validate.bubblewrap import Bubblewrap
from qackage.validate.session import ValidateRequest

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "fixtures"
CACHE = HERE / ".cache"
SCENARIOS = ("base", "hello", "hello-meta", "py3-pyfoo", "tinyd", "shtools")
TARGET_PER_SECOND = 20_000 / (30 * 60)


def _copy(apk: Path, name: str, out: Path) -> None:
    info, files = read_package(apk)
    write_apk(out, dataclasses.replace(info, name=name), files, compresslevel=1)


def build_corpus(count: int) -> list[Path]:
    folder = CACHE / f"suggest-corpus-{count}"
    existing = sorted(folder.glob("*.apk"))
    if len(existing) >= count:
        return existing[:count]
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        repo = build_repository([FIXTURES / s for s in SCENARIOS], Path(tmp) / "repo")
        sources = sorted(p.path for p in repo.packages)
        for index in range(count):
            source = sources[index % len(sources)]
            name = f"{source.name.rsplit('-', 2)[0]}-copy{index}"
            _copy(source, name, folder / f"{name}-1.0-r0.apk")
    return sorted(folder.glob("*.apk"))[:count]


def _suggest_one(path: Path) -> int:
    request = SuggestRequest(validate=ValidateRequest(package=path), run_validation=False)
    result = suggest(request, sandbox=Bubblewrap())
    return len(result.stanza.pipeline)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    corpus = build_corpus(args.packages)
    start = time.perf_counter()
    with multiprocessing.Pool(args.workers) as pool:
        steps = pool.map(_suggest_one, corpus, chunksize=8)
    elapsed = time.perf_counter() - start
    rate = len(corpus) / elapsed
    print(f"{len(corpus)} packages, {sum(steps)} proposed steps, {args.workers} workers: {elapsed:.2f} s")
    print(f"throughput: {rate:.1f} packages/s (target >= {TARGET_PER_SECOND:.1f}: 20,000 in 30 min)")
    print(f"20,000 definitions would take {20_000 / rate / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
