"""Benchmark: what one sandboxed test step costs over running the same shell on the host.

    python bench/bench_sandbox.py [--runs 30]

Times ``Bubblewrap.run`` of the script ``true`` (namespaces, mounts, the per-run cgroup,
supervision and teardown included) against ``subprocess.run(["sh", "-c", "true"])`` on the
host, ``--runs`` times each, and prints both medians and their difference in milliseconds.
The target is at most 50 ms of overhead per step. The sandbox root is a busybox-only root
built in a temporary folder from the host's static busybox (``busybox-static``).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from qackage.validate.bubblewrap import Bubblewrap
from qackage.validate.sandboxing import SandboxRequest

TARGET_MS = 50.0


def busybox_root(destination: Path) -> Path:
    """/usr/bin/busybox and /bin/sh: all the script ``true`` needs."""
    busybox = shutil.which("busybox")
    if busybox is None:
        sys.exit("bench_sandbox: busybox is needed (apt-get install busybox-static)")
    binary = destination / "usr" / "bin" / "busybox"
    binary.parent.mkdir(parents=True)
    shutil.copyfile(busybox, binary)
    binary.chmod(0o755)
    (destination / "bin").mkdir()
    (destination / "bin" / "sh").symlink_to("/usr/bin/busybox")
    return destination


def median_ms(action: Callable[[], object], runs: int) -> float:
    action()  # warm caches (and the sandbox's one-time cgroup discovery)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    options = parser.parse_args(argv)
    sandbox = Bubblewrap()
    print(sandbox.probe())
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as scratch:
        root = busybox_root(Path(scratch) / "root")
        workspace = Path(scratch) / "workspace"
        workspace.mkdir()
        request = SandboxRequest(root, workspace, "true", {"PATH": "/usr/bin:/bin"})

        def sandboxed() -> None:
            outcome = sandbox.run(request)
            if outcome.exit_code != 0:
                sys.exit(f"bench_sandbox: the sandboxed step failed: {outcome}")

        def on_host() -> None:
            subprocess.run(["sh", "-c", "true"], check=True)

        in_sandbox = median_ms(sandboxed, options.runs)
        host = median_ms(on_host, options.runs)
    overhead = in_sandbox - host
    print(f"sandbox {in_sandbox:.1f} ms, host {host:.1f} ms (medians of {options.runs})")
    print(f"overhead per step: {overhead:.1f} ms (target <= {TARGET_MS:.0f} ms)")
    return 0 if overhead <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
