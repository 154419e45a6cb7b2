"""How strong is a test stanza? Run it on broken copies of the package and count the catches.

    report = score(ValidateRequest(package=Path("hello.apk"), test_file=Path("hello.yaml"),
                                   repositories=("repo",)), sandbox=Bubblewrap(),
                   cache=ScoreCache(default_score_folder()))

The stanza runs on the good package first: a test that fails there proves nothing, so a
failing baseline scores nothing. Then each applicable mutant (`qackage.validate.mutants`)
is built and the same stanza runs with the mutant as the package under test; the mutant
is *killed* when any step fails. The verdict is ``strong`` when every mutant is killed,
``weak`` when some survive, and ``superficial`` when the stanza only asks for versions,
help texts or imports, whatever it killed: such checks pass on many broken packages.

Outcomes are cached per (package bytes, compiled plan, environment, mutant), so scoring
the same thing again runs nothing.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qackage.errors import InputError, ResolutionError
from qackage.melange.config import load_config
from qackage.model import CheckKind, Step
from qackage.validate import mutants
from qackage.validate.mutants import MutantSpec, analyze_apk, applicable_mutants, build_mutant
from qackage.validate.mutators.references import find_references
from qackage.validate.report import StepResult, StepStatus, TestReport
from qackage.validate.sandboxing import Sandbox
from qackage.validate.scorecache import (
    BASELINE,
    ScoreCache,
    ScoreKey,
    environment_sha256,
    file_sha256,
    operators_fingerprint,
    plan_sha256,
)
from qackage.validate.session import (
    ValidateRequest,
    choose_test,
    extract_cache,
    plan_for,
    read_package_info,
    validate,
)

DEFAULT_WORKERS = 2
# Operators whose targets come from reading file contents, not from the analysis alone.
DATA_REFERENCE_OPERATORS = frozenset({"drop-data-file"})
OUTPUT_TAIL_CHARS = 2000  # how much of a failing baseline step's output the report keeps

# --------------------------------------------------------------------------- what a step checks

# Weakest first: a step or script counts as the strongest kind of check it contains.
_RANK = (
    CheckKind.HELP,
    CheckKind.VERSION,
    CheckKind.IMPORT,
    CheckKind.STRUCTURE,
    CheckKind.LINKAGE,
    CheckKind.FUNCTIONAL,
)

_PIPELINE_KINDS: dict[str, CheckKind] = {
    "test/tw/ver-check": CheckKind.VERSION,
    "test/tw/help-check": CheckKind.HELP,
    "python/import": CheckKind.IMPORT,
    "test/tw/gem-check": CheckKind.IMPORT,
    "test/perl-module-check": CheckKind.IMPORT,
    "ruby/require": CheckKind.IMPORT,
    "test/tw/ldd-check": CheckKind.LINKAGE,
    "test/ldd-check": CheckKind.LINKAGE,
    # Layout and metadata: files are where they belong and parse, nothing runs.
    "test/docs": CheckKind.STRUCTURE,
    "test/tw/docs": CheckKind.STRUCTURE,
    "test/no-docs": CheckKind.STRUCTURE,
    "test/tw/no-docs": CheckKind.STRUCTURE,
    "test/pkgconf": CheckKind.STRUCTURE,
    "test/tw/pip-check": CheckKind.STRUCTURE,
    "test/tw/gem-installed": CheckKind.STRUCTURE,
    "test/tw/contains-files": CheckKind.STRUCTURE,
    "test/tw/symlink-check": CheckKind.STRUCTURE,
    "test/fonts": CheckKind.STRUCTURE,
    "test/verify-service": CheckKind.STRUCTURE,
    "test/populated-etc-passwd": CheckKind.STRUCTURE,
    "test/systemd-tmpfiles": CheckKind.STRUCTURE,
    "test/hardening-check": CheckKind.STRUCTURE,
    "test/compiler/hardening-check": CheckKind.STRUCTURE,
    "test/compiler/fortran-hardening-check": CheckKind.STRUCTURE,
}
# test/tw/devpackage, test/metapackage, test/tw/staticpackage ... and the *-syntax-check family.
_STRUCTURE_PIPELINE = re.compile(r"^test/(?:tw/)?(?:[\w-]*package|[\w-]+-syntax-check)$")


def pipeline_kind(uses: str) -> CheckKind:
    """What a named pipeline checks. One we do not know counts as functional: it runs
    something we cannot see, so it must not make a stanza look superficial."""
    known = _PIPELINE_KINDS.get(uses)
    if known is not None:
        return known
    if _STRUCTURE_PIPELINE.match(uses):
        return CheckKind.STRUCTURE
    return CheckKind.FUNCTIONAL


def strongest(kinds: Iterable[CheckKind]) -> CheckKind | None:
    return max(kinds, key=_RANK.index, default=None)


def classify_step(step: Step) -> CheckKind:
    """What one top-level step proves: a named pipeline by its name, a ``runs:`` script by
    the commands in it, a nested ``pipeline:`` by its strongest child."""
    if step.uses is not None:
        return pipeline_kind(step.uses)
    kinds = [classify_step(child) for child in step.pipeline]
    if step.runs is not None:
        kinds.append(script_kind(step.runs))
    # A step that runs nothing we recognise (``echo ok``) still proves no behaviour.
    return strongest(kinds) or CheckKind.STRUCTURE


# --------------------------------------------------------------------------- runs: scripts

_VERSION_WORDS = frozenset({"--version", "-version", "-V", "-v", "version"})
_HELP_WORDS = frozenset({"--help", "-help", "-h", "help", "--usage", "-?"})
# Commands that neither exercise the package nor look at it.
_NEUTRAL = frozenset(
    {"set", "true", "false", ":", "exit", "return", "echo", "printf", "export", "local", "readonly", "cd", "pwd"}
    | {"shift", "unset", "sleep", "mkdir", "rm", "touch", "trap", "wait", "umask", "for", "case", "select", "break"}
    | {"continue"}
)
_SHELL_KEYWORDS = frozenset({"if", "then", "elif", "else", "fi", "while", "until", "do", "done", "esac", "!", "{", "}"})
_TEST_COMMANDS = frozenset({"test", "[", "[["})
_FILE_TESTS = frozenset({"-e", "-f", "-d", "-x", "-L", "-h", "-s", "-r", "-w", "-b", "-c", "-p", "-S", "-g", "-u"})
# Text filters: on another command's output they only look at it.
_FILTERS = frozenset(
    {"grep", "egrep", "fgrep", "head", "tail", "wc", "tr", "cut", "sed", "awk", "sort", "uniq", "cat", "xargs"}
)
_STRUCTURE_COMMANDS = frozenset(
    {"ls", "stat", "readlink", "realpath", "file", "find", "command", "which", "type", "hash", "du", "diff", "cmp"}
    | {"md5sum", "sha256sum", "sha1sum", "pkgconf", "pkg-config", "getent", "id", "apk", "tar", "zcat", "gzip"}
)
_PREFIX_COMMANDS = frozenset({"exec", "time", "nohup", "builtin", "nice"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=")
SUBSTITUTED = "\x00"  # stands in a word for a `$(...)`'s output

_INTERPRETER = re.compile(r"^(python|ruby|perl|node|nodejs|lua|luajit|php)[\d.]*$")
_CODE_FLAGS = {
    "python": ("-c",),
    "ruby": ("-e",),
    "perl": ("-e", "-E"),
    "node": ("-e", "--eval", "-p", "--print"),
    "nodejs": ("-e", "--eval", "-p", "--print"),
    "lua": ("-e",),
    "luajit": ("-e",),
    "php": ("-r",),
}
_LIBRARY_FLAGS = {"ruby": ("-r",), "perl": ("-M", "-m"), "node": ("-r", "--require"), "lua": ("-l",)}
_LOAD_STATEMENT = re.compile(
    r"""^(?:
        import\s+[\w.]+(?:\s+as\s+\w+)?(?:\s*,\s*[\w.]+(?:\s+as\s+\w+)?)*    # python
      | from\s+[\w.]+\s+import\s+[\w\s,*()]+                                # python
      | (?:(?:local|const|let|var)\s+)?(?:\w+\s*=\s*)?
        (?:require|require_relative)\s*\(?\s*['"][^'"]+['"]\s*\)?          # ruby, node, lua
      | use\s+[\w:]+[^;]*                                                   # perl
      | (?:print|puts|p|say|console\.log|echo)\b.*version.*                 # printing the version
      | (?:print|puts|say|console\.log|echo)\s*\(?\s*(['"])[^'"]*\1\s*\)?       # or a fixed message
      | pass | exit(?:\(\))? | \d+ | true | nil | None | undef
    )$""",
    re.VERBOSE | re.IGNORECASE,
)


@dataclass
class _Command:
    words: list[str] = field(default_factory=list)
    fed: bool = False  # stdin comes from a here-document, a here-string or a file


class _Lexer:
    """Splits a POSIX shell script into pipelines of simple commands (words unquoted,
    redirections removed) and the scripts of its command substitutions.

    It reads what test stanzas contain; it does not execute, expand or validate."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0
        self.pipelines: list[list[_Command]] = []
        self.substitutions: list[str] = []
        self._pipeline: list[_Command] = []
        self._command = _Command()
        self._word: list[str] | None = None
        self._drop_next = False  # the next word is a redirection's target
        self._heredoc_next: bool | None = None  # the next word is a delimiter (True: strip tabs)
        self._heredocs: list[tuple[str, bool]] = []

    def run(self) -> _Lexer:
        text = self.text
        while self.at < len(text):
            char = text[self.at]
            after = text[self.at + 1] if self.at + 1 < len(text) else ""
            if char == "\\":
                if after != "\n":
                    self._append(after)
                self.at += 2
            elif char in " \t\r":
                self._end_word()
                self.at += 1
            elif char == "\n":
                self._end_pipeline()
                self.at += 1
                self._skip_heredocs()
            elif char == "#" and self._word is None:
                end = text.find("\n", self.at)
                self.at = len(text) if end < 0 else end
            elif char == "'":
                end = text.find("'", self.at + 1)
                end = len(text) if end < 0 else end
                self._append(text[self.at + 1 : end])
                self.at = end + 1
            elif char == '"':
                self._double_quoted()
            elif char == "`":
                self._backquoted()
            elif char == "$":
                self._dollar()
            elif char == "|":
                if after == "|":
                    self._end_pipeline()
                else:
                    self._end_command()
                self.at += 2 if after in ("|", "&") else 1
            elif char == "&":
                if after == ">":
                    self._end_word()
                    self._redirection()
                    continue
                self._end_pipeline()
                self.at += 2 if after == "&" else 1
            elif char in ";()":
                self._end_pipeline()
                self.at += 1
            elif char in "<>":
                self._redirection()
            else:
                self._append(char)
                self.at += 1
        self._end_pipeline()
        return self

    # -- words ---------------------------------------------------------------------------

    def _append(self, text: str) -> None:
        if self._word is None:
            self._word = []
        self._word.append(text)

    def _end_word(self) -> None:
        if self._word is None:
            return
        word = "".join(self._word)
        self._word = None
        if self._drop_next:
            self._drop_next = False
            if self._heredoc_next is not None:
                self._heredocs.append((word, self._heredoc_next))
                self._heredoc_next = None
            return
        if not self._command.words and word in _SHELL_KEYWORDS:
            return
        self._command.words.append(word)

    def _end_command(self) -> None:
        self._end_word()
        if self._command.words:
            self._pipeline.append(self._command)
        self._command = _Command()

    def _end_pipeline(self) -> None:
        self._end_command()
        if self._pipeline:
            self.pipelines.append(self._pipeline)
        self._pipeline = []

    # -- quoting and expansions ----------------------------------------------------------

    def _double_quoted(self) -> None:
        text = self.text
        self._append("")
        self.at += 1
        while self.at < len(text) and text[self.at] != '"':
            char = text[self.at]
            if char == "\\" and self.at + 1 < len(text):
                self._append(text[self.at + 1])
                self.at += 2
            elif char == "$":
                self._dollar()
            elif char == "`":
                self._backquoted()
            else:
                self._append(char)
                self.at += 1
        self.at += 1

    def _backquoted(self) -> None:
        end = self.at + 1
        while end < len(self.text) and self.text[end] != "`":
            end += 2 if self.text[end] == "\\" else 1
        self.substitutions.append(self.text[self.at + 1 : end])
        self._append(SUBSTITUTED)
        self.at = end + 1

    def _dollar(self) -> None:
        text = self.text
        if text.startswith("$((", self.at):
            end = self._closing(self.at + 3, "(", ")", depth=2)
            self._append(text[self.at : end])
            self.at = end
        elif text.startswith("$(", self.at):
            end = self._closing(self.at + 2, "(", ")")
            self.substitutions.append(text[self.at + 2 : end - 1])
            self._append(SUBSTITUTED)
            self.at = end
        elif text.startswith("${", self.at):
            end = self._closing(self.at + 2, "{", "}")
            self._append(text[self.at : end])
            self.at = end
        else:
            self._append("$")
            self.at += 1

    def _closing(self, start: int, opening: str, closing: str, depth: int = 1) -> int:
        """The index just past the ``closing`` that balances ``depth`` open ``opening``s."""
        text = self.text
        at = start
        while at < len(text) and depth:
            char = text[at]
            if char == "\\":
                at += 1
            elif char == "'" and opening == "(":
                found = text.find("'", at + 1)
                at = len(text) if found < 0 else found
            elif char == opening:
                depth += 1
            elif char == closing:
                depth -= 1
            at += 1
        return at

    # -- redirections --------------------------------------------------------------------

    def _redirection(self) -> None:
        text = self.text
        if self._word is not None and "".join(self._word).isdigit():
            self._word = None  # the file descriptor of `2>`
        self._end_word()
        operator = next(
            op
            for op in ("<<<", "<<-", "&>>", "<<", "<>", "<&", ">>", ">&", ">|", "&>", "<", ">")
            if text.startswith(op, self.at)
        )
        self.at += len(operator)
        self._drop_next = True
        if operator.startswith("<"):
            self._command.fed = True
        if operator in ("<<", "<<-"):
            self._heredoc_next = operator == "<<-"

    def _skip_heredocs(self) -> None:
        """Here-document bodies are input, not commands."""
        for delimiter, strip_tabs in self._heredocs:
            while self.at < len(self.text):
                end = self.text.find("\n", self.at)
                end = len(self.text) if end < 0 else end
                line = self.text[self.at : end]
                self.at = end + 1
                if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                    break
        self._heredocs = []


def script_kind(script: str) -> CheckKind:
    """What a ``runs:`` script checks: the strongest kind among its commands.

    Commands that only ask for ``--version``/``--help`` (their output filtered by grep and
    friends) are version/help checks; an interpreter told only to import or require
    modules is an import check; ``test -f``, ``ls``, ``readlink`` ... look at the layout;
    anything else runs the package and counts as functional."""
    return _script_kind(script) or CheckKind.STRUCTURE


def _script_kind(script: str) -> CheckKind | None:
    lexed = _Lexer(script).run()
    kinds = [_pipeline_kind(pipeline) for pipeline in lexed.pipelines]
    kinds += [_script_kind(inner) for inner in lexed.substitutions]
    return strongest(kind for kind in kinds if kind is not None)


def _pipeline_kind(pipeline: Sequence[_Command]) -> CheckKind | None:
    kinds = [_command_kind(command, downstream=position > 0) for position, command in enumerate(pipeline)]
    return strongest(kind for kind in kinds if kind is not None)


def _without_prefixes(words: Sequence[str]) -> list[str]:
    """The command itself, without variable assignments and wrappers (env, exec, timeout)."""
    rest = list(words)
    while rest:
        first = rest[0]
        if _ASSIGNMENT.match(first) or first in _PREFIX_COMMANDS or first == "!":
            rest = rest[1:]
        elif first == "env":
            rest = rest[1:]
            while rest and rest[0].startswith("-"):
                rest = rest[1:]
        elif first == "timeout":
            rest = rest[1:]
            while rest and rest[0].startswith("-"):
                rest = rest[1:]
            rest = rest[1:]  # the duration
        elif first == "command" and len(rest) > 1 and not rest[1].startswith("-"):
            rest = rest[1:]
        else:
            break
    return rest


def _command_kind(command: _Command, *, downstream: bool) -> CheckKind | None:
    """None for a command that checks nothing (echo, set, cd, a filter on output)."""
    words = _without_prefixes(command.words)
    if not words:
        return None
    program = words[0].rsplit("/", 1)[-1]
    arguments = words[1:]
    if program in _NEUTRAL:
        return None
    if program in _TEST_COMMANDS:
        # `test -x /usr/bin/foo` looks at the layout; `[ "$(foo)" = bar ]` asserts output.
        return CheckKind.STRUCTURE if _FILE_TESTS.intersection(arguments) else None
    if program in _FILTERS:
        return None if downstream or command.fed else CheckKind.STRUCTURE
    if program == "ldd":
        return CheckKind.LINKAGE
    if program in _STRUCTURE_COMMANDS:
        return CheckKind.STRUCTURE
    if command.fed:
        return CheckKind.FUNCTIONAL
    return _loads_only(program, arguments) or _asks_only(arguments) or CheckKind.FUNCTIONAL


def _asks_only(arguments: Sequence[str]) -> CheckKind | None:
    """VERSION/HELP when the arguments only ask for a version or help text."""
    asked = [a for a in arguments if a in _VERSION_WORDS or a in _HELP_WORDS]
    if not asked or any(a not in asked and not a.startswith("-") for a in arguments):
        return None
    return CheckKind.VERSION if any(a in _VERSION_WORDS for a in asked) else CheckKind.HELP


def _loads_only(program: str, arguments: Sequence[str]) -> CheckKind | None:
    """IMPORT for ``python3 -c 'import foo'``, ``ruby -e "require 'foo'"``, ``perl -MFoo -e 1``."""
    match = _INTERPRETER.match(program)
    if match is None:
        return None
    language = match.group(1)
    code_flags = _CODE_FLAGS.get(language, ())
    library_flags = _LIBRARY_FLAGS.get(language, ())
    loaded = False
    position = 0
    while position < len(arguments):
        argument = arguments[position]
        if argument in code_flags and position + 1 < len(arguments):
            statements = re.split(r"[;\n]", arguments[position + 1])
            if not all(_LOAD_STATEMENT.match(s.strip()) for s in statements if s.strip()):
                return None
            loaded = True
            position += 2
            continue
        if argument in library_flags and position + 1 < len(arguments):
            loaded = True
            position += 2
            continue
        if any(argument.startswith(flag) and len(argument) > len(flag) for flag in library_flags):
            loaded = True  # -MFoo, -rfoo
        elif not argument.startswith("-"):
            return None  # a script or a module to run: that is more than loading
        position += 1
    return CheckKind.IMPORT if loaded else None


# --------------------------------------------------------------------------- reports


class Verdict(enum.StrEnum):
    STRONG = "strong"  # every applicable mutant was killed
    WEAK = "weak"  # some mutants survived
    SUPERFICIAL = "superficial"  # only version/help/import checks, whatever they killed
    BASELINE_FAILED = "baseline-failed"  # the test fails on the good package: nothing scored
    UNSCORED = "unscored"  # no mutant applies to the package


@dataclass(frozen=True, slots=True)
class StepCheck:
    """A top-level step of the stanza and what it checks."""

    title: str
    kind: CheckKind


@dataclass(frozen=True, slots=True)
class BaselineSummary:
    """The stanza's run on the good package."""

    passed: bool
    steps: int  # steps in the plan (pipelines expanded)
    failed_step: str | None = None
    reason: str | None = None
    output_tail: str = ""  # the failing step's stderr, then stdout (the end of each)
    duration: float = 0.0
    cached: bool = False


@dataclass(frozen=True, slots=True)
class MutantOutcome:
    """The stanza's run on one mutant."""

    operator: str
    target: str
    description: str
    killed: bool
    killing_step: str | None = None  # the first step that failed
    duration: float = 0.0
    cached: bool = False
    error: str | None = None  # the mutant could not be built or installed: not counted

    @property
    def key(self) -> str:
        return f"{self.operator}:{self.target}"

    @property
    def scored(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class StrengthReport:
    """How many broken copies of a package a test stanza catches."""

    package: str
    version: str
    checksum: str  # sha256 of the good package's .apk
    checks: tuple[StepCheck, ...]
    baseline_passed: bool
    baseline: BaselineSummary
    outcomes: tuple[MutantOutcome, ...]  # in the order the operators list them
    applicable: int  # mutants that were built and run
    killed: int
    kill_rate: float | None  # killed / applicable; None when nothing was scored
    survivors: tuple[MutantOutcome, ...]
    verdict: Verdict
    reasons: tuple[str, ...]


def step_label(result: StepResult) -> str:
    """A failed step as the validate report names it: a pipeline's inner step under its name."""
    if result.uses and result.uses != result.title:
        return f"{result.uses}: {result.title}"
    return result.title


def summarize_baseline(report: TestReport) -> BaselineSummary:
    failed = next((step for step in report.steps if step.status is StepStatus.FAILED), None)
    if failed is None:
        return BaselineSummary(passed=report.passed, steps=len(report.steps), duration=report.duration)
    output = "\n".join(part.rstrip("\n") for part in (failed.stderr_tail, failed.stdout_tail) if part.strip())
    return BaselineSummary(
        passed=False,
        steps=len(report.steps),
        failed_step=step_label(failed),
        reason=failed.reason,
        output_tail=output[-OUTPUT_TAIL_CHARS:],
        duration=report.duration,
    )


def judge(
    baseline: BaselineSummary, checks: Sequence[StepCheck], outcomes: Sequence[MutantOutcome]
) -> tuple[Verdict, tuple[str, ...]]:
    """The verdict and the reasons for it, from the parts of a report."""
    if not baseline.passed:
        where = f" at {baseline.failed_step!r}" if baseline.failed_step else ""
        why = f" ({baseline.reason})" if baseline.reason else ""
        return Verdict.BASELINE_FAILED, (
            f"the test fails on the good package{where}{why}: a test that fails there proves nothing; "
            "fix the test before scoring it",
        )
    reasons: list[str] = []
    scored = [o for o in outcomes if o.scored]
    survivors = [o for o in scored if not o.killed]
    for outcome in outcomes:
        if not outcome.scored:
            reasons.append(f"mutant {outcome.key} was not scored: {outcome.error}")
    superficial = all(check.kind.superficial for check in checks)
    if superficial:
        kinds = sorted({check.kind.value for check in checks})
        reasons.insert(
            0,
            f"every step only checks {'/'.join(kinds) or 'nothing'}: such checks pass on many broken packages; "
            "add a step that exercises what the package does",
        )
    if not scored:
        reasons.append("no mutation operator applies to this package: nothing could be scored")
        return (Verdict.SUPERFICIAL if superficial else Verdict.UNSCORED), tuple(reasons)
    if survivors:
        reasons.append(
            f"{len(survivors)} of {len(scored)} mutants survived: the test passes on packages broken that way"
        )
    else:
        reasons.append(f"every one of the {len(scored)} applicable mutants made the test fail")
    if superficial:
        return Verdict.SUPERFICIAL, tuple(reasons)
    return (Verdict.WEAK if survivors else Verdict.STRONG), tuple(reasons)


def build_report(
    *,
    package: str,
    version: str,
    checksum: str,
    checks: Sequence[StepCheck],
    baseline: BaselineSummary,
    outcomes: Sequence[MutantOutcome],
) -> StrengthReport:
    scored = [o for o in outcomes if o.scored]
    killed = sum(1 for o in scored if o.killed)
    verdict, reasons = judge(baseline, checks, outcomes)
    return StrengthReport(
        package=package,
        version=version,
        checksum=checksum,
        checks=tuple(checks),
        baseline_passed=baseline.passed,
        baseline=baseline,
        outcomes=tuple(outcomes),
        applicable=len(scored),
        killed=killed,
        kill_rate=round(killed / len(scored), 4) if scored else None,
        survivors=tuple(o for o in scored if not o.killed),
        verdict=verdict,
        reasons=reasons,
    )


# --------------------------------------------------------------------------- cached values


def _baseline_value(summary: BaselineSummary) -> dict[str, Any]:
    return {
        "passed": summary.passed,
        "steps": summary.steps,
        "failed_step": summary.failed_step,
        "reason": summary.reason,
        "output_tail": summary.output_tail,
        "duration": summary.duration,
    }


def _baseline_from(value: dict[str, Any]) -> BaselineSummary | None:
    try:
        summary = BaselineSummary(
            passed=value["passed"],
            steps=value["steps"],
            failed_step=value["failed_step"],
            reason=value["reason"],
            output_tail=value["output_tail"],
            duration=value["duration"],
            cached=True,
        )
    except KeyError:
        return None
    well_typed = (
        isinstance(summary.passed, bool)
        and isinstance(summary.steps, int)
        and isinstance(summary.failed_step, str | None)
        and isinstance(summary.reason, str | None)
        and isinstance(summary.output_tail, str)
        and isinstance(summary.duration, int | float)
    )
    return summary if well_typed else None


def _outcome_value(outcome: MutantOutcome) -> dict[str, Any]:
    return {"killed": outcome.killed, "killing_step": outcome.killing_step, "duration": outcome.duration}


def _outcome_from(spec: MutantSpec, value: dict[str, Any]) -> MutantOutcome | None:
    killed, killing_step, duration = value.get("killed"), value.get("killing_step"), value.get("duration")
    if not (isinstance(killed, bool) and isinstance(killing_step, str | None) and isinstance(duration, int | float)):
        return None
    return _outcome(spec, killed=killed, killing_step=killing_step, duration=float(duration), cached=True)


def _outcome(spec: MutantSpec, **details: Any) -> MutantOutcome:
    return MutantOutcome(operator=spec.operator, target=spec.target, description=spec.description, **details)


# --------------------------------------------------------------------------- scoring


Progress = Callable[[MutantOutcome], None]


def check_operators(operators: Collection[str] | None) -> None:
    if operators is None:
        return
    unknown = sorted(set(operators) - set(mutants.OPERATORS))
    if unknown:
        raise InputError(
            f"unknown mutation operator {', '.join(unknown)}; known: {', '.join(sorted(mutants.OPERATORS))}"
        )


def score(
    request: ValidateRequest,
    *,
    sandbox: Sandbox,
    operators: Collection[str] | None = None,
    cache: ScoreCache | None = None,
    workers: int = DEFAULT_WORKERS,
    progress: Progress | None = None,
) -> StrengthReport:
    """Score the stanza of ``request`` on the package of ``request``.

    ``operators`` limits the mutation operators (all by default); ``cache`` remembers
    outcomes (None: run everything); ``workers`` mutants are validated at a time;
    ``progress`` hears of each mutant's outcome as it is known (in the calling thread).
    """
    if workers < 1:
        raise InputError("the number of workers must be at least 1")
    check_operators(operators)
    return _Scorer(request, sandbox, cache, workers, progress).run(operators)


class _Scorer:
    def __init__(
        self,
        request: ValidateRequest,
        sandbox: Sandbox,
        cache: ScoreCache | None,
        workers: int,
        progress: Progress | None,
    ) -> None:
        self.request = request
        self.sandbox = sandbox
        self.cache = cache
        self.workers = workers
        self.progress = progress
        # Two operators can make byte-identical mutants; their runs must not overlap,
        # since each removes its mutant from the extraction cache when done.
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def run(self, operators: Collection[str] | None) -> StrengthReport:
        request = self.request
        info = read_package_info(request.package, None, request.limits)
        plan = plan_for(request, info)  # InputError for a bad test file, before anything runs
        assert request.test_file is not None  # plan_for refuses a request without one
        stanza, _ = choose_test(
            load_config(request.test_file, str(request.test_file)), info, request.package_name, request.arch
        )
        checks = tuple(StepCheck(title=step.title, kind=classify_step(step)) for step in stanza.pipeline)
        checksum = file_sha256(request.package)
        base_key = ScoreKey(
            package=checksum,
            stanza=plan_sha256(plan),
            options=environment_sha256(request),
            subject=BASELINE,
        )
        baseline = self._baseline(base_key)
        outcomes: tuple[MutantOutcome, ...] = ()
        if baseline.passed:
            specs = _unique(self._specs(operators))
            outcomes = self._mutants(specs, base_key)
        return build_report(
            package=info.name,
            version=info.version,
            checksum=checksum,
            checks=checks,
            baseline=baseline,
            outcomes=outcomes,
        )

    def _specs(self, operators: Collection[str] | None) -> tuple[MutantSpec, ...]:
        package, limits = self.request.package, self.request.limits
        analysis = analyze_apk(package, limits=limits)
        # drop-data-file targets only data the package's own files name: that takes a read.
        wanted = DATA_REFERENCE_OPERATORS if operators is None else DATA_REFERENCE_OPERATORS & set(operators)
        references = find_references(package, analysis, limits=limits) if wanted else None
        return applicable_mutants(analysis, operators=operators, references=references)

    # -- the good package ----------------------------------------------------------------

    def _baseline(self, key: ScoreKey) -> BaselineSummary:
        stored = self.cache.get(key) if self.cache is not None else None
        summary = _baseline_from(stored) if stored is not None else None
        if summary is not None:
            return summary
        summary = summarize_baseline(validate(self.request, sandbox=self.sandbox))
        if self.cache is not None:
            self.cache.put(key, _baseline_value(summary))
        return summary

    # -- the mutants ---------------------------------------------------------------------

    def _mutants(self, specs: Sequence[MutantSpec], base_key: ScoreKey) -> tuple[MutantOutcome, ...]:
        fingerprint = operators_fingerprint()
        keys = [dataclasses.replace(base_key, subject=f"{spec.key}@{fingerprint}") for spec in specs]
        results: list[MutantOutcome | None] = [None] * len(specs)
        pending: list[int] = []
        for index, (spec, key) in enumerate(zip(specs, keys, strict=True)):
            stored = self.cache.get(key) if self.cache is not None else None
            results[index] = _outcome_from(spec, stored) if stored is not None else None
            if results[index] is None:
                pending.append(index)
            else:
                self._report(results[index])
        if pending:
            with (
                tempfile.TemporaryDirectory(prefix="qackage-mutants-", dir=self.request.run.scratch_dir) as scratch,
                ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="qackage-score") as pool,
            ):
                futures = {pool.submit(self._score_one, specs[i], Path(scratch) / f"{i:04d}"): i for i in pending}
                try:
                    for future in as_completed(futures):
                        index = futures[future]
                        outcome = future.result()
                        results[index] = outcome
                        if self.cache is not None and outcome.scored:
                            self.cache.put(keys[index], _outcome_value(outcome))
                        self._report(outcome)
                except BaseException:
                    # A broken sandbox or an interrupt: do not run the mutants still queued.
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
        return tuple(outcome for outcome in results if outcome is not None)

    def _report(self, outcome: MutantOutcome | None) -> None:
        if self.progress is not None and outcome is not None:
            self.progress(outcome)

    def _score_one(self, spec: MutantSpec, folder: Path) -> MutantOutcome:
        folder.mkdir()
        try:
            try:
                mutant = build_mutant(self.request.package, spec, folder / "mutant.apk", limits=self.request.limits)
                report = self._validate_mutant(mutant)
            except (InputError, ResolutionError) as exc:
                return _outcome(spec, killed=False, error=exc.message)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        failed = next((step for step in report.steps if step.status is StepStatus.FAILED), None)
        return _outcome(
            spec,
            killed=not report.passed,
            killing_step=step_label(failed) if failed is not None else None,
            duration=report.duration,
        )

    def _validate_mutant(self, mutant: Path) -> TestReport:
        request = dataclasses.replace(self.request, package=mutant)
        extracted = extract_cache(request)
        key = extracted.key_for(mutant)
        good = extracted.key_for(self.request.package)
        with self._lock_for(key):
            try:
                return validate(request, sandbox=self.sandbox)
            finally:
                # A mutant's unpacked tree is of no use once it has run: keep the cache small.
                if key != good:
                    extracted.discard(key)

    def _lock_for(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())


def _unique(specs: Iterable[MutantSpec]) -> tuple[MutantSpec, ...]:
    """The specs in order, each key once."""
    seen: dict[str, MutantSpec] = {}
    for spec in specs:
        seen.setdefault(spec.key, spec)
    return tuple(seen.values())
