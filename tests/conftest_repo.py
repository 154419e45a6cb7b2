"""Builders for real packages, repositories, installed roots and a local HTTP server.

Everything here writes real files with qackage's own writer (`write_apk`,
`write_index`) so the tests read exactly what melange and apk produce.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

from qackage.apk.archive import ApkArchive
from qackage.apk.index import write_index
from qackage.apk.installed import record_for_archive, write_installed_db
from qackage.apk.pkginfo import parse_atoms
from qackage.apk.writer import PlannedFile, SigningKey, write_apk
from qackage.model import EntryKind, PackageInfo

ARCH = "x86_64"


def pkg(
    name: str,
    version: str = "1.0-r0",
    *,
    depends: str = "",
    provides: str = "",
    install_if: str = "",
    priority: int | None = None,
    arch: str = ARCH,
    description: str = "",
) -> PackageInfo:
    return PackageInfo(
        name=name,
        version=version,
        arch=arch,
        origin=name,
        description=description or f"the {name} package",
        url=f"https://example.org/{name}",
        license="MIT",
        build_date=1700000000,
        depends=parse_atoms(depends),
        provides=parse_atoms(provides),
        install_if=parse_atoms(install_if),
        provider_priority=priority,
    )


# --------------------------------------------------------------------------- package records

# The lines apk writes first in a package's record, in APKINDEX and in the installed
# database alike; each test adds the keys it is about after them.
BUSYBOX_RECORD_HEAD = """\
C:Q1kb4i6A6wVyuSgFxKj0Ll9UxKMjw=
P:busybox
V:1.36.1-r7
A:x86_64
S:575312
I:1052672
T:Swiss army knife of embedded Linux
U:https://busybox.net
L:GPL-2.0-only
o:busybox
"""

GLIBC_RECORD_HEAD = """\
C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=
P:glibc
V:2.39-r5
A:x86_64
S:100
I:200
T:the GNU C library
U:
L:LGPL-2.1-or-later
o:glibc
"""


def default_files(info: PackageInfo) -> list[PlannedFile]:
    return [
        PlannedFile(f"usr/share/doc/{info.name}/README", data=f"{info.name} {info.version}\n".encode()),
        PlannedFile(f"usr/bin/{info.name}", mode=0o755, data=b"#!/bin/sh\necho " + info.name.encode() + b"\n"),
    ]


def build_apk(
    folder: Path,
    info: PackageInfo,
    files: Sequence[PlannedFile] | None = None,
    *,
    signing_key: SigningKey | None = None,
) -> tuple[PackageInfo, Path]:
    path = folder / f"{info.name}-{info.version}.apk"
    written = write_apk(path, info, default_files(info) if files is None else files, signing_key=signing_key)
    return written, path


def build_repo(
    root: Path,
    packages: Sequence[PackageInfo],
    *,
    arch: str = ARCH,
    signing_key: SigningKey | None = None,
    description: str = "test repository",
) -> Path:
    """``root/<arch>/`` with one .apk per package and an APKINDEX.tar.gz; returns ``root``."""
    arch_dir = root / arch
    built = [build_apk(arch_dir, info) for info in packages]
    write_index(arch_dir, built, signing_key=signing_key, description=description)
    return root


# --------------------------------------------------------------------------- installed roots


def unpack_into(root: Path, apk_path: Path) -> None:
    """Lay a package's tree into ``root`` (a plain test helper, not a safe extractor)."""
    with ApkArchive.open(apk_path) as apk:
        for member in apk.members():
            entry = member.entry
            target = root / entry.path
            if entry.kind is EntryKind.DIR:
                target.mkdir(parents=True, exist_ok=True)
                target.chmod(entry.mode)
            elif entry.kind is EntryKind.SYMLINK:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(entry.link_target or "")
            elif entry.kind is EntryKind.HARDLINK:
                os.link(root / (entry.link_target or ""), target)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as out:
                    for chunk in member.chunks():
                        out.write(chunk)
                target.chmod(entry.mode)


def install_into(root: Path, apk_paths: Sequence[Path], db_path: str = "lib/apk/db/installed") -> None:
    """Unpack packages into ``root`` and write the apk database for them."""
    records = []
    for path in apk_paths:
        unpack_into(root, path)
        records.append(record_for_archive(path))
    db = root / db_path
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_text(write_installed_db(records), encoding="utf-8")


# --------------------------------------------------------------------------- HTTP


@dataclass
class ServedRequest:
    path: str
    headers: dict[str, str]
    status: int = 0


@dataclass
class ServerOptions:
    etags: bool = False
    slow_prefix: str | None = None  # requests under this path never get an answer until shutdown
    omit_length: bool = False  # answer without Content-Length (the body ends when the connection closes)
    requests: list[ServedRequest] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


class _Handler(http.server.SimpleHTTPRequestHandler):
    options: ServerOptions

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_response(self, code: int, message: str | None = None) -> None:
        if self.options.requests:
            self.options.requests[-1].status = code
        super().send_response(code, message)

    def send_header(self, keyword: str, value: str) -> None:
        if not (self.options.omit_length and keyword.lower() == "content-length"):
            super().send_header(keyword, value)

    def end_headers(self) -> None:
        etag = getattr(self, "_etag", None)
        if etag:
            self.send_header("ETag", etag)
        super().end_headers()

    def do_GET(self) -> None:
        options = self.options
        options.requests.append(ServedRequest(self.path, dict(self.headers.items())))
        if options.slow_prefix and self.path.startswith(options.slow_prefix):
            options.release.wait(10)
            return
        local = Path(self.translate_path(self.path))
        if options.etags and local.is_file():
            etag = '"' + hashlib.sha1(local.read_bytes()).hexdigest() + '"'
            self._etag = etag
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.end_headers()
                return
        super().do_GET()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (timeout tests) is not a server failure


class RepoServer:
    """Serve a folder on 127.0.0.1 for the duration of a ``with`` block."""

    def __init__(
        self, folder: Path, *, etags: bool = False, slow_prefix: str | None = None, omit_length: bool = False
    ) -> None:
        self.options = ServerOptions(etags=etags, slow_prefix=slow_prefix, omit_length=omit_length)
        handler = type("Handler", (_Handler,), {"options": self.options})
        self._server = _Server(("127.0.0.1", 0), partial(handler, directory=str(folder)))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[ServedRequest]:
        return self.options.requests

    def __enter__(self) -> RepoServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.options.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
