"""Service definitions, and the facet that reports services, daemons and configuration files.

Service definitions are read where each init system looks for them: systemd units
(``usr/lib/systemd/system/*.service`` ...), OpenRC and sysvinit scripts
(``etc/init.d/*``), s6 (``etc/s6*/**/run``, ``*/services/<name>/run``) and runit
(``etc/sv/<name>/run``) run scripts. From each we take the command it starts and
the user it runs as.

`ServicesFacet` reports these definitions, the package's configuration files and the
ports they name (`qackage.analyze.configs`), and its daemons: the programs services
keep running or that look like servers (`qackage.analyze.daemons`).
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from qackage.analyze.base import PackageView
from qackage.analyze.configs import CONFIG_CAP, find_config_files, may_be_config, package_owner_names
from qackage.analyze.daemons import ServiceProgram, find_daemons
from qackage.analyze.shebang import parse_shebang
from qackage.model import Entry, Facts, ServiceDefinition, ServiceManager

UNIT_CAP = 64 * 1024
INIT_SCRIPT_CAP = 128 * 1024
RUN_SCRIPT_CAP = 16 * 1024
# Longer lines are data, not shell we could reason about.
MAX_SHELL_LINE = 8 * 1024

SYSTEMD_DIRS = frozenset(
    {
        "usr/lib/systemd/system",
        "lib/systemd/system",
        "etc/systemd/system",
        "usr/lib/systemd/user",
        "etc/systemd/user",
    }
)
INIT_DIRS = frozenset({"etc/init.d", "etc/rc.d/init.d"})
OPENRC_INTERPRETERS = frozenset({"openrc-run", "runscript"})

_SHELL_REFERENCE = re.compile(r"\$\{([A-Za-z_]\w*)(?:(:?[-=+])([^}]*))?\}|\$([A-Za-z_]\w*)")
_ASSIGNMENT = re.compile(r"^(?:export[ \t]+|readonly[ \t]+)?([A-Za-z_]\w*)=(.*)$")
_DEFAULT_ASSIGNMENT = re.compile(r"^:[ \t]+\"?\$\{([A-Za-z_]\w*):?=([^}]*)\}\"?[ \t]*$")
_EXEC_LINE = re.compile(r"^[ \t]*exec[ \t]+(.*)$")
_REDIRECTION = re.compile(r"^\d*(?:[<>]|&>)")


# --------------------------------------------------------------------------- shell


def _shell_words(text: str) -> list[str]:
    text = text[:MAX_SHELL_LINE]
    try:
        return shlex.split(text, comments=True)
    except ValueError:  # unbalanced quotes: split on spaces, as a last resort
        return text.split()


def expand_shell(value: str, variables: Mapping[str, str]) -> str:
    """``${name}``, ``$name``, ``${name:-default}``, ``${name:+alt}`` with known variables;
    unknown ones expand to nothing, as in the shell."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(4)
        value = variables.get(name, "")
        operator, word = match.group(2), match.group(3) or ""
        if operator is None:
            return value
        if operator.endswith("+"):
            return word if value else ""
        return value or _SHELL_REFERENCE.sub(lambda m: variables.get(m.group(1) or m.group(4), ""), word)

    return _SHELL_REFERENCE.sub(substitute, value)


def _logical_lines(text: str) -> Iterator[str]:
    yield from text.replace("\\\r\n", " ").replace("\\\n", " ").splitlines()


def shell_variables(text: str, preset: Mapping[str, str]) -> dict[str, str]:
    """Variables a script assigns. Top-level assignments win over indented ones (those
    sit in functions that may never run); ``: ${x:=default}`` sets defaults."""
    variables = dict(preset)
    indented: dict[str, str] = {}
    for line in _logical_lines(text):
        stripped = line.strip()
        if len(stripped) > MAX_SHELL_LINE:
            continue
        default = _DEFAULT_ASSIGNMENT.match(stripped)
        if default is not None:
            variables.setdefault(default.group(1), expand_shell(default.group(2), variables))
            continue
        match = _ASSIGNMENT.match(stripped)
        if match is None:
            continue
        words = _shell_words(match.group(2))
        value = expand_shell(" ".join(words), variables)
        if line[:1] in (" ", "\t"):
            indented.setdefault(match.group(1), value)
        else:
            variables[match.group(1)] = value
    for name, value in indented.items():
        variables.setdefault(name, value)
    return variables


# --------------------------------------------------------------------------- chain loaders


@dataclass(frozen=True, slots=True)
class ChainLoader:
    """A program that sets something up and then execs the rest of its arguments."""

    value_options: frozenset[str] = frozenset()  # short options that take a value
    positionals: int = 0  # words it consumes before the program
    user_option: str | None = None  # option naming the user to run as
    user_positional: bool = False  # the first positional is the user


