"""Shared helpers for the language-facet tests: build a real .apk, stream it, analyze it.

Imported by the test modules next to it (pytest puts this directory on ``sys.path``).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest

from qackage.analyze.base import Facet, PackageView
from qackage.analyze.capture import capture
from qackage.apk.archive import ApkArchive
from qackage.apk.writer import PlannedFile, write_apk
from qackage.model import EntryKind, Facts, PackageInfo


def text_file(path: str, text: str, mode: int = 0o644) -> PlannedFile:
    return PlannedFile(path, data=text.encode(), mode=mode)


def symlink(path: str, target: str) -> PlannedFile:
    return PlannedFile(path, EntryKind.SYMLINK, 0o777, link_target=target)


def capture_apk(tmp_path: Path, facet: Facet, files: Iterable[PlannedFile], name: str = "fixture") -> PackageView:
    """Write ``files`` into a real .apk, then stream it once through ``facet``'s capture."""
    apk = tmp_path / f"{name}-1.0-r0.apk"
    write_apk(apk, PackageInfo(name=name, version="1.0-r0", arch="x86_64", description="fixture"), files)
    with ApkArchive.open(apk) as archive:
        view = capture(archive, [facet])
        assert archive.check.datahash_verified
    return view


def analyze_apk(tmp_path: Path, facet: Facet, files: Iterable[PlannedFile], name: str = "fixture") -> Facts:
    return facet.analyze(capture_apk(tmp_path, facet, files, name), Facts())


def dpkg_files(package: str) -> list[PlannedFile]:
    """The files Debian installed for ``package``, as members of a new package.

    Skips the calling test when dpkg or the package is missing on this machine.
    """
    if shutil.which("dpkg") is None:
        pytest.skip("dpkg is not available: cannot repack an installed Debian package")
    listed = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        pytest.skip(f"Debian package {package} is not installed")
    planned: list[PlannedFile] = []
    for line in listed.stdout.splitlines():
        if not line.startswith("/") or line == "/.":
            continue  # "diverted by ..." notes and the root itself
        source = Path(line)
        member = line.lstrip("/")
        if source.is_symlink():
            planned.append(symlink(member, str(source.readlink())))
        elif source.is_file():
            planned.append(PlannedFile(member, source=source, mode=source.stat().st_mode & 0o7777))
    if not planned:
        pytest.skip(f"Debian package {package} lists no files")
    return planned
