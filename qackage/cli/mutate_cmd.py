"""``qackage mutate PKG.apk -o DIR``: write broken copies of a package for strength scoring."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qackage.cli.common import add_limit_options, limits_from
from qackage.errors import InputError
from qackage.validate.mutants import (
    DEFAULT_PER_OPERATOR,
    OPERATORS,
    MutantSpec,
    load_mutants,
    manifest_json,
    write_mutants,
)

NAME = "mutate"
HELP = "write broken copies of a package (mutants) that a strong test must fail on"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("package", nargs="?", metavar="PKG.apk", help="the good package")
    parser.add_argument("-o", "--output", metavar="DIR", help="write the mutants and mutants.json here")
    parser.add_argument(
        "--operator",
        action="append",
        default=None,
        metavar="NAME",
        help="only this operator (repeatable; see --list)",
    )
    parser.add_argument(
        "--max-per-operator",
        type=int,
        default=DEFAULT_PER_OPERATOR,
        metavar="N",
        help="at most N targets per operator, the most important first (default %(default)s)",
    )
    parser.add_argument("--list", action="store_true", help="print the operators and exit")
    parser.add_argument("--json", action="store_true", help="print mutants.json instead of one line per mutant")
    add_limit_options(parser)


def render_operators() -> str:
    width = max(len(name) for name in OPERATORS)
    return "".join(f"{name:<{width}}  {summary}\n" for name, summary in OPERATORS.items())


def render_mutants(written: tuple[tuple[MutantSpec, Path], ...]) -> str:
    """One line per mutant: file, operator, target, description (columns aligned)."""
    if not written:
        return ""
    rows = [(str(path), spec.operator, spec.target, spec.description) for spec, path in written]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    return "".join(
        f"{file:<{widths[0]}}  {operator:<{widths[1]}}  {target:<{widths[2]}}  {description}\n"
        for file, operator, target, description in rows
    )


def run(args: argparse.Namespace) -> int:
    if args.list:
        sys.stdout.write(render_operators())
        return 0
    if not args.package:
        raise InputError("mutate: PKG.apk is required")
    if not args.output:
        raise InputError("mutate: -o DIR is required (where the mutants go)")
    if args.max_per_operator < 1:
        raise InputError("--max-per-operator must be at least 1")
    out_dir = Path(args.output)
    written = write_mutants(
        Path(args.package),
        out_dir,
        operators=args.operator,
        per_operator=args.max_per_operator,
        limits=limits_from(args),
    )
    if args.json:
        sys.stdout.write(manifest_json(load_mutants(out_dir)))
    else:
        sys.stdout.write(render_mutants(written))
    if not written:
        print(f"qackage: no mutation operator applies to {args.package}", file=sys.stderr)
    return 0
