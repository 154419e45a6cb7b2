"""Small experiments on a CLI, planned from what its help says, and the reading of them.

A trial is a command on a sample input: a subcommand given a sample argument, a filter
fed a sample on standard input, a wrapper given a command to run, a compressor's round
trip, a checksum tool checking the sums it wrote, a validator checking what the program
generated (and rejecting a broken file), a calculator given an expression, an SQL shell
given a few statements, a documented example (also one that pipes `echo`ed text into the
program). `plan_trials` is pure; the proposer runs the trials as probes (twice each) and
`judge` decides which observations a step may assert.
"""

from __future__ import annotations

import enum
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from qackage.propose.cli_usage import OptionSpec, Positional, Subcommand, Usage, positionals
from qackage.propose.expect import Expectation, expectation_for
from qackage.propose.observe import Observation, reads_as_complaint

SAMPLE_FILE = "sample.txt"
SAMPLE_TEXT = "The quick brown fox\njumps over the lazy dog\nThe end\n"
SAMPLE_SETUP = "printf 'The quick brown fox\\njumps over the lazy dog\\nThe end\\n' > sample.txt"
SAMPLE_TOKENS = ("quick", "brown", "fox", "jumps", "lazy", "dog")
SAMPLE_DIR = "sample-dir"
SAMPLE_DIR_SETUP = f"mkdir {SAMPLE_DIR}\n{SAMPLE_SETUP.replace('> sample.txt', f'> {SAMPLE_DIR}/sample.txt')}"
SAMPLE_NAME = "wolfi"
SAMPLE_PHRASE = "Hello Wolfi"

EXPRESSION_FILE = "expression.txt"
# One expression per notation: a calculator answers one of them (bc infix, dc postfix).
CALCULATIONS = (("infix", "(2+3)*7"), ("postfix", "2 3 + 7 * p"))
QUERY_FILE = "query.sql"
SAMPLE_DATABASE = "sample.db"
SQL_STATEMENTS = (
    "CREATE TABLE fruit (name TEXT, amount INTEGER);",
    "INSERT INTO fruit VALUES ('apple', 3);",
    "INSERT INTO fruit VALUES ('pear', 5);",
    "SELECT name, amount * 2 FROM fruit ORDER BY name;",
)
SQL_TOKENS = ("apple", "pear")
# Commands that only feed an example its input: `echo '{"a": 1}' | prog .`.
FEEDERS = ("echo", "printf")

# Per program, so a CLI with twenty subcommands does not cost twenty sandbox runs.
MAX_SUBCOMMANDS = 4
MAX_EXAMPLES = 3
MAX_TITLED_EXAMPLE = 60

# Flags that change how a program talks, not what it computes.
_BORING_FLAGS = frozenset({
    "-h", "--help", "-V", "--version", "-v", "--verbose", "-q", "--quiet", "--silent", "-s", "--debug",
    "--color", "--colour", "--no-color", "--no-colour", "-i", "--interactive", "-f", "--force", "-y", "--yes",
    "--daemon", "-d", "-D", "-b", "--background", "--dry-run", "-n", "--json", "--usage",
})  # fmt: skip
_NUMERIC_METAVAR = re.compile(r"^(n|num|number|count|lines|limit|max|k|top)$", re.IGNORECASE)
# Subcommands that write a sample of what the program reads, and those that check one.
_GENERATORS = ("init", "example", "sample", "generate", "gen", "new", "template", "default-config", "defaults")
_VALIDATORS = ("validate", "check", "lint", "verify")
_STDIN = re.compile(r"standard input|\bstdin\b", re.IGNORECASE)
# Characters an example may use outside quotes: words, paths, key=value, no shell syntax.
_BARE = re.compile(r"[\w./=:,@%+-]")
_COMMAND_ARGUMENT = re.compile(r"^(?:command|cmd|program|prog|utility)$", re.IGNORECASE)
_CALCULATOR = re.compile(r"\bcalculator\b", re.IGNORECASE)
_SQL = re.compile(r"\bSQL\b")
_DATABASE_ARGUMENT = re.compile(r"db|database|file", re.IGNORECASE)
_DECOMPRESS = re.compile(r"decompress|uncompress|extract|unpack|decode|inflate", re.IGNORECASE)
_TO_STDOUT = re.compile(r"standard output|\bstdout\b", re.IGNORECASE)


