"""Package members, real .apk files and facet runs for the analyze tests.

Build members (`text_file`, `symlink` ...), write them into a real .apk with `write_apk`,
stream it once through `capture`, hand the view to a facet. `debian_files` repacks what
dpkg installed on this machine, for tests against real-world trees.

Imported as ``pkgfiles``: tests/ is on pytest's pythonpath and mypy's mypy_path.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pytest

from qackage.analyze.base import Facet, PackageView
from qackage.analyze.capture import capture
from qackage.apk.archive import ApkArchive
from qackage.apk.writer import PlannedFile, write_apk
from qackage.model import Dependency, EntryKind, Executable, Facts, PackageInfo

# --------------------------------------------------------------------------- members


def text_file(path: str, text: str, mode: int = 0o644) -> PlannedFile:
    return PlannedFile(path, data=text.encode(), mode=mode)


def gz_file(path: str, text: str) -> PlannedFile:
    return PlannedFile(path, data=gzip.compress(text.encode(), mtime=0))


def symlink(path: str, target: str) -> PlannedFile:
    return PlannedFile(path, EntryKind.SYMLINK, 0o777, link_target=target)


def hardlink(path: str, target: str) -> PlannedFile:
    return PlannedFile(path, EntryKind.HARDLINK, 0o644, link_target=target)


def debian_files(package: str, keep: Callable[[str], bool] = lambda _path: True) -> list[PlannedFile]:
    """Files dpkg installed for ``package`` (those ``keep`` accepts), as package members.

    Skips the calling test when dpkg or the package is missing on this machine.
    """
    if shutil.which("dpkg") is None:
        pytest.skip("dpkg is not available: cannot repack an installed Debian package")
    listed = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        pytest.skip(f"Debian package {package} is not installed on this machine")
    planned: list[PlannedFile] = []
    for line in listed.stdout.splitlines():
        if not line.startswith("/") or line == "/.":
            continue  # "diverted by ..." notes and the root itself
        member = line.lstrip("/")
        source = Path(line)
        if not keep(member):
            continue
        if source.is_symlink() and source.is_dir():
            continue  # a directory dpkg lists, seen through a merged-/usr link (/lib -> usr/lib)
        if source.is_symlink():
            planned.append(symlink(member, str(source.readlink())))
        elif source.is_file() and os.access(source, os.R_OK):
            planned.append(PlannedFile(member, source=source, mode=source.stat().st_mode & 0o7777))
    if not planned:
        pytest.skip(f"Debian package {package} has no readable files to repack")
    return planned


# --------------------------------------------------------------------------- packages and facets


def package_info(name: str = "fixture", *, origin: str = "", depends: Sequence[str] = ()) -> PackageInfo:
    return PackageInfo(
        name=name,
        version="1.0-r0",
        arch="x86_64",
        origin=origin or name,
        description="fixture",
        depends=tuple(Dependency(d) for d in depends),
    )


def program(path: str, *, on_path: bool = True, elf: bool = True) -> Executable:
    """An executable as the executables facet reports it."""
    return Executable(path, path.rsplit("/", 1)[-1], on_path=on_path, elf=elf)


def capture_view(
    tmp_path: Path, facets: Sequence[Facet], files: Iterable[PlannedFile], info: PackageInfo | None = None
) -> PackageView:
    """Write ``files`` into a real .apk, then stream it once through the facets' capture."""
    chosen = info or package_info()
    apk = tmp_path / f"{chosen.name}-{chosen.version}.apk"
    write_apk(apk, chosen, files)
    with ApkArchive.open(apk) as archive:
        view = capture(archive, facets)
        assert archive.check.datahash_verified
    return view


def analyze(
    tmp_path: Path,
    facet: Facet,
    files: Iterable[PlannedFile],
    *,
    earlier: Facts | None = None,
    info: PackageInfo | None = None,
) -> Facts:
    """What ``facet`` finds in a real .apk of ``files``, given the ``earlier`` facets' facts."""
    return facet.analyze(capture_view(tmp_path, [facet], files, info), earlier or Facts())
