"""The install scripts (``.pre-install``, ``.trigger`` ...) of an .apk, so a mutant keeps them.

`ApkArchive` parses ``.PKGINFO`` and names the other control files; a mutant also needs
their bytes. This reads the control segment again (it is a few KiB at the head of the file)
with the same stream readers and limits.
"""

from __future__ import annotations

from pathlib import Path

from qackage.apk.gzstream import CompressedInput, Member
from qackage.apk.limits import DEFAULT_LIMITS, Limits
from qackage.apk.tarstream import TarReader
from qackage.errors import InputError


def _segment_files(segment: Member, limits: Limits, label: str) -> list[tuple[str, bytes]]:
    reader = TarReader(segment, limits, label)
    files = [(member.name, reader.read_body(limits.max_control_bytes)) for member in reader]
    segment.drain()
    return files


def read_control_scripts(apk: Path, *, limits: Limits = DEFAULT_LIMITS) -> tuple[tuple[str, bytes], ...]:
    """Every control file but ``.PKGINFO`` (which a mutant rewrites), in archive order."""
    label = str(apk)
    try:
        stream = apk.open("rb")
    except OSError as exc:
        raise InputError(f"{label}: cannot open: {exc.strerror or exc}") from exc
    with stream:
        source = CompressedInput(stream, limits, label)
        files = _segment_files(Member(source, cap=limits.max_control_bytes), limits, label)
        if files and files[0][0].startswith(".SIGN."):
            files = _segment_files(Member(source, cap=limits.max_control_bytes), limits, label)
    return tuple((name, data) for name, data in files if name != ".PKGINFO")
