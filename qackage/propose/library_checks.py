"""Functional checks for C libraries: call one real function, or load for real.

With headers, a probe reads them (round 1), then compiles and runs tiny programs that
include a header, link the way the package says (its .pc, else its link library) and
call one function that needs nothing but a sample string (round 2); the step asserts
what the best call printed. Shared libraries are dlopen()ed by SONAME and a few of
their exported functions resolved, which fails on the truncated, deleted or stripped
libraries that ldd-check lets through.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from qackage.model import (
    Analysis,
    Candidate,
    CheckKind,
    EntryKind,
    Header,
    PkgConfig,
    ProbeCommand,
    ProbeResult,
    Step,
)
from qackage.propose.c_prototypes import Call, ResultKind, callable_as_sample, prototypes, typedefs
from qackage.propose.expect import Expectation, ExpectKind, assertion_script, expectation_for
from qackage.propose.observe import mentions_version, observed, twice
from qackage.propose.templates import render

HEADERS_KEY = "lib:headers"
DLOPEN_KEY = "lib:dlopen"
CTYPES_KEY = "lib:ctypes"
MAX_HEADERS = 8
HEADER_BYTES = 24_000
MAX_CALLS = 3
MAX_LIBRARIES = 4
MAX_SYMBOLS = 6
COMPILE_SECONDS = 60.0
BUILD_PACKAGES = ("build-base",)
_HEADER_MARK = "==> qackage header:"
_STANDARD_LIBRARY_DIRS = ("usr/lib/", "lib/", "usr/lib64/", "lib64/", "usr/local/lib/")
_HELPER_HEADER = re.compile(r"private|internal|impl|detail|config|export|platform|compat|macro", re.IGNORECASE)
_LINK_LIBRARY = re.compile(r"^(?:usr/)?lib(?:64)?/lib([\w+.-]+)\.so$")


def call_key(function: str) -> str:
    return f"lib:call:{function}"


# --------------------------------------------------------------------------- linking


@dataclass(frozen=True, slots=True)
class Linkage:
    """How a test program finds the package's headers and libraries."""

    module: str | None  # the pkg-config module, when the package has a usable .pc
    flags: str  # the compiler flags otherwise
    label: str  # how a step name calls it: "greet.pc", "libgreet"

    @property
    def packages(self) -> tuple[str, ...]:
        return (*BUILD_PACKAGES, "pkgconf") if self.module else BUILD_PACKAGES


def _stem(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower().rsplit("/", 1)[-1].removesuffix(".h"))


def _pc_rank(pc: PkgConfig, analysis: Analysis) -> tuple[bool, str]:
    names = {_stem(h.include_name) for h in analysis.facts.headers} | {_stem(analysis.package.name)}
    return (_stem(pc.module) not in names and not set(map(_stem, pc.link_libraries)) & names, pc.module)


def linkage(analysis: Analysis) -> Linkage | None:
    """The package's .pc naming libraries, else -l for its unversioned .so links."""
    usable = sorted((pc for pc in analysis.facts.pkgconfig if pc.link_libraries), key=lambda p: _pc_rank(p, analysis))
    if usable:
        return Linkage(usable[0].module, "", f"{usable[0].module}.pc")
    names = sorted({m.group(1) for e in analysis.entries if (m := _LINK_LIBRARY.match(e.path))})
    if not names:
        return None
    include_dirs = sorted(
        {"-I/" + h.path.removesuffix(h.include_name).rstrip("/") for h in analysis.facts.headers} - {"-I/usr/include"}
    )
    flags = " ".join([*include_dirs, *(f"-l{n}" for n in names)])
    return Linkage(None, flags, f"lib{names[0]}")


# --------------------------------------------------------------------------- headers and calls


def headers_to_read(analysis: Analysis) -> tuple[Header, ...]:
    """The public C headers most likely to declare the library's API, best first."""
    names = {_stem(analysis.package.name.removesuffix("-dev"))} | {
        _stem(n) for pc in analysis.facts.pkgconfig for n in (pc.module, *pc.link_libraries)
    }
    ranked = sorted(
        (h for h in analysis.facts.headers if h.language == "c"),
        key=lambda h: (
            _stem(h.include_name) not in names,
            bool(_HELPER_HEADER.search(h.include_name)),
            h.include_name.count("/"),
            h.include_name,
        ),
    )
    return tuple(ranked[:MAX_HEADERS])


def read_headers(stdout: str) -> dict[str, str]:
    """Header texts by path, from the headers probe's output."""
    found: dict[str, str] = {}
    current: str | None = None
    for line in stdout.split("\n"):
        if line.startswith(_HEADER_MARK):
            current = line[len(_HEADER_MARK) :].strip()
            found[current] = ""
        elif current is not None:
            found[current] += line + "\n"
    return found


