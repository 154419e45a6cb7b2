"""The interface every proposer implements.

Proposing alternates with probing, but proposers never run anything themselves: the
orchestrator (`qackage.suggest`) asks each proposer which probes it wants given what
has been observed so far, runs them in the sandbox, and asks again until no proposer
wants more; then it asks for candidates. Everything here is a pure function of the
analysis and the probe results, so proposers are tested on data alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Protocol

from qackage.model import Analysis, Candidate, ProbeCommand, ProbeResult

# A proposer that keeps asking for probes is cut off after this many rounds.
MAX_PROBE_ROUNDS = 3


class Proposer(Protocol):
    name: ClassVar[str]

    def probes(self, analysis: Analysis, seen: Mapping[str, ProbeResult]) -> tuple[ProbeCommand, ...]:
        """Probes still wanted, given the results so far (keys already in ``seen`` are not rerun)."""
        ...

    def candidates(self, analysis: Analysis, seen: Mapping[str, ProbeResult]) -> tuple[Candidate, ...]:
        """Steps to propose, each asserting only what the probes observed."""
        ...
