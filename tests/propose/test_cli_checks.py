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
from qackage.propose.cli_checks import (
    MAN_EXAMPLE_BYTES,
    MAN_HEAD_BYTES,
    CliProposer,
    help_key,
    invocation,
    man_key,
    manual_page,
    subcommand_help_key,
    which_key,
)
from qackage.propose.cli_trials import (
    SAMPLE_TEXT,
    DocumentedExample,
    TrialStyle,
    documented_example,
    judge,
    plan_trials,
)
from qackage.propose.cli_usage import Positional, man_to_text, parse_help, positionals
from qackage.propose.expect import ExpectKind, assertion_script, expectation_for
from qackage.propose.observe import NONDETERMINISTIC_MARK, NONDETERMINISTIC_STATUS, Observation, observed, twice
from qackage.propose.templates import render
from qackage.validate.probe import PROBE_OUTPUT_BYTES

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
        ("[options] <jq filter> [file...]", (Positional("jq_filter"), Positional("file", True, True))),
        ("[OPTION...] [FILE...]", (Positional("FILE", optional=True, repeated=True),)),
        ("[ -hlwsqv ] [long-options] [  file ... ]", (Positional("file", optional=True, repeated=True),)),
    ],
)
def test_positionals_skip_options_and_their_arguments(synopsis: str, expected: tuple[Positional, ...]) -> None:
    options = parse_help("  -o FILE  write to FILE\n", "x").options
    assert positionals(synopsis, options) == expected


GZIP_MAN = r""".TH GZIP 1
.SH NAME
gzip, gunzip \- compress or expand files
.SH SYNOPSIS
.B gzip
.RB [ " \-cdfhklLnNrtvV19 " ]
.RB [ \-S\ suffix ]
[
.I "name \&..."
]
.br
.B gunzip
.RB [ " \-cfhklLnNrtvV " ]
[
.I "name \&..."
]
.SH DESCRIPTION
.B gzip
reduces the size of the named files.
.SH DIAGNOSTICS
.TP
Usage: gzip [\-cdfhklLnNrtvV19] [\-S suffix] [file ...]
Invalid options were specified on the command line.
"""


def test_usage_lines_end_where_prose_or_another_program_begins() -> None:
    text = man_to_text(GZIP_MAN)
    gzip_usage = parse_help(text, "gzip")
    assert gzip_usage.usages == (
        "[-cdfhklLnNrtvV19] [-S suffix] [file ...]",
        "[ -cdfhklLnNrtvV19 ] [-S suffix] [ name ... ]",
    )
    assert not gzip_usage.takes_subcommand  # "the command line" in a sentence names no COMMAND
    assert parse_help(text, "gunzip").usages == ("[ -cfhklLnNrtvV ] [ name ... ]",)


def test_help_opening_with_bare_synopses_has_usages() -> None:
    help_text = "runner [OPTIONS] [--] PROGRAM [ARGUMENTS]\nrunner --version\n\nOptions:\n  --x=B  use B\n"
    assert parse_help(help_text, "runner").usages == ("[OPTIONS] [--] PROGRAM [ARGUMENTS]", "--version")
    banner = "jq - commandline JSON processor [version 1.6]\n\nSome of the options include:\n  -c  compact\n"
    assert parse_help(banner, "jq").usages == ()
    assert parse_help("jq is a tool for processing JSON inputs\n", "jq").usages == ()


ALIASES_MAN = r""".TH XZ 1
.SH "COMMAND ALIASES"
.B unxz
is equivalent to
.BR "xz \-\-decompress" .
.SH "META-COMMANDS"
The interactive interpreter offers a set of meta-commands that are
used in the shell to control the output, and that work on attached
databases (such as rebuilding indices).
.SH OPTIONS
.TP
.BI \-cmd\  command
run command before reading stdin
"""


def test_prose_and_aliases_are_not_subcommands() -> None:
    usage = parse_help(man_to_text(ALIASES_MAN), "xz")
    assert usage.subcommands == ()
    assert not usage.takes_subcommand
    # An escaped space joins a macro's words instead of vanishing ("-cmdommand").
    cmd = usage.option("-cmd")
    assert cmd is not None and cmd.argument == "command"


def test_examples_include_text_piped_into_the_program() -> None:
    help_text = "Usage: jq [options] <jq filter> [file...]\n\nExample:\n\t$ echo '{\"foo\": 0}' | jq .\n"
    assert parse_help(help_text, "jq").examples == ("echo '{\"foo\": 0}' | jq .",)