def calls_to_try(analysis: Analysis, seen: Mapping[str, ProbeResult]) -> tuple[Call, ...]:
    """The best few calls the probed headers allow (empty until the headers are read)."""
    result = seen.get(HEADERS_KEY)
    if result is None or not result.ok:
        return ()
    include_names = {"/" + h.path: h.include_name for h in analysis.facts.headers}
    texts = read_headers(result.stdout)
    # A result type is often an alias declared in a sibling header (expat_external.h).
    aliases = {name: kind for text in texts.values() for name, kind in typedefs(text).items()}
    found: dict[str, Call] = {}
    for path, text in texts.items():
        header = include_names.get(path)
        if header is None:
            continue
        for prototype in prototypes(text, header):
            call = callable_as_sample(prototype, aliases)
            if call is not None:
                found.setdefault(prototype.name, call)
    ranked = sorted(found.values(), key=lambda c: (-c.score, c.prototype.name))
    return tuple(ranked[:MAX_CALLS])


def _build_script(call: Call, link: Linkage) -> str:
    source = render(
        "func-c-call.c.j2",
        header=call.prototype.header,
        function=call.prototype.name,
        expression=call.expression,
        result=call.result.value,
    )
    return render(
        "func-c-build.sh.j2", stem=call.prototype.name, source=source, module=link.module or "", flags=link.flags
    )


def _call_expectation(call: Call, stdout: str, version: str) -> Expectation | None:
    """The printed result, or only its shape when it is (or encodes) a version."""
    versioned = "version" in call.prototype.name.lower() or mentions_version(stdout, version)
    if not versioned:
        return expectation_for(stdout, version=version, tokens=())
    if call.result is ResultKind.STRING:
        if re.search(r"[0-9]+\.[0-9]+", stdout):
            return Expectation(ExpectKind.PATTERN, r"[0-9]+\.[0-9]+")
        return Expectation(ExpectKind.PATTERN, "[0-9]") if re.search("[0-9]", stdout) else None
    return Expectation(ExpectKind.PATTERN, r"^-?[0-9]+$")


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True, slots=True)
class Loadable:
    name: str  # what dlopen() is given: the SONAME, or the path outside the loader's dirs
    symbols: tuple[str, ...]


def _spread(names: Sequence[str], count: int) -> tuple[str, ...]:
    """``count`` names spread evenly over ``names`` (first and last included)."""
    if len(names) <= count:
        return tuple(names)
    step = (len(names) - 1) / (count - 1)
    return tuple(dict.fromkeys(names[round(i * step)] for i in range(count)))


def loadables(analysis: Analysis) -> tuple[Loadable, ...]:
    """The package's shared libraries with an SONAME, each with a few exported functions."""
    elf = {e.path: e for e in analysis.facts.elf_files}
    found: list[Loadable] = []
    for library in analysis.facts.shared_libraries:
        info = elf.get(library.path)
        if not library.soname or info is None:
            continue
        exported = [s for s in info.exported_functions if not s.startswith("_") and re.fullmatch(r"[\w.$@]+", s)]
        if not exported:
            continue
        standard = library.path.rsplit("/", 1)[0] + "/" in _STANDARD_LIBRARY_DIRS
        name = library.soname if standard else "/" + library.path
        found.append(Loadable(name, _spread(exported, MAX_SYMBOLS)))
    return tuple(found[:MAX_LIBRARIES])


def _has_python(analysis: Analysis) -> str | None:
    """The interpreter the package depends on, if any (ctypes then needs no compiler)."""
    for dependency in analysis.package.depends:
        if dependency.name in ("python3", "cmd:python3"):
            return "python3"
        versioned = re.fullmatch(r"(?:cmd:)?python-?(3\.\d+)(?:-base)?", dependency.name)
        if versioned:
            return f"python{versioned.group(1)}"
    return None


def _dlopen_script(libraries: Sequence[Loadable]) -> str:
    width = max(len(lib.symbols) for lib in libraries) + 2
    source = render("func-c-dlopen.c.j2", libraries=libraries, width=width)
    return render("func-c-build.sh.j2", stem="dlopen-check", source=source, module="", flags="") + "./dlopen-check\n"


def _ctypes_script(libraries: Sequence[Loadable], python: str) -> str:
    entries = [(repr(lib.name), repr(lib.symbols)) for lib in libraries]
    return render("func-py-ctypes.sh.j2", python=python, libraries=entries)


# --------------------------------------------------------------------------- the proposer


