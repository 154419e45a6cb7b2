"""Functional checks for daemons: start one for real, talk to it, stop it.

Round 1 reads the daemon's help. Round 2 starts it twice (in the foreground, config
copied under /tmp, output to a log), waits for its TCP listener, tries a PING line, an
HTTP GET and a silent connection, stops it and records its exit; and, when the help
offers one, runs its configuration check on the shipped config and on a broken one.
Candidates assert what both runs agreed on: `test/daemon-check-output` waiting for the
ready line with one request while the daemon runs, or the same as a `runs:` script.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import ClassVar

from qackage.model import Analysis, Candidate, CheckKind, Daemon, ProbeCommand, ProbeResult, Step
from qackage.propose.cli_usage import Usage, parse_help
from qackage.propose.daemon_plan import (
    HTTP_GET,
    PING,
    DaemonRun,
    Launch,
    Request,
    choose_request,
    config_test_arguments,
    grep_basic_escape,
    logs_default_errors,
    plan_launch,
    read_run,
    ready_text,
)
from qackage.propose.observe import observed, twice
from qackage.propose.templates import render

MAX_DAEMONS = 2
HELP_SECONDS = 5
WAIT_STEPS = 50  # of 0.2 s: how long the probe waits for a listener
RUN_SECONDS = 45.0
DAEMON_TARGETS = ("delete-executable", "exec-not-executable", "exec-exit-1", "exec-exit-0-silent", "daemon-exits")
CONFIG_TARGETS = ("delete-executable", "exec-not-executable", "exec-exit-1", "exec-exit-0-silent", "missing-config")


def help_key(daemon: Daemon) -> str:
    return f"daemon:{daemon.name}:help"


def run_key(daemon: Daemon, attempt: int) -> str:
    return f"daemon:{daemon.name}:run:{attempt}"


def config_test_key(daemon: Daemon) -> str:
    return f"daemon:{daemon.name}:config-test"


def daemons(analysis: Analysis) -> tuple[Daemon, ...]:
    usable = [d for d in analysis.facts.daemons if re.fullmatch(r"[\w.+-]+", d.name)]
    return tuple(sorted(usable, key=lambda d: (not d.ports, not d.config_files, d.name))[:MAX_DAEMONS])


def daemon_usage(daemon: Daemon, seen: Mapping[str, ProbeResult]) -> Usage | None:
    """The daemon's help (an empty usage when it has none); None before the help probe ran."""
    result = seen.get(help_key(daemon))
    if result is None:
        return None
    return parse_help(result.stdout, daemon.name) if result.ok else Usage()


# --------------------------------------------------------------------------- configuration check


def _config_commands(daemon: Daemon, usage: Usage) -> tuple[str, str, str] | None:
    """(check the shipped config, check a broken one, the broken file) for daemons whose
    help offers a configuration check; the broken part is empty without a config flag."""
    found = config_test_arguments(daemon, usage)
    if found is None:
        return None
    test_flag, config_flag = found
    program = "/" + daemon.path
    if config_flag is None:
        return shlex.join((program, test_flag)), "", ""
    config = "/" + daemon.config_files[0]
    broken = f"/tmp/{daemon.name}-broken.conf"
    return (
        shlex.join((program, test_flag, config_flag, config)),
        shlex.join((program, test_flag, config_flag, broken)),
        broken,
    )


def _config_probe(daemon: Daemon, usage: Usage) -> ProbeCommand | None:
    commands = _config_commands(daemon, usage)
    if commands is None:
        return None
    check, check_broken, broken = commands
    body = render("func-daemon-configtest-probe.sh.j2", check=check, check_broken=check_broken, broken=broken)
    return ProbeCommand(config_test_key(daemon), twice(body), timeout=RUN_SECONDS)


def _config_candidate(daemon: Daemon, usage: Usage, seen: Mapping[str, ProbeResult]) -> Candidate | None:
    commands = _config_commands(daemon, usage)
    observation = observed(seen, config_test_key(daemon))
    if commands is None or observation is None or not observation.succeeded:
        return None
    values = dict(re.findall(r"^qk-(good|broken): (\d+)$", observation.stdout, re.MULTILINE))
    if values.get("good") != "0":
        return None
    check, check_broken, broken = commands
    rejects = bool(broken) and values.get("broken", "0") != "0"
    script = render(
        "func-daemon-configtest.sh.j2",
        check=check,
        check_broken=check_broken,
        broken=broken if rejects else "",
        daemon=daemon.name,
    )
    what = "accepts its shipped configuration and rejects a broken one" if rejects else "accepts its configuration"
    return Candidate(
        step=Step(name=f"{daemon.name} {what}", runs=script),
        kind=CheckKind.FUNCTIONAL,
        rationale=f"probed twice in the sandbox: `{check}` passed" + (f", `{check_broken}` failed" if rejects else ""),
        targets=CONFIG_TARGETS if daemon.config_files else CONFIG_TARGETS[:-1],
    )


