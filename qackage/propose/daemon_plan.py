"""How to start a daemon for a test, and what its probe runs showed.

The launch comes from the package's own service definition when it starts this
program (systemd ExecStart, OpenRC command and arguments), else from the program's
help (a foreground flag, a config-file flag). The package's config files are copied
to a writable folder under /tmp and the command points at the copies. Probe output is
"qk-key: value" lines and "qk-section: name" blocks (see func-daemon-probe.sh.j2).
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from qackage.analyze.services import strip_chain_loaders
from qackage.model import Analysis, Daemon, ServiceManager
from qackage.propose.cli_usage import OptionSpec, Usage
from qackage.propose.observe import mentions_version, reads_as_complaint

_FOREGROUND = re.compile(
    r"foreground|no.?daemon|not (?:fork|detach|daemoni[sz]e|background)|don'?t (?:fork|detach|daemoni[sz]e)",
    re.IGNORECASE,
)
_CONFIG = re.compile(r"config|settings|\.conf\b", re.IGNORECASE)
_CONFIG_TEST = re.compile(
    r"(?:test|check|validate|verify)\w*\b.*\bconf|\bconf\w*\b.*\b(?:test|check)|syntax", re.IGNORECASE
)
_READY = re.compile(r"listen|ready|start|serving|accept|running|bound|waiting|initiali[sz]ed|up and", re.IGNORECASE)
_WORD_CHARACTER = re.compile(r"[\w./:-]")
# What test/daemon-check-output's default error_strings catch (grep patterns, as there).
DEFAULT_ERROR_PATTERNS = (
    r"ERROR", r"FAIL", r"FATAL", r"Traceback.*most.recent.call", r"Exception in thread",
    r"java.lang.NullPointerException", r"java.lang.RuntimeException", r"Gem::MissingSpecError",
    r"command not found",
)  # fmt: skip
MIN_READY_TEXT = 8


@dataclass(frozen=True, slots=True)
class Launch:
    name: str
    program: str  # absolute path
    arguments: tuple[str, ...]  # config paths already pointing at the copies
    state_dir: str  # writable, under /tmp
    copies: tuple[tuple[str, str], ...] = ()  # (package config, its copy)
    ports: tuple[int, ...] = ()
    source: str = ""  # where the command came from: "systemd unit", "help text" ...

    @property
    def command(self) -> str:
        return shlex.join((self.program, *self.arguments))

    @property
    def setup(self) -> str:
        lines = [f"mkdir -p {shlex.quote(self.state_dir)}"]
        lines += [f"cp {shlex.quote(source)} {shlex.quote(copy)}" for source, copy in self.copies]
        return "\n".join(lines) + "\n"


def _option_flag(option: OptionSpec) -> str:
    return option.short or option.long or ""


def foreground_flag(usage: Usage) -> str | None:
    for option in usage.options:
        if not option.argument and _FOREGROUND.search(option.summary):
            return _option_flag(option)
    return None


def config_flag(usage: Usage) -> str | None:
    for option in usage.options:
        named = _CONFIG.search(option.summary) or _CONFIG.search(option.argument or "")
        if option.argument and named and not _CONFIG_TEST.search(option.summary):
            return _option_flag(option)
    return None


def config_test_flag(usage: Usage) -> str | None:
    for option in usage.options:
        if not option.argument and _CONFIG_TEST.search(option.summary):
            return _option_flag(option)
    return None


def _service_arguments(analysis: Analysis, daemon: Daemon) -> tuple[tuple[str, ...], str] | None:
    """The arguments the package's own service starts ``daemon`` with; systemd first
    (its units run in the foreground by design)."""
    order = {ServiceManager.SYSTEMD: 0, ServiceManager.S6: 1, ServiceManager.RUNIT: 1, ServiceManager.OPENRC: 2}
    services = sorted(
        (s for s in analysis.facts.services if s.command and s.manager in order), key=lambda s: order[s.manager]
    )
    for service in services:
        try:
            words = shlex.split(service.command or "")
        except ValueError:
            continue
        command, _ = strip_chain_loaders(words)
        if not command or (command[0].lstrip("/") != daemon.path and posixpath.basename(command[0]) != daemon.name):
            continue
        arguments = tuple(command[1:])
        if any(re.search(r"[$%`]", a) for a in arguments):
            continue  # variables the service manager would fill in
        return arguments, f"{service.manager.value} service {service.name}"
    return None


def plan_launch(analysis: Analysis, daemon: Daemon, usage: Usage) -> Launch | None:
    """How to start ``daemon`` in the foreground with its config under /tmp; None when
    neither a service nor the help says how to keep it in the foreground."""
    state_dir = f"/tmp/{daemon.name}"
    copies = tuple((f"/{path}", f"{state_dir}/{posixpath.basename(path)}") for path in daemon.config_files)
    renamed = dict(copies)
    from_service = _service_arguments(analysis, daemon)
    if from_service is not None:
        arguments, source = from_service
        arguments = tuple(renamed.get(a, a) for a in arguments)
    else:
        foreground = foreground_flag(usage)
        if foreground is None:
            return None
        arguments = (foreground,)
        flag = config_flag(usage)
        if flag and copies:
            arguments += (flag, copies[0][1])
        source = "help text"
    return Launch(daemon.name, "/" + daemon.path, arguments, state_dir, copies, daemon.ports, source)


def config_test_arguments(daemon: Daemon, usage: Usage) -> tuple[str, str | None] | None:
    """(test flag, config flag) when the help offers a configuration check."""
    flag = config_test_flag(usage)
    if flag is None:
        return None
    return flag, config_flag(usage) if daemon.config_files else None


# --------------------------------------------------------------------------- probe output


@dataclass(frozen=True, slots=True)
class DaemonRun:
    alive: bool  # still running once it listened (or after the wait)
    port: int | None
    status: int | None  # exit status after SIGTERM, None when unknown
    killed: bool  # needed SIGKILL
    sections: dict[str, str] = field(default_factory=dict)

    def section(self, name: str) -> str:
        return self.sections.get(name, "")


def read_run(stdout: str) -> DaemonRun:
    values: dict[str, str] = {}
    sections: dict[str, str] = {}
    current: str | None = None
    for line in stdout.split("\n"):
        if line.startswith("qk-section: "):
            current = line.removeprefix("qk-section: ").strip()
            sections[current] = ""
        elif current not in (None, "end"):
            sections[current] += line + "\n"
        elif line.startswith("qk-") and ": " in line:
            key, _, value = line.partition(": ")
            values[key.removeprefix("qk-")] = value.strip()
    port = values.get("port", "")
    status = values.get("status", "")
    return DaemonRun(
        alive=values.get("alive") == "yes",
        port=int(port) if port.isdigit() else None,
        status=int(status) if status.isdigit() and status != "127" else None,
        killed=values.get("stopped") == "killed",
        sections={k: v.rstrip("\n") for k, v in sections.items()},
    )


def _common_suffix(first: str, second: str) -> str:
    size = 0
    while size < min(len(first), len(second)) and first[-1 - size] == second[-1 - size]:
        size += 1
    suffix = first[len(first) - size :] if size else ""
    start = len(first) - size
    if suffix and start > 0 and _WORD_CHARACTER.match(first[start - 1]):
        # The two lines differ inside a word (a time, a pid): drop that word's tail.
        cut = re.search(r"\s", suffix)
        suffix = suffix[cut.start() :] if cut else ""
    return suffix.strip()


def ready_text(first: DaemonRun, second: DaemonRun, version: str) -> str | None:
    """A line (or its stable tail) both runs logged before the daemon was ready, best one
    naming readiness; never one showing the version."""
    pairs = zip(first.section("ready-log").split("\n"), second.section("ready-log").split("\n"), strict=False)
    stable = [_common_suffix(a, b) for a, b in pairs]
    usable = [
        s for s in stable if len(s) >= MIN_READY_TEXT and re.search("[A-Za-z]", s) and not mentions_version(s, version)
    ]
    ready = [s for s in usable if _READY.search(s) and not reads_as_complaint(s)]
    if ready:
        return ready[-1]
    quiet = [s for s in usable if not reads_as_complaint(s)]
    return quiet[-1] if quiet else None


def logs_default_errors(runs: Sequence[DaemonRun]) -> bool:
    """Whether test/daemon-check-output's default error patterns match what it logged."""
    logs = "\n".join(run.section("log") for run in runs)
    return any(re.search(pattern, logs) for pattern in DEFAULT_ERROR_PATTERNS)