class TrialStyle(enum.StrEnum):
    OUTPUT = "output"  # the step asserts what the command printed
    ROUNDTRIP = "roundtrip"  # the script checks itself (cmp); the step asserts it succeeds


@dataclass(frozen=True, slots=True)
class Trial:
    key: str  # the probe key: "cli:hello:try:greet-arg"
    program: str
    group: str  # trials of one group test the same thing; one of them is kept
    title: str  # the step name
    setup: str  # shell lines preparing the inputs
    command: str  # the command (OUTPUT) or self-checking script (ROUNDTRIP)
    style: TrialStyle = TrialStyle.OUTPUT
    tokens: tuple[str, ...] = ()  # input words; output showing one is derived from the input
    inputs: tuple[str, ...] = ()  # the inputs as given: output equal to one merely echoes it
    rank: int = 0  # lower is tried first when several groups compete

    @property
    def body(self) -> str:
        """What the probe runs (twice) and the step repeats."""
        return f"{self.setup}\n{self.command}" if self.setup else self.command


@dataclass(frozen=True, slots=True)
class Judgement:
    trial: Trial
    score: int  # 3 round trip, 2 transformed its input, 1 echoed it
    expectation: Expectation | None  # None for round trips: the script checks itself
    stdout: str


@dataclass(frozen=True, slots=True)
class _Argument:
    word: str  # what goes on the command line (shell-quoted)
    setup: str = ""
    tokens: tuple[str, ...] = ()
    given: str = ""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"


def _argument_for(positional: Positional) -> _Argument | None:
    """A sample value for a positional argument, judged by its name; None when no
    harmless value exists (a host, a command to run, a file to write)."""
    name = re.sub(r"[^a-z]", "", positional.name.lower())
    if re.search(r"url|uri|host|addr|server|port|remote|repo|device|pid|command|cmd|prog|exec|script", name):
        return None
    if re.search(r"out|dest|target|save|write", name):
        return None
    if re.search(r"filter|code|template|statement|sql|formula", name):
        return None  # a program in a language of its own: no sample says something harmless in it
    if re.search(r"dir|folder|root", name):
        return _Argument(SAMPLE_DIR, SAMPLE_DIR_SETUP, (*SAMPLE_TOKENS, SAMPLE_DIR), SAMPLE_TEXT)
    if re.search(r"file|path|input|infile|src|source|^in$|^fname$", name):
        return _Argument(SAMPLE_FILE, SAMPLE_SETUP, (*SAMPLE_TOKENS, SAMPLE_FILE), SAMPLE_TEXT)
    if re.search(r"pattern|regex|regexp|expr|query|search|needle|match", name):
        return _Argument("quick", "", ("quick",), "quick")
    if _NUMERIC_METAVAR.match(name) or re.search(r"number|count|size|amount|seconds|times|int", name):
        return _Argument("3", "", (), "3")
    if re.search(r"text|string|str|message|msg|word|title|sentence|phrase|line|data|value", name):
        return _Argument(shlex.quote(SAMPLE_PHRASE), "", ("wolfi",), SAMPLE_PHRASE)
    return _Argument(SAMPLE_NAME, "", (SAMPLE_NAME,), SAMPLE_NAME)


def _names_a_file(positional: Positional) -> bool:
    argument = _argument_for(positional)
    return argument is not None and argument.word == SAMPLE_FILE


