"""Library functional checks: prototypes and call choice on data, then compile-and-call
and dlopen checks probed and proved in the sandbox, and shown to fail on broken copies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from funckit import (
    analysis_of,
    analysis_with,
    assert_every_step_fails,
    drop_files,
    gather,
    members,
    outputs,
    prove,
    request_for,
    result,
    rewrite,
)

from qackage.apk.pkginfo import parse_atoms
from qackage.apk.writer import PlannedFile
from qackage.build import RepositoryBuild
from qackage.model import (
    Candidate,
    CheckKind,
    ElfFile,
    ElfType,
    Entry,
    EntryKind,
    Facts,
    Header,
    PkgConfig,
    ProbeResult,
    SharedLibrary,
)
from qackage.propose.c_prototypes import Prototype, ResultKind, callable_as_sample, prototypes, typedefs
from qackage.propose.library_checks import (
    CTYPES_KEY,
    DLOPEN_KEY,
    HEADERS_KEY,
    LibraryProposer,
    call_key,
    linkage,
    loadables,
    read_headers,
)
from qackage.propose.observe import NONDETERMINISTIC_MARK, NONDETERMINISTIC_STATUS

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
GREET_H = (FIXTURES / "hello/include/greet/greet.h").read_text()

EXPORTING_HEADER = """\
#ifndef FOO_H
#define FOO_H
#include <stddef.h>
#define FOO_API __attribute__((visibility("default")))
/* a comment mentioning bar(void); */
typedef int (*foo_callback)(int);
struct foo_state { int level; };
FOO_API const char *foo_version(void) __attribute__((pure));
extern int
foo_count(void);
unsigned long foo_hash(const char *text);
char *foo_escape(const char *text);
int foo_init(const char *path);
void foo_free(char *text);
static inline int foo_twice(int x) { return 2 * x; }
int foo_sum(int a, int b);
#endif
"""


# --------------------------------------------------------------------------- prototypes


def test_prototypes_in_a_real_header() -> None:
    found = {p.name: p for p in prototypes(GREET_H, "greet/greet.h")}
    assert set(found) == {"greet_format", "greet_shout", "greet_version", "greet_free"}
    assert found["greet_format"] == Prototype("greet_format", "char *", ("const char *name",), "greet/greet.h")
    assert found["greet_version"].parameters == ()


def test_prototypes_ignore_everything_else() -> None:
    found = {p.name: p for p in prototypes(EXPORTING_HEADER, "foo.h")}
    assert set(found) == {"foo_version", "foo_count", "foo_hash", "foo_escape", "foo_init", "foo_free", "foo_sum"}
    assert found["foo_version"].returns == "const char *"  # export macro and attribute dropped
    assert found["foo_count"].returns == "int"  # declared across two lines


def test_only_harmless_calls_are_made() -> None:
    calls = {p.name: callable_as_sample(p) for p in prototypes(EXPORTING_HEADER, "foo.h")}
    assert calls["foo_init"] is None  # lifecycle names are never called blindly
    assert calls["foo_free"] is None and calls["foo_sum"] is None  # void, or arguments we cannot invent
    escape, version, count = calls["foo_escape"], calls["foo_version"], calls["foo_count"]
    assert escape is not None and escape.expression == 'foo_escape("wolfi")' and escape.result is ResultKind.STRING
    assert version is not None and count is not None and calls["foo_hash"] is not None
    assert escape.score > version.score > count.score


# The shapes of expat.h and zlib.h: a macro around the return type, a macro around the
# parameters, and result types spelled through typedefs chosen by preprocessor branches.
EXPAT_LIKE_EXTERNAL = """\
#ifdef XML_UNICODE
typedef wchar_t XML_LChar;
#else
typedef char XML_LChar;
#endif
"""
EXPAT_LIKE = """\
#define XMLPARSEAPI(type) extern type
/* Returns a string describing the version. */
XMLPARSEAPI(const XML_LChar *)
XML_ExpatVersion(void);
XMLPARSEAPI(void)
XML_SetUserData(XML_Parser parser, void *userData);
"""
ZLIB_LIKE = """\
#define OF(args) args
typedef unsigned long uLong;
ZEXTERN const char * ZEXPORT zlibVersion OF((void));
ZEXTERN uLong ZEXPORT zlibCompileFlags OF((void));
ZEXTERN int ZEXPORT deflateInit2 OF((z_streamp strm,
                                     int  level));
