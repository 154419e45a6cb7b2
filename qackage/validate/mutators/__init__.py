"""Mutation operators, one module per family; `REGISTRY` lists them in report order."""

from __future__ import annotations

from qackage.validate.mutators import devel, files, languages, libraries, lookalikes, programs
from qackage.validate.mutators.base import Operator

# Programs first (what most tests exercise), then programs that only look healthy, then
# libraries, build files, language modules, the package's other files, and last the
# whole package emptied.
REGISTRY: tuple[Operator, ...] = (
    *programs.OPERATORS,
    *lookalikes.OPERATORS,
    *libraries.OPERATORS,
    *devel.OPERATORS,
    *languages.OPERATORS,
    *files.OPERATORS,
)
