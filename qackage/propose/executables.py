"""Version and help checks for the programs a package puts on PATH, proposed only where a
probe saw the program answer.

Round one of probing runs every chosen program with each version flag and each help
flag (stdin from /dev/null). Then:

- ``test/tw/ver-check`` for programs whose output showed the package version
  (``${{package.version}}``, the pipeline's default) with exit status 0; ``version-flag:``
  is named when the flag that worked is not ``--version``;
- ``test/tw/help-check`` for programs that answered a help flag with exit status 0 or 1
  and text that reads like usage; ``help-flag:`` when it is not ``--help``.

Programs sharing a flag share a step (``bins:`` one per line, as the catalog writes
several). Other flags that also worked become the step's fallbacks for the repair loop.
No step asserts a version string of its own: the pipeline compares with the package's.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from qackage.model import Analysis, Candidate, CheckKind, Executable, ProbeCommand, ProbeResult, Step
from qackage.propose.yamfmt import with_list

VERSION_FLAGS = ("--version", "-V", "version")
HELP_FLAGS = ("--help", "-h", "help")
MAX_PROGRAMS = 12
# The PATH melange gives test steps, as package folders.
TEST_PATH = ("usr/local/sbin", "usr/local/bin", "usr/bin", "usr/sbin", "sbin", "bin")
# A program that starts serving when it does not know a flag must not hold the probe long.
PROBE_TIMEOUT = 5.0
# Names a space-separated bins: list and a shell line carry as they are.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]*$")
_RELEASE = re.compile(r"-r\d+$")
_USAGE = re.compile(
    r"\busage\b|\bsynopsis\b|\boptions\b|\bcommands\b|\bflags\b|^\s*-{1,2}[A-Za-z0-9]", re.IGNORECASE | re.MULTILINE
)
_REJECTED = re.compile(
    r"\b(?:unknown|unrecognized|invalid|illegal|unsupported) (?:option|argument|command|flag)\b"
    r"|\bnot found\b|\bno such file\b",
    re.IGNORECASE,
)
_SAYS_USAGE = re.compile(r"\busage\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Program:
    """A command to probe: the name on PATH and the package path it is run by."""

    name: str
    path: str
    elf: bool


def probe_key(program: str, flag: str) -> str:
    return f"exec:{program}:{flag}"


class ExecutablesProposer:
    name: ClassVar[str] = "executables"

    def probes(self, analysis: Analysis, seen: Mapping[str, ProbeResult]) -> tuple[ProbeCommand, ...]:
        return tuple(
            ProbeCommand(
                key=probe_key(program.name, flag),
                script=f"{shlex.quote('/' + program.path)} {flag} </dev/null",
                timeout=PROBE_TIMEOUT,
            )
            for program in programs(analysis)
            for flag in VERSION_FLAGS + HELP_FLAGS
            if probe_key(program.name, flag) not in seen
        )

    def candidates(self, analysis: Analysis, seen: Mapping[str, ProbeResult]) -> tuple[Candidate, ...]:
        chosen = programs(analysis)
        version = upstream_version(analysis.package.version)
        answers_version = {
            p: [f for f in VERSION_FLAGS if shows_version(seen.get(probe_key(p.name, f)), version)] for p in chosen
        }
        answers_help = {p: [f for f in HELP_FLAGS if shows_help(seen.get(probe_key(p.name, f)))] for p in chosen}
        return (
            *_grouped(answers_version, VERSION_FLAGS, VERSION_CHECK),
            *_grouped(answers_help, HELP_FLAGS, HELP_CHECK),
        )


# --------------------------------------------------------------------------- which programs


def programs(analysis: Analysis) -> list[Program]:
    """The programs worth probing, main ones first: the package's own name, then ELF
    binaries, then scripts; one name per file (aliases of one binary are one program)."""
    facts = analysis.facts
    resolved = {link.path: link.resolved for link in facts.symlinks}
    own_names = {analysis.package.name, analysis.package.origin}
    by_file: dict[str, list[Executable]] = {}
    for executable in facts.executables:
        if not executable.on_path or not _SAFE_NAME.match(executable.name):
            continue
        real = resolved.get(executable.path, executable.path)
        if real is None:
            continue  # a link to a program the package does not ship
        by_file.setdefault(real, []).append(executable)
    by_name: dict[str, Program] = {}
    for aliases in by_file.values():
        best = min(aliases, key=lambda e: (e.name not in own_names, len(e.name), e.name))
        program = Program(best.name, best.path, best.elf or any(e.elf for e in aliases))
        # Two files of one name: the test runs the one PATH finds first, so probe that one.
        other = by_name.get(program.name)
        if other is None or _path_rank(program.path) < _path_rank(other.path):
            by_name[program.name] = program
    chosen = sorted(by_name.values(), key=lambda p: (p.name not in own_names, not p.elf, p.name))
    return chosen[:MAX_PROGRAMS]


def _path_rank(path: str) -> int:
    directory = path.rpartition("/")[0]
    return TEST_PATH.index(directory) if directory in TEST_PATH else len(TEST_PATH)


# --------------------------------------------------------------------------- what probes showed


def upstream_version(version: str) -> str:
    """``${{package.version}}``: the package version without its ``-rN`` release."""
    return _RELEASE.sub("", version)


def shows_version(result: ProbeResult | None, version: str) -> bool:
    """Exit 0 and the version standing on its own in the output (2.12.1 is not in 2.12.10).
    A version too short to mean anything ("1") is never taken as shown."""
    if result is None or not result.ok or not _specific(version):
        return False
    pattern = r"(?<![0-9.])" + re.escape(version) + r"(?![0-9])"
    return re.search(pattern, result.stdout + result.stderr) is not None


def _specific(version: str) -> bool:
    return "." in version or len(version) >= 4


def shows_help(result: ProbeResult | None) -> bool:
    """Exit 0 or 1 (many programs exit 1 after usage) with text that reads like usage,
    not a complaint about the flag."""
    if result is None or result.reason is not None or result.exit_code not in (0, 1):
        return False
    output = result.stdout + result.stderr
    if not _USAGE.search(output):
        return False
    return not (_REJECTED.search(output) and not _SAYS_USAGE.search(output))


# --------------------------------------------------------------------------- steps


@dataclass(frozen=True, slots=True)
class _Check:
    """How one of the two pipelines is spelled and what it is said to prove."""

    uses: str
    flag_input: str
    default_flag: str
    kind: CheckKind
    observed: str

    def step(self, bins: Sequence[Program], flag: str) -> Step:
        inputs = [("bins", with_list([p.name for p in bins]))]
        if flag != self.default_flag:
            inputs.append((self.flag_input, flag))
        return Step(uses=self.uses, with_=tuple(inputs))


VERSION_CHECK = _Check(
    "test/tw/ver-check",
    "version-flag",
    "--version",
    CheckKind.VERSION,
    "printed the package version with exit status 0",
)
HELP_CHECK = _Check(
    "test/tw/help-check", "help-flag", "--help", CheckKind.HELP, "printed usage with exit status 0 or 1"
)


def _grouped(answers: Mapping[Program, Sequence[str]], flags: Sequence[str], check: _Check) -> list[Candidate]:
    """One candidate per first-working flag, in flag order, bins in program order."""
    groups: dict[str, list[Program]] = {}
    for program, worked in answers.items():
        if worked:
            groups.setdefault(worked[0], []).append(program)
    candidates = []
    for flag in flags:
        bins = groups.get(flag)
        if not bins:
            continue
        # Other flags every program of the group answered: what the repair loop may try.
        others = [f for f in flags if f != flag and all(f in answers[program] for program in bins)]
        candidates.append(
            Candidate(
                step=check.step(bins, flag),
                kind=check.kind,
                rationale=f"{_commands(bins, flag)} {check.observed}",
                targets=program_targets(bins),
                fallbacks=tuple(check.step(bins, other) for other in others),
            )
        )
    return candidates


def program_targets(bins: Sequence[Program]) -> tuple[str, ...]:
    """What running each program and reading its answer catches: a program that is gone,
    not executable, or answers wrong; a cut-off ELF cannot start, a script with a broken
    #! line neither."""
    targets = ["delete-executable", "exec-exit-1", "exec-exit-0-silent", "exec-not-executable"]
    if any(p.elf for p in bins):
        targets.append("truncate-elf")
    if any(not p.elf for p in bins):
        targets.append("break-shebang")
    return tuple(targets)


def _commands(bins: Sequence[Program], flag: str, shown: int = 4) -> str:
    names = ", ".join(p.name for p in bins[:shown]) + (f" and {len(bins) - shown} more" if len(bins) > shown else "")
    return f"{names} {flag}"