def grep_basic_escape(text: str) -> str:
    """``text`` as a grep basic regular expression matching it literally."""
    return re.sub(r"([\\.\[\]*^$])", r"\\\1", text)


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class Request:
    kind: str  # line | http-ok | http-status | greeting
    payload: str  # what is sent (printf format for line/http-status)
    expected: str  # the reply line (line, greeting) or the status code (http-status)
    label: str  # for the step name: "PING", "an HTTP GET"


PING = "PING\\r\\n"  # printf format
HTTP_GET = "GET / HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n"


def _reply_line(text: str) -> str | None:
    lines = [line.rstrip("\r") for line in text.split("\n") if line.strip()]
    return lines[0].strip() if len(lines) == 1 and len(lines[0].strip()) <= 80 else None


def choose_request(first: DaemonRun, second: DaemonRun, version: str) -> Request | None:
    """The most telling request both runs answered alike: a line protocol's PING reply,
    an HTTP response, what the daemon says to a silent client, in that order."""
    if first.port is None or first.port != second.port:
        return None
    options: list[tuple[int, Request]] = []
    ping = _reply_line(first.section("ping"))
    same = ping is not None and ping == _reply_line(second.section("ping"))
    if ping and same and not ping.startswith("HTTP/") and not mentions_version(ping, version) and ping.isprintable():
        options.append((0 if not reads_as_complaint(ping) else 3, Request("line", PING, ping, "PING")))
    http = first.section("http")
    status = re.match(r"HTTP/1\.[01] (\d{3})", http)
    other = re.match(r"HTTP/1\.[01] (\d{3})", second.section("http"))
    if status and other and status.group(1) == other.group(1):
        code = status.group(1)
        kind = "http-ok" if code == "200" else "http-status"
        options.append((1, Request(kind, HTTP_GET, code, "an HTTP GET")))
    greeting = first.section("greeting").split("\n")[0].rstrip("\r").strip()
    again = second.section("greeting").split("\n")[0].rstrip("\r").strip()
    stable = greeting and greeting == again and len(greeting) <= 80 and greeting.isprintable()
    if stable and not mentions_version(greeting, version):
        rank = 2 if not reads_as_complaint(greeting) else 4
        options.append((rank, Request("greeting", "", greeting, "a silent client")))
    return min(options, key=lambda o: o[0])[1] if options else None
