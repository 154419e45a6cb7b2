"""Which programs of a package are daemons, and the configuration files and ports they own.

A daemon is a program of this package that is meant to run as a service. Being in
``usr/sbin`` is not enough on its own, since sbin also holds admin tools (``useradd``,
``visudo``), and Wolfi has merged sbin into bin anyway. A daemon is a program a
service runs, or one whose name says so (``*-server``, ``*-daemon``, or ``*d`` in
sbin), or one whose own configuration file sets a port. Every fact that applies,
``in usr/sbin`` included, is recorded as a reason. A configuration file belongs to the
program a service runs with it, else to the programs it is named after (``etc/foo/``,
``etc/foo.conf`` <-> ``food``), else to a server named after its first word
(``etc/redis.conf`` <-> ``redis-server``); between equals the server-looking ones win.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from qackage.analyze.base import PackageView
from qackage.analyze.configs import config_stems, config_subjects
from qackage.model import ConfigFile, Daemon, EntryKind, Executable, ServiceDefinition

SBIN_DIRS = frozenset({"usr/sbin", "sbin", "usr/local/sbin"})

# Name endings that look like "daemon" but are ordinary commands: useradd, usermod,
# chpasswd, unix_chkpwd, build, gold, lvextend, head, download, find, expand, ldd, blkdiscard.
_NOT_DAEMON_ENDINGS = (
    "add", "mod", "passwd", "pwd", "ild", "ld", "end", "ead", "oad", "ind", "and", "cmd", "dd", "card"
)  # fmt: skip
_NOT_DAEMON_NAMES = frozenset({"blkid", "setsid", "uuid", "sed", "xxd", "vipw", "nologin"})
_SERVER_SUFFIXES = ("-server", "-daemon", "server", "daemon")
# Editors talk to these over stdin: servers by name, not services.
_STDIO_SERVER_SUFFIXES = ("language-server", "lsp-server")


@dataclass(frozen=True, slots=True)
class ServiceProgram:
    """A service that keeps running and the program its command starts: a path
    (``/usr/sbin/food``) or a name looked up on PATH (``food``)."""

    service: ServiceDefinition
    program: str


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


def _link_level(candidate: _Candidate, config: ConfigFile) -> int:
    """3: a service running it names the file; 2: the file is named after it;
    1: named after the first part of a server-ish name (redis <-> redis-server)."""
    if any(config.path in (s.command or "") for s in candidate.services):
        return 3
    subjects = config_subjects(config.path)
    stems = config_stems(candidate.name) | {s.name.lower().rstrip("@") for s in candidate.services}
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
    started: Sequence[ServiceProgram],
    configs: Sequence[ConfigFile],
) -> tuple[Daemon, ...]:
    """The programs among ``executables`` (and those the ``started`` services run) that
    are daemons, each with the configuration files linked to it and their ports."""
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
    for run in started:
        path = _package_program(view, run.program, executables)
        if path is not None:
            candidate_for(path).services.append(run.service)
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