CHAIN_LOADERS: Mapping[str, ChainLoader] = {
    "chpst": ChainLoader(frozenset("uUbe/CnlLmdofcrt"), user_option="u"),
    "s6-setuidgid": ChainLoader(positionals=1, user_positional=True),
    "s6-envuidgid": ChainLoader(frozenset("D"), positionals=1, user_positional=True),
    "s6-applyuidgid": ChainLoader(frozenset("ugG"), user_option="u"),
    "su-exec": ChainLoader(positionals=1, user_positional=True),
    "gosu": ChainLoader(positionals=1, user_positional=True),
    "setpriv": ChainLoader(),
    "with-contenv": ChainLoader(),
    "s6-notifyoncheck": ChainLoader(frozenset("3sTtwnc")),
    "fdmove": ChainLoader(positionals=2),
    "redirfd": ChainLoader(positionals=2),
    "export": ChainLoader(positionals=2),
    "importas": ChainLoader(frozenset("D"), positionals=2),
    "nice": ChainLoader(frozenset("n")),
    "ionice": ChainLoader(frozenset("cnp")),
    "env": ChainLoader(frozenset("uC")),
    "exec": ChainLoader(frozenset("a")),
    "emptyenv": ChainLoader(),
    "s6-setsid": ChainLoader(),
    "tini": ChainLoader(),
    "dumb-init": ChainLoader(),
}
# execline programs that take `{ ... }` blocks and then continue the chain.
_EXECLINE_BLOCK_PROGRAMS = frozenset(
    {"foreground", "background", "if", "ifelse", "ifte", "ifthenelse", "backtick", "pipeline", "multisubstitute"}
)


def strip_chain_loaders(words: Sequence[str]) -> tuple[tuple[str, ...], str | None]:
    """``chpst -u redis redis-server /etc/redis.conf`` -> (``redis-server ...``, ``redis``)."""
    rest = list(words)
    user: str | None = None
    while rest:
        loader = CHAIN_LOADERS.get(posixpath.basename(rest[0]))
        if loader is None:
            break
        index = 1
        while index < len(rest) and rest[index].startswith("-") and len(rest[index]) > 1:
            option = rest[index]
            if option == "--":
                index += 1
                break
            if option.startswith("--"):
                index += 1
                continue
            letter = option[1]
            takes_value = len(option) == 2 and letter in loader.value_options
            if takes_value and index + 1 < len(rest):
                if letter == loader.user_option:
                    user = rest[index + 1]
                index += 2
            else:
                index += 1
        if posixpath.basename(rest[0]) == "env":
            while index < len(rest) and "=" in rest[index] and not rest[index].startswith("/"):
                index += 1  # env VAR=value ...
        if loader.user_positional and index < len(rest):
            user = rest[index]
        rest = rest[index + loader.positionals :]
    if user is not None:
        user = user.split(":", 1)[0] or None
    return tuple(rest), user


def _drop_execline_blocks(words: Sequence[str]) -> list[str]:
    kept: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word in _EXECLINE_BLOCK_PROGRAMS:
            index += 1
            while index < len(words) and words[index] != "{":
                index += 1  # options and positionals before the first block
            while index < len(words) and words[index] == "{":
                depth = 0
                while index < len(words):
                    depth += {"{": 1, "}": -1}.get(words[index], 0)
                    index += 1
                    if depth == 0:
                        break
            continue
        kept.append(word)
        index += 1
    return kept


# --------------------------------------------------------------------------- service definitions


@dataclass(frozen=True, slots=True)
class Launch:
    command: str | None
    user: str | None
    # False for services that run a command once (systemd Type=oneshot, an init script
    # that calls sysctl): those define a service, not a daemon.
    long_running: bool = True


def parse_systemd_unit(text: str) -> Launch:
    """The first ``ExecStart=`` and ``User=`` of the ``[Service]`` section."""
    section = ""
    command: str | None = None
    user: str | None = None
    oneshot = False
    for line in _logical_lines(text):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1].strip()
            continue
        if section != "Service" or "=" not in stripped:
            continue
        key, value = (part.strip() for part in stripped.split("=", 1))
        if key == "ExecStart":
            command = _exec_start_command(value) if value else None  # empty resets the list
        elif key == "User" and value:
            user = value
        elif key == "Type":
            oneshot = value == "oneshot"
    return Launch(command, user, long_running=not oneshot)