class LibraryProposer:
    """Compile-and-call checks for headers, dlopen checks for shared libraries."""

    name: ClassVar[str] = "library-checks"

    def probes(self, analysis: Analysis, seen: Mapping[str, ProbeResult]) -> tuple[ProbeCommand, ...]:
        commands: list[ProbeCommand] = []
        headers = headers_to_read(analysis)
        link = linkage(analysis)
        if headers and link is not None:
            # Best header last: when the headers outgrow the probe's output, its end is what is kept.
            paths = ["/" + h.path for h in reversed(headers)]
            script = render("func-probe-headers.sh.j2", paths=paths, mark=_HEADER_MARK, limit=HEADER_BYTES)
            commands.append(ProbeCommand(HEADERS_KEY, script))
            for call in calls_to_try(analysis, seen):
                body = _build_script(call, link) + f"./{call.prototype.name}\n"
                commands.append(
                    ProbeCommand(
                        call_key(call.prototype.name), twice(body), timeout=COMPILE_SECONDS, packages=link.packages
                    )
                )
        libraries = loadables(analysis)
        if libraries:
            commands.append(
                ProbeCommand(DLOPEN_KEY, _dlopen_script(libraries), timeout=COMPILE_SECONDS, packages=BUILD_PACKAGES)
            )
            python = _has_python(analysis)
            if python:
                commands.append(ProbeCommand(CTYPES_KEY, _ctypes_script(libraries, python)))
        return tuple(commands)

    def candidates(self, analysis: Analysis, seen: Mapping[str, ProbeResult]) -> tuple[Candidate, ...]:
        found: list[Candidate] = []
        call = self._call_candidate(analysis, seen)
        if call is not None:
            found.append(call)
        load = self._load_candidate(analysis, seen)
        if load is not None:
            found.append(load)
        return tuple(found)

    def _call_candidate(self, analysis: Analysis, seen: Mapping[str, ProbeResult]) -> Candidate | None:
        link = linkage(analysis)
        if link is None:
            return None
        best: tuple[int, Call, Expectation, str] | None = None
        for call in calls_to_try(analysis, seen):
            observation = observed(seen, call_key(call.prototype.name))
            if observation is None or not observation.succeeded:
                continue
            expectation = _call_expectation(call, observation.stdout, analysis.package.version)
            if expectation is None:
                continue
            # An exact result says more than a shape; a transformed input more than a constant.
            rank = call.score + (0 if expectation.kind is ExpectKind.PATTERN else 10)
            if best is None or rank > best[0]:
                best = (rank, call, expectation, observation.stdout)
        if best is None:
            return None
        _, call, expectation, stdout = best
        script = assertion_script(
            setup=_build_script(call, link),
            command=f"./{call.prototype.name}",
            expectation=expectation,
            output=f"{call.prototype.name}.out",
        )
        return Candidate(
            step=Step(name=f"Links against {link.label} and calls {call.prototype.name}()", runs=script),
            kind=CheckKind.FUNCTIONAL,
            rationale=(
                f"probed twice in the sandbox: {call.expression} from <{call.prototype.header}> "
                f"printed {stdout.strip()[:60]!r}"
            ),
            packages=link.packages,
            targets=_call_targets(analysis, link),
        )

    def _load_candidate(self, analysis: Analysis, seen: Mapping[str, ProbeResult]) -> Candidate | None:
        libraries = loadables(analysis)
        if not libraries:
            return None
        names = ", ".join(lib.name.rsplit("/", 1)[-1] for lib in libraries)
        title = f"Loads {names} and resolves exported functions"
        aliased = any(lib.aliases for lib in analysis.facts.shared_libraries)
        targets = ("delete-soname", "truncate-elf", "strip-export") + (("dangle-symlink",) if aliased else ())
        python = _has_python(analysis)
        ctypes_result = seen.get(CTYPES_KEY)
        if python and ctypes_result is not None and ctypes_result.ok:
            return Candidate(
                step=Step(name=title, runs=_ctypes_script(libraries, python)),
                kind=CheckKind.FUNCTIONAL,
                rationale=f"probed in the sandbox: ctypes loaded {names} and found their symbols",
                targets=targets,
            )
        dlopen_result = seen.get(DLOPEN_KEY)
        if dlopen_result is None or not dlopen_result.ok:
            return None
        return Candidate(
            step=Step(name=title, runs=_dlopen_script(libraries)),
            kind=CheckKind.FUNCTIONAL,
            rationale=f"probed in the sandbox: dlopen() loaded {names} and dlsym() found their symbols",
            packages=BUILD_PACKAGES,
            targets=targets,
        )


def _call_targets(analysis: Analysis, link: Linkage) -> tuple[str, ...]:
    """What breaks the compile, the link or the call: headers, the .pc, the link library
    symlink, and the library itself when this package ships it."""
    targets = ["delete-included-header"]
    if link.module:
        targets.append("break-pc-libs")
    if any(_LINK_LIBRARY.match(e.path) and e.kind is EntryKind.SYMLINK for e in analysis.entries):
        targets.append("dangle-symlink")
    if analysis.facts.shared_libraries:
        targets += ["delete-soname", "truncate-elf", "strip-export"]
    return tuple(targets)
