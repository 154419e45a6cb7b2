"""Resolving paths inside a root as a chroot would (`qackage.apk.chroot`).

The table pins the rules on one merged-/usr tree; the properties run random trees, and
the strongest of them checks every answer against the kernel itself: the tree is made on
disk and opened with ``openat2(RESOLVE_IN_ROOT)``, the kernel's own "resolve as if this
folder were /".
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import os
import posixpath
import re
import struct
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qackage.analyze.base import PackageView
from qackage.apk.chroot import (
    FOLDER,
    MAX_HOPS,
    MISSING,
    OTHER,
    Found,
    Kind,
    Outcome,
    Walk,
    entry_found,
    split_path,
    walk,
)
from qackage.apk.installed import RootFS
from qackage.errors import InputError, UnsafeArchiveError
from qackage.model import Entry, EntryKind, PackageInfo

Tree = Mapping[str, Found]


def walk_in(tree: Tree, path: str, *, follow_last: bool = True, missing_last: bool = False) -> Walk:
    return walk(path, lambda real: tree.get(real, MISSING), follow_last=follow_last, missing_last=missing_last)


# --------------------------------------------------------------------------- the rules, by example

MERGED_USR: dict[str, Found] = {
    "usr": FOLDER,
    "usr/bin": FOLDER,
    "usr/bin/busybox": OTHER,
    "usr/bin/sh": Found.symlink("/bin/busybox"),
    "usr/lib": FOLDER,
    "usr/lib/libc.so.6": OTHER,
    "usr/lib/libc.so": Found.symlink("libc.so.6"),
    "usr/lib/up": Found.symlink("../../../.."),
    "bin": Found.symlink("usr/bin"),
    "lib": Found.symlink("usr/lib"),
    "lib64": Found.symlink("/usr/lib/"),
    "etc": FOLDER,
    "etc/passwd": OTHER,
    "etc/escape": Found.symlink("../../../etc/passwd"),
    "etc/host": Found.symlink("/etc"),
    "etc/as-folder": Found.symlink("passwd/"),
    "etc/through-file": Found.symlink("passwd/x"),
    "dangling": Found.symlink("/nowhere"),
    "empty": Found.symlink(""),
    "loop-a": Found.symlink("loop-b"),
    "loop-b": Found.symlink("/loop-a"),
    "self": Found.symlink("./self"),
    "here": Found.symlink("."),
    "grows": Found.symlink("grows/x"),
}

LIBC = ("usr/lib/libc.so", "usr/lib/libc.so.6")

CASES: list[tuple[str, dict[str, bool], Walk]] = [
    ("usr/lib/libc.so.6", {}, Walk(Outcome.RESOLVED, "usr/lib/libc.so.6")),
    ("/usr//lib/./libc.so.6", {}, Walk(Outcome.RESOLVED, "usr/lib/libc.so.6")),
    ("", {}, Walk(Outcome.RESOLVED, "")),
    ("/", {}, Walk(Outcome.RESOLVED, "")),
    # a symlinked folder is entered wherever it stands, through relative and absolute targets
    ("lib/libc.so", {}, Walk(Outcome.RESOLVED, "usr/lib/libc.so.6", LIBC)),
    ("lib64/libc.so", {}, Walk(Outcome.RESOLVED, "usr/lib/libc.so.6", LIBC)),
    ("bin/sh", {}, Walk(Outcome.RESOLVED, "usr/bin/busybox", ("usr/bin/sh", "bin/busybox", "usr/bin/busybox"))),
    # on request the last component is reported, not followed; the ones before it always are
    ("bin/sh", {"follow_last": False}, Walk(Outcome.RESOLVED, "usr/bin/sh", ("usr/bin/sh",))),
    ("lib", {"follow_last": False}, Walk(Outcome.RESOLVED, "lib")),
    ("lib/", {"follow_last": False}, Walk(Outcome.RESOLVED, "usr/lib", ("usr/lib/",))),
    # nothing climbs out of the root: ".." stops there, absolute targets start there
    ("../../etc/passwd", {}, Walk(Outcome.RESOLVED, "etc/passwd")),
    ("usr/lib/up", {}, Walk(Outcome.RESOLVED, "", ("",))),
    ("usr/lib/up/etc/passwd", {}, Walk(Outcome.RESOLVED, "etc/passwd", ("etc/passwd",))),
    ("etc/escape", {}, Walk(Outcome.RESOLVED, "etc/passwd", ("etc/passwd",))),
    ("etc/host/passwd", {}, Walk(Outcome.RESOLVED, "etc/passwd", ("etc/passwd",))),
    # ".." is the parent of what was reached, not a lexical shortcut: lib/.. is usr
    ("lib/../etc/passwd", {}, Walk(Outcome.MISSING, "usr/etc", ("usr/lib/../etc/passwd",))),
    ("lib/../bin/busybox", {}, Walk(Outcome.RESOLVED, "usr/bin/busybox", ("usr/lib/../bin/busybox",))),
    # missing components
    ("dangling", {}, Walk(Outcome.MISSING, "nowhere", ("nowhere",))),
    ("dangling", {"missing_last": True}, Walk(Outcome.RESOLVED, "nowhere", ("nowhere",))),
    ("dangling", {"follow_last": False}, Walk(Outcome.RESOLVED, "dangling")),
    ("etc/new", {"missing_last": True}, Walk(Outcome.RESOLVED, "etc/new")),
    ("tmp/new", {"missing_last": True}, Walk(Outcome.MISSING, "tmp")),
    ("tmp/..", {"missing_last": True}, Walk(Outcome.MISSING, "tmp")),
    ("dangling/x", {"missing_last": True}, Walk(Outcome.MISSING, "nowhere", ("nowhere/x",))),
    ("empty", {}, Walk(Outcome.MISSING, "empty")),
    # a file is no folder, however the path asks to go through it
    ("etc/passwd/x", {}, Walk(Outcome.NOT_A_FOLDER, "etc/passwd")),
    ("etc/passwd/..", {}, Walk(Outcome.NOT_A_FOLDER, "etc/passwd")),
    ("etc/passwd/", {}, Walk(Outcome.NOT_A_FOLDER, "etc/passwd")),
    ("etc/passwd/.", {"missing_last": True}, Walk(Outcome.NOT_A_FOLDER, "etc/passwd")),
    ("etc/through-file", {}, Walk(Outcome.NOT_A_FOLDER, "etc/passwd", ("etc/passwd/x",))),
    ("etc/as-folder", {}, Walk(Outcome.NOT_A_FOLDER, "etc/passwd", ("etc/passwd/",))),
    # a loop stops where it comes round, at the symlink it comes back to
    ("loop-a", {}, Walk(Outcome.LOOP, "loop-a", ("loop-b", "loop-a"))),
    ("loop-a", {"follow_last": False}, Walk(Outcome.RESOLVED, "loop-a")),
    ("loop-a/x", {"follow_last": False}, Walk(Outcome.LOOP, "loop-a", ("loop-b/x", "loop-a/x"))),
    ("self", {}, Walk(Outcome.LOOP, "self", ("self",))),
    # the same symlink again with a different rest of the path is no loop
    (
        "here/here/here/etc/passwd",
        {},
        Walk(Outcome.RESOLVED, "etc/passwd", ("here/here/etc/passwd", "here/etc/passwd", "etc/passwd")),
    ),
]


@pytest.mark.parametrize(("path", "options", "expected"), CASES, ids=[f"{p or '<root>'}-{o}" for p, o, _ in CASES])
def test_walk(path: str, options: dict[str, bool], expected: Walk) -> None:
    assert walk_in(MERGED_USR, path, **options) == expected


def test_walk_results_name_what_the_caller_needs() -> None:
    resolved = walk_in(MERGED_USR, "lib/libc.so")
    assert (resolved.resolved, resolved.looped) == ("usr/lib/libc.so.6", False)
    dangling = walk_in(MERGED_USR, "dangling")
    assert (dangling.resolved, dangling.looped) == (None, False)
    looped = walk_in(MERGED_USR, "loop-b")
    assert (looped.resolved, looped.looped) == (None, True)


def test_a_path_that_grows_with_each_hop_stops_at_the_hop_limit() -> None:
    walked = walk_in(MERGED_USR, "grows")  # grows -> grows/x -> grows/x/x -> ... never the same twice
    assert walked.outcome is Outcome.LOOP
    assert walked.path == "grows"
    assert len(walked.chain) == MAX_HOPS
    assert walked.chain[-1] == "grows" + "/x" * MAX_HOPS


def _relay(length: int) -> dict[str, Found]:
    """link0 -> link1 -> ... -> link<length-1> -> end, alternately relative and absolute,
    through a folder each so that the folders are entered on the way too."""
    tree: dict[str, Found] = {"end": OTHER}
    for index in range(length):
        following = f"d{index + 1}/link{index + 1}" if index + 1 < length else "end"
        tree[f"d{index}"] = FOLDER
        tree[f"d{index}/link{index}"] = Found.symlink(f"/{following}" if index % 2 else f"../{following}")
    return tree


@pytest.mark.parametrize("length", [1, 2, MAX_HOPS - 1, MAX_HOPS])
def test_chains_up_to_the_hop_limit_resolve(length: int) -> None:
    chain = (*(f"d{index}/link{index}" for index in range(1, length)), "end")
    assert walk_in(_relay(length), "d0/link0") == Walk(Outcome.RESOLVED, "end", chain)


def test_one_hop_more_than_the_limit_is_a_loop() -> None:
    walked = walk_in(_relay(MAX_HOPS + 1), "d0/link0")
    assert (walked.outcome, walked.path, len(walked.chain)) == (Outcome.LOOP, f"d{MAX_HOPS}/link{MAX_HOPS}", MAX_HOPS)


@pytest.mark.parametrize(
    ("max_hops", "expected"),
    [
        (0, Walk(Outcome.LOOP, "d0/link0")),
        (2, Walk(Outcome.LOOP, "d2/link2", ("d1/link1", "d2/link2"))),
        (3, Walk(Outcome.RESOLVED, "end", ("d1/link1", "d2/link2", "end"))),
    ],
)
def test_the_hop_limit_is_the_callers(max_hops: int, expected: Walk) -> None:
    tree = _relay(3)
    assert walk("d0/link0", lambda real: tree.get(real, MISSING), max_hops=max_hops) == expected


def test_no_hops_still_reports_a_final_symlink() -> None:
    tree = _relay(1)
    walked = walk("d0/link0", lambda real: tree.get(real, MISSING), follow_last=False, max_hops=0)
    assert walked == Walk(Outcome.RESOLVED, "d0/link0")


def test_a_negative_hop_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="max_hops must be 0 or more"):
        walk("x", lambda _real: MISSING, max_hops=-1)


def test_deep_folders_resolve_component_by_component() -> None:
    depth = 200
    folders = ["/".join(f"f{i}" for i in range(n)) for n in range(1, depth + 1)]
    tree: dict[str, Found] = dict.fromkeys(folders, FOLDER)
    tree[folders[-1] + "/top"] = Found.symlink("../" * (depth + 5) + "f0")  # climbs past the root: stops there
    asked: list[str] = []

    def lookup(real: str) -> Found:
        asked.append(real)
        return tree.get(real, MISSING)

    assert walk(folders[-1] + "/top/f1", lookup) == Walk(Outcome.RESOLVED, "f0/f1", ("f0/f1",))
    assert asked == [*folders, folders[-1] + "/top", "f0", "f0/f1"]


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("", []),
        ("/", []),
        ("./a", ["a"]),
        ("a//b", ["a", "b"]),
        ("a/", ["a", "."]),
        ("a/./.", ["a", "."]),
        ("/a/./b/", ["a", ".", "b", "."]),
        ("../..", ["..", ".."]),
    ],
)
def test_split_path_keeps_what_the_walk_needs(path: str, parts: list[str]) -> None:
    assert split_path(path) == parts


# --------------------------------------------------------------------------- random trees

NAMES = ("a", "b", "c")
ALL_PATHS = ["/".join(p) for depth in (1, 2, 3) for p in itertools.product(NAMES, repeat=depth)]
_components = st.lists(st.sampled_from((*NAMES, "..", ".")), max_size=5)


@st.composite
def _spelled_paths(draw: st.DrawFn) -> str:
    parts = draw(_components)
    absolute, trailing = draw(st.booleans()), draw(st.booleans())
    return ("/" if absolute else "") + "/".join(parts) + ("/" if trailing and parts else "")


# The kernel cannot make an empty symlink: every target names something, if only ".".
_targets = _spelled_paths().map(lambda text: text or ".")
_nodes = st.one_of(st.sampled_from((FOLDER, FOLDER, OTHER)), _targets.map(Found.symlink))


def _rooted(drawn: Mapping[str, Found]) -> dict[str, Found]:
    """Only what can exist: each path in a folder of the tree (or the root)."""
    tree: dict[str, Found] = {}
    for path in sorted(drawn, key=lambda p: (p.count("/"), p)):
        parent = posixpath.dirname(path)
        if not parent or tree.get(parent) == FOLDER:
            tree[path] = drawn[path]
    return tree


trees = st.dictionaries(st.sampled_from(ALL_PATHS), _nodes, max_size=14).map(_rooted)
queries = st.lists(_spelled_paths(), min_size=1, max_size=8)


def _names(path: str) -> list[str]:
    return path.split("/") if path else []


@given(tree=trees, query=_spelled_paths(), follow_last=st.booleans(), missing_last=st.booleans())
@settings(max_examples=400)
def test_walks_stay_inside_and_end_where_they_say(
    tree: dict[str, Found], query: str, follow_last: bool, missing_last: bool
) -> None:
    asked: list[str] = []

    def lookup(real: str) -> Found:
        asked.append(real)
        return tree.get(real, MISSING)

    walked = walk(query, lookup, follow_last=follow_last, missing_last=missing_last)
    # Only ever a plain path inside the root is asked about: nothing can lead outside.
    assert all(part not in ("", ".", "..") for real in asked for part in real.split("/"))
    assert len(walked.chain) <= MAX_HOPS
    names = _names(walked.path)
    assert all(part not in ("", ".", "..") for part in names)
    # every folder on the way is a real folder (or the root)
    assert all(tree.get("/".join(names[:n])) == FOLDER for n in range(1, len(names)))
    found = tree.get(walked.path, MISSING) if walked.path else FOLDER
    if walked.outcome is Outcome.RESOLVED:
        assert missing_last or found.kind is not Kind.MISSING
        assert not (follow_last and found.kind is Kind.SYMLINK)
        # a real path is its own resolution
        again = walk_in(tree, walked.path, follow_last=follow_last, missing_last=missing_last)
        assert again == Walk(Outcome.RESOLVED, walked.path)
    else:
        expected_kind = {Outcome.MISSING: Kind.MISSING, Outcome.NOT_A_FOLDER: Kind.OTHER, Outcome.LOOP: Kind.SYMLINK}
        assert found.kind is expected_kind[walked.outcome]


@given(tree=trees, query=_spelled_paths(), follow_last=st.booleans())
@settings(max_examples=400)
def test_each_step_of_the_chain_walks_on_the_same_way(tree: dict[str, Found], query: str, follow_last: bool) -> None:
    walked = walk_in(tree, query, follow_last=follow_last)
    if walked.outcome is Outcome.LOOP:
        return  # walked afresh, a loop may be found at another of its symlinks
    for index, step in enumerate(walked.chain):
        assert walk_in(tree, step, follow_last=follow_last) == Walk(
            walked.outcome, walked.path, walked.chain[index + 1 :]
        )


@given(tree=trees, query=_spelled_paths(), follow_last=st.booleans())
@settings(max_examples=400)
def test_a_missing_last_component_is_where_it_would_be_made(
    tree: dict[str, Found], query: str, follow_last: bool
) -> None:
    strict = walk_in(tree, query, follow_last=follow_last)
    lenient = walk_in(tree, query, follow_last=follow_last, missing_last=True)
    if strict.outcome is not Outcome.MISSING or lenient.outcome is not Outcome.RESOLVED:
        assert lenient == strict
        return
    assert lenient.path == strict.path  # the very component found missing ...
    assert lenient.chain == strict.chain
    parent = posixpath.dirname(lenient.path)
    assert parent == "" or tree.get(parent) == FOLDER  # ... in a folder that exists


# --------------------------------------------------------------------------- against the kernel

_SYS_OPENAT2 = 437  # the same on every Linux architecture (a syscall newer than the split tables)
_RESOLVE_IN_ROOT = 0x10
_KERNEL_ERRORS = {errno.ENOENT: Outcome.MISSING, errno.ENOTDIR: Outcome.NOT_A_FOLDER, errno.ELOOP: Outcome.LOOP}


def _open_in_root(root_fd: int, path: str, *, follow_last: bool) -> int:
    """openat2(root_fd, path, O_PATH, RESOLVE_IN_ROOT): a descriptor, or -errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    flags = os.O_PATH | os.O_CLOEXEC | (0 if follow_last else os.O_NOFOLLOW)
    how = struct.pack("=QQQ", flags, 0, _RESOLVE_IN_ROOT)
    fd = int(libc.syscall(_SYS_OPENAT2, root_fd, os.fsencode(path), how, ctypes.c_size_t(len(how))))
    return fd if fd >= 0 else -ctypes.get_errno()


