"""Package repositories as apk and melange name them: a folder or an http(s) URL that
holds ``<arch>/APKINDEX.tar.gz`` next to the ``.apk`` files it lists (the ``<arch>``
folder itself is accepted too).

Remote indexes and packages are downloaded into a cache folder: indexes revalidated
with ``If-None-Match`` / ``If-Modified-Since``, packages keyed by their index checksum,
written atomically, capped in size and checked against the index's ``C:`` checksum
before use. Every failure is a `RepositoryError` naming what to fix.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import HTTPResponse
from pathlib import Path
from typing import IO

from qackage import __version__
from qackage.apk.index import INDEX_NAME, Index, IndexEntry, package_checksum, read_index, read_index_file
from qackage.apk.limits import GIB
from qackage.apk.signature import Keyring
from qackage.errors import QackageError, RepositoryError

DOWNLOAD_CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class HttpSettings:
    timeout: float = 30.0  # seconds without progress before giving up
    max_index_bytes: int = 1 * GIB
    max_package_bytes: int = 8 * GIB
    user_agent: str = f"qackage/{__version__}"


DEFAULT_HTTP = HttpSettings()

# What a package file name may look like: apk names and versions use these characters.
_SAFE_FILENAME = re.compile(r"^[A-Za-z0-9+_@][A-Za-z0-9+_.@~-]*\.apk$")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qackage"


def is_url(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))


def _safe_filename(entry: IndexEntry, where: str) -> str:
    name = entry.filename
    if not _SAFE_FILENAME.match(name) or ".." in name:
        raise RepositoryError(f"{where}: refusing the package file name {name!r} from the index")
    return name


# --------------------------------------------------------------------------- HTTP


def _open_url(url: str, settings: HttpSettings, headers: dict[str, str]) -> HTTPResponse | None:
    """GET ``url``: the response, None for 304 Not Modified, RepositoryError for the rest."""
    if not is_url(url):
        raise RepositoryError(f"{url}: only http:// and https:// URLs are supported")
    request = urllib.request.Request(url, headers={"User-Agent": settings.user_agent, **headers})  # noqa: S310
    try:
        response: HTTPResponse = urllib.request.urlopen(request, timeout=settings.timeout)  # noqa: S310
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 304:
            return None
        hint = " (not there: wrong URL or --arch?)" if exc.code == 404 else ""
        raise RepositoryError(f"{url}: HTTP {exc.code} {exc.reason}{hint}") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise RepositoryError(f"{url}: timed out after {settings.timeout:g} s") from exc
        raise RepositoryError(f"{url}: cannot connect: {exc.reason}") from exc
    except TimeoutError as exc:
        raise RepositoryError(f"{url}: timed out after {settings.timeout:g} s") from exc
    except OSError as exc:
        raise RepositoryError(f"{url}: {exc.strerror or exc}") from exc
    return response


def _copy_capped(response: HTTPResponse, out: IO[bytes], cap: int, url: str, settings: HttpSettings) -> int:
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) > cap:
        raise RepositoryError(f"{url}: the server announces {length} bytes, more than the {cap} bytes allowed")
    total = 0
    try:
        while chunk := response.read(DOWNLOAD_CHUNK):
            total += len(chunk)
            if total > cap:
                raise RepositoryError(f"{url}: sent more than the {cap} bytes allowed")
            out.write(chunk)
    except TimeoutError as exc:
        raise RepositoryError(f"{url}: timed out after {settings.timeout:g} s") from exc
    except OSError as exc:
        raise RepositoryError(f"{url}: download failed: {exc.strerror or exc}") from exc
    if length is not None and length.isdigit() and total != int(length):
        raise RepositoryError(f"{url}: connection closed after {total} of {length} bytes")
    return total


@contextlib.contextmanager
def _partial_file(target: Path) -> Iterator[tuple[IO[bytes], Path]]:
    """A temporary file next to ``target`` that is removed unless the caller moved it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, kept on success
        dir=target.parent, prefix=f".{target.name}.", suffix=".partial", delete=False
    )
    path = Path(handle.name)
    try:
        with handle:
            yield handle, path
    finally:
        path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- index cache


