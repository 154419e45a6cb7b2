"""The ordered proposers. Adding one means adding a module and a line here."""

from __future__ import annotations

from qackage.propose.base import Proposer
from qackage.propose.executables import ExecutablesProposer
from qackage.propose.structural import StructuralProposer


def default_proposers() -> tuple[Proposer, ...]:
    return (
        StructuralProposer(),
        ExecutablesProposer(),
    )