def _exec_start_command(value: str) -> str | None:
    """Strip systemd's ``-@:+!`` prefixes; with ``@`` the second word is argv[0], not an argument."""
    prefixes = value[: len(value) - len(value.lstrip("-@:+!"))]
    rest = " ".join(value[len(prefixes) :].split())  # continuation lines leave runs of blanks
    if "@" in prefixes:
        words = rest.split(None, 2)
        rest = " ".join(words[:1] + words[2:])
    return rest or None


def _service_preset(name: str) -> dict[str, str]:
    return {"RC_SVCNAME": name, "SVCNAME": name}


def _join_command(program: str, arguments: str) -> str | None:
    command = " ".join(part for part in (program.strip(), arguments.strip()) if part)
    return command or None


def parse_openrc_script(text: str, name: str) -> Launch:
    variables = shell_variables(text, _service_preset(name))
    program = variables.get("command", "")
    if not program:
        return _start_stop_daemon(text, variables)
    user = variables.get("command_user", "").split(":", 1)[0] or None
    return Launch(_join_command(program, variables.get("command_args", "")), user)


_DAEMON_VARIABLES = ("DAEMON", "daemon", "DAEMON_BIN", "EXEC", "exec", "BINARY", "PROG_PATH")
_DAEMON_ARGUMENT_VARIABLES = ("DAEMON_ARGS", "DAEMON_OPTS")
_USER_VARIABLES = ("DAEMONUSER", "DAEMON_USER", "RUNAS", "RUN_AS_USER", "USER")
# How sysvinit scripts put a program in the background (Debian, LSB, Red Hat, SUSE).
_DAEMON_LAUNCHER = re.compile(r"^[ \t]*(?:start_daemon|daemon|startproc|daemonize)[ \t]", re.MULTILINE)


def parse_sysvinit_script(text: str, name: str) -> Launch:
    variables = shell_variables(text, _service_preset(name))
    started = _start_stop_daemon(text, variables)
    detaches = started.command is not None or _DAEMON_LAUNCHER.search(text) is not None
    program = next((variables[v] for v in _DAEMON_VARIABLES if variables.get(v, "").startswith("/")), "")
    if not program:
        return dataclasses.replace(started, long_running=detaches)
    arguments = next((variables[v] for v in _DAEMON_ARGUMENT_VARIABLES if variables.get(v)), "")
    user = next((variables[v] for v in _USER_VARIABLES if variables.get(v)), None) or started.user
    user = user.split(":", 1)[0] if user else None
    return Launch(_join_command(program, arguments), user, long_running=detaches)


def _start_stop_daemon(text: str, variables: Mapping[str, str]) -> Launch:
    """``start-stop-daemon --start --chuid u --exec /usr/sbin/food`` or Red Hat's
    ``daemon --user u /usr/sbin/food``."""
    for line in _logical_lines(text):
        if "start-stop-daemon" not in line and not line.lstrip().startswith("daemon"):
            continue  # most lines; splitting each one like a shell would is slow
        words = _shell_words(expand_shell(line, variables))
        if not words:
            continue
        tool = posixpath.basename(words[0])
        if tool == "start-stop-daemon" and any(w in ("--start", "-S") for w in words):
            program = _option_value(words, ("--exec", "-x", "--startas", "-a"))
            user = _option_value(words, ("--chuid", "-c", "--user", "-u"))
            if program:
                return Launch(program, user.split(":", 1)[0] if user else None)
        if tool == "daemon" and len(words) > 1:
            user = _option_value(words, ("--user",))
            rest = [w for w in words[1:] if w.startswith("/")]
            if rest:
                return Launch(rest[0], user)
    return Launch(None, None, long_running=False)


def _option_value(words: Sequence[str], options: Sequence[str]) -> str | None:
    for index, word in enumerate(words):
        for option in options:
            if word == option and index + 1 < len(words):
                return words[index + 1]
            if option.startswith("--") and word.startswith(option + "="):
                return word[len(option) + 1 :]
    return None


def parse_run_script(text: str) -> Launch:
    """The program an s6/runit ``run`` script execs, after its chain loaders."""
    shebang = parse_shebang(text.encode("utf-8", errors="replace")[:1024])
    body = text.split("\n", 1)[1] if shebang is not None and "\n" in text else text
    if shebang is not None and shebang.program == "execlineb":
        words = _drop_execline_blocks([w for line in _logical_lines(body) for w in _shell_words(line)])
    else:
        variables = shell_variables(body, {})
        words = []
        for line in _logical_lines(body):
            match = _EXEC_LINE.match(line)
            if match is None:
                continue
            candidate = [w for w in _shell_words(expand_shell(match.group(1), variables)) if not _REDIRECTION.match(w)]
            if candidate:
                words = candidate  # the last exec is the one that stays running
    command, user = strip_chain_loaders(words)
    return Launch(shlex.join(command) if command else None, user)