"""


def test_a_return_type_inside_an_export_macro_is_read() -> None:
    found = {p.name: p for p in prototypes(EXPAT_LIKE, "expat.h")}
    assert found["XML_ExpatVersion"] == Prototype("XML_ExpatVersion", "const XML_LChar *", (), "expat.h")
    assert found["XML_SetUserData"].returns == "void"
    assert typedefs(EXPAT_LIKE_EXTERNAL) == {"XML_LChar": "char"}  # the default branch, written last
    version = callable_as_sample(found["XML_ExpatVersion"], typedefs(EXPAT_LIKE_EXTERNAL))
    assert version is not None and version.result is ResultKind.STRING
    assert callable_as_sample(found["XML_ExpatVersion"]) is None  # without the typedef the type is unknown


def test_parameters_inside_an_old_style_macro_are_read() -> None:
    found = {p.name: p for p in prototypes(ZLIB_LIKE, "zlib.h")}
    assert found["zlibVersion"] == Prototype("zlibVersion", "const char *", (), "zlib.h")
    assert found["deflateInit2"].parameters == ("z_streamp strm", "int level")
    flags = callable_as_sample(found["zlibCompileFlags"], typedefs(ZLIB_LIKE))
    assert flags is not None and flags.result is ResultKind.UNSIGNED
    assert callable_as_sample(found["deflateInit2"], typedefs(ZLIB_LIKE)) is None


def test_headers_probe_output_is_split_per_file() -> None:
    text = "==> qackage header: /usr/include/a.h\nint a(void);\n==> qackage header: /usr/include/b.h\nint b(void);\n"
    found = read_headers(text)
    assert list(found) == ["/usr/include/a.h", "/usr/include/b.h"]
    assert [t.strip() for t in found.values()] == ["int a(void);", "int b(void);"]


# --------------------------------------------------------------------------- linking and loading


def _dev_facts(with_pc: bool = True) -> Facts:
    headers = (
        Header("usr/include/greet/greet.h", "greet/greet.h"),
        Header("usr/include/greet/version.h", "greet/version.h"),
    )
    pc = PkgConfig("usr/lib/pkgconfig/greet.pc", "greet", link_libraries=("greet",))
    return Facts(headers=headers, pkgconfig=(pc,) if with_pc else ())


_SO_LINK = Entry("usr/lib/libgreet.so", EntryKind.SYMLINK, 0o777, link_target="libgreet.so.1")


def test_linkage_prefers_the_pc_file() -> None:
    link = linkage(analysis_with(_dev_facts(), name="hello-dev", entries=[_SO_LINK]))
    assert link is not None and link.module == "greet" and link.packages == ("build-base", "pkgconf")
    bare = linkage(analysis_with(_dev_facts(with_pc=False), name="hello-dev", entries=[_SO_LINK]))
    assert bare is not None and bare.module is None and bare.flags == "-lgreet" and bare.packages == ("build-base",)
    assert linkage(analysis_with(_dev_facts(with_pc=False), name="hello-dev")) is None


def _library_facts(path: str = "usr/lib/libgreet.so.1.0.0", exports: tuple[str, ...] = ()) -> Facts:
    elf = ElfFile(path, ElfType.SHARED_LIBRARY, "x86_64", 64, soname="libgreet.so.1", exported_functions=exports)
    return Facts(elf_files=(elf,), shared_libraries=(SharedLibrary(path, "libgreet.so.1"),))


def test_loadables_name_the_soname_and_spread_symbols() -> None:
    exports = ("_internal", *(f"greet_{i:02d}" for i in range(20)))
    (library,) = loadables(analysis_with(_library_facts(exports=exports)))
    assert library.name == "libgreet.so.1"
    assert len(library.symbols) == 6 and library.symbols[0] == "greet_00" and library.symbols[-1] == "greet_19"
    (private,) = loadables(analysis_with(_library_facts("usr/lib/greet/libgreet.so.1", ("greet_a",))))
    assert private.name == "/usr/lib/greet/libgreet.so.1"  # outside the loader's folders: by path
    assert loadables(analysis_with(_library_facts(exports=("_only_private",)))) == ()


# --------------------------------------------------------------------------- the proposer on data


def test_rounds_read_headers_then_compile_calls() -> None:
    analysis = analysis_with(_dev_facts(), name="hello-dev", entries=[_SO_LINK])
    proposer = LibraryProposer()
    assert [c.key for c in proposer.probes(analysis, {})] == [HEADERS_KEY]
    seen = {HEADERS_KEY: result(HEADERS_KEY, f"==> qackage header: /usr/include/greet/greet.h\n{GREET_H}")}
    calls = [c for c in proposer.probes(analysis, seen) if c.key != HEADERS_KEY]
    assert [c.key for c in calls] == [call_key("greet_format"), call_key("greet_shout"), call_key("greet_version")]
    assert all(c.packages == ("build-base", "pkgconf") for c in calls)
    assert "flags=$(pkg-config --cflags --libs greet)" in calls[0].script


def _seen_calls(**outputs: str) -> dict[str, ProbeResult]:
    seen = {HEADERS_KEY: result(HEADERS_KEY, f"==> qackage header: /usr/include/greet/greet.h\n{GREET_H}")}
    for name, stdout in outputs.items():
        seen[call_key(name)] = (
            result(call_key(name), "", NONDETERMINISTIC_STATUS, NONDETERMINISTIC_MARK)
            if stdout == "differs"
            else result(call_key(name), stdout)
        )
    return seen


def test_the_most_telling_call_is_asserted() -> None:
    analysis = analysis_with(_dev_facts(), name="hello-dev", version="2.12.1-r1", entries=[_SO_LINK])
    seen = _seen_calls(greet_format="Hello, wolfi!\n", greet_shout="differs", greet_version="2.12.1\n")
    (candidate,) = LibraryProposer().candidates(analysis, seen)
    assert candidate.kind is CheckKind.FUNCTIONAL
    assert candidate.step.name == "Links against greet.pc and calls greet_format()"
    assert "test \"$out\" = 'Hello, wolfi!'" in (candidate.step.runs or "")
    assert candidate.targets == ("delete-included-header", "break-pc-libs", "dangle-symlink")


def test_a_version_call_asserts_only_its_shape() -> None:
    analysis = analysis_with(_dev_facts(), name="hello-dev", version="2.12.1-r1", entries=[_SO_LINK])
    (candidate,) = LibraryProposer().candidates(analysis, _seen_calls(greet_version="2.12.1\n"))
    runs = candidate.step.runs or ""
    assert "2.12.1" not in runs
    assert "grep -E -- '[0-9]+\\.[0-9]+' greet_version.out" in runs


def test_loading_prefers_ctypes_when_python_is_there() -> None:
    facts = _library_facts(exports=("greet_format", "greet_shout"))
    plain = analysis_with(facts, name="libgreet")
    assert [c.key for c in LibraryProposer().probes(plain, {})] == [DLOPEN_KEY]
    pythonic = analysis_with(facts, name="py3-greet", depends="python3")
    assert [c.key for c in LibraryProposer().probes(pythonic, {})] == [DLOPEN_KEY, CTYPES_KEY]
    both = {DLOPEN_KEY: result(DLOPEN_KEY, "ok\n"), CTYPES_KEY: result(CTYPES_KEY, "ok\n")}
    (ctypes_check,) = LibraryProposer().candidates(pythonic, both)
    assert "ctypes.CDLL(library)" in (ctypes_check.step.runs or "") and ctypes_check.packages == ()
    no_ctypes = {**both, CTYPES_KEY: result(CTYPES_KEY, "", 1, "ModuleNotFoundError: No module named '_ctypes'")}
    (c_check,) = LibraryProposer().candidates(pythonic, no_ctypes)
    assert "dlopen(wanted[i][0], RTLD_NOW)" in (c_check.step.runs or "") and c_check.packages == ("build-base",)
    assert LibraryProposer().candidates(plain, {DLOPEN_KEY: result(DLOPEN_KEY, "", 1)}) == ()


# --------------------------------------------------------------------------- in the sandbox


def _propose(repo: RepositoryBuild, apk: Path, cache: Path) -> tuple[tuple[Candidate, ...], dict[str, ProbeResult]]:
    analysis = analysis_of(apk)
    seen = gather(LibraryProposer(), analysis, request_for(repo, apk, cache))
    return LibraryProposer().candidates(analysis, seen), seen


def _assert_kills(repo: RepositoryBuild, broken: Path, candidates: tuple[Candidate, ...], folder: Path) -> None:
    assert_every_step_fails(prove(repo, broken, candidates, folder), candidates)


def _with_data(path: str, change: bytes, to: bytes) -> Callable[[list[PlannedFile]], list[PlannedFile]]:
    def edit(files: list[PlannedFile]) -> list[PlannedFile]:
        return [
            PlannedFile(f.path, mode=f.mode, data=(f.data or b"").replace(change, to)) if f.path == path else f
            for f in files
        ]

    return edit


@pytest.mark.slow
def test_dev_package_compiles_links_and_calls(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    apk = fixture_repo.package("hello-dev").path
    candidates, seen = _propose(fixture_repo, apk, tmp_path / "cache")
    assert [c.step.name for c in candidates] == ["Links against greet.pc and calls greet_format()"], outputs(seen, "")
    assert prove(fixture_repo, apk, candidates, tmp_path / "good").passed
    broken_pc = rewrite(apk, tmp_path / "pc.apk", _with_data("usr/lib/pkgconfig/greet.pc", b"-lgreet", b"-lgreetx"))
    _assert_kills(fixture_repo, broken_pc, candidates, tmp_path / "pc")
    no_header = rewrite(apk, tmp_path / "header.apk", drop_files(lambda p: p == "usr/include/greet/version.h"))
    _assert_kills(fixture_repo, no_header, candidates, tmp_path / "header")
    no_link = rewrite(apk, tmp_path / "link.apk", drop_files(lambda p: p == "usr/lib/libgreet.so"))
    _assert_kills(fixture_repo, no_link, candidates, tmp_path / "link")


@pytest.mark.slow
def test_dev_package_without_pc_links_by_name(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    apk = rewrite(
        fixture_repo.package("hello-dev").path, tmp_path / "hello-dev.apk", drop_files(lambda p: p.endswith(".pc"))
    )
    candidates, seen = _propose(fixture_repo, apk, tmp_path / "cache")
    assert [c.step.name for c in candidates] == ["Links against libgreet and calls greet_format()"], outputs(seen, "")
    assert "cc -o greet_format greet_format.c -lgreet" in (candidates[0].step.runs or "")
    assert prove(fixture_repo, apk, candidates, tmp_path / "good").passed


@pytest.mark.slow
@pytest.mark.parametrize("python_dependency", [False, True])
def test_shared_library_loads_for_real(fixture_repo: RepositoryBuild, tmp_path: Path, python_dependency: bool) -> None:
    apk = fixture_repo.package("libgreet").path
    if python_dependency:
        # The fixture's python3 has no ctypes: the probe shows it and the C check is kept.
        depends = (*members(apk)[0].depends, *parse_atoms("python3"))
        apk = rewrite(apk, tmp_path / "libgreet.apk", list, depends=depends)
    candidates, seen = _propose(fixture_repo, apk, tmp_path / "cache")
    assert [c.step.name for c in candidates] == ["Loads libgreet.so.1 and resolves exported functions"], outputs(
        seen, ""
    )
    assert (CTYPES_KEY in seen) is python_dependency
    assert prove(fixture_repo, apk, candidates, tmp_path / "good").passed
    if python_dependency:
        return
    library = "usr/lib/libgreet.so.1.0.0"

    def truncate(files: list[PlannedFile]) -> list[PlannedFile]:
        return [
            PlannedFile(f.path, mode=f.mode, data=(f.data or b"")[:4096]) if f.path == library else f for f in files
        ]

    _assert_kills(fixture_repo, rewrite(apk, tmp_path / "short.apk", truncate), candidates, tmp_path / "short")
    hidden = rewrite(apk, tmp_path / "hidden.apk", _with_data(library, b"greet_shout\x00", b"greet_shouX\x00"))
    _assert_kills(fixture_repo, hidden, candidates, tmp_path / "hidden")
    no_soname = rewrite(apk, tmp_path / "soname.apk", drop_files(lambda p: p == "usr/lib/libgreet.so.1"))
    _assert_kills(fixture_repo, no_soname, candidates, tmp_path / "soname")


@pytest.mark.parametrize(
    ("depends", "interpreter"),
    [
        ("python3", "python3"),
        ("python-3.12", "python3.12"),
        ("so:libc.so.6 python-3.13-base", "python3.13"),
        ("glibc", None),
    ],
)
def test_ctypes_uses_the_python_the_package_depends_on(depends: str, interpreter: str | None) -> None:
    analysis = analysis_with(_library_facts(exports=("greet_format",)), depends=depends)
    probes = {c.key: c for c in LibraryProposer().probes(analysis, {})}
    if interpreter is None:
        assert CTYPES_KEY not in probes
    else:
        assert probes[CTYPES_KEY].script.startswith(f"{interpreter} - <<'EOF'")
