"""The dependencies and provides melange generates from a package's files (its "SCA").

Pure functions over scanned trees. What is generated, as melange does it:

- ``so:<SONAME>=<ver>`` provided by shared objects with a SONAME in ``lib/``, ``usr/lib/``,
  ``lib64/``, ``usr/lib64/``; ``so:<NEEDED>`` and ``so:<interpreter>`` required by
  executable ELF files (mode r-x for all); ``so:<SONAME>`` required by ``*.so*`` symlinks
  that point at a library in this package or a sibling (how ``-dev`` depends on the lib).
- ``cmd:<name>=<full version>`` for executable regular files directly in ``bin/``,
  ``sbin/``, ``usr/bin/``, ``usr/sbin/``.
- ``pc:<module>=<.pc Version>`` for ``.pc`` files in the pkgconfig dirs, and (unlike
  today's melange, which has it switched off) ``pc:<module>`` for their ``Requires:``.
- ``python-X.Y-base`` for ``usr/lib/pythonX.Y/site-packages`` unless a ``python*``
  runtime dependency is declared; ``cmd:<interpreter>`` for shebang scripts in
  ``bin/``/``usr/bin/`` (not ``sh``/``python``/``python3``).

Finally dependencies that the package provides itself are dropped.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from qackage.build.recipe import PackageOptions
from qackage.build.tree import PackageTree, TreeEntry
from qackage.model import EntryKind

LIB_DIRS = ("lib", "usr/lib", "lib64", "usr/lib64")
COMMAND_DIRS = ("bin", "sbin", "usr/bin", "usr/sbin")
PKGCONFIG_DIRS = ("lib/pkgconfig", "usr/lib/pkgconfig", "lib64/pkgconfig", "usr/lib64/pkgconfig")
# sh and python are symlinks in Wolfi, so no package provides cmd: for them; melange skips them.
_IGNORED_SHEBANGS = frozenset({"sh", "python", "python3"})
_PC_PRERELEASE = re.compile(r"-(alpha|beta|rc|pre)")
_PC_OPERATOR = re.compile(r"\s*(<=|>=|!=|=|<|>)\s*")
_PC_VARIABLE = re.compile(r"\$\{([A-Za-z0-9_.]+)\}")
_PYTHON_DIR = re.compile(r"^python(\d+\.\d+)$")


@dataclass(frozen=True, slots=True)
class Generated:
    runtime: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PkgConfigFile:
    version: str
    requires: tuple[str, ...]


def generate(
    tree: PackageTree,
    relatives: Sequence[PackageTree],
    full_version: str,
    options: PackageOptions,
    declared_runtime: Sequence[str] = (),
) -> Generated:
    """What melange would add to ``tree``'s package; ``relatives`` are all packages of the build."""
    by_path = {entry.path: entry for entry in tree.entries}
    runtime: list[str] = []
    provides: list[str] = []
    for entry in tree.entries:
        if entry.kind is EntryKind.SYMLINK:
            runtime.extend(_symlinked_library(entry, relatives))
            continue
        facts = _file_facts(entry, by_path)
        if facts is None:
            continue
        so_runtime, so_provides = _shared_objects(entry.path, facts)
        runtime += so_runtime
        provides += so_provides
        if not options.no_commands and _is_command(entry.path, facts):
            provides.append(f"cmd:{posixpath.basename(entry.path)}={full_version}")
        pc = _pkgconfig(entry.path, facts)
        if pc is not None:
            provides += pc.provides
            runtime += pc.runtime
        runtime += _shebang_dependency(entry.path, facts)
    runtime += _python_dependency(tree, declared_runtime)
    return Generated(
        runtime=() if options.no_depends else tuple(sorted(set(runtime))),
        provides=() if options.no_provides else tuple(sorted(set(provides))),
    )


