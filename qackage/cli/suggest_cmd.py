"""``qackage suggest PKG.apk...``: propose a proven melange test stanza."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qackage.cli.output import dump_json, emit, for_terminal
from qackage.cli.validate_cmd import add_environment_options, request_from
from qackage.errors import InputError
from qackage.jsonout import to_jsonable
from qackage.propose.yamfmt import format_stanza, format_stanzas
from qackage.suggest import Suggestion, SuggestRequest, suggest
from qackage.validate.bubblewrap import Bubblewrap
from qackage.validate.scorecache import ScoreCache, default_score_folder
from qackage.validate.strength import StrengthReport

NAME = "suggest"
HELP = "propose a melange test: stanza for packages, proven in the sandbox"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "packages",
        nargs="+",
        metavar="PKG.apk",
        help="one package, or the packages of one origin (main package and subpackages)",
    )
    add_environment_options(parser)
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--validate",
        dest="validate",
        action="store_true",
        default=None,
        help="run every proposed step in the sandbox (default when bubblewrap works)",
    )
    group.add_argument(
        "--no-validate",
        dest="validate",
        action="store_false",
        help="print the proposal without running anything (says so)",
    )
    parser.add_argument(
        "--strength",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="score the first draft and the final stanza on broken copies of the package (default: on when validating)",
    )
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the stanza (or JSON) to FILE")


def _notes(suggestion: Suggestion) -> list[str]:
    lines = [f"# {suggestion.package}: {note}" for note in suggestion.notes]
    lines += [f"# {suggestion.package}: kept {k.candidate.step.title!r}: {k.note}" for k in suggestion.kept if k.note]
    lines += [f"# {suggestion.package}: skipped {d.candidate.step.title!r}: {d.reason}" for d in suggestion.dropped]
    if suggestion.strength is not None:
        lines.append(
            f"# {suggestion.package}: strength: first draft {_score_line(suggestion.strength.draft)}; "
            f"final {_score_line(suggestion.strength.final)}"
        )
        lines += [
            f"# {suggestion.package}: survives: {m.operator} {m.target}: {m.description}"
            for m in suggestion.strength.final.survivors
        ]
    return lines


def _score_line(report: StrengthReport) -> str:
    if report.kill_rate is None:
        return report.verdict.value
    return f"kills {report.killed}/{report.applicable} ({report.verdict.value})"


def run(args: argparse.Namespace) -> int:
    sandbox = Bubblewrap()
    validate = args.validate
    unavailable = Bubblewrap.available()
    if validate is None:
        validate = unavailable is None
    elif validate and unavailable is not None:
        raise InputError(f"--validate: the sandbox is not usable here: {unavailable}")
    suggestions = []
    for package in args.packages:
        request = request_from(args, Path(package))
        cache = ScoreCache(default_score_folder(request.cache_dir))
        wanted = SuggestRequest(
            validate=request, run_validation=validate, strength=args.strength and validate, score_cache=cache
        )
        suggestions.append(suggest(wanted, sandbox=sandbox))
    if not validate and unavailable is not None:
        print(f"# qackage: not validated: {unavailable}", file=sys.stderr)
    for suggestion in suggestions:
        for line in _notes(suggestion):
            print(line, file=sys.stderr)
    empty = [s.package for s in suggestions if not s.stanza.pipeline]
    for name in empty:
        print(f"# {name}: no proposed step passed on the package (see the skipped steps above)", file=sys.stderr)
    if args.json:
        text = dump_json(
            to_jsonable(suggestions if len(suggestions) > 1 else suggestions[0]), pretty=for_terminal(args.output)
        )
    elif len(suggestions) == 1:
        text = format_stanza(suggestions[0].stanza) if suggestions[0].stanza.pipeline else ""
    else:
        text = format_stanzas({s.package: s.stanza for s in suggestions if s.stanza.pipeline})
    emit(text, args.output)
    return 1 if empty else 0
