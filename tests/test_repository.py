from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest_repo import ARCH, RepoServer, build_apk, build_repo, pkg, unused_port

from qackage.apk.archive import ApkArchive
from qackage.apk.index import INDEX_NAME, package_checksum, write_index
from qackage.apk.repository import HttpSettings, Repository
from qackage.apk.signature import Keyring
from qackage.apk.writer import SigningKey
from qackage.errors import RepositoryError, SignatureError

# --------------------------------------------------------------------------- local folders


def test_local_repository_by_its_root_and_by_its_arch_folder(tmp_path: Path) -> None:
    root = build_repo(tmp_path / "repo", [pkg("foo"), pkg("bar", "2.1-r3")])
    for spec in (str(root), str(root / ARCH)):
        repo = Repository.open(spec, ARCH)
        assert repo.name == spec
        assert repo.location == str(root / ARCH)
        assert not repo.is_remote
        assert sorted(e.filename for e in repo.entries) == ["bar-2.1-r3.apk", "foo-1.0-r0.apk"]
        (bar,) = repo.find("bar")
        path = repo.fetch(bar)
        assert path == root / ARCH / "bar-2.1-r3.apk"
        with ApkArchive.open(path) as apk:
            assert apk.info.version == "2.1-r3"


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="no such folder"):
        Repository.open(str(tmp_path / "nowhere"), ARCH)


def test_a_file_is_not_a_repository(tmp_path: Path) -> None:
    _, apk = build_apk(tmp_path, pkg("foo"))
    with pytest.raises(RepositoryError, match="not a folder"):
        Repository.open(str(apk), ARCH)


def test_missing_index(tmp_path: Path) -> None:
    (tmp_path / "repo" / ARCH).mkdir(parents=True)
    with pytest.raises(RepositoryError, match=f"no {ARCH}/APKINDEX.tar.gz"):
        Repository.open(str(tmp_path / "repo"), ARCH)


def test_wrong_arch_finds_no_index(tmp_path: Path) -> None:
    root = build_repo(tmp_path / "repo", [pkg("foo")])
    with pytest.raises(RepositoryError, match="check --arch"):
        Repository.open(str(root), "aarch64")


def test_other_url_schemes_are_refused() -> None:
    with pytest.raises(RepositoryError, match="only folders and http"):
        Repository.open("ftp://example.org/os", ARCH)


def test_local_fetch_notices_a_stale_index(tmp_path: Path) -> None:
    root = build_repo(tmp_path / "repo", [pkg("foo")])
    repo = Repository.open(str(root), ARCH)
    (entry,) = repo.entries
    # rebuilt with other content but the index not regenerated
    build_apk(root / ARCH, pkg("foo", description="rebuilt with a longer description than before"))
    with pytest.raises(RepositoryError, match="stale index"):
        repo.fetch(entry)
    (root / ARCH / entry.filename).unlink()
    with pytest.raises(RepositoryError, match="listed in the index but missing"):
        repo.fetch(entry)


def test_local_signed_index_with_keyring(tmp_path: Path) -> None:
    key = SigningKey.generate("local.rsa.pub")
    root = build_repo(tmp_path / "repo", [pkg("foo")], signing_key=key)
    key.write_public(tmp_path / "keys")
    repo = Repository.open(str(root), ARCH, keyring=Keyring.load(tmp_path / "keys"))
    assert repo.index.signed_by == "local.rsa.pub"
    other = SigningKey.generate("other.rsa.pub")
    other.write_public(tmp_path / "other-keys")
    with pytest.raises(SignatureError):
        Repository.open(str(root), ARCH, keyring=Keyring.load(tmp_path / "other-keys"))


# --------------------------------------------------------------------------- HTTP