def _arguments(found: Sequence[Positional]) -> list[_Argument] | None:
    required = [p for p in found if not p.optional]
    chosen = required or list(found[:1])
    values = [_argument_for(p) for p in chosen]
    if not values or any(v is None for v in values):
        return None
    return [v for v in values if v is not None]


def _what(arguments: Sequence[_Argument]) -> str:
    words = {a.word for a in arguments}
    if SAMPLE_DIR in words:
        return "reads a sample folder"
    if SAMPLE_FILE in words:
        return "reads a sample file"
    return "answers a sample argument"


def _joined_setup(arguments: Sequence[_Argument]) -> str:
    return "\n".join(dict.fromkeys(a.setup for a in arguments if a.setup))


def _boolean_flag(synopsis: str) -> str | None:
    """The first flag the synopsis offers on its own ("[--shout]"), if any is interesting."""
    flags: list[str] = re.findall(r"\[(--?[A-Za-z][\w-]*)\]", synopsis)
    for flag in flags:
        if flag not in _BORING_FLAGS:
            return flag
    return None


def _numeric_option(options: Sequence[OptionSpec]) -> OptionSpec | None:
    for spec in options:
        if spec.argument and _NUMERIC_METAVAR.match(spec.argument) and not set(spec.flags) & {"-j", "--jobs"}:
            return spec
    return None


def _strip_subcommand(usages: Sequence[str], subcommand: str) -> list[str]:
    """A subcommand's own usage lines without the subcommand's name."""
    found: list[str] = []
    for usage in usages:
        words = usage.split(None, 1)
        if words and words[0] == subcommand:
            found.append(words[1] if len(words) > 1 else "")
    return found or list(usages)


@dataclass(frozen=True, slots=True)
class _Feed:
    """How a trial hands a program its sample: as arguments or on standard input."""

    suffix: str  # what follows the command: " wolfi", " < sample.txt"
    setup: str
    what: str  # how the step name says it: "answers a sample argument"
    tokens: tuple[str, ...]
    inputs: tuple[str, ...]
    kind: str  # "arg" or "stdin": the end of the trial key


def _first_synopsis(usage: Usage) -> tuple[str, tuple[Positional, ...]]:
    """The first usage line naming positional arguments, with them ("", () when none does)."""
    for synopsis in usage.usages:
        found = positionals(synopsis, usage.options)
        if found:
            return synopsis, found
    return "", ()


def _wrapped_command(found: Sequence[Positional], synopsis: str) -> _Feed | None:
    """For programs that run a command they are given ("[--] PROGRAM [ARGUMENTS...]"):
    `echo` with a sample phrase, after "--" when the synopsis shows one."""
    required = [p for p in found if not p.optional]
    if not required or not _COMMAND_ARGUMENT.match(required[0].name):
        return None
    separator = " --" if re.search(r"(?:^|\s)\[?--\]?(?=\s|$)", synopsis) else ""
    return _Feed(
        suffix=f"{separator} echo {shlex.quote(SAMPLE_PHRASE)}", setup="", what="runs a command it is given",
        tokens=("wolfi",), inputs=(SAMPLE_PHRASE,), kind="command",
    )  # fmt: skip


def _runs_commands(usage: Usage) -> bool:
    """The first usage naming arguments wants a command to run first."""
    synopsis, found = _first_synopsis(usage)
    return _wrapped_command(found, synopsis) is not None


def _feeds(found: Sequence[Positional], stdin_hint: bool, synopsis: str = "") -> list[_Feed]:
    """A command to run for wrappers; else sample arguments for the positionals (when
    harmless ones exist), then standard input when no argument is required and the
    program reads it."""
    wrapped = _wrapped_command(found, synopsis)
    if wrapped is not None:
        return [wrapped]
    feeds: list[_Feed] = []
    arguments = _arguments(found) if found else None
    if arguments:
        feeds.append(
            _Feed(
                suffix=" " + " ".join(a.word for a in arguments), setup=_joined_setup(arguments),
                what=_what(arguments), tokens=tuple(t for a in arguments for t in a.tokens),
                inputs=tuple(a.given for a in arguments), kind="arg",
            )
        )  # fmt: skip
    optional_only = all(p.optional for p in found)
    if optional_only and (stdin_hint or any(_names_a_file(p) for p in found)):
        feeds.append(
            _Feed(f" < {SAMPLE_FILE}", SAMPLE_SETUP, "filters standard input", SAMPLE_TOKENS, (SAMPLE_TEXT,), "stdin")
        )
    return feeds


