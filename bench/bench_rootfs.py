"""Benchmark: building a test root for ``hello`` + ``wolfi-base`` from the fixture repository.

    python bench/bench_rootfs.py [--runs 5]

Builds the ``base`` and ``hello`` fixture scenarios into a temporary repository, then
times `build_root` (median of ``--runs``):

* cold: an empty extraction cache every run (every package is unpacked);
* warm, new process: a filled cache opened by a fresh `ExtractCache`, as the next
  qackage run sees it (keys and entry metadata read from disk);
* warm, same process: one `ExtractCache` object building root after root.

It also times ways of copying the cached trees into an empty folder, the step a warm
build spends most of its disk time on: the writer's ``copy_file_range`` (what
`build_root` does), ``shutil.copytree`` (``copy2``) and ``cp -a --reflink=auto``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from qackage.apk.repository import Repository
from qackage.apk.signature import Keyring
from qackage.build import build_repository
from qackage.validate.extract import ExtractCache, remove_tree
from qackage.validate.rootfs import build_root, lay_packages, write_layout

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PACKAGES = ("hello", "wolfi-base")


def median_ms(runs: int, once: Callable[[int], None], scratch: Path) -> float:
    """Median wall time of ``once(n)``. Before each run, untimed, whatever the last one wrote
    under ``scratch`` is removed (as test roots are) and dirty pages are flushed, so that
    one run's writeback does not throttle the next."""
    timings = []
    for number in range(runs):
        os.sync()
        start = time.perf_counter()
        once(number)
        timings.append(time.perf_counter() - start)
        for leftover in scratch.glob(f"*-{number}"):
            remove_tree(leftover)
    return statistics.median(timings) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-rootfs-") as scratch:
        work = Path(scratch)
        built = build_repository([FIXTURES / "base", FIXTURES / "hello"], work / "repo")
        repo = Repository.open(str(built.root), built.arch, keyring=Keyring.load(built.keyring))

        def build(cache: ExtractCache, dest: Path) -> None:
            build_root(
                dest, package_under_test=None, packages=PACKAGES, repositories=[repo], cache=cache, arch=built.arch
            )

        runs = work / "runs"
        runs.mkdir()
        cold = median_ms(args.runs, lambda n: build(ExtractCache(runs / f"cache-{n}"), runs / f"cold-{n}"), runs)
        warm_folder = work / "warm-cache"
        build(ExtractCache(warm_folder), work / "prime")
        fresh = median_ms(args.runs, lambda n: build(ExtractCache(warm_folder), runs / f"fresh-{n}"), runs)
        shared = ExtractCache(warm_folder)
        build(shared, work / "prime-shared")
        same = median_ms(args.runs, lambda n: build(shared, runs / f"same-{n}"), runs)

        cached = [shared.lookup(key) for key in sorted(p.name for p in warm_folder.iterdir())]
        trees = [c for c in cached if c is not None]
        files = sum(1 for c in trees for e in c.entries if e.kind.value == "file")
        size = sum(e.size for c in trees for e in c.entries if e.kind.value == "file")

        def with_writer(n: int) -> None:
            dest = runs / f"writer-{n}"
            dest.mkdir()
            write_layout(lay_packages(trees), dest)

        def with_copytree(n: int) -> None:
            for c in trees:
                shutil.copytree(c.tree, runs / f"copytree-{n}", symlinks=True, dirs_exist_ok=True)

        def with_cp(n: int) -> None:
            dest = runs / f"cp-{n}"
            dest.mkdir()
            for c in trees:
                subprocess.run(["cp", "-a", "--reflink=auto", f"{c.tree}/.", str(dest)], check=True)

        print(f"root for {' + '.join(PACKAGES)}: {len(trees)} packages, {files} files, {size / 1e6:.1f} MB")
        print(f"cold cache                   {cold:8.1f} ms  (median of {args.runs})")
        print(f"warm cache, new process      {fresh:8.1f} ms")
        print(f"warm cache, same process     {same:8.1f} ms")
        print("copying the cached trees into an empty folder:")
        print(f"  copy_file_range (build_root) {median_ms(args.runs, with_writer, runs):6.1f} ms")
        print(f"  shutil.copytree (copy2)      {median_ms(args.runs, with_copytree, runs):6.1f} ms")
        print(f"  cp -a --reflink=auto         {median_ms(args.runs, with_cp, runs):6.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
