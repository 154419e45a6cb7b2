"""CLI functional checks: help and manual parsing, trial planning and judging on data,
then real probes and proofs in the sandbox on the fixture packages and on made-up ones."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import pytest
from funckit import (
    analysis_of,
    analysis_with,
    assert_every_step_fails,
    failures,
    gather,
    outputs,
    prove,
    replace_file,
    request_for,
    result,
    rewrite,
    synthetic_package,
)

from qackage.build import RepositoryBuild
from qackage.model import Candidate, CheckKind, Daemon, DocKind, Document, Executable, Facts, ProbeResult
from qackage.propose.cli_checks import CliProposer, help_key, man_key, subcommand_help_key
from qackage.propose.cli_trials import SAMPLE_TEXT, TrialStyle, judge, plan_trials
from qackage.propose.cli_usage import Positional, man_to_text, parse_help, positionals
from qackage.propose.expect import ExpectKind, assertion_script, expectation_for
from qackage.propose.observe import NONDETERMINISTIC_MARK, NONDETERMINISTIC_STATUS, Observation, observed, twice

HELLO_HELP = """\
Usage: hello [--version] [--help] COMMAND [ARGS]

Commands:
  greet [--shout] NAME...  print a greeting for each NAME
  upper                    copy standard input to standard output, upper-cased

Options:
  -h, --help     show this help and exit
  -V, --version  show the version and exit
"""

ARGPARSE_HELP = """\
usage: pyfoo [-h] [--version] {slugify,check} ...

Turn titles into URL slugs.

positional arguments:
  {slugify,check}
    slugify   print the slug of each TEXT (or of each stdin line)
    check     tell whether TEXT is a slug

options:
  -h, --help  show this help message and exit
  --version   show program's version number and exit
"""

COBRA_HELP = """\
Tidy up configuration files.

Usage:
  tidy [flags]
  tidy [command]

Available Commands:
  completion  Generate the autocompletion script for the specified shell
  format      Reformat a file
  help        Help about any command

Flags:
  -h, --help            help for tidy
  -o, --output string   where to write (default "-")

Examples:
  $ tidy format notes.txt
