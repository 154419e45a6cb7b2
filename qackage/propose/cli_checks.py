"""Functional checks for command-line programs: try them on samples, assert what they did.

Round 1 reads each program's help (and its manual page when the package ships one)
and asks the shell what it runs for the program's name; round 2 asks subcommands the
listing says too little about for their own help and runs the trials the texts
suggest; round 3 runs the trials those helps suggest. Every trial runs twice; a step
asserts only output both runs agreed on.

Help is read from the package's own file (by path), and a step calls the program by
name only where the shell finds the package's file that way: a shell may run a builtin
or an applet of the same name instead (busybox sh built to prefer its applets runs its
own `xz` and `bc`), and a check of that would not test the package.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from typing import ClassVar

from qackage.model import Analysis, Candidate, CheckKind, DocKind, Executable, ProbeCommand, ProbeResult, Step
from qackage.propose.cli_trials import (
    Judgement,
    Trial,
    TrialStyle,
    judge,
    needs_own_help,
    plan_trials,
    subcommands_to_try,
)
from qackage.propose.cli_usage import Usage, man_to_text, parse_help
from qackage.propose.expect import assertion_script
from qackage.propose.observe import observed, twice
from qackage.propose.templates import render

MAX_PROGRAMS = 4
MAX_CHECKS_PER_PROGRAM = 3
MAX_CHECKS = 6
HELP_SECONDS = 5
# What the manual probe prints: the page's beginning and its EXAMPLES sections, together
# less than a probe keeps of its output (a long page would otherwise lose its beginning).
MAN_HEAD_BYTES = 24_000
MAN_EXAMPLE_BYTES = 24_000
TRIAL_SECONDS = 20.0  # both runs of a trial, in one sandbox run
CLI_TARGETS = ("delete-executable", "exec-not-executable", "exec-exit-1", "exec-exit-0-silent")
_PROGRAM_NAME = re.compile(r"^[A-Za-z0-9][\w.+-]*$")
# usr/share/man/man1/x.1.gz, not usr/share/man/de/man1/x.1.gz
_UNTRANSLATED_MAN = re.compile(r"^(?:usr/(?:local/)?)?(?:share/)?man/man[^/]+/")


def help_key(program: str) -> str:
    return f"cli:{program}:help"


def man_key(program: str) -> str:
    return f"cli:{program}:man"


def subcommand_help_key(program: str, subcommand: str) -> str:
    return f"cli:{program}:help:{subcommand}"


def which_key(program: str) -> str:
    return f"cli:{program}:which"


def _same_file(found: str, path: str) -> bool:
    """``found`` (what `command -v` printed) is the package file ``path``, also when one
    side names it through the merged /usr (/bin/gzip and /usr/bin/gzip)."""
    return found.lstrip("/").removeprefix("usr/") == path.lstrip("/").removeprefix("usr/")


def invocation(executable: Executable, seen: Mapping[str, ProbeResult]) -> str | None:
    """How a step runs the program: by name when the shell finds the package's file by
    that name, else by its path. None until the probe has run."""
    result = seen.get(which_key(executable.name))
    if result is None:
        return None
    found = result.stdout.strip() if result.ok else ""
    if found.startswith("/") and _same_file(found, executable.path):
        return executable.name
    return shlex.quote("/" + executable.path)


def programs(analysis: Analysis) -> tuple[Executable, ...]:
    """The programs worth trying: on PATH, not daemons (those get their own checks), the
    one named after the package first."""
    daemons = {d.path for d in analysis.facts.daemons}
    found: dict[str, Executable] = {}
    for executable in analysis.facts.executables:
        if executable.on_path and executable.path not in daemons and _PROGRAM_NAME.match(executable.name):
            found.setdefault(executable.name, executable)
    package = analysis.package.name
    ordered = sorted(found.values(), key=lambda e: (e.name != package, not package.endswith(e.name), e.name))
    return tuple(ordered[:MAX_PROGRAMS])


def manual_page(analysis: Analysis, program: str) -> str | None:
    """The absolute path of the package's own section 1/8 manual page for ``program``;
    the untranslated page when there are several (the rules read English)."""
    pages = [
        document.path
        for document in analysis.facts.documents
        if document.kind is DocKind.MAN
        and document.topic == program
        and (document.section or "").startswith(("1", "8"))
        and document.path.endswith((".gz", f".{document.section}"))
    ]
    if not pages:
        return None
    return "/" + min(pages, key=lambda path: (not _UNTRANSLATED_MAN.match(path), path))


def _text(seen: Mapping[str, ProbeResult], key: str) -> str | None:
    result = seen.get(key)
    return result.stdout if result is not None and result.ok and result.stdout.strip() else None


def program_usage(analysis: Analysis, program: str, seen: Mapping[str, ProbeResult]) -> Usage | None:
    """What the help output and manual page say; None until both probes have run, or
    when neither said anything."""
    man = manual_page(analysis, program)
    if help_key(program) not in seen or (man is not None and man_key(program) not in seen):
        return None
    help_text = _text(seen, help_key(program))
    man_text = _text(seen, man_key(program))
    usage = parse_help(help_text, program) if help_text else None
    if man_text:
        from_man = parse_help(man_to_text(man_text), program)
        usage = usage.merged(from_man) if usage else from_man
    return usage


def _trials(analysis: Analysis, executable: Executable, seen: Mapping[str, ProbeResult]) -> tuple[Trial, ...]:
    """The trials for ``executable`` the probes so far allow (none before round 2)."""
    program = executable.name
    usage = program_usage(analysis, program, seen)
    call = invocation(executable, seen)
    if usage is None or call is None:
        return ()
    return plan_trials(program, usage, _subcommand_usages(program, usage, seen), call)


def _subcommand_usages(program: str, usage: Usage, seen: Mapping[str, ProbeResult]) -> dict[str, Usage | None]:
    found: dict[str, Usage | None] = {}
    for subcommand in subcommands_to_try(usage):
        key = subcommand_help_key(program, subcommand.name)
        if key in seen:
            text = _text(seen, key)
            found[subcommand.name] = parse_help(text, program) if text else None
    return found


class CliProposer:
    """Known-answer and round-trip checks for the package's programs."""

    name: ClassVar[str] = "cli-checks"

    def probes(self, analysis: Analysis, seen: Mapping[str, ProbeResult]) -> tuple[ProbeCommand, ...]:
        commands: list[ProbeCommand] = []
        for executable in programs(analysis):
            program = executable.name
            path = shlex.quote("/" + executable.path)
            commands.append(
                ProbeCommand(help_key(program), render("func-probe-help.sh.j2", command=path, seconds=HELP_SECONDS))
            )
            commands.append(ProbeCommand(which_key(program), render("func-probe-which.sh.j2", program=program)))
            man = manual_page(analysis, program)
            if man is not None:
                script = render(
                    "func-probe-man.sh.j2", path=man, head_bytes=MAN_HEAD_BYTES, example_bytes=MAN_EXAMPLE_BYTES
                )
                commands.append(ProbeCommand(man_key(program), script))
            usage = program_usage(analysis, program, seen)
            if usage is None:
                continue
            for subcommand in subcommands_to_try(usage):
                if needs_own_help(subcommand):
                    script = render("func-probe-help.sh.j2", command=f"{path} {subcommand.name}", seconds=HELP_SECONDS)
                    commands.append(ProbeCommand(subcommand_help_key(program, subcommand.name), script))
            for trial in _trials(analysis, executable, seen):
                commands.append(ProbeCommand(trial.key, twice(trial.body), timeout=TRIAL_SECONDS))
        return tuple(commands)

    def candidates(self, analysis: Analysis, seen: Mapping[str, ProbeResult]) -> tuple[Candidate, ...]:
        chosen: list[Candidate] = []
        for executable in programs(analysis):
            trials = _trials(analysis, executable, seen)
            judged = [judge(t, observed(seen, t.key), version=analysis.package.version) for t in trials]
            for judgement in best_per_group([j for j in judged if j is not None])[:MAX_CHECKS_PER_PROGRAM]:
                chosen.append(_candidate(judgement, _targets(analysis, executable)))
        return tuple(chosen[:MAX_CHECKS])


