"""Trials that run twice, and what their probe results let a step assert.

A functional check asserts what a probe observed, so the observation must be one the
step will see again: every trial runs twice, each time in a fresh folder with standard
input closed, and counts only when both runs printed the same and ended alike. Output
that names the folder, a time or a process id therefore never becomes an expectation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from qackage.model import ProbeResult
from qackage.propose.templates import render

# What the probe prints (on stderr) and exits with when the two runs disagreed.
NONDETERMINISTIC_MARK = "qackage-probe: the two runs differed"
NONDETERMINISTIC_STATUS = 125


def twice(body: str) -> str:
    """A probe script running ``body`` (a shell snippet, ``set -e`` applies) twice."""
    return render(
        "func-probe-twice.sh.j2", body=body.rstrip("\n"), marker=NONDETERMINISTIC_MARK, status=NONDETERMINISTIC_STATUS
    )


@dataclass(frozen=True, slots=True)
class Observation:
    """A trial both runs of which agreed."""

    status: int
    stdout: str
    stderr: str

    @property
    def succeeded(self) -> bool:
        return self.status == 0


def observed(seen: Mapping[str, ProbeResult], key: str) -> Observation | None:
    """The agreed outcome of the twice-run probe ``key``; None when it did not run, timed
    out, hit a limit or gave different results on its two runs."""
    result = seen.get(key)
    if result is None or result.reason is not None or result.exit_code is None:
        return None
    if result.exit_code == NONDETERMINISTIC_STATUS and NONDETERMINISTIC_MARK in result.stderr:
        return None
    return Observation(status=result.exit_code, stdout=result.stdout, stderr=result.stderr)


# Words that make output read as a complaint rather than a result.
_COMPLAINT = re.compile(
    r"\b(error|usage|unknown|invalid|illegal|unrecognized|unrecognised|not found|no such|cannot|can't|"
    r"could not|couldn't|failed|failure|missing|denied|not supported|unsupported|warning|fatal|traceback)\b",
    re.IGNORECASE,
)


def reads_as_complaint(text: str) -> bool:
    return bool(_COMPLAINT.search(text))


def mentions_version(text: str, version: str) -> bool:
    """True when ``text`` shows the package version (never asserted: it changes every release).

    ``version`` is the apk version (``2.12.1-r1``); the upstream part is what programs print.
    """
    upstream = version.rsplit("-r", 1)[0]
    if len(upstream) < 3 and "." not in upstream:
        return False  # "1" or "12" would match any count in the output
    return re.search(rf"(?<![\w.]){re.escape(upstream)}(?![\w])", text) is not None
