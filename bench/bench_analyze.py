"""Benchmark: `qackage analyze` on a large synthetic APK against `gzip -dc` on the same file.

    python bench/bench_analyze.py [--size-mb 200] [--files 10000] [--runs 3] [--check]

Builds (once, cached under bench/.cache/) an APK of at least ``--size-mb`` MB holding
``--files`` small files plus a few large real ELF files (a compiled program with a big
random section added by objcopy), then times, best of ``--runs``:

* baseline: ``gzip -dc FILE > /dev/null`` (the cost of just inflating the archive)
* qackage:  ``qackage analyze FILE --json -o /dev/null`` (stream, verify, analyze)

and prints the wall-time ratio and qackage's peak RSS. Targets (issue 2): ratio <= 1.3,
peak RSS <= 150 MB whatever the APK size. ``--check`` exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qackage.apk.writer import PlannedFile, write_apk
from qackage.model import EntryKind, PackageInfo

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
BUILD_VERSION = 2  # bump when the synthetic package changes
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu"]
PROGRAM = '#include <stdio.h>\nint main(void) { puts("bench"); return 0; }\n'


def _elf_with_payload(workdir: Path, index: int, payload_mb: int) -> Path:
    source = workdir / "prog.c"
    source.write_text(PROGRAM)
    base = workdir / "prog"
    if not base.exists():
        subprocess.run(["gcc", "-O1", "-o", str(base), str(source)], check=True)
    payload = workdir / f"payload{index}.bin"
    with payload.open("wb") as handle:
        for _ in range(payload_mb):
            handle.write(os.urandom(1 << 20))
    out = workdir / f"bigprog{index}"
    subprocess.run(
        [
            "objcopy",
            "--add-section",
            f".bench_payload={payload}",
            "--set-section-flags",
            ".bench_payload=contents,readonly",
            str(base),
            str(out),
        ],
        check=True,
    )
    payload.unlink()
    return out


def _small_files(count: int, rng: random.Random) -> list[PlannedFile]:
    files = []
    for index in range(count):
        directory = f"usr/share/bench/d{index % 97:02d}"
        if index % 5 == 0:
            data = rng.randbytes(4096)  # incompressible, like compressed assets
            files.append(PlannedFile(f"{directory}/blob{index}.bin", data=data))
        else:
            text = " ".join(rng.choice(WORDS) for _ in range(700))
            files.append(PlannedFile(f"{directory}/doc{index}.txt", data=text.encode()))
        if index % 50 == 0:
            files.append(
                PlannedFile(
                    f"{directory}/link{index}", EntryKind.SYMLINK, 0o777, link_target=files[-1].path.rsplit("/", 1)[1]
                )
            )
    return files


def build_package(size_mb: int, file_count: int) -> Path:
    target = CACHE / f"bench-v{BUILD_VERSION}-{size_mb}mb-{file_count}.apk"
    if target.exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1234)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        work = Path(tmp)
        small = _small_files(file_count, rng)
        small_bytes = sum(f.size() for f in small)
        remaining_mb = max(size_mb - small_bytes // (1 << 20) // 3, 12)
        big_count = 4
        bigs = [
            PlannedFile(
                f"usr/bin/bigprog{i}", source=_elf_with_payload(work, i, remaining_mb // big_count + 1), mode=0o755
            )
            for i in range(big_count)
        ]
        info = PackageInfo(name="bench", version="1.0-r0", arch="x86_64", description="synthetic benchmark package")
        write_apk(target, info, bigs + small, compresslevel=1)
    return target


def _run(command: list[str], stdout: int | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one child process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=stdout)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(command)}")
    return elapsed, usage.ru_maxrss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    package = build_package(args.size_mb, args.files)
    qackage = shutil.which("qackage") or sys.exit("qackage is not installed (pip install -e .)")
    size_mb = package.stat().st_size / (1 << 20)
    print(f"package: {package.name}: {size_mb:.0f} MB, {args.files}+ files")
    with Path(os.devnull).open("wb") as null:
        gzip_times = [_run(["gzip", "-dc", str(package)], stdout=null.fileno())[0] for _ in range(args.runs)]
    runs = [_run([qackage, "analyze", str(package), "--json", "-o", os.devnull]) for _ in range(args.runs)]
    baseline = min(gzip_times)
    best = min(t for t, _ in runs)
    peak_mb = max(rss for _, rss in runs) / 1024
    ratio = best / baseline
    print(f"gzip -dc:         {baseline:.2f} s (best of {args.runs})")
    print(f"qackage analyze:  {best:.2f} s (best of {args.runs})")
    print(f"ratio:            {ratio:.2f}  (target <= 1.3)")
    print(f"peak RSS:         {peak_mb:.0f} MB  (target <= 150 MB)")
    if args.check and (ratio > 1.3 or peak_mb > 150):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