def test_the_untranslated_manual_page_is_read() -> None:
    pages = tuple(
        Document(path, DocKind.MAN, section="1", topic="xz")
        for path in ("usr/share/man/de/man1/xz.1.gz", "usr/share/man/man1/xz.1.gz", "usr/share/man/fr/man1/xz.1.gz")
    )
    analysis = analysis_with(Facts(documents=pages), name="xz")
    assert manual_page(analysis, "xz") == "/usr/share/man/man1/xz.1.gz"
    translated = analysis_with(Facts(documents=pages[:1]), name="xz")
    assert manual_page(translated, "xz") == "/usr/share/man/de/man1/xz.1.gz"


def test_the_manual_probe_keeps_the_beginning_and_the_examples(tmp_path: Path) -> None:
    middle = "".join(f"filler line {n} of the long description\n" for n in range(200))
    roff = f".TH LONG 1\n.SH NAME\nlong \\- a tool\n.SH DESCRIPTION\n{middle}.SH EXAMPLES\nlong --shout hi\n"
    (tmp_path / "long.1.gz").write_bytes(gzip.compress(roff.encode()))
    script = render("func-probe-man.sh.j2", path=str(tmp_path / "long.1.gz"), head_bytes=200, example_bytes=100)
    ran = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert ran.stdout.startswith(".TH LONG 1\n.SH NAME\n")
    assert "filler line 199" not in ran.stdout
    assert ran.stdout.endswith(".SH EXAMPLES\nlong --shout hi\n")
    assert MAN_HEAD_BYTES + MAN_EXAMPLE_BYTES < PROBE_OUTPUT_BYTES  # what the probe prints, it keeps whole


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


@pytest.mark.parametrize(
    ("example", "expected"),
    [
        ("jq .", DocumentedExample(".")),
        ("jq '.foo | length' data.json", DocumentedExample("'.foo | length' data.json")),
        ("echo '{\"foo\": 0}' | jq .", DocumentedExample(".", "echo '{\"foo\": 0}'", '{"foo": 0}')),
        ("printf 'a\\nb\\n' | jq -R .", DocumentedExample("-R .", "printf 'a\\nb\\n'", "a\\nb\\n")),
        ("cat data.json | jq .", None),  # reads a file the example does not provide
        ("echo $HOME | jq .", None),
        ('echo "$HOME" | jq .', None),
        ("echo 1 | jq . > out.json", None),
        ("echo 1; jq .", None),
        ("echo 1 || jq .", None),
        ("echo 1 | jq . | sort", None),
        ("jq . *.json", None),
        ("jq `id`", None),
        ("echo 'unclosed | jq .", None),
        ("echo '[3, 1]' | jq", DocumentedExample("", "echo '[3, 1]'", "[3, 1]")),
        ("jq --help", None),
        ("jq", None),
        ("gojq .", None),
    ],
)
def test_documented_examples_run_only_as_written(example: str, expected: DocumentedExample | None) -> None:
    assert documented_example(example, "jq") == expected


JQ_HELP = """\
Usage:\tjq [options] <jq filter> [file...]

The simplest filter is ., which copies jq's input to its output.

Example:

\t$ echo '{"foo": 0}' | jq .
\t{
\t\t"foo": 0
\t}
"""


def test_documented_pipelines_become_trials() -> None:
    (trial,) = plan_trials("jq", parse_help(JQ_HELP, "jq"), {})  # a filter program is never invented
    assert trial.command == "echo '{\"foo\": 0}' | jq ."
    assert trial.title == "jq runs its documented example"  # quotes read badly in a YAML step name
    judged = judge(trial, Observation(0, '{\n  "foo": 0\n}\n', ""), version="1.7.1-r0")
    assert judged is not None and judged.score == 2
    assert judged.expectation is not None and judged.expectation.kind is ExpectKind.EXACT_TEXT
    (by_path,) = plan_trials("jq", parse_help(JQ_HELP, "jq"), {}, "/usr/bin/jq")
    assert by_path.command == "echo '{\"foo\": 0}' | /usr/bin/jq ."


CALC_HELP = "usage: calc [options] [file ...]\n\nAn arbitrary precision calculator reading standard input.\n"


def test_calculators_are_given_an_expression_in_each_notation() -> None:
    trials = {t.key: t for t in plan_trials("calc", parse_help(CALC_HELP, "calc"), {})}
    assert set(trials) == {"cli:calc:try:calculate-infix", "cli:calc:try:calculate-postfix"}
    infix = trials["cli:calc:try:calculate-infix"]
    assert (infix.setup, infix.command) == ("echo '(2+3)*7' > expression.txt", "calc < expression.txt")
    assert trials["cli:calc:try:calculate-postfix"].setup == "echo '2 3 + 7 * p' > expression.txt"
    judged = judge(infix, Observation(0, "35\n", ""), version="1.07.1-r0")
    assert judged is not None and judged.expectation == expectation_for("35\n", version="1.07.1-r0")
    assert judge(infix, Observation(0, "", "(standard_in) 1: syntax error\n"), version="1-r0") is None
    # A calculator that needs its expression as an argument is left alone.
    needs_argument = parse_help("usage: calc EXPRESSION\n\nA calculator.\n", "calc")
    assert not any("calculate" in t.key for t in plan_trials("calc", needs_argument, {}))