"""

GREETER_MAN = r""".TH GREETER 1 "" "greeter" "User Commands"
.\" a made-up manual page
.SH NAME
greeter \- shout and count words
.SH SYNOPSIS
.B greeter
.I command
.RI [ args ]
.SH COMMANDS
.TP
.BI shout " WORDS" ...
Print the
.I WORDS
upper-cased.
.SH EXAMPLES
.nf
.RS
$ greeter shout hello there
HELLO THERE
.RE
.fi
"""


# --------------------------------------------------------------------------- help texts


def test_gnu_style_help_names_subcommands_options_and_usage() -> None:
    usage = parse_help(HELLO_HELP, "hello")
    assert usage.usages == ("[--version] [--help] COMMAND [ARGS]",)
    assert [(s.name, s.synopsis) for s in usage.subcommands] == [("greet", "[--shout] NAME..."), ("upper", "")]
    assert usage.subcommands[1].summary.startswith("copy standard input")
    assert usage.option("--version") is not None and usage.option("-V") == usage.option("--version")
    assert usage.takes_subcommand


def test_argparse_subparsers_are_subcommands() -> None:
    usage = parse_help(ARGPARSE_HELP, "pyfoo")
    assert [s.name for s in usage.subcommands] == ["slugify", "check"]
    assert usage.subcommands[0].summary == "print the slug of each TEXT (or of each stdin line)"


def test_cobra_help_drops_framework_commands_and_reads_examples() -> None:
    usage = parse_help(COBRA_HELP, "tidy")
    assert [s.name for s in usage.subcommands] == ["format"]
    assert usage.examples == ("tidy format notes.txt",)
    output = usage.option("--output")
    assert output is not None and output.argument == "string" and output.short == "-o"


def test_manual_page_reads_like_help() -> None:
    text = man_to_text(GREETER_MAN)
    assert "a made-up manual page" not in text
    usage = parse_help(text, "greeter")
    assert usage.usages == ("command [args]",)
    assert [(s.name, s.synopsis) for s in usage.subcommands] == [("shout", "WORDS...")]
    assert usage.subcommands[0].summary == "Print the"
    assert usage.examples == ("greeter shout hello there",)


def test_help_and_manual_merge_without_duplicates() -> None:
    merged = parse_help(HELLO_HELP, "hello").merged(parse_help(man_to_text(GREETER_MAN), "greeter"))
    assert [s.name for s in merged.subcommands] == ["greet", "upper", "shout"]
    assert len([o for o in merged.options if "--help" in o.flags]) == 1


@pytest.mark.parametrize(
    ("synopsis", "expected"),
    [
        ("[-n COUNT] [FILE...]", (Positional("FILE", optional=True, repeated=True),)),
        ("[--shout] NAME...", (Positional("NAME", repeated=True),)),
        ("-o FILE INPUT", (Positional("INPUT"),)),
        ("[-h] [--separator SEPARATOR] [text ...]", (Positional("text", optional=True, repeated=True),)),
        ("<pattern> [<file>...]", (Positional("pattern"), Positional("file", optional=True, repeated=True))),
        ("[--version] [--help] {a,b} ...", ()),
    ],
)
def test_positionals_skip_options_and_their_arguments(synopsis: str, expected: tuple[Positional, ...]) -> None:
    options = parse_help("  -o FILE  write to FILE\n", "x").options
    assert positionals(synopsis, options) == expected


# --------------------------------------------------------------------------- trials


def test_subcommand_trials_follow_the_listing() -> None:
    trials = {t.key: t for t in plan_trials("hello", parse_help(HELLO_HELP, "hello"), {})}
    assert set(trials) == {"cli:hello:try:greet-arg", "cli:hello:try:greet-flag", "cli:hello:try:upper-stdin"}
    assert trials["cli:hello:try:greet-arg"].command == "hello greet wolfi"
    assert trials["cli:hello:try:greet-flag"].command == "hello greet --shout wolfi"
    upper = trials["cli:hello:try:upper-stdin"]
    assert upper.command == "hello upper < sample.txt"
    assert "sample.txt" in upper.setup


def test_subcommands_without_arguments_wait_for_their_own_help() -> None:
    usage = parse_help(ARGPARSE_HELP, "pyfoo")
    early = {t.key for t in plan_trials("pyfoo", usage, {})}
    assert early == {"cli:pyfoo:try:slugify-stdin"}  # the listing says it reads stdin; check waits
    own = parse_help("usage: pyfoo slugify [-h] [--separator SEPARATOR] [text ...]\n", "pyfoo")
    later = {t.key: t for t in plan_trials("pyfoo", usage, {"slugify": own, "check": None})}
    assert later["cli:pyfoo:try:slugify-arg"].command == "pyfoo slugify 'Hello Wolfi'"
    assert "cli:pyfoo:try:check-arg" not in later  # its help failed and nothing else says how


def test_compressors_get_a_round_trip() -> None:
    usage = parse_help(
        "Usage: packer [-cdt] [FILE]...\n\nCompress FILEs (or stdin)\n\n"
        "  -d  Decompress\n  -c  Write to stdout\n  -t  Test the integrity of compressed input\n",
        "packer",
    )
    (trial,) = plan_trials("packer", usage, {})
    assert trial.style is TrialStyle.ROUNDTRIP
    assert "packer -c < sample.txt > sample.txt.packed" in trial.command
    assert "packer -c -d < sample.txt.packed > unpacked.txt" in trial.command
    assert "packer -t < sample.txt.packed" in trial.command
    assert "if cmp -s sample.txt sample.txt.packed; then" in trial.command


def test_checksum_tools_check_the_sums_they_wrote() -> None:
    usage = parse_help(
        "Usage: sumtool [-c] [FILE]...\n\nPrint or check checksums\n\n  -c  Check sums in FILEs\n", "sumtool"
    )
    (trial,) = plan_trials("sumtool", usage, {})
    assert trial.command == "sumtool -c sample.txt.sums"
    assert "sumtool sample.txt > sample.txt.sums" in trial.setup


def test_hosts_and_output_files_are_never_invented() -> None:
    usage = parse_help("Usage: fetcher [-v] URL OUTPUT\n", "fetcher")
    assert plan_trials("fetcher", usage, {}) == ()


def test_judging_keeps_derived_output_and_drops_complaints() -> None:
    greet = next(t for t in plan_trials("hello", parse_help(HELLO_HELP, "hello"), {}) if t.key.endswith("greet-arg"))
    kept = judge(greet, Observation(0, "Hello, wolfi!\n", ""), version="2.12.1-r1")
    assert kept is not None and kept.score == 2
    assert kept.expectation is not None and kept.expectation.kind is ExpectKind.EXACT_LINE
    assert judge(greet, Observation(0, "hello: unknown command 'greet'\n", ""), version="1-r0") is None
    assert judge(greet, Observation(0, "something unrelated\n", ""), version="1-r0") is None
    assert judge(greet, Observation(1, "Hello, wolfi!\n", ""), version="1-r0") is None
    assert judge(greet, None, version="1-r0") is None
    echoed = judge(greet, Observation(0, "wolfi\n", ""), version="1-r0")
    assert echoed is not None and echoed.score == 1


def test_versions_are_never_asserted() -> None:
    expectation = expectation_for("hello 2.12.1\nHello, wolfi!\n", version="2.12.1-r1", tokens=("wolfi",))
    assert expectation is not None and expectation.kind is ExpectKind.CONTAINS
    assert expectation.text == "Hello, wolfi!"
    assert expectation_for("hello 2.12.1\n", version="2.12.1-r1") is None


def test_expectations_keep_what_yaml_keeps() -> None:
    assert expectation_for("a\nb\n", version="9.9-r0") == expectation_for("a\nb\n", version="9.9-r0")
    multi = expectation_for("3 the\n1 fox\n", version="9.9-r0")
    assert multi is not None and multi.kind is ExpectKind.EXACT_TEXT
    trailing = expectation_for("3 the  \n1 fox\n", version="9.9-r0", tokens=("fox",))
    assert trailing is not None and trailing.kind is ExpectKind.CONTAINS and trailing.text == "1 fox"
    assert expectation_for("   \n", version="9.9-r0") is None


@pytest.mark.parametrize("stdout", ["Hello, 'wolfi'!\n", "3 the\n1 EOF\nEOF\n", "a line that is long " * 8 + "\n"])
def test_assertion_scripts_are_valid_shell(stdout: str, tmp_path: Path) -> None:
    expectation = expectation_for(stdout, version="1.0-r0", tokens=("wolfi", "the", "line"))
    assert expectation is not None
    script = assertion_script(setup="printf 'x\\n' > sample.txt", command="cat sample.txt", expectation=expectation,
                              output="cat.out")  # fmt: skip
    checked = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True, check=False)
    assert checked.returncode == 0, checked.stderr
    # The script fails on the wrong output (cat prints "x"), which proves it checks something.
    ran = subprocess.run(["sh", "-ec", script], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert ran.returncode != 0


def test_twice_only_reports_agreeing_runs(tmp_path: Path) -> None:
    steady = subprocess.run(["sh", "-c", twice("echo same")], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert (steady.returncode, steady.stdout) == (0, "same\n")
    (tmp_path / "b").mkdir()
    moving = subprocess.run(["sh", "-c", twice("pwd")], cwd=tmp_path / "b", capture_output=True, text=True, check=False)
    assert moving.returncode == NONDETERMINISTIC_STATUS and NONDETERMINISTIC_MARK in moving.stderr
    assert observed({"k": result("k", moving.stdout, moving.returncode, moving.stderr)}, "k") is None
    (tmp_path / "c").mkdir()
    failing = subprocess.run(["sh", "-c", twice("echo partial; false; echo never")], cwd=tmp_path / "c",
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert (failing.returncode, failing.stdout) == (1, "partial\n")  # set -e applies inside the trial


# --------------------------------------------------------------------------- the proposer on data


def _hello_facts(**changes: object) -> Facts:
    executable = Executable("usr/bin/hello", "hello", on_path=True, elf=True)
    return Facts(executables=(executable,), **changes)  # type: ignore[arg-type]


def test_rounds_help_first_then_trials() -> None:
    analysis = analysis_with(_hello_facts(), name="hello", version="2.12.1-r1")
    proposer = CliProposer()
    first = proposer.probes(analysis, {})
    assert [c.key for c in first] == [help_key("hello")]
    seen = {help_key("hello"): result(help_key("hello"), HELLO_HELP)}
    second = {c.key for c in proposer.probes(analysis, seen)}
    assert {"cli:hello:try:greet-arg", "cli:hello:try:upper-stdin"} <= second


def test_manual_pages_are_read_when_shipped() -> None:
    page = Document("usr/share/man/man1/greeter.1.gz", DocKind.MAN, section="1", topic="greeter")
    facts = Facts(executables=(Executable("usr/bin/greeter", "greeter", True, False, "/bin/sh"),), documents=(page,))
    analysis = analysis_with(facts, name="greeter")
    keys = [c.key for c in CliProposer().probes(analysis, {})]
    assert keys == [help_key("greeter"), man_key("greeter")]
    seen = {
        help_key("greeter"): result(help_key("greeter"), "", exit_code=1),
        man_key("greeter"): result(man_key("greeter"), GREETER_MAN),
    }
    wanted = {c.key for c in CliProposer().probes(analysis, seen)}
    assert {"cli:greeter:example:1", "cli:greeter:try:shout-arg"} <= wanted


def test_daemons_are_left_to_the_daemon_checks() -> None:
    facts = _hello_facts(daemons=(Daemon("usr/bin/hello", "hello", ("test",)),))
    assert CliProposer().probes(analysis_with(facts), {}) == ()


def test_candidates_assert_only_agreeing_observations() -> None:
    analysis = analysis_with(_hello_facts(), name="hello", version="2.12.1-r1")
    seen: dict[str, ProbeResult] = {
        help_key("hello"): result(help_key("hello"), HELLO_HELP),
        "cli:hello:try:greet-arg": result("cli:hello:try:greet-arg", "Hello, wolfi!\n"),
        "cli:hello:try:greet-flag": result(
            "cli:hello:try:greet-flag", "", NONDETERMINISTIC_STATUS, NONDETERMINISTIC_MARK
        ),
        "cli:hello:try:upper-stdin": result("cli:hello:try:upper-stdin", SAMPLE_TEXT.upper()),
    }
    candidates = CliProposer().candidates(analysis, seen)
    assert [c.step.name for c in candidates] == [
        "hello greet answers a sample argument",
        "hello upper filters standard input",
    ]
    assert all(c.kind is CheckKind.FUNCTIONAL and "exec-exit-0-silent" in c.targets for c in candidates)
    assert "test \"$out\" = 'Hello, wolfi!'" in (candidates[0].step.runs or "")
    assert "THE QUICK BROWN FOX" in (candidates[1].step.runs or "")


def test_subcommand_help_keys_are_asked_for() -> None:
    analysis = analysis_with(Facts(executables=(Executable("usr/bin/pyfoo", "pyfoo", True, False),)), name="py3-pyfoo")
    seen = {help_key("pyfoo"): result(help_key("pyfoo"), ARGPARSE_HELP)}
    wanted = {c.key for c in CliProposer().probes(analysis, seen)}
    assert {subcommand_help_key("pyfoo", "slugify"), subcommand_help_key("pyfoo", "check")} <= wanted


# --------------------------------------------------------------------------- in the sandbox


def _propose(repo: RepositoryBuild, apk: Path, cache: Path) -> tuple[tuple[Candidate, ...], dict[str, ProbeResult]]:
    analysis = analysis_of(apk)
    seen = gather(CliProposer(), analysis, request_for(repo, apk, cache))
    return CliProposer().candidates(analysis, seen), seen


def _assert_kills(repo: RepositoryBuild, broken: Path, candidates: tuple[Candidate, ...], folder: Path) -> None:
    assert_every_step_fails(prove(repo, broken, candidates, folder), candidates)


def test_hello_checks_pass_and_catch_broken_programs(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    apk = fixture_repo.package("hello").path
    candidates, seen = _propose(fixture_repo, apk, tmp_path / "cache")
    runs = {c.step.name: c.step.runs or "" for c in candidates}
    assert "hello greet answers a sample argument" in runs, outputs(seen, "cli:")
    assert "'Hello, wolfi!'" in runs["hello greet answers a sample argument"]
    assert "THE QUICK BROWN FOX" in runs["hello upper filters standard input"]
    report = prove(fixture_repo, apk, candidates, tmp_path / "good")
    assert report.passed, failures(report)
    for label, script in (("silent", b"#!/bin/sh\nexit 0\n"), ("failing", b"#!/bin/sh\nexit 1\n")):
        broken = rewrite(apk, tmp_path / f"{label}.apk", replace_file("usr/bin/hello", script))
        _assert_kills(fixture_repo, broken, candidates, tmp_path / label)


def test_wordfreq_counts_a_sample(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    apk = fixture_repo.package("shtools").path
    candidates, seen = _propose(fixture_repo, apk, tmp_path / "cache")
    assert candidates, outputs(seen, "cli:")
    assert "3 the\n" in (candidates[0].step.runs or "")
    assert prove(fixture_repo, apk, candidates, tmp_path / "good").passed
    # A wordfreq that forgets to count: prints the words it read.
    echoing = b'#!/bin/sh\n[ "$1" = --help ] && exit 0\ncat "$@"\n'
    broken = rewrite(apk, tmp_path / "echo.apk", replace_file("usr/bin/wordfreq", echoing))
    _assert_kills(fixture_repo, broken, candidates, tmp_path / "echo")


GREETER = b"""#!/bin/sh
case "$1" in
--help|-h) echo "usage: greeter COMMAND [ARGS] (see greeter(1))" ;;
shout) shift; echo "$*" | tr a-z A-Z ;;
*) echo "greeter: unknown command" >&2; exit 2 ;;
esac
"""


def test_manual_examples_become_checks(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    files = {
        "usr/bin/greeter": (GREETER, 0o755),
        "usr/share/man/man1/greeter.1.gz": (gzip.compress(GREETER_MAN.encode(), mtime=0), 0o644),
    }
    apk = synthetic_package(tmp_path, "greeter", files, depends="busybox")
    candidates, seen = _propose(fixture_repo, apk, tmp_path / "cache")
    assert seen[man_key("greeter")].ok
    names = [c.step.name for c in candidates]
    assert names == [
        "greeter runs its documented example `greeter shout hello there`",
        "greeter shout answers a sample argument",
    ]
    assert "HELLO THERE" in (candidates[0].step.runs or "") and "HELLO WOLFI" in (candidates[1].step.runs or "")
    assert prove(fixture_repo, apk, candidates, tmp_path / "good").passed
    lower = rewrite(
        apk, tmp_path / "lower.apk", replace_file("usr/bin/greeter", GREETER.replace(b"a-z A-Z", b"A-Z a-z"))
    )
    _assert_kills(fixture_repo, lower, candidates, tmp_path / "lower")


PACKER_HELP = b"""Usage: packer [-cdt] [FILE]...

