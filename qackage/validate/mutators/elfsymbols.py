"""Hide one exported function of an ELF file by renaming it in the dynamic symbol table.

The rename flips the case of one letter, so the name keeps its length and lief can write
the string table back in place; dlsym() of the old name, and every program that calls it,
then fails with "undefined symbol". lief is imported only here, when a mutant needs it.
"""

from __future__ import annotations

from pathlib import Path

from qackage.errors import EnvironmentProblem, InputError
from qackage.validate.mutators.libraries import hidden_name


def rename_dynamic_symbol(source: Path, out: Path, symbol: str, label: str) -> str:
    """Write ``source`` to ``out`` with ``symbol`` renamed; return the new name."""
    try:
        import lief  # noqa: PLC0415 - a heavy extension module only strip-export needs
    except ImportError as exc:
        raise EnvironmentProblem("strip-export needs the lief package (pip install lief)") from exc
    lief.logging.disable()
    binary = lief.ELF.parse(str(source))
    if binary is None:
        raise InputError(f"{label}: not an ELF file lief can read")
    defined = [s for s in binary.dynamic_symbols if s.name == symbol and s.exported]
    if not defined:
        raise InputError(f"{label}: does not export {symbol!r} in its dynamic symbols")
    # lief types names as str | bytes (bytes when not valid UTF-8); those cannot collide.
    names = [s.name for s in (*binary.dynamic_symbols, *binary.symtab_symbols)]
    taken = frozenset(name for name in names if isinstance(name, str))
    renamed = hidden_name(symbol, taken)
    if renamed is None:
        raise InputError(f"{label}: cannot rename {symbol!r} without colliding with another symbol")
    for found in defined:
        found.name = renamed
    binary.write(str(out))
    if not out.is_file():
        raise InputError(f"{label}: lief could not write the renamed ELF file")
    return renamed
