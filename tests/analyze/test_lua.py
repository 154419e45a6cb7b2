"""Lua facet: require names from the layout of real .apk files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from pkgfiles import analyze, capture_view, symlink, text_file

from qackage.analyze.lua import LuaFacet, module_for
from qackage.apk.writer import PlannedFile
from qackage.model import Facts, LuaModule

SHARE = "usr/share/lua/5.4"
LIB = "usr/lib/lua/5.4"

NATIVE_C = """
typedef struct lua_State lua_State;
int luaopen_%(symbol)s(lua_State *L) { (void)L; return 0; }
"""


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build Lua C modules")
    tmp = tmp_path_factory.mktemp("lua")
    built = {}
    for symbol in ("socket_core", "lfs"):
        source = tmp / f"{symbol}.c"
        source.write_text(NATIVE_C % {"symbol": symbol})
        out = tmp / f"{symbol}.so"
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(out), str(source)], check=True, capture_output=True)
        built[symbol] = out
    return built


def _lua_tree(native: dict[str, Path]) -> list[PlannedFile]:
    return [
        text_file(f"{SHARE}/socket.lua", "local core = require('socket.core')\n"),
        text_file(f"{SHARE}/socket/http.lua", ""),
        text_file(f"{SHARE}/socket/url.lua", ""),
        PlannedFile(f"{LIB}/socket/core.so", source=native["socket_core"], mode=0o755),
        text_file(f"{SHARE}/pl/init.lua", ""),
        text_file(f"{SHARE}/pl/utils.lua", ""),
        text_file(f"{SHARE}/lua-cjson_safe.lua", ""),
        text_file(f"{LIB}/helper.lua", ""),  # package.path searches the lib directory for .lua too
        PlannedFile(f"{LIB}/helper.so", source=native["lfs"]),  # package.path before package.cpath
        # ?.lua comes before ?/init.lua: the first file wins the name
        text_file("usr/share/lua/5.1/foo.lua", ""),
        text_file("usr/share/lua/5.1/foo/init.lua", ""),
        PlannedFile("usr/lib/lua/5.1/lfs.so", source=native["lfs"], mode=0o755),
        symlink("usr/local/lib/lua/5.1/lfs.so", "../../../../lib/lua/5.1/lfs.so"),
        text_file("usr/share/luajit-2.1/jit/bcsave.lua", ""),
        text_file("usr/share/lua/unversioned.lua", ""),
        # not modules
        text_file(f"{SHARE}/odd.name.lua", ""),
        text_file(f"{SHARE}/README.md", ""),
        PlannedFile(f"{SHARE}/misplaced.so", source=native["lfs"]),
        text_file("usr/share/doc/lua-socket/example.lua", ""),
        text_file("usr/lib/luarocks/rocks-5.4/luasocket/3.1.0-1/rock_manifest", ""),
    ]


def test_modules_from_the_search_paths(tmp_path: Path, native: dict[str, Path]) -> None:
    facts = analyze(tmp_path, LuaFacet(), _lua_tree(native))
    assert facts == Facts(
        lua_modules=(
            LuaModule("unversioned", "usr/share/lua/unversioned.lua", None),
            LuaModule("foo", "usr/share/lua/5.1/foo.lua", "5.1"),
            LuaModule("lfs", "usr/lib/lua/5.1/lfs.so", "5.1", native=True),
            LuaModule("lfs", "usr/local/lib/lua/5.1/lfs.so", "5.1", native=True),
            LuaModule("helper", f"{LIB}/helper.lua", "5.4"),
            LuaModule("lua-cjson_safe", f"{SHARE}/lua-cjson_safe.lua", "5.4"),
            LuaModule("pl", f"{SHARE}/pl/init.lua", "5.4"),
            LuaModule("pl.utils", f"{SHARE}/pl/utils.lua", "5.4"),
            LuaModule("socket", f"{SHARE}/socket.lua", "5.4"),
            LuaModule("socket.core", f"{LIB}/socket/core.so", "5.4", native=True),
            LuaModule("socket.http", f"{SHARE}/socket/http.lua", "5.4"),
            LuaModule("socket.url", f"{SHARE}/socket/url.lua", "5.4"),
            LuaModule("jit.bcsave", "usr/share/luajit-2.1/jit/bcsave.lua", "luajit-2.1"),
        )
    )


def test_nothing_is_captured(tmp_path: Path, native: dict[str, Path]) -> None:
    view = capture_view(tmp_path, [LuaFacet()], _lua_tree(native))
    assert dict(view.contents) == {}


def test_module_for_rejects_what_require_cannot_name() -> None:
    assert module_for("usr/share/lua/5.3/a/b/c.lua") == LuaModule("a.b.c", "usr/share/lua/5.3/a/b/c.lua", "5.3")
    assert module_for("usr/share/lua/5.3/a b.lua") is None
    assert module_for("usr/share/lua/5.3/.hidden.lua") is None
    assert module_for("usr/lib/lua/5.3/x.so.1") is None
    assert module_for("usr/share/luajit-2.1/x.so") is None
    assert module_for("lua/5.3/x.lua") is None
