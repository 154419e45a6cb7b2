"""Benchmark: parsing a large APKINDEX with `qackage.apk.index.parse_index_text`.

    python bench/bench_index.py [--records 20000] [--runs 3] [--seed 1]

Fabricates ``--records`` index records shaped like a distribution's (shared atoms such as
``so:libc.so.6`` and ``cmd:sh`` next to versioned ones each package provides alone), writes
them with `format_index`, then parses the text ``--runs`` times and prints the best rate in
records per second. The atom cache is emptied before every run, so each run pays for
parsing the distinct atoms once, as a process reading its first index does.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import random
import sys
import time

from qackage.apk.index import IndexEntry, format_index, parse_index_text
from qackage.apk.pkginfo import parse_atom, parse_atoms
from qackage.model import PackageInfo

# Atoms that many packages of a distribution repeat.
COMMON_DEPENDS = (
    "so:libc.so.6",
    "so:ld-linux-x86-64.so.2",
    "so:libz.so.1",
    "so:libssl.so.3",
    "so:libcrypto.so.3",
    "so:libstdc++.so.6",
    "so:libgcc_s.so.1",
    "cmd:sh",
    "busybox",
    "ca-certificates-bundle",
    "python-3.12",
    "glibc>=2.38",
    "!busybox-full",
)


def _checksum(name: str) -> str:
    return "Q1" + base64.b64encode(hashlib.sha1(name.encode()).digest()).decode()


def synthetic_entry(index: int, rng: random.Random) -> IndexEntry:
    """One package that depends on a few shared atoms and on an earlier package at a
    pinned version, and provides its own library and command at its own version."""
    name = f"pkg{index:05d}"
    upstream = f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}"
    version = f"{upstream}-r{rng.randint(0, 5)}"
    shared = rng.sample(COMMON_DEPENDS, rng.randint(1, 5))
    pinned = [f"pkg{rng.randrange(index):05d}>=1.{rng.randint(0, 9)}"] if index else []
    provides = f"so:lib{name}.so.1={upstream} cmd:{name}={version}"
    info = PackageInfo(
        name=name,
        version=version,
        arch="x86_64",
        origin=name,
        description=f"synthetic package number {index}",
        url=f"https://example.org/{name}",
        license="Apache-2.0",
        build_date=1_700_000_000 + index,
        size=rng.randint(10_000, 50_000_000),
        depends=parse_atoms(" ".join(shared + pinned)),
        provides=parse_atoms(provides),
        install_if=parse_atoms(f"{name} docs") if index % 10 == 0 else (),
    )
    return IndexEntry(info=info, checksum=_checksum(name), file_size=info.size // 3)


def synthetic_index(records: int, seed: int) -> str:
    rng = random.Random(seed)
    return format_index(synthetic_entry(index, rng) for index in range(records))


def best_rate(text: str, records: int, runs: int) -> float:
    """Records per second of the fastest of ``runs`` parses of ``text``."""
    best = float("inf")
    for _ in range(runs):
        parse_atom.cache_clear()
        start = time.perf_counter()
        parsed = parse_index_text(text)
        best = min(best, time.perf_counter() - start)
        if len(parsed) != records:
            raise SystemExit(f"parsed {len(parsed)} records, expected {records}")
    return records / best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    text = synthetic_index(args.records, args.seed)
    print(f"index: {args.records} records, {len(text) / (1 << 20):.1f} MiB of text")
    rate = best_rate(text, args.records, args.runs)
    print(f"parse_index_text: {rate:,.0f} records/s (best of {args.runs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
