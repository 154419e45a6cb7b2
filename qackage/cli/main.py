"""``qackage`` entry point: parse arguments, dispatch to a command, map errors to exit codes.

Each command lives in its own module exposing ``NAME``, ``HELP``, ``configure(parser)``
and ``run(args) -> int``. Errors are printed as one line; tracebacks never reach users.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from qackage import __version__
from qackage.errors import QackageError

# Command name -> module. Modules are imported only when needed: `qackage analyze`
# should not pay for YAML, HTTP or build machinery it never uses.
COMMANDS: dict[str, str] = {
    "analyze": "qackage.cli.analyze_cmd",
    "resolve": "qackage.cli.resolve_cmd",
    "validate": "qackage.cli.validate_cmd",
    "suggest": "qackage.cli.suggest_cmd",
    "mutate": "qackage.cli.mutate_cmd",
    "score": "qackage.cli.score_cmd",
    "build-fixtures": "qackage.cli.build_cmd",
}


def _chosen_command(argv: Sequence[str]) -> str | None:
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser for every command, or (``only``) just the one being run."""
    parser = argparse.ArgumentParser(
        prog="qackage", description="Write, prove and ship melange test stanzas for .apk packages."
    )
    parser.add_argument("--version", action="version", version=f"qackage {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        if only is not None and name != only:
            continue
        command = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=command.HELP, description=command.HELP)
        command.configure(sub)
        sub.set_defaults(handler=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_chosen_command(arguments))
    argv = arguments
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
