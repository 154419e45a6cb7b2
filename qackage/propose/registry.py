"""The ordered proposers. Adding one means adding a module and a line here."""

from __future__ import annotations

from qackage.propose.base import Proposer
from qackage.propose.cli_checks import CliProposer
from qackage.propose.daemon_checks import DaemonProposer
from qackage.propose.executables import ExecutablesProposer
from qackage.propose.library_checks import LibraryProposer
from qackage.propose.module_checks import ModuleProposer
from qackage.propose.structural import StructuralProposer


def default_proposers() -> tuple[Proposer, ...]:
    return (
        StructuralProposer(),
        ExecutablesProposer(),
        CliProposer(),
        LibraryProposer(),
        ModuleProposer(),
        DaemonProposer(),
    )