# --------------------------------------------------------------------------- running the daemon


def _run_probe(launch: Launch, attempt: int, daemon: Daemon) -> ProbeCommand:
    script = render(
        "func-daemon-probe.sh.j2",
        daemon=launch.name,
        setup=launch.setup,
        command=launch.command,
        state_dir=launch.state_dir,
        ports=launch.ports,
        wait_steps=WAIT_STEPS,
        ping=PING,
        http=HTTP_GET,
    )
    return ProbeCommand(run_key(daemon, attempt), script, timeout=RUN_SECONDS)


def _runs(daemon: Daemon, seen: Mapping[str, ProbeResult]) -> tuple[DaemonRun, DaemonRun] | None:
    results = [seen.get(run_key(daemon, attempt)) for attempt in (1, 2)]
    if any(r is None or not r.ok for r in results):
        return None
    first, second = (read_run(r.stdout) for r in results if r is not None)
    if not (first.alive and second.alive) or first.port != second.port:
        return None
    return first, second


def _request_script(request: Request | None, launch: Launch, port: int | None) -> str:
    if request is None or port is None:
        return ""
    return render("func-daemon-request.sh.j2", request=request, state_dir=launch.state_dir, port=port)


def _run_step(
    launch: Launch, port: int, request: Request | None, ready: str | None, clean_exit: bool, title: str
) -> Step:
    script = render(
        "func-daemon-run.sh.j2",
        setup=launch.setup,
        command=launch.command,
        log=f"{launch.state_dir}/{launch.name}.log",
        daemon=launch.name,
        port=port,
        request=request,
        state_dir=launch.state_dir,
        clean_exit=clean_exit,
        ready=ready or "",
    )
    return Step(name=title, runs=script)


def _daemon_candidate(launch: Launch, runs: tuple[DaemonRun, DaemonRun], version: str) -> Candidate | None:
    first, second = runs
    request = choose_request(first, second, version)
    ready = ready_text(first, second, version)
    port = first.port
    answers = f" and answers {request.label}" if request else ""
    title = f"{launch.name} starts in the foreground{answers}"
    clean_exit = first.status == 0 and second.status == 0 and not (first.killed or second.killed)
    rationale = (
        f"probed twice in the sandbox ({launch.source}): it listened on port {port}" if port else "probed twice"
    ) + (f", answered {request.label} with {request.expected!r}" if request else "")
    fallback = _run_step(launch, port, request, ready, clean_exit, title) if port is not None else None
    if ready is not None and not logs_default_errors(runs):
        with_: list[tuple[str, str]] = [
            ("start", launch.command),
            ("setup", launch.setup),
            ("expected_output", grep_basic_escape(ready) + "\n"),
        ]
        post = _request_script(request, launch, port)
        if post:
            with_.append(("post", post))
        return Candidate(
            step=Step(name=title, uses="test/daemon-check-output", with_=tuple(with_)),
            kind=CheckKind.FUNCTIONAL,
            rationale=f"{rationale}; it logged {ready!r} when ready",
            targets=DAEMON_TARGETS + (("missing-config",) if launch.copies else ()),
            fallbacks=(fallback,) if fallback is not None else (),
        )
    if fallback is None:
        return None
    return Candidate(
        step=fallback,
        kind=CheckKind.FUNCTIONAL,
        rationale=rationale,
        targets=DAEMON_TARGETS + (("missing-config",) if launch.copies else ()),
    )


class DaemonProposer:
    """Start-talk-stop checks and configuration checks for the package's daemons."""

    name: ClassVar[str] = "daemon-checks"

    def probes(self, analysis: Analysis, seen: Mapping[str, ProbeResult]) -> tuple[ProbeCommand, ...]:
        commands: list[ProbeCommand] = []
        for daemon in daemons(analysis):
            program = shlex.quote("/" + daemon.path)
            commands.append(
                ProbeCommand(help_key(daemon), render("func-probe-help.sh.j2", command=program, seconds=HELP_SECONDS))
            )
            usage = daemon_usage(daemon, seen)
            if usage is None:
                continue
            launch = plan_launch(analysis, daemon, usage)
            if launch is not None:
                commands += [_run_probe(launch, attempt, daemon) for attempt in (1, 2)]
            config = _config_probe(daemon, usage)
            if config is not None:
                commands.append(config)
        return tuple(commands)

    def candidates(self, analysis: Analysis, seen: Mapping[str, ProbeResult]) -> tuple[Candidate, ...]:
        found: list[Candidate] = []
        for daemon in daemons(analysis):
            usage = daemon_usage(daemon, seen)
            if usage is None:
                continue
            config = _config_candidate(daemon, usage, seen)
            if config is not None:
                found.append(config)
            launch = plan_launch(analysis, daemon, usage)
            runs = _runs(daemon, seen) if launch is not None else None
            if launch is not None and runs is not None:
                candidate = _daemon_candidate(launch, runs, analysis.package.version)
                if candidate is not None:
                    found.append(candidate)
        return tuple(found)