def _init_manager(text: str) -> ServiceManager | None:
    shebang = parse_shebang(text[:1024].encode("utf-8", errors="replace"))
    if shebang is not None and shebang.program in OPENRC_INTERPRETERS:
        return ServiceManager.OPENRC
    if (shebang is not None and shebang.shell is not None) or "### BEGIN INIT INFO" in text:
        return ServiceManager.SYSVINIT
    return None


def run_script_service(path: str) -> tuple[ServiceManager, str] | None:
    """(manager, service name) when ``path`` is an s6 or runit ``run`` script."""
    parts = path.split("/")
    if parts[-1] != "run" or len(parts) < 4 or parts[-2] == "log":
        return None  # `<service>/log/run` is the service's logger
    name = parts[-2]
    if parts[0] == "etc" and (parts[1] in ("sv", "service") and len(parts) == 4):
        return ServiceManager.RUNIT, name
    if parts[:3] == ["etc", "runit", "sv"] and len(parts) == 5:
        return ServiceManager.RUNIT, name
    if parts[0] == "etc" and parts[1].startswith("s6"):
        return ServiceManager.S6, name
    if parts[-3] in ("services", "services.d"):
        return ServiceManager.S6, name
    return None


def _service_kind(entry: Entry) -> str | None:
    """Which definition format a path would be, by location alone."""
    directory = posixpath.dirname(entry.path)
    if directory in SYSTEMD_DIRS and entry.path.endswith(".service"):
        return "unit"
    if directory in INIT_DIRS:
        return "init"
    if run_script_service(entry.path) is not None:
        return "run"
    return None


@dataclass(frozen=True, slots=True)
class FoundService:
    definition: ServiceDefinition
    long_running: bool


def find_services(view: PackageView) -> tuple[FoundService, ...]:
    found: list[FoundService] = []
    for entry in view.files():
        kind = _service_kind(entry)
        data = view.captured(entry.path) if kind is not None else None
        if kind is None or data is None:
            continue
        text = data.decode("utf-8", errors="replace")
        if kind == "unit":
            name = entry.name.removesuffix(".service")
            launch = parse_systemd_unit(text)
            definition = ServiceDefinition(entry.path, ServiceManager.SYSTEMD, name, launch.command, launch.user)
        elif kind == "init":
            manager = _init_manager(text)
            if manager is None:
                continue
            parse = parse_openrc_script if manager is ServiceManager.OPENRC else parse_sysvinit_script
            launch = parse(text, entry.name)
            definition = ServiceDefinition(entry.path, manager, entry.name, launch.command, launch.user)
        else:
            run_manager, name = run_script_service(entry.path) or (ServiceManager.S6, entry.name)
            launch = parse_run_script(text)
            definition = ServiceDefinition(entry.path, run_manager, name, launch.command, launch.user)
        found.append(FoundService(definition, launch.long_running))
    return tuple(sorted(found, key=lambda s: s.definition.path))


def command_program(command: str) -> str | None:
    """The program a service command starts, past its chain loaders: ``chpst -u redis
    /usr/bin/redis-server /etc/redis.conf`` -> ``/usr/bin/redis-server``."""
    words, _ = strip_chain_loaders(_shell_words(command))
    return words[0] if words else None


def started_programs(services: Sequence[FoundService]) -> tuple[ServiceProgram, ...]:
    """What each service that keeps running starts. One that runs a command once at
    boot is a service, but what it runs is no daemon."""
    started: list[ServiceProgram] = []
    for found in services:
        command = found.definition.command
        program = command_program(command) if found.long_running and command else None
        if program:
            started.append(ServiceProgram(found.definition, program))
    return tuple(started)


class ServicesFacet:
    name: ClassVar[str] = "services"

    def capture(self, entry: Entry, head: bytes) -> int:
        kind = _service_kind(entry)
        if kind == "unit":
            return min(entry.size, UNIT_CAP)
        if kind == "init":
            return min(entry.size, INIT_SCRIPT_CAP)
        if kind == "run":
            return min(entry.size, RUN_SCRIPT_CAP)
        if may_be_config(entry) and b"\0" not in head:
            return min(entry.size, CONFIG_CAP)
        return 0

    def analyze(self, view: PackageView, earlier: Facts) -> Facts:
        services = find_services(view)
        owners = package_owner_names(view.info, earlier.executables)
        configs = find_config_files(view, owners)
        daemons = find_daemons(view, earlier.executables, started_programs(services), configs)
        definitions = tuple(found.definition for found in services)
        return Facts(services=definitions, daemons=daemons, config_files=configs)
