"""``qackage analyze PKG``: what a package ships, as facts later stages test."""

from __future__ import annotations

import argparse
from pathlib import Path

from qackage.analyze.engine import analyze_source
from qackage.analyze.render import render_analysis
from qackage.apk.source import open_package
from qackage.cli.common import add_keyring_option, add_limit_options, keyring_from, limits_from
from qackage.cli.output import dump_json, emit, for_terminal
from qackage.errors import InputError
from qackage.jsonout import to_jsonable
from qackage.schema import published_schema

NAME = "analyze"
HELP = "describe what a package ships (ELF, symlinks, modules, headers, services, docs ...)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "package",
        nargs="?",
        metavar="PKG",
        help="an .apk file, an extracted package folder, or (with --root) an installed package name",
    )
    parser.add_argument("--root", metavar="DIR", help="read PKG as installed in this root filesystem")
    parser.add_argument("--json", action="store_true", help="print JSON (see --schema)")
    parser.add_argument("--schema", action="store_true", help="print the JSON Schema of --json output and exit")
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    add_keyring_option(parser)
    add_limit_options(parser)


def run(args: argparse.Namespace) -> int:
    if args.schema:
        emit(published_schema("analysis"), args.output)
        return 0
    if not args.package:
        raise InputError("analyze: PKG is required (an .apk file, a folder, or a name with --root)")
    source = open_package(
        args.package,
        root=Path(args.root) if args.root else None,
        keyring=keyring_from(args),
        limits=limits_from(args),
    )
    try:
        analysis = analyze_source(source)
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()
    text = (
        dump_json(to_jsonable(analysis), pretty=for_terminal(args.output)) if args.json else render_analysis(analysis)
    )
    emit(text, args.output)
    return 0