def test_http_repository_downloads_and_verifies(tmp_path: Path) -> None:
    root = build_repo(tmp_path / "served", [pkg("foo"), pkg("bar", "2.0-r0", depends="foo")])
    cache = tmp_path / "cache"
    with RepoServer(root) as server:
        repo = Repository.open(server.url + "/", ARCH, cache_dir=cache)
        assert repo.is_remote
        assert repo.location == f"{server.url}/{ARCH}"
        (bar,) = repo.find("bar")
        path = repo.fetch(bar)
        assert path.read_bytes() == (root / ARCH / "bar-2.0-r0.apk").read_bytes()
        assert path.is_relative_to(cache / "packages" / bar.checksum_hex)
        assert package_checksum(path) == bar.checksum
        # a second fetch is served from the cache
        count = len(server.requests)
        assert repo.fetch(bar) == path
        assert len(server.requests) == count
    assert not list(cache.rglob("*.partial"))


def test_http_arch_folder_url_is_accepted(tmp_path: Path) -> None:
    root = build_repo(tmp_path / "served", [pkg("foo")])
    with RepoServer(root) as server:
        repo = Repository.open(f"{server.url}/{ARCH}", ARCH, cache_dir=tmp_path / "cache")
        assert [e.info.name for e in repo.entries] == ["foo"]
        assert server.requests[0].path == f"/{ARCH}/{INDEX_NAME}"


def test_index_is_revalidated_with_last_modified(tmp_path: Path) -> None:
    root = build_repo(tmp_path / "served", [pkg("foo")])
    cache = tmp_path / "cache"
    with RepoServer(root) as server:
        Repository.open(server.url, ARCH, cache_dir=cache)
        again = Repository.open(server.url, ARCH, cache_dir=cache)
        assert [r.status for r in server.requests] == [200, 304]
        assert "If-Modified-Since" in server.requests[1].headers
        assert [e.info.name for e in again.entries] == ["foo"]
        # the index changes upstream: the next open sees it
        arch_dir = root / ARCH
        built = [build_apk(arch_dir, pkg(name)) for name in ("foo", "newer")]
        write_index(arch_dir, built)
        later = time.time() + 100
        os.utime(arch_dir / INDEX_NAME, (later, later))
        third = Repository.open(server.url, ARCH, cache_dir=cache)
        assert server.requests[-1].status == 200
        assert sorted(e.info.name for e in third.entries) == ["foo", "newer"]


def test_index_is_revalidated_with_etag(tmp_path: Path) -> None:
    root = build_repo(tmp_path / "served", [pkg("foo")])
    cache = tmp_path / "cache"
    with RepoServer(root, etags=True) as server:
        Repository.open(server.url, ARCH, cache_dir=cache)
        Repository.open(server.url, ARCH, cache_dir=cache)
        assert [r.status for r in server.requests] == [200, 304]
        assert server.requests[1].headers.get("If-None-Match", "").startswith('"')


def test_signed_http_index(tmp_path: Path) -> None:
    key = SigningKey.generate("remote.rsa.pub")
    root = build_repo(tmp_path / "served", [pkg("foo")], signing_key=key)
    key.write_public(tmp_path / "keys")
    stranger = SigningKey.generate("stranger.rsa.pub")
    stranger.write_public(tmp_path / "stranger-keys")
    cache = tmp_path / "cache"
    with RepoServer(root) as server:
        repo = Repository.open(server.url, ARCH, keyring=Keyring.load(tmp_path / "keys"), cache_dir=cache)
        assert repo.index.signed_by == "remote.rsa.pub"
        with pytest.raises(SignatureError, match=f"{server.url}/{ARCH}/{INDEX_NAME}"):
            Repository.open(server.url, ARCH, keyring=Keyring.load(tmp_path / "stranger-keys"), cache_dir=cache)


def test_tampered_download_is_refused_and_not_cached(tmp_path: Path) -> None:
    root = build_repo(tmp_path / "served", [pkg("foo")])
    cache = tmp_path / "cache"
    apk = root / ARCH / "foo-1.0-r0.apk"
    with RepoServer(root) as server:
        repo = Repository.open(server.url, ARCH, cache_dir=cache)
        (entry,) = repo.entries
        data = bytearray(apk.read_bytes())
        data[40] ^= 0xFF  # inside the control segment, same size
        apk.write_bytes(bytes(data))
        with pytest.raises(RepositoryError, match="checksum differs from the index"):
            repo.fetch(entry)
    assert not [p for p in cache.rglob("*") if p.is_file() and p.suffix in (".apk", ".partial")]


