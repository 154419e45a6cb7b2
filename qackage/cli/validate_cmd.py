"""``qackage validate PKG.apk --test FILE``: run a test stanza in the sandbox."""

from __future__ import annotations

import argparse
from pathlib import Path

from qackage.cli.common import add_keyring_option, add_limit_options, limits_from
from qackage.cli.output import dump_json, emit, for_terminal
from qackage.errors import InputError
from qackage.jsonout import to_jsonable
from qackage.validate.bubblewrap import Bubblewrap
from qackage.validate.melange_runner import MelangeInvocation, requires_config, run_melange
from qackage.validate.render import render_report
from qackage.validate.runner import RunOptions
from qackage.validate.session import ValidateRequest, host_arch, validate, with_timeout

NAME = "validate"
HELP = "run a melange test stanza against a package in a bubblewrap sandbox"


def add_environment_options(parser: argparse.ArgumentParser) -> None:
    """Options shared with the commands that run tests (suggest, score)."""
    parser.add_argument(
        "-r",
        "--repository",
        action="append",
        default=[],
        metavar="DIR|URL",
        help="APK repository for dependencies and test tools (repeatable); "
        "without one, the host filesystem is the (weaker) base",
    )
    parser.add_argument(
        "--pipeline-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="look up `uses:` pipelines here first (repeatable), e.g. a wolfi-dev/os pipelines/",
    )
    parser.add_argument(
        "--test-package-append",
        action="append",
        default=[],
        metavar="NAME",
        help="add a package to every test environment (Wolfi appends wolfi-base)",
    )
    parser.add_argument("--arch", default=host_arch(), help="architecture of the repositories (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=1, metavar="N", help="run the test N times, report flaky steps")
    parser.add_argument("--timeout", type=float, metavar="S", help="wall-clock limit of each step in seconds")
    parser.add_argument("--source-dir", metavar="DIR", help="files to place in /home/build (melange --source-dir)")
    parser.add_argument("--cache-dir", metavar="DIR", help="extraction and download cache (default: ~/.cache/qackage)")
    add_keyring_option(parser)
    add_limit_options(parser)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("package", metavar="PKG.apk", help="the package under test")
    parser.add_argument(
        "--test", required=True, metavar="FILE", help="a melange package YAML or a file whose top level is test:"
    )
    parser.add_argument(
        "--package", dest="package_name", metavar="NAME", help="which package's test: in FILE (default: the APK's name)"
    )
    add_environment_options(parser)
    parser.add_argument("--keep-going", action="store_true", help="run every step even after one fails")
    parser.add_argument(
        "--runner",
        choices=("qackage", "melange"),
        default="qackage",
        help="qackage's own runner (default) or a real `melange test` when installed",
    )
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")


def request_from(
    args: argparse.Namespace, package: Path, test_file: Path | None = None, package_name: str | None = None
) -> ValidateRequest:
    """A request from the shared environment options (see `add_environment_options`)."""
    options = RunOptions(
        repeat=args.repeat,
        keep_going=getattr(args, "keep_going", False),
        source_dir=Path(args.source_dir) if args.source_dir else None,
    )
    if args.repeat < 1:
        raise InputError("--repeat must be at least 1")
    return ValidateRequest(
        package=package,
        test_file=test_file,
        package_name=package_name,
        repositories=tuple(args.repository),
        keyring=Path(args.keyring) if args.keyring else None,
        pipeline_dirs=tuple(Path(d) for d in args.pipeline_dir),
        append_packages=tuple(args.test_package_append),
        arch=args.arch,
        run=with_timeout(options, args.timeout),
        limits=limits_from(args),
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
    )


def run(args: argparse.Namespace) -> int:
    request = request_from(args, Path(args.package), Path(args.test), args.package_name)
    if args.runner == "melange":
        return _run_melange(request)
    sandbox = Bubblewrap()
    sandbox.probe()
    report = validate(request, sandbox=sandbox)
    as_json = dump_json(to_jsonable(report), pretty=for_terminal(args.output)) if args.json else None
    text = as_json or render_report(report)
    emit(text, args.output)
    return 0 if report.passed else 1


def _run_melange(request: ValidateRequest) -> int:
    import yaml  # noqa: PLC0415 - melange mode only

    assert request.test_file is not None
    keys = list((yaml.safe_load(request.test_file.read_text(encoding="utf-8")) or {}).keys())
    requires_config(request.test_file, keys)
    return run_melange(
        MelangeInvocation(
            config=request.test_file,
            package=request.package_name,
            repositories=request.repositories,
            keyrings=(str(request.keyring),) if request.keyring else (),
            pipeline_dirs=tuple(str(d) for d in request.pipeline_dirs),
            append_packages=request.append_packages,
            arch=request.arch,
            source_dir=request.run.source_dir,
        ),
        timeout=None,
    )
