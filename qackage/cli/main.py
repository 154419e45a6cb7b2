"""``qackage`` entry point: parse arguments, dispatch to a command, map errors to exit codes.

Each command lives in its own module exposing ``NAME``, ``HELP``, ``configure(parser)``
and ``run(args) -> int``. Errors are printed as one line; tracebacks never reach users.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from qackage import __version__
from qackage.cli import analyze_cmd, build_cmd, resolve_cmd
from qackage.errors import QackageError

COMMANDS: tuple[ModuleType, ...] = (analyze_cmd, resolve_cmd, build_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qackage", description="Write, prove and ship melange test stanzas for .apk packages."
    )
    parser.add_argument("--version", action="version", version=f"qackage {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub = subparsers.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        command.configure(sub)
        sub.set_defaults(handler=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its one-line usage error
        return int(exc.code or 0)
    try:
        result: int = args.handler(args)
    except QackageError as exc:
        print(f"qackage: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("qackage: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return result


def entry_point() -> None:
    sys.exit(main())
