"""Default configuration files and the ports they name.

Configuration files are files under ``etc/`` with a configuration extension, or
extension-less files in a directory of ``etc/`` named after the package or one of its
programs, plus ``etc/conf.d/*``, ``etc/default/*`` and ``etc/sysconfig/*`` (what
OpenRC, Debian and Red Hat service scripts read). Ports come only from lines whose
syntax says "listen here": ``port = 6379``, ``Port 22``, ``listen 80;``,
``listen: 0.0.0.0:8080``, ``bind *:8080``, ``http_port 3128``, ``"port": 9090``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from qackage.analyze.base import PackageView
from qackage.model import ConfigFile, Entry, Executable, PackageInfo

# redis.conf is ~100 KiB with `port` near the top; nothing real needs more.
CONFIG_CAP = 256 * 1024
MAX_PORT = 65535

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


def config_stems(program: str) -> set[str]:
    """``food`` -> {food, foo}: the names a program's configuration may carry."""
    lowered = program.lower()
    stems = {lowered}
    if lowered.endswith("d") and len(lowered) > 3:
        stems.add(lowered[:-1])
    return stems


def config_subjects(path: str) -> set[str]:
    """Names a configuration file is about: its etc/ directory (or its own name for
    etc/foo.conf and etc/conf.d/foo) and its own stem."""
    parts = path.split("/")
    own = _normalized_owner(parts[-1])
    if len(parts) == 2 or (len(parts) == 3 and parts[1] in SERVICE_CONFIG_DIRS):
        return {own}
    return {_normalized_owner(parts[1]), own}


def package_owner_names(info: PackageInfo, executables: Iterable[Executable]) -> frozenset[str]:
    """Names a directory under etc/ may carry to belong to this package."""
    names = {info.name.lower(), info.origin.lower()}
    for executable in executables:
        names.add(executable.name.lower())
        names.update(config_stems(executable.name))
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


def may_be_config(entry: Entry) -> bool:
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
    for entry in view.files():
        if not is_config_file(entry.path, owners):
            continue
        data = view.captured(entry.path)
        text = "" if data is None or b"\0" in data[:4096] else data.decode("utf-8", errors="replace")
        found.append(ConfigFile(entry.path, config_ports(entry.path, text)))
    return tuple(sorted(found, key=lambda c: c.path))