def test_download_larger_than_the_index_says_is_refused(tmp_path: Path) -> None:
    root = build_repo(tmp_path / "served", [pkg("foo")])
    with RepoServer(root) as server:
        repo = Repository.open(server.url, ARCH, cache_dir=tmp_path / "cache")
        (entry,) = repo.entries
        apk = root / ARCH / entry.filename
        apk.write_bytes(apk.read_bytes() + b"\0" * 4096)
        with pytest.raises(RepositoryError, match="more than the"):
            repo.fetch(entry)


@pytest.mark.parametrize(("omit_length", "message"), [(False, "announces"), (True, "sent")])
def test_index_size_cap(tmp_path: Path, omit_length: bool, message: str) -> None:
    root = build_repo(tmp_path / "served", [pkg("foo")])
    settings = HttpSettings(max_index_bytes=100)
    with (
        RepoServer(root, omit_length=omit_length) as server,
        pytest.raises(RepositoryError, match=f"{message}.*more than the 100 bytes allowed"),
    ):
        Repository.open(server.url, ARCH, cache_dir=tmp_path / "cache", settings=settings)
    assert not list((tmp_path / "cache").rglob("APKINDEX*"))


def test_download_without_content_length(tmp_path: Path) -> None:
    root = build_repo(tmp_path / "served", [pkg("foo")])
    with RepoServer(root, omit_length=True) as server:
        repo = Repository.open(server.url, ARCH, cache_dir=tmp_path / "cache")
        path = repo.fetch(repo.entries[0])
        assert path.read_bytes() == (root / ARCH / "foo-1.0-r0.apk").read_bytes()


def test_http_404_names_the_url(tmp_path: Path) -> None:
    root = build_repo(tmp_path / "served", [pkg("foo")])
    with RepoServer(root) as server, pytest.raises(RepositoryError, match="HTTP 404") as caught:
        Repository.open(server.url, "riscv64", cache_dir=tmp_path / "cache")
    assert f"{server.url}/riscv64/{INDEX_NAME}" in caught.value.message
    assert "--arch" in caught.value.message


def test_missing_package_on_the_server(tmp_path: Path) -> None:
    root = build_repo(tmp_path / "served", [pkg("foo")])
    with RepoServer(root) as server:
        repo = Repository.open(server.url, ARCH, cache_dir=tmp_path / "cache")
        (root / ARCH / "foo-1.0-r0.apk").unlink()
        with pytest.raises(RepositoryError, match="HTTP 404"):
            repo.fetch(repo.entries[0])


def test_connection_refused(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{unused_port()}/os"
    with pytest.raises(RepositoryError, match="cannot connect"):
        Repository.open(url, ARCH, cache_dir=tmp_path / "cache", settings=HttpSettings(timeout=2))


def test_timeout(tmp_path: Path) -> None:
    root = build_repo(tmp_path / "served", [pkg("foo")])
    started = time.monotonic()
    with RepoServer(root, slow_prefix="/") as server, pytest.raises(RepositoryError, match=r"timed out after 0\.3 s"):
        Repository.open(server.url, ARCH, cache_dir=tmp_path / "cache", settings=HttpSettings(timeout=0.3))
    assert time.monotonic() - started < 8


def test_a_corrupt_cached_index_is_fetched_again(tmp_path: Path) -> None:
    root = build_repo(tmp_path / "served", [pkg("foo")])
    cache = tmp_path / "cache"
    with RepoServer(root) as server:
        Repository.open(server.url, ARCH, cache_dir=cache)
        (cached,) = cache.rglob(INDEX_NAME)
        cached.write_bytes(b"garbage")
        repo = Repository.open(server.url, ARCH, cache_dir=cache)
        assert [e.info.name for e in repo.entries] == ["foo"]
        assert [r.status for r in server.requests] == [200, 304, 200]