def _for_command(
    program: str,
    prefix: str,
    group: str,
    synopses: Sequence[str],
    usage: Usage,
    stdin_hint: bool,
    rank: int,
    runs: str = "",
) -> list[Trial]:
    """Argument and standard-input trials for ``prefix`` (what step names call the
    command; ``runs`` is how the step runs it, ``prefix`` itself by default), then the
    first of them again with a documented flag and with a numeric option."""
    runs = runs or prefix
    found: tuple[Positional, ...] = ()
    synopsis = ""
    for candidate in synopses:
        found = positionals(candidate, usage.options)
        synopsis = candidate
        if found:
            break
    feeds = _feeds(found, stdin_hint, synopsis)
    key = f"cli:{program}:try:{_slug(group)}"
    trials = [
        Trial(
            key=f"{key}-{feed.kind}", program=program, group=group, title=f"{prefix} {feed.what}",
            setup=feed.setup, command=f"{runs}{feed.suffix}", tokens=feed.tokens, inputs=feed.inputs, rank=rank,
        )
        for feed in feeds
    ]  # fmt: skip
    if not feeds:
        return trials
    first = feeds[0]
    variants: list[tuple[str, str]] = []  # (key suffix, words added after the command)
    flag = _boolean_flag(synopsis)
    if flag:
        variants.append(("flag", flag))
    numeric = _numeric_option(usage.options)
    if numeric:
        variants.append(("option", f"{numeric.short or numeric.long} 2"))
    for suffix, words in variants:
        trials.append(
            Trial(
                key=f"{key}-{suffix}", program=program, group=f"{group} {words.split()[0]}",
                title=f"{prefix} {words} {first.what}", setup=first.setup,
                command=f"{runs} {words}{first.suffix}", tokens=first.tokens, inputs=first.inputs, rank=rank,
            )
        )  # fmt: skip
    return trials


def _meaning(usage: Usage, long_flags: Sequence[str], short: str, summary: re.Pattern[str]) -> OptionSpec | None:
    """The option that does what ``summary`` says: one spelled by ``long_flags`` or
    ``short`` whose summary says so (``-d`` is --debug as often as --decompress, and
    file's --uncompress looks inside compressed files), or a long one with no summary."""
    for flags in (long_flags, (short,)):
        spec = usage.option(*flags)
        if spec is None:
            continue
        if summary.search(spec.summary) or (not spec.summary.strip() and flags is long_flags):
            return spec
    return None


def _roundtrip(program: str, usage: Usage, call: str) -> Trial | None:
    """Compress a sample, decompress it, compare: for programs that say they compress."""
    if not re.search(r"\bcompress", usage.text, re.IGNORECASE):
        return None
    decompress = _meaning(usage, ("--decompress", "--uncompress"), "-d", _DECOMPRESS)
    if decompress is None:
        return None
    to_stdout = _meaning(usage, ("--stdout", "--to-stdout"), "-c", _TO_STDOUT)
    pack = f"{call} {to_stdout.short or to_stdout.long}" if to_stdout else call
    unpack = f"{pack} {decompress.short or decompress.long}"
    lines = [
        f"{pack} < {SAMPLE_FILE} > {SAMPLE_FILE}.packed",
        f"{unpack} < {SAMPLE_FILE}.packed > unpacked.txt",
        f"cmp {SAMPLE_FILE} unpacked.txt",
        f"if cmp -s {SAMPLE_FILE} {SAMPLE_FILE}.packed; then",
        f'  echo "{program} left its input unchanged" >&2',
        "  exit 1",
        "fi",
    ]
    test = usage.option("-t", "--test")
    if test is not None and re.search(r"integrity|test", test.summary, re.IGNORECASE):
        lines.append(f"{call} {test.short or test.long} < {SAMPLE_FILE}.packed")
    return Trial(
        key=f"cli:{program}:try:roundtrip", program=program, group="roundtrip",
        title=f"{program} round-trips a sample losslessly",
        setup=f"seq 1 2000 > {SAMPLE_FILE}", command="\n".join(lines), style=TrialStyle.ROUNDTRIP, rank=1,
    )  # fmt: skip


