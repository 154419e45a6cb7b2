"""`qackage suggest` on real Debian packages installed on this machine, repacked as .apk files.

Each package is repacked in Wolfi's merged-/usr layout (Debian's /bin, /sbin and /lib
files under /usr, where Wolfi keeps them; a host-base root hides package files in the
host's usrmerge links) and suggested for in host-base mode (no repository: the host is
the read-only base, as `qackage suggest PKG.apk` runs on a workstation). For every
package the printed stanza must pass `qackage validate` again; packages with programs,
libraries or modules must get a functional step, and for programs that step must fail
on a copy of the package whose program does nothing.

.ci/run installs the Debian packages; on a machine without one the test says so and skips.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from pkgfiles import debian_files, package_info

from qackage.apk.writer import PlannedFile, write_apk
from qackage.cli.main import main
from qackage.model import EntryKind

# Pipelines that exercise behaviour themselves (a `runs:` step always counts).
FUNCTIONAL_PIPELINES = frozenset({"test/daemon-check-output"})
# What the broken copies put in place of a program: it answers nothing and claims success.
SILENT_PROGRAM = b"#!/bin/sh\nexit 0\n"
_MERGED_DIRS = ("bin/", "sbin/", "lib/", "lib64/")


@dataclass(frozen=True)
class Real:
    """One package of the corpus: which Debian package it repacks, and what it must get."""

    name: str
    debian: str | None  # None: a metapackage with no files
    functional: bool = True  # ships programs, libraries or modules
    program: str | None = None  # the package path a functional step must exercise
    depends: tuple[str, ...] = ()
    description: str = ""
    # Why today's proposers find no functional step (a strict xfail: fixing it fails the test).
    gap: str = ""

    def __str__(self) -> str:
        return self.name


CORPUS = (
    Real("jq", "jq", program="usr/bin/jq"),
    Real("bc", "bc", program="usr/bin/bc"),
    Real("xz", "xz-utils", program="usr/bin/xz"),
    Real("lz4", "lz4", program="usr/bin/lz4"),
    Real("sqlite", "sqlite3", program="usr/bin/sqlite3"),
    Real("file", "file", program="usr/bin/file"),
    Real("gzip", "gzip", program="usr/bin/gzip"),
    Real("dbus-daemon", "dbus-daemon", program="usr/bin/dbus-daemon"),
    Real("libjq1", "libjq1"),
    Real("libexpat1", "libexpat1"),
    Real(
        "expat-dev",
        "libexpat1-dev",
        gap="library-checks: the headers probe prints each header's first 24 kB, comments included; "
        "XML_ExpatVersion is declared 40 kB into expat.h, so its prototype is never read",
    ),
    Real("zlib-dev", "zlib1g-dev"),
    Real("py3-distro", "python3-distro"),
    Real(
        "perl-error",
        "liberror-perl",
        gap="module-checks: Perl calls are tried on a module's exported functions; Error and Error::Simple "
        "export none (try/catch come from Error::subs, the rest is object-oriented), so only "
        "test/perl-module-check is proposed",
    ),
    Real("bzip2-doc", "bzip2-doc", functional=False),
    Real("jq-tools", None, functional=False, depends=("jq", "bc"), description="metapackage pulling in jq and bc"),
)
PROGRAMS = tuple(real for real in CORPUS if real.program)


def _merged_usr(path: str) -> str:
    return "usr/" + path if path.startswith(_MERGED_DIRS) else path


def wolfi_layout(files: list[PlannedFile]) -> list[PlannedFile]:
    """Debian's files with /bin, /sbin and /lib moved under /usr, links following them."""
    moved: dict[str, PlannedFile] = {}
    for planned in files:
        target = planned.link_target
        if target is not None and planned.kind is EntryKind.SYMLINK and target.startswith("/"):
            target = "/" + _merged_usr(target.lstrip("/"))
        moved.setdefault(
            _merged_usr(planned.path), dataclasses.replace(planned, path=_merged_usr(planned.path), link_target=target)
        )
    return list(moved.values())