@dataclass(frozen=True, slots=True)
class _CachedIndex:
    folder: Path

    @property
    def archive(self) -> Path:
        return self.folder / INDEX_NAME

    @property
    def meta(self) -> Path:
        return self.folder / "meta.json"

    def validators(self) -> dict[str, str]:
        """Conditional-request headers for what we have, or none when nothing usable is cached."""
        if not self.archive.is_file():
            return {}
        try:
            meta = json.loads(self.meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        headers: dict[str, str] = {}
        if isinstance(meta, dict):
            if isinstance(meta.get("etag"), str):
                headers["If-None-Match"] = meta["etag"]
            if isinstance(meta.get("last_modified"), str):
                headers["If-Modified-Since"] = meta["last_modified"]
        return headers

    def remember(self, url: str, etag: str | None, last_modified: str | None) -> None:
        data = {"url": url, "etag": etag, "last_modified": last_modified}
        with _partial_file(self.meta) as (out, partial):
            out.write(json.dumps(data).encode())
            out.flush()
            partial.replace(self.meta)

    def forget(self) -> None:
        self.meta.unlink(missing_ok=True)
        self.archive.unlink(missing_ok=True)


def _fetch_index(url: str, cache: _CachedIndex, settings: HttpSettings) -> bool:
    """Bring the cached copy of ``url`` up to date. True when it was downloaded anew."""
    validators = cache.validators()
    response = _open_url(url, settings, validators)
    if response is None:
        if not validators:
            raise RepositoryError(f"{url}: the server answered 304 to an unconditional request")
        return False
    with response:
        with _partial_file(cache.archive) as (out, partial):
            _copy_capped(response, out, settings.max_index_bytes, url, settings)
            out.flush()
            cache.meta.unlink(missing_ok=True)
            partial.replace(cache.archive)
        cache.remember(url, response.headers.get("ETag"), response.headers.get("Last-Modified"))
    return True


def _read_cached(cache: _CachedIndex, url: str, keyring: Keyring | None) -> Index:
    """Read the cached copy, labelled by its URL; a copy that fails is dropped so that
    it is never revalidated and reused."""
    try:
        with cache.archive.open("rb") as handle:
            return read_index(handle, url, keyring=keyring)
    except OSError as exc:
        cache.forget()
        raise RepositoryError(f"{url}: cached copy unreadable: {exc.strerror or exc}") from exc
    except QackageError:
        cache.forget()
        raise


# --------------------------------------------------------------------------- repository


class Repository:
    """An opened repository for one architecture: its index entries and a way to get
    each package as a local file."""

    def __init__(
        self,
        name: str,
        arch: str,
        location: str,
        index: Index,
        *,
        cache_dir: Path | None,
        settings: HttpSettings,
    ) -> None:
        self.name = name  # what the user wrote
        self.arch = arch
        self.location = location  # the <arch> folder or URL the packages sit in
        self.index = index
        self._cache_dir = cache_dir
        self._settings = settings

    def __repr__(self) -> str:
        return f"Repository({self.name!r}, arch={self.arch!r}, {len(self.entries)} packages)"

    @property
    def entries(self) -> tuple[IndexEntry, ...]:
        return self.index.entries

    @property
    def is_remote(self) -> bool:
        return is_url(self.location)

    @classmethod
    def open(
        cls,
        spec: str,
        arch: str,
        *,
        keyring: Keyring | None = None,
        cache_dir: Path | None = None,
        settings: HttpSettings = DEFAULT_HTTP,
    ) -> Repository:
        if not arch or "/" in arch:
            raise RepositoryError(f"{spec}: bad architecture {arch!r}")
        if is_url(spec):
            return cls._open_remote(spec, arch, keyring, cache_dir or default_cache_dir(), settings)
        if "://" in spec:
            raise RepositoryError(f"{spec}: only folders and http(s):// URLs are supported")
        return cls._open_local(spec, arch, keyring, settings)

    @classmethod
    def _open_local(cls, spec: str, arch: str, keyring: Keyring | None, settings: HttpSettings) -> Repository:
        folder = Path(spec).expanduser()
        if not folder.exists():
            raise RepositoryError(f"{spec}: no such folder")
        if not folder.is_dir():
            raise RepositoryError(f"{spec}: not a folder (give the repository folder, not a file)")
        for candidate in (folder / arch, folder):
            if (candidate / INDEX_NAME).is_file():
                index = read_index_file(candidate / INDEX_NAME, keyring=keyring)
                return cls(spec, arch, str(candidate), index, cache_dir=None, settings=settings)
        raise RepositoryError(
            f"{spec}: no {arch}/{INDEX_NAME} (nor {INDEX_NAME}) inside: build the index first, or check --arch"
        )

    @classmethod
    def _open_remote(
        cls, spec: str, arch: str, keyring: Keyring | None, cache_dir: Path, settings: HttpSettings
    ) -> Repository:
        parsed = urllib.parse.urlsplit(spec)
        path = parsed.path.rstrip("/")
        if posixpath.basename(path) != arch:
            path = f"{path}/{arch}"
        location = urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, path, "", ""))
        index_url = f"{location}/{INDEX_NAME}"
        cache = _CachedIndex(cache_dir / "indexes" / hashlib.sha256(index_url.encode()).hexdigest()[:32])
        fresh = _fetch_index(index_url, cache, settings)
        try:
            index = _read_cached(cache, index_url, keyring)
        except QackageError:
            if fresh:
                raise
            # The cached copy went bad on disk: fetch it once more from scratch.
            _fetch_index(index_url, cache, settings)
            index = _read_cached(cache, index_url, keyring)
        return cls(spec, arch, location, index, cache_dir=cache_dir, settings=settings)

    # -- packages ------------------------------------------------------------------------

    def fetch(self, entry: IndexEntry) -> Path:
        """The package as a local file whose control checksum matches the index."""
        filename = _safe_filename(entry, self.name)
        if self.is_remote:
            return self._fetch_remote(entry, filename)
        path = Path(self.location) / filename
        if not path.is_file():
            raise RepositoryError(f"{path}: listed in the index but missing (rebuild the index?)")
        if entry.file_size and path.stat().st_size != entry.file_size:
            raise RepositoryError(f"{path}: size differs from the index (stale index? rebuild it)")
        if package_checksum(path) != entry.checksum:
            raise RepositoryError(f"{path}: checksum differs from the index (stale index? rebuild it)")
        return path

    def _fetch_remote(self, entry: IndexEntry, filename: str) -> Path:
        assert self._cache_dir is not None
        target = self._cache_dir / "packages" / entry.checksum_hex / filename
        if target.is_file() and self._matches(target, entry):
            return target
        url = f"{self.location}/{urllib.parse.quote(filename)}"
        cap = self._settings.max_package_bytes
        if entry.file_size:
            cap = min(cap, entry.file_size)
        response = _open_url(url, self._settings, {})
        if response is None:
            raise RepositoryError(f"{url}: the server answered 304 to an unconditional request")
        with response, _partial_file(target) as (out, partial):
            size = _copy_capped(response, out, cap, url, self._settings)
            out.flush()
            if entry.file_size and size != entry.file_size:
                raise RepositoryError(f"{url}: got {size} bytes, the index says {entry.file_size}")
            if not self._matches(partial, entry):
                raise RepositoryError(f"{url}: checksum differs from the index (tampered or stale mirror)")
            partial.replace(target)
        return target

    @staticmethod
    def _matches(path: Path, entry: IndexEntry) -> bool:
        try:
            if entry.file_size and path.stat().st_size != entry.file_size:
                return False
            return package_checksum(path) == entry.checksum
        except (OSError, QackageError):
            return False

    # -- lookups -------------------------------------------------------------------------

    def find(self, name: str) -> tuple[IndexEntry, ...]:
        """Every entry named ``name`` (all versions)."""
        return tuple(e for e in self.entries if e.info.name == name)