def best_per_group(judged: Sequence[Judgement]) -> list[Judgement]:
    """One judgement per group (the best scoring, first planned on ties), groups ordered
    by rank then score; outputs already asserted by a better group are left out."""
    best: dict[str, Judgement] = {}
    for judgement in judged:
        current = best.get(judgement.trial.group)
        if current is None or judgement.score > current.score:
            best[judgement.trial.group] = judgement
    ordered = sorted(best.values(), key=lambda j: (j.trial.rank, -j.score))
    kept: list[Judgement] = []
    outputs: set[str] = set()
    for judgement in ordered:
        if judgement.trial.style is TrialStyle.OUTPUT and judgement.stdout in outputs:
            continue
        outputs.add(judgement.stdout)
        kept.append(judgement)
    return kept


def _targets(analysis: Analysis, executable: Executable) -> tuple[str, ...]:
    """Mutations the check kills: the program's, and the package's own libraries it loads."""
    own = {lib.soname for lib in analysis.facts.shared_libraries if lib.soname}
    needed = next((set(e.needed) for e in analysis.facts.elf_files if e.path == executable.path), set())
    script = ("break-shebang",) if not executable.elf else ()
    libraries = ("delete-soname", "truncate-elf") if own & needed else ()
    return CLI_TARGETS + script + libraries


def _candidate(judgement: Judgement, targets: tuple[str, ...]) -> Candidate:
    trial = judgement.trial
    if trial.style is TrialStyle.ROUNDTRIP or judgement.expectation is None:
        script = trial.body.rstrip("\n") + "\n"
        rationale = f"probed twice in the sandbox: the round trip of {trial.program} succeeded"
    else:
        output = f"{trial.program}.out"
        script = assertion_script(
            setup=trial.setup, command=trial.command, expectation=judgement.expectation, output=output
        )
        shown = judgement.stdout.strip().splitlines()[0][:60]
        rationale = f"probed twice in the sandbox: `{trial.command}` printed {shown!r}"
    return Candidate(
        step=Step(name=trial.title, runs=script),
        kind=CheckKind.FUNCTIONAL,
        rationale=rationale,
        targets=targets,
    )
