"""Property: whatever bytes an .apk holds, analysis ends in a clean error or a valid result."""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qackage.analyze.engine import analyze_source
from qackage.apk.archive import ApkArchive
from qackage.apk.limits import MIB, Limits
from qackage.apk.writer import PlannedFile, write_apk
from qackage.errors import QackageError
from qackage.model import Analysis, EntryKind, PackageInfo

# Small caps so that a mutated size field cannot make a single example slow.
FUZZ_LIMITS = Limits(max_unpacked_bytes=8 * MIB, max_entries=2000)


def _seed_files() -> list[PlannedFile]:
    true_binary = Path(shutil.which("true") or "/bin/true")
    return [
        PlannedFile("usr/bin/tool", source=true_binary, mode=0o755),
        PlannedFile("usr/bin/tool-alias", EntryKind.SYMLINK, 0o777, link_target="tool"),
        PlannedFile("usr/bin/report", data=b"#!/bin/sh\necho report\n", mode=0o755),
        PlannedFile("usr/lib/pkgconfig/tool.pc", data=b"prefix=/usr\nName: tool\nVersion: 1\nLibs: -ltool\n"),
        PlannedFile("usr/include/tool.h", data=b"#include <stdio.h>\nint tool(void);\n"),
        PlannedFile("usr/lib/python3.12/site-packages/toolpy/__init__.py", data=b"def hello():\n    return 1\n"),
        PlannedFile("usr/share/man/man1/tool.1.gz", data=gzip.compress(b".TH TOOL 1\n")),
        PlannedFile("etc/tool/tool.conf", data=b"port = 8080\n"),
    ]


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("seed") / "tool-1.0-r0.apk"
    write_apk(path, PackageInfo(name="tool", version="1.0-r0", arch="x86_64"), _seed_files())
    return path.read_bytes()


def _analyze_bytes(data: bytes) -> Analysis | QackageError:
    with tempfile.NamedTemporaryFile(suffix=".apk") as handle:
        handle.write(data)
        handle.flush()
        try:
            with ApkArchive.open(handle.name, limits=FUZZ_LIMITS) as archive:
                return analyze_source(archive)
        except QackageError as error:
            return error


def _split_segments(apk: bytes) -> tuple[bytes, bytes]:
    """(control gzip member, decompressed data tar) of an unsigned APK."""
    inflater = zlib.decompressobj(wbits=31)
    inflater.decompress(apk)  # stops at the end of the first member
    control_len = len(apk) - len(inflater.unused_data)
    return apk[:control_len], gzip.decompress(apk[control_len:])


def _reassemble(pkginfo_prefix: bytes, data_tar: bytes) -> bytes:
    data_gz = gzip.compress(data_tar, mtime=0)
    info = pkginfo_prefix + f"datahash = {hashlib.sha256(data_gz).hexdigest()}\n".encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        member = tarfile.TarInfo(".PKGINFO")
        member.size = len(info)
        tar.addfile(member, io.BytesIO(info))
    return gzip.compress(buffer.getvalue(), mtime=0) + data_gz


FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=6))
def test_byte_flips_in_the_file(seed: bytes, flips: list[tuple[int, int]]) -> None:
    data = bytearray(seed)
    for position, value in flips:
        data[position % len(data)] = value
    result = _analyze_bytes(bytes(data))
    assert isinstance(result, (Analysis, QackageError))


@FUZZ
@given(cut=st.integers(min_value=0), extra=st.binary(max_size=64))
def test_truncation_and_trailing_bytes(seed: bytes, cut: int, extra: bytes) -> None:
    result = _analyze_bytes(seed[: cut % (len(seed) + 1)] + extra)
    assert isinstance(result, (Analysis, QackageError))


@FUZZ
@given(
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=12),
)
def test_mutations_inside_the_data_tar_with_valid_datahash(seed: bytes, flips: list[tuple[int, int]]) -> None:
    """Mutate the *decompressed* tar and re-seal it, so the parsers, not gzip's CRC, meet the damage."""
    _control, data_tar = _split_segments(seed)
    mutated = bytearray(data_tar)
    for position, value in flips:
        mutated[position % len(mutated)] = value
    apk = _reassemble(b"pkgname = tool\npkgver = 1.0-r0\narch = x86_64\n", bytes(mutated))
    result = _analyze_bytes(apk)
    assert isinstance(result, (Analysis, QackageError))


@FUZZ
@given(pkginfo=st.binary(max_size=300))
def test_arbitrary_pkginfo(seed: bytes, pkginfo: bytes) -> None:
    _control, data_tar = _split_segments(seed)
    result = _analyze_bytes(_reassemble(pkginfo + b"\n", data_tar))
    assert isinstance(result, (Analysis, QackageError))


def test_unmutated_seed_analyzes(seed: bytes) -> None:
    result = _analyze_bytes(seed)
    assert isinstance(result, Analysis), result
    assert result.check.datahash_verified