def merge(
    name: str, declared_runtime: Sequence[str], declared_provides: Sequence[str], generated: Generated
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(depends, provides): declared first, then generated, without self-provided deps."""
    provides = _dedup([*declared_provides, *generated.provides])
    provided = {atom_name(p) for p in provides} | {name}
    depends = [
        d for d in _dedup([*declared_runtime, *generated.runtime]) if d.startswith("!") or atom_name(d) not in provided
    ]
    return tuple(depends), tuple(provides)


def atom_name(atom: str) -> str:
    return re.split(r"[<>=~]", atom.lstrip("!"), maxsplit=1)[0]


def soname_version(soname: str) -> str:
    """``libfoo.so.1.2`` -> ``1.2``; ``0`` when there is no numeric suffix."""
    _, separator, version = soname.partition(".so.")
    if not separator or not version or not all(c.isdigit() or c == "." for c in version):
        return "0"
    return version


def parse_pkgconfig(text: str) -> PkgConfigFile:
    """The ``Version`` and the ``Requires`` module names of a ``.pc`` file."""
    variables: dict[str, str] = {}
    fields: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        field = re.match(r"^([A-Za-z0-9_.]+)\s*:\s*(.*)$", line)
        variable = re.match(r"^([A-Za-z0-9_.]+)\s*=\s*(.*)$", line)
        if field:
            fields[field[1].lower()] = _expand(field[2], variables)
        elif variable:
            variables[variable[1]] = _expand(variable[2], variables)
    return PkgConfigFile(fields.get("version", "").strip(), pkgconfig_modules(fields.get("requires", "")))


def pkgconfig_modules(requires: str) -> tuple[str, ...]:
    """Module names of a ``Requires:`` value: ``glib-2.0 >= 2.50, zlib`` -> (glib-2.0, zlib)."""
    tokens = _PC_OPERATOR.sub(r" \1 ", requires.replace(",", " ")).split()
    modules: list[str] = []
    skip_next = False
    for token in tokens:
        if skip_next:
            skip_next = False
        elif token in {"<=", ">=", "!=", "=", "<", ">"}:
            skip_next = True  # the version after the operator
        else:
            modules.append(token)
    return tuple(modules)


# -- the generators ----------------------------------------------------------------------


def _file_facts(entry: TreeEntry, by_path: Mapping[str, TreeEntry]) -> TreeEntry | None:
    """The regular file behind ``entry`` (a hardlink shares its first path's content)."""
    if entry.kind is EntryKind.FILE:
        return entry
    if entry.kind is EntryKind.HARDLINK and entry.link_target is not None:
        first = by_path.get(entry.link_target)
        if first is not None and first.kind is EntryKind.FILE:
            return first
    return None


def _in_dir(path: str, directories: Iterable[str]) -> bool:
    return posixpath.dirname(path) in directories


def _is_executable(mode: int) -> bool:
    return mode & 0o555 == 0o555


def _shared_objects(path: str, facts: TreeEntry) -> tuple[list[str], list[str]]:
    elf = facts.elf
    if elf is None or not _is_executable(facts.mode):
        return [], []
    runtime: list[str] = []
    provides: list[str] = []
    if elf.interpreter:
        # musl's loader is a symlink to libc; Wolfi names the dependency after libc.
        runtime.append(f"so:{posixpath.basename(elf.interpreter)}".replace("so:ld-musl", "so:libc.musl"))
    runtime += [f"so:{lib}" for lib in elf.needed if ".so." in lib]
    # A program never provides a SONAME, but some libraries are runnable (libc.so.6 has an
    # interpreter so that it can print its version): a ".so." name marks those.
    looks_like_library = elf.interpreter is None or ".so." in posixpath.basename(path)
    if elf.soname and looks_like_library and _in_dir(path, LIB_DIRS):
        provides.append(f"so:{elf.soname}={soname_version(elf.soname)}")
    return runtime, provides


def _symlinked_library(entry: TreeEntry, relatives: Sequence[PackageTree]) -> list[str]:
    if ".so" not in entry.path or not entry.link_target:
        return []
    wanted = posixpath.basename(entry.link_target)
    for relative in relatives:
        index = {e.path: e for e in relative.entries}
        for directory in LIB_DIRS:
            target = _resolve(index, f"{directory}/{wanted}")
            if target is not None and target.elf is not None and target.elf.soname:
                return [f"so:{target.elf.soname}"]
    return []


def _resolve(index: Mapping[str, TreeEntry], path: str, depth: int = 20) -> TreeEntry | None:
    """Follow symlinks inside one package to the regular file they name."""
    current = index.get(path)
    for _ in range(depth):
        if current is None or current.kind is EntryKind.FILE:
            return current
        if current.kind is not EntryKind.SYMLINK or not current.link_target:
            return None
        base = "/" if current.link_target.startswith("/") else "/" + posixpath.dirname(current.path)
        path = posixpath.normpath(posixpath.join(base, current.link_target)).lstrip("/")
        current = index.get(path)
    return None


def _is_command(path: str, facts: TreeEntry) -> bool:
    return _is_executable(facts.mode) and _in_dir(path, COMMAND_DIRS)


@dataclass(frozen=True, slots=True)
class _PkgConfigResult:
    provides: list[str]
    runtime: list[str]


def _pkgconfig(path: str, facts: TreeEntry) -> _PkgConfigResult | None:
    if not path.endswith(".pc") or facts.text is None:
        return None
    parsed = parse_pkgconfig(facts.text)
    module = posixpath.basename(path).removesuffix(".pc")
    provides: list[str] = []
    if parsed.version and _in_dir(path, PKGCONFIG_DIRS):
        version = _PC_PRERELEASE.sub(r"_\1", parsed.version).removesuffix("-release")
        provides.append(f"pc:{module}={version}")
    return _PkgConfigResult(provides, [f"pc:{name}" for name in parsed.requires])


def _shebang_dependency(path: str, facts: TreeEntry) -> list[str]:
    if not (path.startswith(("usr/bin/", "bin/"))) or not facts.head.startswith(b"#!"):
        return []
    words = facts.head[2:].split(b"\n", 1)[0].decode("utf-8", errors="replace").split()
    if not words:
        return []
    program = words[0]
    if program == "/usr/bin/env":
        rest = words[1:]
        if len(rest) >= 2 and rest[0] == "-S" and not rest[1].startswith("-"):
            program = rest[1]
        elif len(rest) == 1:
            program = rest[0]
        else:
            return []  # melange warns and adds nothing for env with options
    name = posixpath.basename(program)
    return [] if name in _IGNORED_SHEBANGS else [f"cmd:{name}"]


def _python_dependency(tree: PackageTree, declared_runtime: Sequence[str]) -> list[str]:
    if any(dep.startswith("python") for dep in declared_runtime):
        return []
    for entry in tree.entries:
        if entry.kind is EntryKind.DIR and posixpath.basename(entry.path) == "site-packages":
            match = _PYTHON_DIR.match(posixpath.basename(posixpath.dirname(entry.path)))
            if match:
                return [f"python-{match[1]}-base"]
    return []


def _expand(value: str, variables: Mapping[str, str]) -> str:
    for _ in range(10):  # nested ${a} inside ${b}; a bound stops self-reference loops
        expanded = _PC_VARIABLE.sub(lambda m: variables.get(m[1], ""), value)
        if expanded == value:
            break
        value = expanded
    return value


def _dedup(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