def _files(real: Real) -> list[PlannedFile]:
    return [] if real.debian is None else wolfi_layout(debian_files(real.debian))


def _write(real: Real, folder: Path, files: list[PlannedFile]) -> Path:
    info = package_info(real.name, depends=real.depends)
    if real.description:
        info = dataclasses.replace(info, description=real.description)
    apk = folder / f"{real.name}-{info.version}.apk"
    write_apk(apk, info, files)
    return apk


@dataclass(frozen=True)
class Suggested:
    apk: Path
    files: list[PlannedFile]
    code: int
    stanza_file: Path

    @property
    def pipeline(self) -> list[dict[str, object]]:
        data = yaml.safe_load(self.stanza_file.read_text()) if self.stanza_file.exists() else None
        steps: list[dict[str, object]] = (data or {}).get("test", {}).get("pipeline", [])
        return steps


class Corpus:
    """Suggests once per package (the tests of one package share the run) in one cache."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.cache = folder / "cache"
        self._done: dict[str, Suggested] = {}

    def suggested(self, real: Real) -> Suggested:
        if real.name not in self._done:
            files = _files(real)
            apk = _write(real, self.folder / "good", files)
            stanza = self.folder / f"{real.name}.yaml"
            code = main(["suggest", str(apk), "--no-strength", "--cache-dir", str(self.cache), "-o", str(stanza)])
            self._done[real.name] = Suggested(apk, files, code, stanza)
        return self._done[real.name]

    def validate(self, apk: Path, stanza: Path) -> int:
        return main(["validate", str(apk), "--test", str(stanza), "--cache-dir", str(self.cache)])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return Corpus(tmp_path_factory.mktemp("real-suggest"))


def is_functional(step: dict[str, object]) -> bool:
    return "runs" in step or step.get("uses") in FUNCTIONAL_PIPELINES


@pytest.mark.parametrize("real", CORPUS, ids=str)
def test_suggested_stanza_passes_validation(
    corpus: Corpus, real: Real, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suggested = corpus.suggested(real)
    notes = capsys.readouterr().err
    assert suggested.code == 0, notes
    assert suggested.pipeline, f"no step for {real.name}: {notes}"
    assert corpus.validate(suggested.apk, suggested.stanza_file) == 0, capsys.readouterr().out


def _functional_cases() -> Iterator[object]:
    for real in CORPUS:
        if not real.functional:
            continue
        marks = [pytest.mark.xfail(strict=True, reason=real.gap)] if real.gap else []
        yield pytest.param(real, marks=marks, id=real.name)


@pytest.mark.parametrize("real", _functional_cases())
def test_packages_with_programs_libraries_or_modules_get_a_functional_step(corpus: Corpus, real: Real) -> None:
    suggested = corpus.suggested(real)
    assert suggested.code == 0
    assert any(is_functional(step) for step in suggested.pipeline), yaml.safe_dump(suggested.pipeline)


@pytest.mark.parametrize("real", PROGRAMS, ids=str)
def test_functional_steps_fail_when_the_program_does_nothing(corpus: Corpus, real: Real, tmp_path: Path) -> None:
    suggested = corpus.suggested(real)
    functional = [step for step in suggested.pipeline if is_functional(step)]
    assert functional, f"no functional step for {real.name}"
    # Only the functional steps: a help-check failing first would prove nothing about them.
    data = yaml.safe_load(suggested.stanza_file.read_text())
    data["test"]["pipeline"] = functional
    only = tmp_path / "functional.yaml"
    only.write_text(yaml.safe_dump(data, sort_keys=False))
    assert real.program is not None
    assert any(f.path == real.program for f in suggested.files), f"{real.program} is not in {real.name}"
    broken_files = [
        PlannedFile(f.path, data=SILENT_PROGRAM, mode=0o755) if f.path == real.program else f for f in suggested.files
    ]
    broken = _write(real, tmp_path / "broken", broken_files)
    assert corpus.validate(suggested.apk, only) == 0
    assert corpus.validate(broken, only) != 0, f"the functional steps of {real.name} pass on a silent {real.program}"
