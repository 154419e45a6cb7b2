"""Lua: the names ``require`` takes for the modules a package installs.

Lua's default search paths are ``<share>/?.lua``, ``<share>/?/init.lua`` and ``<lib>/?.so``
with ``<share>`` = ``usr/share/lua/<version>`` and ``<lib>`` = ``usr/lib/lua/<version>``;
``require "foo.bar"`` turns the dots into slashes. LuaJIT keeps its own ``jit.*`` modules
in ``usr/share/luajit-<version>/``. The module's ``lua_version`` is the directory's
version (``5.4``), or ``luajit-2.1`` for LuaJIT's directory, so a later stage can pick the
interpreter that will find it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from qackage.analyze.base import PackageView
from qackage.model import Entry, EntryKind, Facts, LuaModule

_SEARCH_ROOT = re.compile(
    r"^(?:usr/(?:local/)?)"
    r"(?:(?P<kind>share|lib(?:64)?)/lua(?:/(?P<version>\d+\.\d+))?|share/(?P<luajit>luajit-[\w.-]+))/"
)
_COMPONENT = re.compile(r"^[A-Za-z0-9_][\w-]*$")


@dataclass(frozen=True, slots=True)
class _Located:
    module: LuaModule
    root: str  # the search directory the file sits in
    order: int  # which template found it: ?.lua, then ?/init.lua, then ?.so


def _locate(path: str) -> _Located | None:
    match = _SEARCH_ROOT.match(path)
    if match is None:
        return None
    relpath = path[match.end() :]
    if path.endswith(".lua"):  # the default path also searches the lib directory for .lua
        stem = relpath.removesuffix(".lua")
        order = 1 if stem == "init" or stem.endswith("/init") else 0
        stem = stem.removesuffix("/init")
    elif path.endswith(".so") and (match["kind"] or "").startswith("lib"):
        stem = relpath.removesuffix(".so")
        order = 2
    else:
        return None
    parts = stem.split("/")
    if not all(_COMPONENT.match(part) for part in parts):
        return None  # a dot or odd character cannot be spelled in a require name
    version = match["luajit"] or match["version"]
    module = LuaModule(name=".".join(parts), path=path, lua_version=version, native=order == 2)
    return _Located(module, match.group(0), order)


def module_for(path: str) -> LuaModule | None:
    """The module a file provides, if it sits where ``require`` looks."""
    located = _locate(path)
    return None if located is None else located.module


def find_modules(view: PackageView) -> tuple[LuaModule, ...]:
    """One module per name and search directory: the file ``require`` would pick there."""
    chosen: dict[tuple[str, str], _Located] = {}
    for entry in view.entries:
        located = _locate(entry.path) if entry.kind is not EntryKind.DIR else None
        if located is None:
            continue
        key = (located.root, located.module.name)
        current = chosen.get(key)
        if current is None or located.order < current.order:
            chosen[key] = located
    modules = (located.module for located in chosen.values())
    return tuple(sorted(modules, key=lambda m: (m.lua_version or "", m.name, m.native, m.path)))


class LuaFacet:
    """Lua modules from their location on the default search paths; no content needed."""

    name: ClassVar[str] = "lua"

    def capture(self, entry: Entry, head: bytes) -> int:
        return 0

    def analyze(self, view: PackageView, earlier: Facts) -> Facts:
        return Facts(lua_modules=find_modules(view))
