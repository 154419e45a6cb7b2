"""Services, daemons and default configuration files.

Service definitions are read where each init system looks for them: systemd units
(``usr/lib/systemd/system/*.service`` ...), OpenRC and sysvinit scripts
(``etc/init.d/*``), s6 (``etc/s6*/**/run``, ``*/services/<name>/run``) and runit
(``etc/sv/<name>/run``) run scripts. From each we take the command it starts and
the user it runs as.

A daemon is a program of this package that is meant to run as a service. Being in
``usr/sbin`` is not enough on its own, since sbin also holds admin tools (``useradd``,
``visudo``), and Wolfi has merged sbin into bin anyway. A daemon is a program a
service runs, or one whose name says so (``*-server``, ``*-daemon``, or ``*d`` in
sbin), or one whose own configuration file sets a port. Every fact that applies,
``in usr/sbin`` included, is recorded as a reason. A configuration file belongs to the
program a service runs with it, else to the programs it is named after (``etc/foo/``,
``etc/foo.conf`` <-> ``food``), else to a server named after its first word
(``etc/redis.conf`` <-> ``redis-server``); between equals the server-looking ones win.

Configuration files are files under ``etc/`` with a configuration extension, or
extension-less files in a directory of ``etc/`` named after the package or one of its
programs, plus ``etc/conf.d/*``, ``etc/default/*`` and ``etc/sysconfig/*`` (what
OpenRC, Debian and Red Hat service scripts read). Ports come only from lines whose
syntax says "listen here": ``port = 6379``, ``Port 22``, ``listen 80;``,
``listen: 0.0.0.0:8080``, ``bind *:8080``, ``http_port 3128``, ``"port": 9090``.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from qackage.analyze.base import PackageView
from qackage.analyze.shebang import parse_shebang
from qackage.model import (
    ConfigFile,
    Daemon,
    Entry,
    EntryKind,
    Executable,
    Facts,
    PackageInfo,
    ServiceDefinition,
    ServiceManager,
)

UNIT_CAP = 64 * 1024
INIT_SCRIPT_CAP = 128 * 1024
RUN_SCRIPT_CAP = 16 * 1024
# redis.conf is ~100 KiB with `port` near the top; nothing real needs more.
CONFIG_CAP = 256 * 1024
# Longer lines are data, not shell we could reason about.
MAX_SHELL_LINE = 8 * 1024
MAX_PORT = 65535

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
SBIN_DIRS = frozenset({"usr/sbin", "sbin", "usr/local/sbin"})
CONFIG_EXTENSIONS = frozenset({".conf", ".cfg", ".cnf", ".ini", ".toml", ".yaml", ".yml", ".json"})
# Directories whose extension-less files configure service scripts.
SERVICE_CONFIG_DIRS = frozenset({"conf.d", "default", "sysconfig"})
# Trees under etc/ that hold service definitions or completions, not configuration.
_NOT_CONFIG_PREFIXES = (
    "etc/init.d/",
    "etc/rc.d/",
    "etc/systemd/",
    "etc/sv/",
    "etc/runit/",
    "etc/service/",
    "etc/services.d/",
    "etc/s6",
    "etc/bash_completion.d/",
)

# Name endings that look like "daemon" but are ordinary commands: useradd, usermod,
# chpasswd, unix_chkpwd, build, gold, lvextend, head, download, find, expand, ldd, blkdiscard.
_NOT_DAEMON_ENDINGS = (
    "add", "mod", "passwd", "pwd", "ild", "ld", "end", "ead", "oad", "ind", "and", "cmd", "dd", "card"
)  # fmt: skip
_NOT_DAEMON_NAMES = frozenset({"blkid", "setsid", "uuid", "sed", "xxd", "vipw", "nologin"})
_SERVER_SUFFIXES = ("-server", "-daemon", "server", "daemon")
# Editors talk to these over stdin: servers by name, not services.
_STDIO_SERVER_SUFFIXES = ("language-server", "lsp-server")

_SHELL_REFERENCE = re.compile(r"\$\{([A-Za-z_]\w*)(?:(:?[-=+])([^}]*))?\}|\$([A-Za-z_]\w*)")
_ASSIGNMENT = re.compile(r"^(?:export[ \t]+|readonly[ \t]+)?([A-Za-z_]\w*)=(.*)$")
_DEFAULT_ASSIGNMENT = re.compile(r"^:[ \t]+\"?\$\{([A-Za-z_]\w*):?=([^}]*)\}\"?[ \t]*$")
_EXEC_LINE = re.compile(r"^[ \t]*exec[ \t]+(.*)$")
_REDIRECTION = re.compile(r"^\d*(?:[<>]|&>)")
_VERSION_TAIL = re.compile(r"-?\d+(?:\.\d+)*$")

_PORT_KEYS = (
    r"(?:(?:listen|http|https|server|bind|tcp|udp|ssl|tls|grpc|metrics|admin|web|api|service|public|rpc"
    r"|dns|proxy)[_-]?)?port"
)
_LISTEN_KEYS = r"(?:[a-z0-9]+[_.-])*(?:listen|bind)(?:[_.-]?(?:address|addr|on))?"
_HOST = r"(?:\[[0-9a-f:.]*\]|[a-z0-9_.-]*|\*)"
_PORT_VALUE = r"(?P<port>\d{1,5})(?![\w.:-])"
_KEY_GAP = r"[\"']?(?:[ \t]*[:=][ \t]*|[ \t]+)[\"']?"
# `port = 6379`, `Port 22`, `"port": 9090,`, `server.port: 8080`, `http_port 3128`
_PORT_LINE = re.compile(
    rf"^[ \t]*[\"']?(?:[a-z0-9_-]+\.)*{_PORT_KEYS}{_KEY_GAP}(?:{_HOST}:)?{_PORT_VALUE}",
    re.IGNORECASE | re.MULTILINE,
)
# `listen 80;`, `Listen 0.0.0.0:80`, `listen: ":8080"`, `listen = [::]:9000`
_LISTEN_LINE = re.compile(
    rf"^[ \t]*[\"']?(?!bind[ \t]){_LISTEN_KEYS}{_KEY_GAP}(?:{_HOST}:)?{_PORT_VALUE}",
    re.IGNORECASE | re.MULTILINE,
)
# `bind *:8080`, `bind 0.0.0.0:443 ssl`: a bare `bind 127.0.0.1` names no port.
_BIND_LINE = re.compile(rf"^[ \t]*bind[ \t]+{_HOST}:{_PORT_VALUE}", re.IGNORECASE | re.MULTILINE)
# Minified JSON: `{"server":{"port":9090}}`
_JSON_PORT = re.compile(rf"\"{_PORT_KEYS}\"\s*:\s*\"?{_PORT_VALUE}", re.IGNORECASE)


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


def _is_regular(entry: Entry) -> bool:
    return entry.kind in (EntryKind.FILE, EntryKind.HARDLINK)


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
    for entry in view.entries:
        kind = _service_kind(entry) if _is_regular(entry) else None
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


# --------------------------------------------------------------------------- configuration


def _extension(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:] if dot > 0 else ""


def _is_config_location(path: str) -> bool:
    return path.startswith("etc/") and not path.startswith(_NOT_CONFIG_PREFIXES)


def _normalized_owner(name: str) -> str:
    """``dbus-1`` -> ``dbus``, ``nginx.d`` -> ``nginx``, ``redis.conf`` -> ``redis``."""
    base = name.lower().removesuffix(".d")
    extension = _extension(base)
    if extension in CONFIG_EXTENSIONS:
        base = base[: -len(extension)]
    return _VERSION_TAIL.sub("", base) or base


def package_owner_names(info: PackageInfo, executables: Iterable[Executable]) -> frozenset[str]:
    """Names a directory under etc/ may carry to belong to this package."""
    names = {info.name.lower(), info.origin.lower()}
    for executable in executables:
        names.add(executable.name.lower())
        names.update(_daemon_stems(executable.name))
    return frozenset(n for n in names if n)


def _names_owner(directory: str, owners: frozenset[str]) -> bool:
    wanted = _normalized_owner(directory)
    if wanted in owners:
        return True
    # etc/ssh belongs to openssh-server, etc/postgresql to postgresql-15.
    return len(wanted) >= 3 and any(wanted in owner for owner in owners)


def is_config_file(path: str, owners: frozenset[str]) -> bool:
    if not _is_config_location(path):
        return False
    parts = path.split("/")
    extension = _extension(parts[-1])
    if extension in CONFIG_EXTENSIONS:
        return True
    if extension or len(parts) < 3:
        return False
    if parts[1] in SERVICE_CONFIG_DIRS:
        return len(parts) == 3
    return _names_owner(parts[1], owners)


def _may_be_config(entry: Entry) -> bool:
    """By location alone (capture does not know the package name yet)."""
    if not _is_config_location(entry.path):
        return False
    parts = entry.path.split("/")
    return _extension(parts[-1]) in CONFIG_EXTENSIONS or (not _extension(parts[-1]) and len(parts) >= 3)


def _valid_port(text: str) -> int | None:
    port = int(text)
    return port if 1 <= port <= MAX_PORT else None


def config_ports(path: str, text: str) -> tuple[int, ...]:
    """Ports a configuration file says to listen on, sorted and unique."""
    ports: set[int] = set()
    patterns = [_PORT_LINE, _LISTEN_LINE, _BIND_LINE]
    if path.endswith(".json"):
        patterns.append(_JSON_PORT)
    for pattern in patterns:
        for match in pattern.finditer(text):
            port = _valid_port(match.group("port"))
            if port is not None:
                ports.add(port)
    return tuple(sorted(ports))


def find_config_files(view: PackageView, owners: frozenset[str]) -> tuple[ConfigFile, ...]:
    found: list[ConfigFile] = []
    for entry in view.entries:
        if not _is_regular(entry) or not is_config_file(entry.path, owners):
            continue
        data = view.captured(entry.path)
        text = "" if data is None or b"\0" in data[:4096] else data.decode("utf-8", errors="replace")
        found.append(ConfigFile(entry.path, config_ports(entry.path, text)))
    return tuple(sorted(found, key=lambda c: c.path))


# --------------------------------------------------------------------------- daemons


def _daemon_stems(name: str) -> set[str]:
    """``food`` -> {food, foo}: the names its configuration may carry."""
    lowered = name.lower()
    stems = {lowered}
    if lowered.endswith("d") and len(lowered) > 3:
        stems.add(lowered[:-1])
    return stems


def has_daemon_name(name: str) -> bool:
    """``sshd``, ``crond``, ``rpc.statd``; not ``useradd``, ``blkid``, ``head``."""
    lowered = name.lower()
    return (
        len(lowered) >= 3
        and lowered.endswith("d")
        and not lowered.endswith(_NOT_DAEMON_ENDINGS)
        and lowered not in _NOT_DAEMON_NAMES
    )


def server_suffix(name: str) -> str | None:
    """``redis-server`` -> ``-server``; None for plain names and editor language servers."""
    lowered = name.lower()
    if lowered.endswith(_STDIO_SERVER_SUFFIXES):
        return None
    return next((s for s in _SERVER_SUFFIXES if lowered.endswith(s) and lowered != s), None)


def _program_of(command: str) -> str | None:
    words, _ = strip_chain_loaders(_shell_words(command))
    return words[0] if words else None


def _usr_merge_variants(path: str) -> tuple[str, ...]:
    """Where a unit's ``/usr/sbin/foo`` may live after usr and sbin merges."""
    name = posixpath.basename(path)
    directory = posixpath.dirname(path)
    if directory in ("usr/sbin", "usr/bin", "sbin", "bin"):
        return (path, *(f"{d}/{name}" for d in ("usr/bin", "usr/sbin", "bin", "sbin") if d != directory))
    return (path,)