SQL_HELP = """\
Usage: sqlite3 [OPTIONS] FILENAME [SQL]
FILENAME is the name of an SQLite database. A new database is created
if the file does not previously exist.
OPTIONS include:
   -bail                stop after hitting an error
   -cmd COMMAND         run "COMMAND" before reading stdin
"""


def test_sql_shells_run_statements_on_a_new_database(tmp_path: Path) -> None:
    (trial,) = plan_trials("sqlite3", parse_help(SQL_HELP, "sqlite3"), {})
    assert trial.command == "sqlite3 sample.db < query.sql"
    assert trial.setup.startswith("cat > query.sql <<'SQL'\nCREATE TABLE fruit")
    assert trial.tokens == ("apple", "pear")
    # The setup is a here-document the shell reads whole (it writes the statements).
    subprocess.run(["sh", "-ec", trial.setup], cwd=tmp_path, check=True)
    assert (tmp_path / "query.sql").read_text().splitlines()[-1].startswith("SELECT name, amount * 2")
    (plain,) = plan_trials("sqlsh", parse_help("Usage: sqlsh [-v]\n\nRun SQL read from stdin.\n", "sqlsh"), {})
    assert plain.command == "sqlsh < query.sql"


def test_wrappers_are_given_a_command_to_run() -> None:
    runner = parse_help("runner [OPTIONS] [--] PROGRAM [ARGUMENTS]\nrunner --help\n", "runner")
    (trial,) = plan_trials("runner", runner, {})
    assert trial.command == "runner -- echo 'Hello Wolfi'"
    assert trial.title == "runner runs a command it is given"
    judged = judge(trial, Observation(0, "Hello Wolfi\n", ""), version="1.14.10-r0")
    assert judged is not None and judged.score == 1  # it echoes, through the program under test
    nicer = {t.key: t for t in plan_trials("nicer", parse_help("Usage: nicer COMMAND [ARG]...\n", "nicer"), {})}
    assert nicer["cli:nicer:try:main-command"].command == "nicer echo 'Hello Wolfi'"


FILE_HELP = """\
Usage: file [OPTION...] [FILE...]
Determine type of FILEs.

  -z, --uncompress           try to look inside compressed files
  -c, --checking-printout    print the parsed form of the magic file
  -d, --debug                print debugging messages
"""


def test_round_trips_need_options_that_say_they_decompress() -> None:
    trials = {t.key: t for t in plan_trials("file", parse_help(FILE_HELP, "file"), {})}
    assert "cli:file:try:roundtrip" not in trials
    assert trials["cli:file:try:main-arg"].command == "file sample.txt"  # the usual trials instead
    man_style = parse_help("Usage: packer [FILE]...\nCompress FILEs.\n\n  -d, --decompress\n", "packer")
    (roundtrip,) = plan_trials("packer", man_style, {}, "/usr/bin/packer")
    assert "/usr/bin/packer -d < sample.txt.packed > unpacked.txt" in roundtrip.command
    assert roundtrip.title == "packer round-trips a sample losslessly"


@pytest.mark.parametrize(
    ("path", "which", "status", "expected"),
    [
        ("usr/bin/xz", "xz", 0, "/usr/bin/xz"),  # an applet of the shell: call the package's file
        ("usr/bin/xz", "/usr/bin/xz", 0, "xz"),
        ("bin/gzip", "/usr/bin/gzip", 0, "gzip"),  # the same file through the merged /usr
        ("usr/bin/xz", "/usr/local/bin/xz", 0, "/usr/bin/xz"),  # another file earlier on PATH
        ("usr/bin/xz", "", 1, "/usr/bin/xz"),
    ],
)
def test_steps_call_programs_by_name_only_where_that_runs_the_package(
    path: str, which: str, status: int, expected: str
) -> None:
    name = path.rsplit("/", 1)[-1]
    executable = Executable(path, name, on_path=True, elf=True)
    seen = {which_key(name): result(which_key(name), which + "\n", exit_code=status)}
    assert invocation(executable, seen) == expected
    assert invocation(executable, {}) is None


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


def _found(program: str, path: str) -> dict[str, ProbeResult]:
    """The which probe's answer: the shell runs ``path`` for ``program``."""
    return {which_key(program): result(which_key(program), path + "\n")}