def _generate_then_validate(program: str, usage: Usage, call: str) -> list[Trial]:
    """For CLIs with a subcommand that writes a sample (init, example ...) and one that
    validates (validate, check, lint ...): validate what the program generated, and
    (preferred) also reject a broken file."""
    names = {s.name for s in usage.subcommands}
    generator = next((n for n in _GENERATORS if n in names), None)
    validator = next((n for n in _VALIDATORS if n in names), None)
    if generator is None or validator is None:
        return []
    setup = f"{call} {generator} > generated.txt\ntest -s generated.txt"
    accept = f"{call} {validator} generated.txt"
    reject = [
        "printf 'qackage: this is not valid {\\n' > broken.txt",
        f"if {call} {validator} broken.txt > broken.log 2>&1; then",
        f'  echo "{program} {validator} accepted a broken file" >&2',
        "  exit 1",
        "fi",
    ]
    strict = "\n".join([accept, *reject])
    return [
        Trial(
            key=f"cli:{program}:try:validate-strict", program=program, group="validate",
            title=f"{program} {validator} accepts what {generator} wrote and rejects a broken file",
            setup=setup, command=strict, style=TrialStyle.ROUNDTRIP, rank=1,
        ),
        Trial(
            key=f"cli:{program}:try:validate", program=program, group="validate",
            title=f"{program} {validator} accepts what {generator} wrote",
            setup=setup, command=accept, style=TrialStyle.ROUNDTRIP, rank=1,
        ),
    ]  # fmt: skip