def _package_program(view: PackageView, program: str, executables: Sequence[Executable]) -> str | None:
    """The package path a service's program names, if this package ships it."""
    if "/" not in program:
        on_path = [e.path for e in executables if e.name == program and e.on_path]
        return sorted(on_path)[0] if on_path else None
    for candidate in _usr_merge_variants(posixpath.normpath(program).lstrip("/")):
        entry = view.by_path.get(candidate)
        if entry is not None and entry.kind is not EntryKind.DIR:
            return candidate
    return None


@dataclass(slots=True)
class _Candidate:
    path: str
    name: str
    services: list[ServiceDefinition]
    sbin_dir: str | None  # the sbin directory it is reachable from, if any

    @property
    def in_sbin(self) -> bool:
        return self.sbin_dir is not None

    @property
    def looks_like_server(self) -> bool:
        """Anything beyond a plain command: a service, a server name, a home in sbin."""
        return bool(self.services) or self.in_sbin or has_daemon_name(self.name) or bool(server_suffix(self.name))


def _config_subjects(path: str) -> set[str]:
    """Names a configuration file is about: its etc/ directory (or its own name for
    etc/foo.conf and etc/conf.d/foo) and its own stem."""
    parts = path.split("/")
    own = _normalized_owner(parts[-1])
    if len(parts) == 2 or (len(parts) == 3 and parts[1] in SERVICE_CONFIG_DIRS):
        return {own}
    return {_normalized_owner(parts[1]), own}