def test_rounds_help_first_then_trials() -> None:
    analysis = analysis_with(_hello_facts(), name="hello", version="2.12.1-r1")
    proposer = CliProposer()
    first = proposer.probes(analysis, {})
    assert [c.key for c in first] == [help_key("hello"), which_key("hello")]
    assert "/usr/bin/hello" in first[0].script  # help comes from the package's own file
    seen = {help_key("hello"): result(help_key("hello"), HELLO_HELP)}
    assert not any(":try:" in c.key for c in proposer.probes(analysis, seen))  # how to call it is not known yet
    seen |= _found("hello", "/usr/bin/hello")
    second = {c.key for c in proposer.probes(analysis, seen)}
    assert {"cli:hello:try:greet-arg", "cli:hello:try:upper-stdin"} <= second


def test_manual_pages_are_read_when_shipped() -> None:
    page = Document("usr/share/man/man1/greeter.1.gz", DocKind.MAN, section="1", topic="greeter")
    facts = Facts(executables=(Executable("usr/bin/greeter", "greeter", True, False, "/bin/sh"),), documents=(page,))
    analysis = analysis_with(facts, name="greeter")
    keys = [c.key for c in CliProposer().probes(analysis, {})]
    assert keys == [help_key("greeter"), which_key("greeter"), man_key("greeter")]
    seen = {
        help_key("greeter"): result(help_key("greeter"), "", exit_code=1),
        man_key("greeter"): result(man_key("greeter"), GREETER_MAN),
        **_found("greeter", "/usr/bin/greeter"),
    }
    wanted = {c.key for c in CliProposer().probes(analysis, seen)}
    assert {"cli:greeter:example:1", "cli:greeter:try:shout-arg"} <= wanted


def test_daemons_are_left_to_the_daemon_checks() -> None:
    facts = _hello_facts(daemons=(Daemon("usr/bin/hello", "hello", ("test",)),))
    assert CliProposer().probes(analysis_with(facts), {}) == ()


def test_candidates_assert_only_agreeing_observations() -> None:
    analysis = analysis_with(_hello_facts(), name="hello", version="2.12.1-r1")
    seen: dict[str, ProbeResult] = {
        **_found("hello", "/usr/bin/hello"),
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


# A calculator named like one of busybox's applets: the fixture's busybox sh runs its own
# applet for `bc`, so only a step calling the package's file by path tests the package.
SHADOWED_BC = b"""#!/bin/sh
case "$1" in
--help|-h) echo "usage: bc [FILE]..."; echo "A calculator: reads expressions from standard input." ;;
*) read -r expression; echo "$((expression))" ;;
esac
"""


def test_programs_the_shell_shadows_are_called_by_path(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    apk = synthetic_package(tmp_path, "bc", {"usr/bin/bc": (SHADOWED_BC, 0o755)}, depends="busybox")
    candidates, seen = _propose(fixture_repo, apk, tmp_path / "cache")
    assert seen[which_key("bc")].stdout.strip() == "bc", "the fixture shell no longer prefers its applets"
    assert [c.step.name for c in candidates] == ["bc evaluates an expression from standard input"], outputs(
        seen, "cli:"
    )
    script = candidates[0].step.runs or ""
    assert "out=$(/usr/bin/bc < expression.txt)" in script and 'test "$out" = 35' in script
    assert prove(fixture_repo, apk, candidates, tmp_path / "good").passed
    silent = rewrite(apk, tmp_path / "silent.apk", replace_file("usr/bin/bc", b"#!/bin/sh\nexit 0\n"))
    _assert_kills(fixture_repo, silent, candidates, tmp_path / "silent")


SHOUTER = b"""#!/bin/sh
case "$1" in
--help|-h) printf 'Usage: shouter [-v]\\n\\nExample:\\n  $ echo '"'"'hello there'"'"' | shouter\\n' ;;
*) tr a-z A-Z ;;
esac
"""


def test_documented_pipelines_run_in_the_sandbox(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    apk = synthetic_package(tmp_path, "shouter", {"usr/bin/shouter": (SHOUTER, 0o755)}, depends="busybox")
    candidates, seen = _propose(fixture_repo, apk, tmp_path / "cache")
    names = [c.step.name for c in candidates]
    assert names[0] == "shouter runs its documented example `echo 'hello there' | shouter`", outputs(seen, "cli:")
    script = candidates[0].step.runs or ""
    assert "out=$(echo 'hello there' | shouter)" in script and "'HELLO THERE'" in script
    assert prove(fixture_repo, apk, candidates[:1], tmp_path / "good").passed
    copying = rewrite(
        apk, tmp_path / "cat.apk", replace_file("usr/bin/shouter", SHOUTER.replace(b"tr a-z A-Z", b"cat"))
    )
    _assert_kills(fixture_repo, copying, candidates[:1], tmp_path / "cat")
