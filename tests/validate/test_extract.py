"""The extraction cache: real packages in, trees out, once; hostile packages leave nothing."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import rawtar
from conftest_repo import pkg
from rawtar import apk, end, header, member
from test_hostile import CASES, Case

from qackage.apk.archive import ApkArchive
from qackage.apk.installed import record_for_archive
from qackage.apk.writer import PlannedFile, write_apk
from qackage.build import RepositoryBuild
from qackage.errors import CorruptArchiveError
from qackage.model import EntryKind
from qackage.validate.extract import (
    ENTRIES,
    PARTIAL_PREFIX,
    ExtractCache,
    default_cache_folder,
    stored_dir_mode,
    stored_file_mode,
)


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_tree_holds_what_the_archive_declares(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    path = fixture_repo.package("busybox").path
    cache = ExtractCache(tmp_path / "cache")
    cached = cache.get(path)
    assert cache.extractions == 1
    assert cache.hits == 0
    with ApkArchive.open(path) as archive:
        info = archive.info
        for item in archive.members():
            entry = item.entry
            on_disk = cached.tree / entry.path
            if entry.kind is EntryKind.SYMLINK:
                assert str(on_disk.readlink()) == entry.link_target
            elif entry.kind is EntryKind.FILE:
                assert on_disk.read_bytes() == b"".join(item.chunks())
                assert stat.S_IMODE(on_disk.lstat().st_mode) == stored_file_mode(entry.mode)
            else:
                assert on_disk.is_dir()
                assert not on_disk.is_symlink()
    assert cached.info == info
    assert cached.record == record_for_archive(path)
    assert {e.path for e in cached.entries} == set(cached.record.paths()) | {d.path for d in cached.record.dirs}
    assert str((cached.tree / "bin" / "sh").readlink()) == "/usr/bin/busybox"
    assert cached.label == "busybox-1.35.0-r0"


def test_second_get_is_a_hit_in_this_and_in_a_new_process(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    path = fixture_repo.package("glibc").path
    first = ExtractCache(tmp_path / "cache")
    cached = first.get(path)
    again = first.get(path)
    assert again == cached
    assert (first.extractions, first.hits) == (1, 1)
    fresh = ExtractCache(tmp_path / "cache")  # what another run of qackage sees
    assert fresh.get(path) == cached
    assert (fresh.extractions, fresh.hits) == (0, 1)
    assert _entries(tmp_path / "cache") == [cached.key]


def test_default_folder_follows_xdg_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_folder() == tmp_path / "xdg" / "qackage" / "extracted"
    assert ExtractCache().folder == tmp_path / "xdg" / "qackage" / "extracted"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_folder() == tmp_path / "home" / ".cache" / "qackage" / "extracted"


def test_key_follows_content_not_name(tmp_path: Path) -> None:
    info = pkg("same", "1.0-r0")
    one = tmp_path / "one" / "same-1.0-r0.apk"
    two = tmp_path / "two" / "same-1.0-r0.apk"
    copy = tmp_path / "copy" / "same-1.0-r0.apk"
    write_apk(one, info, [PlannedFile("usr/share/same", data=b"first build\n")])
    write_apk(two, info, [PlannedFile("usr/share/same", data=b"second build\n")])
    copy.parent.mkdir()
    copy.write_bytes(one.read_bytes())
    cache = ExtractCache(tmp_path / "cache")
    assert cache.key_for(one) != cache.key_for(two)
    assert cache.key_for(one) == cache.key_for(copy)
    assert (cache.get(one).tree / "usr/share/same").read_bytes() == b"first build\n"
    assert (cache.get(two).tree / "usr/share/same").read_bytes() == b"second build\n"
    assert cache.get(copy).key == cache.get(one).key
    assert cache.extractions == 2
    assert "/" not in cache.key_for(one)
    assert "+" not in cache.key_for(one)


def test_modes_and_hardlinks(tmp_path: Path) -> None:
    path = tmp_path / "modes-1.0-r0.apk"
    files = [
        PlannedFile("usr/bin/su", mode=0o4755, data=b"#!/bin/sh\n"),
        PlannedFile("usr/bin/wall", mode=0o2755, data=b"#!/bin/sh\n"),
        PlannedFile("etc/secret", mode=0o000, data=b"hidden\n"),
        PlannedFile("srv/ro", EntryKind.DIR, mode=0o555),
        PlannedFile("srv/ro/inside", data=b"in a read-only folder\n"),
        PlannedFile("usr/bin/twin", EntryKind.HARDLINK, link_target="usr/bin/su"),
    ]
    write_apk(path, pkg("modes"), files)
    cache = ExtractCache(tmp_path / "cache")
    cached = cache.get(path)
    tree = cached.tree

    def mode(relative: str) -> int:
        return stat.S_IMODE((tree / relative).lstat().st_mode)

    assert mode("usr/bin/su") == 0o755  # set-uid is never stored in the cache
    assert mode("usr/bin/wall") == 0o755
    assert mode("etc/secret") == 0o400  # always readable, so that roots can copy it
    assert mode("srv/ro") == 0o755  # always owner-writable, so that it can be removed
    assert (tree / "usr/bin/twin").stat().st_ino == (tree / "usr/bin/su").stat().st_ino
    declared = {e.path: e.mode for e in cached.entries}
    assert stat.S_IMODE(declared["usr/bin/su"]) == 0o4755  # the real modes are kept as data
    assert stat.S_IMODE(declared["etc/secret"]) == 0o000
    assert stat.S_IMODE(declared["srv/ro"]) == 0o555
    assert stored_file_mode(0o6711) == 0o711 | 0o400
    assert stored_dir_mode(0o1555) == 0o1755
    cache.discard(cached.key)
    assert _entries(tmp_path / "cache") == []


def test_implied_folders_are_created_and_recorded(tmp_path: Path) -> None:
    path = tmp_path / "implied.apk"
    path.write_bytes(apk(member("opt/deep/file", b"x") + end()))
    cached = ExtractCache(tmp_path / "cache").get(path)
    kinds = [(e.path, e.kind) for e in cached.entries]
    assert kinds == [("opt", EntryKind.DIR), ("opt/deep", EntryKind.DIR), ("opt/deep/file", EntryKind.FILE)]
    assert (cached.tree / "opt/deep/file").read_bytes() == b"x"


def test_package_without_datahash_is_keyed_by_its_whole_file(tmp_path: Path) -> None:
    first = tmp_path / "a.apk"
    second = tmp_path / "b.apk"
    first.write_bytes(apk(member("usr/one", b"one") + end(), datahash=False))
    second.write_bytes(apk(member("usr/one", b"two") + end(), datahash=False))
    cache = ExtractCache(tmp_path / "cache")
    # Same control segment, different data: only the file digest tells them apart.
    assert cache.key_for(first) != cache.key_for(second)
    assert "-file-" in cache.key_for(first)
    assert (cache.get(second).tree / "usr/one").read_bytes() == b"two"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_package_leaves_nothing_in_the_cache(case: Case, tmp_path: Path) -> None:
    path = tmp_path / "evil.apk"
    path.write_bytes(case.build())
    cache = ExtractCache(tmp_path / "cache")
    with pytest.raises(case.error, match=case.message):
        cache.get(path)
    assert _entries(tmp_path / "cache") == []
    assert cache.extractions == 0


def test_bad_datahash_syntax_never_becomes_a_path(tmp_path: Path) -> None:
    path = tmp_path / "evil.apk"
    path.write_bytes(
        apk(member("usr/f", b"x") + end(), pkginfo=rawtar.PKGINFO + "datahash = ../../x\n", datahash=False)
    )
    with pytest.raises(CorruptArchiveError, match="not a sha256"):
        ExtractCache(tmp_path / "cache").get(path)
    assert _entries(tmp_path / "cache") == []


def test_symlink_member_is_written_as_a_link_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    path = tmp_path / "links.apk"
    tree = member("usr/", typeflag=b"5", mode=0o755) + header("usr/out", typeflag=b"2", linkname=str(outside)) + end()
    path.write_bytes(apk(tree))
    cached = ExtractCache(tmp_path / "cache").get(path)
    assert (cached.tree / "usr/out").readlink() == outside
    assert list(outside.iterdir()) == []


def test_damaged_entry_is_unpacked_again(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    path = fixture_repo.package("hello").path
    cached = ExtractCache(tmp_path / "cache").get(path)
    (cached.folder / ENTRIES).write_text("not json")
    fresh = ExtractCache(tmp_path / "cache")
    again = fresh.get(path)
    assert (fresh.extractions, fresh.hits) == (1, 0)
    assert again.entries == cached.entries
    assert _entries(tmp_path / "cache") == [cached.key]


def test_stale_partials_are_removed(tmp_path: Path) -> None:
    cache = ExtractCache(tmp_path / "cache")
    old = tmp_path / "cache" / f"{PARTIAL_PREFIX}old"
    new = tmp_path / "cache" / f"{PARTIAL_PREFIX}new"
    (old / "tree" / "ro").mkdir(parents=True)
    (old / "tree" / "ro").chmod(0o555)
    new.mkdir()
    os.utime(old, (time.time() - 3 * 86400, time.time() - 3 * 86400))
    assert cache.remove_stale_partials() == 1
    assert _entries(tmp_path / "cache") == [new.name]


_RACER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from qackage.validate.extract import ExtractCache
    cache_dir, apk, ready, go = (Path(a) for a in sys.argv[1:5])
    cache = ExtractCache(cache_dir)
    ready.touch()
    while not go.exists():
        time.sleep(0.001)
    package = cache.get(apk)
    print(package.key, cache.extractions, cache.lost_races, len(package.entries))
    """
)


def test_two_processes_unpacking_one_package_agree(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    """Both unpack; one rename wins; the other drops its copy and uses the winner's."""
    path = fixture_repo.package("busybox").path
    for attempt in range(5):
        cache_dir = tmp_path / f"cache{attempt}"
        go = tmp_path / f"go{attempt}"
        flags = [tmp_path / f"ready{attempt}-{n}" for n in range(2)]
        racers = [
            subprocess.Popen(
                [sys.executable, "-c", _RACER, str(cache_dir), str(path), str(flag), str(go)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for flag in flags
        ]
        deadline = time.monotonic() + 30
        while not all(f.exists() for f in flags) and time.monotonic() < deadline:
            time.sleep(0.005)
        go.touch()
        results = [racer.communicate(timeout=60)[0].split() for racer in racers]
        assert all(racer.returncode == 0 for racer in racers)
        keys = {r[0] for r in results}
        assert len(keys) == 1
        assert _entries(cache_dir) == sorted(keys)  # one entry, no partial left
        assert {r[3] for r in results} == {str(len(ExtractCache(cache_dir).get(path).entries))}
        if sum(int(r[2]) for r in results) == 1:
            return  # the race happened and was handled
    pytest.fail("the two processes never raced in 5 attempts")