Compress FILEs (or stdin)

  -d  Decompress
  -c  Write to stdout
  -t  Test the integrity of compressed input
"""


def test_compressor_round_trip_in_the_sandbox(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    script = b'#!/bin/sh\nif [ "$1" = --help ]; then cat <<EOF\n' + PACKER_HELP + b'EOF\nexit 0\nfi\nexec gzip "$@"\n'
    apk = synthetic_package(tmp_path, "packer", {"usr/bin/packer": (script, 0o755)}, depends="busybox")
    candidates, seen = _propose(fixture_repo, apk, tmp_path / "cache")
    assert [c.step.name for c in candidates] == ["packer round-trips a sample losslessly"], outputs(seen, "cli:")
    assert prove(fixture_repo, apk, candidates, tmp_path / "good").passed
    # A "compressor" that copies its input passes a decompress-and-compare test alone.
    copying = script.replace(b'exec gzip "$@"', b"exec cat")
    _assert_kills(fixture_repo, rewrite(apk, tmp_path / "cat.apk", replace_file("usr/bin/packer", copying)),
                  candidates, tmp_path / "cat")  # fmt: skip


def test_checksum_tool_verifies_its_own_sums(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    help_text = (
        b"Usage: sumtool [-c] [FILE]...\n\nPrint or check SHA256 checksums\n\n  -c  Check sums against list in FILEs\n"
    )
    script = (
        b'#!/bin/sh\nif [ "$1" = --help ]; then printf "%s" "' + help_text + b'"; exit 0; fi\nexec sha256sum "$@"\n'
    )
    apk = synthetic_package(tmp_path, "sumtool", {"usr/bin/sumtool": (script, 0o755)}, depends="busybox")
    candidates, seen = _propose(fixture_repo, apk, tmp_path / "cache")
    assert [c.step.name for c in candidates] == ["sumtool -c verifies the sums it wrote"], outputs(seen, "cli:")
    assert "sample.txt: OK" in (candidates[0].step.runs or "")
    assert prove(fixture_repo, apk, candidates, tmp_path / "good").passed


def test_generated_samples_are_validated() -> None:
    usage = parse_help(
        "Usage: cfg COMMAND\n\nCommands:\n  init      print a starter file\n  lint      check FILE\n", "cfg"
    )
    strict, lenient = (t for t in plan_trials("cfg", usage, {}) if t.group == "validate")
    assert strict.setup == lenient.setup == "cfg init > generated.txt\ntest -s generated.txt"
    assert lenient.command == "cfg lint generated.txt"
    assert strict.command.startswith("cfg lint generated.txt\n") and "if cfg lint broken.txt" in strict.command


CFGTOOL = b"""#!/bin/sh
case "$1" in
--help|-h)
  echo "Usage: cfgtool COMMAND [FILE]"
  echo
  echo "Commands:"
  echo "  init      print a starter configuration"
  echo "  validate  check the configuration in FILE" ;;
init) printf 'name = demo\\nport = 80\\n' ;;
validate)
  if grep -qv '^[a-z]* = [a-z0-9]*$' "$2"; then echo "cfgtool: $2: invalid line" >&2; exit 1; fi
  echo "$2: ok" ;;
*) exit 2 ;;
esac
"""


def test_validator_checks_what_the_generator_wrote(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    apk = synthetic_package(tmp_path, "cfgtool", {"usr/bin/cfgtool": (CFGTOOL, 0o755)}, depends="busybox")
    candidates, seen = _propose(fixture_repo, apk, tmp_path / "cache")
    assert [c.step.name for c in candidates] == [
        "cfgtool validate accepts what init wrote and rejects a broken file"
    ], outputs(seen, "cli:")
    assert prove(fixture_repo, apk, candidates, tmp_path / "good").passed
    lenient = CFGTOOL.replace(b"exit 1; fi", b"exit 0; fi")
    _assert_kills(fixture_repo, rewrite(apk, tmp_path / "lenient.apk", replace_file("usr/bin/cfgtool", lenient)),
                  candidates, tmp_path / "lenient")  # fmt: skip