def _link_level(candidate: _Candidate, config: ConfigFile) -> int:
    """3: a service running it names the file; 2: the file is named after it;
    1: named after the first part of a server-ish name (redis <-> redis-server)."""
    if any(config.path in (s.command or "") for s in candidate.services):
        return 3
    subjects = _config_subjects(config.path)
    stems = _daemon_stems(candidate.name) | {s.name.lower().rstrip("@") for s in candidate.services}
    if subjects & stems:
        return 2
    name = candidate.name.lower()
    prefix = name.split("-", 1)[0]
    if "-" in name and len(prefix) >= 3 and prefix in subjects and candidate.looks_like_server:
        return 1
    return 0


def _link_configs(candidates: Sequence[_Candidate], configs: Sequence[ConfigFile]) -> dict[str, list[ConfigFile]]:
    """Each configuration file goes to the candidates that match it best; between equals
    (mysql and mysqld both match etc/mysql/) the server-looking ones win."""
    linked: dict[str, list[ConfigFile]] = {c.path: [] for c in candidates}
    for config in configs:
        levels = {c.path: _link_level(c, config) for c in candidates}
        best = max(levels.values(), default=0)
        if best == 0:
            continue
        winners = [c for c in candidates if levels[c.path] == best]
        servers = [c for c in winners if c.looks_like_server]
        for candidate in servers or winners:
            linked[candidate.path].append(config)
    return linked