def _make(root: Path, tree: Tree) -> None:
    for path in sorted(tree, key=lambda p: (p.count("/"), p)):
        where, found = root / path, tree[path]
        if found.kind is Kind.FOLDER:
            where.mkdir()
        elif found.kind is Kind.OTHER:
            where.write_bytes(b"")
        else:
            where.symlink_to(found.target)


@contextmanager
def _on_disk(tree: Tree) -> Iterator[tuple[Path, int]]:
    """The tree made in a fresh folder: (the folder, a descriptor of it)."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        _make(root, tree)
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            yield root, root_fd
        finally:
            os.close(root_fd)


def _same_file(root_fd: int, fd: int, real: str) -> bool:
    opened, ours = os.fstat(fd), os.stat(real or ".", dir_fd=root_fd, follow_symlinks=False)
    return (opened.st_dev, opened.st_ino) == (ours.st_dev, ours.st_ino)


def _assert_kernel_agrees(root_fd: int, path: str, walked: Walk, *, follow_last: bool) -> None:
    fd = _open_in_root(root_fd, path or ".", follow_last=follow_last)
    if fd < 0:
        assert walked.outcome is _KERNEL_ERRORS[-fd], (path, os.strerror(-fd), walked)
        return
    try:
        assert walked.outcome is Outcome.RESOLVED, (path, walked)
        assert _same_file(root_fd, fd, walked.path), (path, walked)
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def kernel_resolves_in_root() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("openat2 is Linux only")
    with _on_disk({"inside": FOLDER, "abs": Found.symlink("/inside")}) as (_root, root_fd):
        fd = _open_in_root(root_fd, "abs/../../abs", follow_last=True)
        if fd < 0:
            pytest.skip(f"openat2(RESOLVE_IN_ROOT) unavailable: {os.strerror(-fd)}")
        try:
            assert _same_file(root_fd, fd, "inside"), "RESOLVE_IN_ROOT did not resolve inside the root"
        finally:
            os.close(fd)


@pytest.mark.usefixtures("kernel_resolves_in_root")
@given(tree=trees, paths=queries, follow_last=st.booleans())
@settings(max_examples=300, deadline=None)
def test_the_kernel_resolves_every_path_the_same_way(
    tree: dict[str, Found], paths: list[str], follow_last: bool
) -> None:
    with _on_disk(tree) as (_root, root_fd):
        for path in paths:
            walked = walk_in(tree, path, follow_last=follow_last)
            _assert_kernel_agrees(root_fd, path, walked, follow_last=follow_last)


# The kernel has no "the last component may be missing" lookup, and no empty symlinks.
KERNEL_CASES = [case for case in CASES if not case[1].get("missing_last") and case[0] != "empty"]


@pytest.mark.usefixtures("kernel_resolves_in_root")
@pytest.mark.parametrize(
    ("path", "options", "expected"), KERNEL_CASES, ids=[f"{p or '<root>'}-{o}" for p, o, _ in KERNEL_CASES]
)
def test_the_kernel_agrees_with_the_table(path: str, options: dict[str, bool], expected: Walk) -> None:
    tree = {name: found for name, found in MERGED_USR.items() if name != "empty"}
    with _on_disk(tree) as (_root, root_fd):
        _assert_kernel_agrees(root_fd, path, expected, follow_last=options.get("follow_last", True))


# --------------------------------------------------------------------------- the callers' trees


@pytest.mark.parametrize(
    ("entry", "found"),
    [
        (None, MISSING),
        (Entry("usr", EntryKind.DIR, 0o755), FOLDER),
        (Entry("usr/bin/tool", EntryKind.FILE, 0o755), OTHER),
        (Entry("usr/bin/alias", EntryKind.HARDLINK, 0o755, link_target="usr/bin/tool"), OTHER),
        (Entry("lib", EntryKind.SYMLINK, 0o777, link_target="usr/lib"), Found(Kind.SYMLINK, "usr/lib")),
    ],
)
def test_what_a_package_entry_is_to_the_walk(entry: Entry | None, found: Found) -> None:
    assert entry_found(entry) == found


def _entries(tree: Tree) -> tuple[Entry, ...]:
    kinds = {Kind.FOLDER: EntryKind.DIR, Kind.OTHER: EntryKind.FILE, Kind.SYMLINK: EntryKind.SYMLINK}
    return tuple(
        Entry(path, kinds[found.kind], 0o777 if found.kind is Kind.SYMLINK else 0o755, link_target=found.target or None)
        for path, found in sorted(tree.items())
    )


@given(tree=trees, paths=queries, follow_last=st.booleans())
@settings(max_examples=150, deadline=None)
def test_a_root_folder_and_a_package_resolve_like_the_walk(
    tree: dict[str, Found], paths: list[str], follow_last: bool
) -> None:
    view = PackageView(PackageInfo(name="tree", version="1-r0"), _entries(tree))
    with _on_disk(tree) as (root, _root_fd):
        rootfs = RootFS(root)
        try:
            for path in paths:
                walked = walk_in(tree, path, follow_last=follow_last)
                if follow_last:
                    assert view.follow(path) == (walked.chain, walked.resolved, walked.looped)
                if walked.outcome is Outcome.RESOLVED:
                    assert rootfs.resolve(path, follow_last=follow_last) == walked.path
                    continue
                error, message = {
                    Outcome.MISSING: (InputError, f"/{walked.path} does not exist"),
                    Outcome.NOT_A_FOLDER: (InputError, f"/{walked.path} is not a folder"),
                    Outcome.LOOP: (UnsafeArchiveError, "too many symlinks"),
                }[walked.outcome]
                with pytest.raises(error, match=re.escape(message)):
                    rootfs.resolve(path, follow_last=follow_last)
        finally:
            rootfs.close()


def test_a_package_need_not_list_its_folders() -> None:
    entries = (
        Entry("usr/lib/libz.so.1.3", EntryKind.FILE, 0o755),
        Entry("usr/lib/libz.so.1", EntryKind.SYMLINK, 0o777, link_target="libz.so.1.3"),
        Entry("lib", EntryKind.SYMLINK, 0o777, link_target="usr/lib"),
        Entry("usr/share/doc", EntryKind.SYMLINK, 0o777, link_target="../lib/"),
    )
    view = PackageView(PackageInfo(name="zlib", version="1.3-r0"), entries)
    assert view.follow("lib/libz.so.1") == (("usr/lib/libz.so.1", "usr/lib/libz.so.1.3"), "usr/lib/libz.so.1.3", False)
    assert view.resolve("usr/share/doc") == "usr/lib"  # a folder only its files imply
    assert view.resolve("usr/lib/libz.so.1.3/x") is None