def _checksum(program: str, usage: Usage, call: str) -> Trial | None:
    """Write the sums of a sample, then check them: for programs whose -c reads sums."""
    check = usage.option("-c", "--check")
    if check is None or not re.search(r"check|verify", check.summary, re.IGNORECASE):
        return None
    if not re.search(r"checksum|digest|\bsums?\b|\bhash", usage.text, re.IGNORECASE):
        return None
    flag = check.short or check.long
    return Trial(
        key=f"cli:{program}:try:check", program=program, group="check",
        title=f"{program} {flag} verifies the sums it wrote",
        setup=f"{SAMPLE_SETUP}\n{call} {SAMPLE_FILE} > {SAMPLE_FILE}.sums",
        command=f"{call} {flag} {SAMPLE_FILE}.sums", tokens=(SAMPLE_FILE,), rank=1,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class DocumentedExample:
    """A documented command line that is safe to run as written."""

    arguments: str  # what follows the program's name, as written: "." or "shout hello"
    feeder: str = ""  # the `echo`/`printf` whose output is piped into the program, as written
    data: str = ""  # the words the feeder prints

    def command(self, call: str) -> str:
        runs = f"{call} {self.arguments}".rstrip()
        return f"{self.feeder} | {runs}" if self.feeder else runs


def _pipeline_segments(command: str) -> list[str] | None:
    """``command`` split at its unquoted pipes; None when the shell would do anything
    else with it: expand a variable or a glob, redirect, run a list or a subshell."""
    segments: list[str] = []
    current = ""
    index = 0
    while index < len(command):
        char = command[index]
        if char in "'\"":
            end = command.find(char, index + 1)
            if end < 0:
                return None
            if char == '"' and any(c in command[index + 1 : end] for c in "$`\\"):
                return None
            current += command[index : end + 1]
            index = end + 1
            continue
        if char == "|":
            segments.append(current.strip())
            current = ""
        elif char.isspace() or _BARE.match(char):
            current += char
        else:
            return None
        index += 1
    segments.append(current.strip())
    return segments if all(segments) else None


def documented_example(example: str, program: str) -> DocumentedExample | None:
    """The example as something to run: ``program`` with plain arguments, or fed by one
    ``echo``/``printf`` of literal text through a pipe. None for anything else, and for
    examples that only ask for help or the version."""
    segments = _pipeline_segments(example)
    if segments is None or len(segments) > len(("feeder", "program")):
        return None
    try:
        words = [shlex.split(segment) for segment in segments]
    except ValueError:
        return None
    if words[-1][0] != program or words[-1][1:2] in (["help"], ["--help"], ["-h"], ["--version"], ["-V"], ["version"]):
        return None
    arguments = segments[-1].split(None, 1)[1] if len(words[-1]) > 1 else ""
    if len(segments) == 1:
        return DocumentedExample(arguments) if arguments else None  # the bare program does nothing to see
    if words[0][0] not in FEEDERS or len(words[0]) < 2:
        return None
    return DocumentedExample(arguments, feeder=segments[0], data=" ".join(words[0][1:]))


def _example_title(program: str, example: str) -> str:
    """The step name shows a short example; one with quotes would read badly once YAML
    escaped them."""
    if '"' in example or len(example) > MAX_TITLED_EXAMPLE:
        return f"{program} runs its documented example"
    return f"{program} runs its documented example `{example}`"


def _examples(program: str, usage: Usage, call: str) -> list[Trial]:
    trials: list[Trial] = []
    for text in usage.examples:
        if len(trials) >= MAX_EXAMPLES:
            break
        example = documented_example(text, program)
        if example is None:
            continue
        given = shlex.split(example.arguments)
        tokens = tuple(w.lower() for w in re.findall(r"[A-Za-z][A-Za-z0-9]{2,}", f"{example.data} {' '.join(given)}"))
        inputs = (example.data, *given) if example.feeder else tuple(given)
        trials.append(
            Trial(
                key=f"cli:{program}:example:{len(trials) + 1}", program=program, group=f"example {text}",
                title=_example_title(program, text), setup="", command=example.command(call),
                tokens=tokens, inputs=inputs, rank=0,
            )
        )  # fmt: skip
    return trials


def _calculations(program: str, usage: Usage, call: str) -> list[Trial]:
    """For calculators reading standard input: one expression in each notation; the one
    the program understands prints its value."""
    if not _CALCULATOR.search(usage.text):
        return []
    if not usage.mentions_stdin and not all(p.optional for p in _first_synopsis(usage)[1]):
        return []
    return [
        Trial(
            key=f"cli:{program}:try:calculate-{notation}", program=program, group="calculate",
            title=f"{program} evaluates an expression from standard input",
            setup=f"echo {shlex.quote(expression)} > {EXPRESSION_FILE}", command=f"{call} < {EXPRESSION_FILE}",
            inputs=(expression,), rank=1,
        )
        for notation, expression in CALCULATIONS
    ]  # fmt: skip


def _sql(program: str, usage: Usage, call: str) -> Trial | None:
    """For programs that speak SQL: create a table, fill it and query it, statements on
    standard input, on a new database file when the program takes one."""
    if not _SQL.search(usage.text):
        return None
    database = any(_DATABASE_ARGUMENT.search(p.name) for p in _first_synopsis(usage)[1])
    target = f" {SAMPLE_DATABASE}" if database else ""
    setup = "\n".join((f"cat > {QUERY_FILE} <<'SQL'", *SQL_STATEMENTS, "SQL"))
    return Trial(
        key=f"cli:{program}:try:sql", program=program, group="sql",
        title=f"{program} runs SQL statements from standard input", setup=setup,
        command=f"{call}{target} < {QUERY_FILE}", tokens=SQL_TOKENS, rank=1,
    )  # fmt: skip


def subcommands_to_try(usage: Usage) -> tuple[Subcommand, ...]:
    return usage.subcommands[:MAX_SUBCOMMANDS]


def needs_own_help(subcommand: Subcommand) -> bool:
    """True when the listing shows no arguments: the subcommand's own --help may."""
    return not subcommand.synopsis


def plan_trials(
    program: str, usage: Usage, subcommand_usage: Mapping[str, Usage | None], call: str | None = None
) -> tuple[Trial, ...]:
    """Every trial worth running for ``program``.

    ``subcommand_usage`` holds the parsed ``<program> <sub> --help`` of the subcommands
    probed so far (None when that help failed); a subcommand that needs its own help
    and is not in it yet gets its trials in a later round. ``call`` is how the trials
    run the program: its name (the default), or its path where the name would run
    something else (a shell builtin or applet of the same name).
    """
    call = call or program
    trials = _examples(program, usage, call)
    if usage.subcommands:
        trials += _generate_then_validate(program, usage, call)
        for subcommand in subcommands_to_try(usage):
            prefix = f"{program} {subcommand.name}"
            runs = f"{call} {subcommand.name}"
            if not needs_own_help(subcommand):
                listing = Usage(text=subcommand.summary, options=usage.options)
                trials += _for_command(
                    program, prefix, subcommand.name, [subcommand.synopsis], listing, listing.mentions_stdin, 1, runs
                )
                continue
            own = subcommand_usage.get(subcommand.name)
            stdin_hint = bool(_STDIN.search(subcommand.summary)) or (own is not None and own.mentions_stdin)
            if subcommand.name in subcommand_usage or stdin_hint:
                synopses = _strip_subcommand(own.usages, subcommand.name) if own else []
                trials += _for_command(program, prefix, subcommand.name, synopses, own or Usage(), stdin_hint, 1, runs)
        return tuple(trials)
    if usage.takes_subcommand:
        # Names a COMMAND but lists none: nothing to try blindly, unless the COMMAND is one
        # to run ("nice COMMAND [ARG]..."); a dispatcher rejects `echo` and the trial is dropped.
        if _runs_commands(usage):
            trials += _for_command(program, program, "main", usage.usages, usage, False, 2, call)
        return tuple(trials)
    special = [
        t
        for t in (_roundtrip(program, usage, call), _checksum(program, usage, call), _sql(program, usage, call))
        if t is not None
    ] + _calculations(program, usage, call)
    if not special:
        trials += _for_command(program, program, "main", usage.usages, usage, usage.mentions_stdin, 2, call)
    return tuple(trials + special)


def judge(trial: Trial, observation: Observation | None, *, version: str) -> Judgement | None:
    """Whether what ``trial`` showed is worth a step, and what the step asserts."""
    if observation is None or not observation.succeeded:
        return None
    if trial.style is TrialStyle.ROUNDTRIP:
        return Judgement(trial, 3, None, observation.stdout)
    stdout = observation.stdout
    if not stdout.strip():
        return None
    head = "\n".join(stdout.strip().splitlines()[:3])
    if reads_as_complaint(head):
        return None
    lowered = stdout.lower()
    if trial.tokens and not any(token.lower() in lowered for token in trial.tokens):
        return None  # output unrelated to the input says little about the program's work
    expectation = expectation_for(stdout, version=version, tokens=trial.tokens)
    if expectation is None:
        return None
    echoed = stdout.strip() in {i.strip() for i in trial.inputs}
    return Judgement(trial, 1 if echoed else 2, expectation, stdout)