def _daemon_reasons(candidate: _Candidate, configs: Sequence[ConfigFile]) -> list[str] | None:
    """Why ``candidate`` is a daemon, or None when the evidence is too weak."""
    service_reasons = sorted({f"runs as {s.manager.value} service {s.name}" for s in candidate.services})
    suffix = server_suffix(candidate.name)
    daemon_name = has_daemon_name(candidate.name)
    ports = sorted({port for config in configs for port in config.ports})
    port_reasons = [f"configured ports {', '.join(map(str, ports))}"] if ports else []
    # A configuration of its own that sets a port: nginx in usr/bin (Wolfi merged sbin).
    strong = bool(service_reasons) or suffix is not None or (daemon_name and candidate.in_sbin) or bool(port_reasons)
    if not strong:
        return None
    reasons = list(service_reasons)
    if candidate.in_sbin:
        reasons.append(f"in {candidate.sbin_dir}")
    if daemon_name:
        reasons.append("name ends in d")
    if suffix is not None:
        reasons.append(f"name ends in {suffix}")
    return reasons + port_reasons


def find_daemons(
    view: PackageView,
    executables: Sequence[Executable],
    services: Sequence[FoundService],
    configs: Sequence[ConfigFile],
) -> tuple[Daemon, ...]:
    candidates: dict[str, _Candidate] = {}

    def candidate_for(path: str) -> _Candidate:
        real = view.resolve(path) or path
        if real not in candidates:
            candidates[real] = _Candidate(real, posixpath.basename(real), [], sbin_dir=None)
        found = candidates[real]
        directory = posixpath.dirname(path)
        if found.sbin_dir is None and directory in SBIN_DIRS:
            found.sbin_dir = directory
        return found

    for executable in executables:
        candidate_for(executable.path)
    for found in services:
        service = found.definition
        if not found.long_running:
            continue  # runs once at boot: a service, but what it runs is no daemon
        program = _program_of(service.command) if service.command else None
        path = _package_program(view, program, executables) if program else None
        if path is not None:
            candidate_for(path).services.append(service)
    ordered = [candidates[p] for p in sorted(candidates)]
    linked = _link_configs(ordered, configs)
    daemons: list[Daemon] = []
    for candidate in ordered:
        own_configs = linked[candidate.path]
        reasons = _daemon_reasons(candidate, own_configs)
        if reasons is None:
            continue
        ports = sorted({port for config in own_configs for port in config.ports})
        daemons.append(
            Daemon(
                path=candidate.path,
                name=candidate.name,
                reasons=tuple(reasons),
                ports=tuple(ports),
                config_files=tuple(sorted(c.path for c in own_configs)),
            )
        )
    return tuple(daemons)


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
        if _may_be_config(entry) and b"\0" not in head:
            return min(entry.size, CONFIG_CAP)
        return 0

    def analyze(self, view: PackageView, earlier: Facts) -> Facts:
        services = find_services(view)
        owners = package_owner_names(view.info, earlier.executables)
        configs = find_config_files(view, owners)
        daemons = find_daemons(view, earlier.executables, services, configs)
        definitions = tuple(found.definition for found in services)
        return Facts(services=definitions, daemons=daemons, config_files=configs)
