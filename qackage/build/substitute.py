"""melange's ``${{name}}`` substitution, strict like melange: an unknown name is an error."""

from __future__ import annotations

import re
from collections.abc import Mapping

from qackage.errors import InputError

_EXPRESSION = re.compile(r"\$\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")


def substitute(text: str, variables: Mapping[str, str], where: str) -> str:
    """Replace every ``${{name}}`` in ``text``; ``where`` names the place for errors."""

    def replace(match: re.Match[str]) -> str:
        name = match[1]
        try:
            return variables[name]
        except KeyError:
            raise InputError(f"{where}: variable {name} not defined") from None

    result = _EXPRESSION.sub(replace, text)
    # A "${{" left over is a typo such as a missing brace; melange rejects it too.
    leftover = result.find("${{")
    if leftover != -1:
        snippet = result[leftover : leftover + 40].splitlines()[0]
        raise InputError(f"{where}: malformed substitution {snippet!r}")
    return result


def package_variables(
    name: str, version: str, epoch: int, description: str, extra_vars: Mapping[str, str]
) -> dict[str, str]:
    """The names known while the build file is read: ``package.*`` and ``vars.*``."""
    variables = {
        "package.name": name,
        "package.version": version,
        "package.epoch": str(epoch),
        "package.full-version": f"{version}-r{epoch}",
        "package.description": description,
    }
    variables.update({f"vars.{key}": value for key, value in extra_vars.items()})
    return variables
