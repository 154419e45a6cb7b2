"""Build the root filesystem a test runs in, from packages, the way apko builds melange's test image.

    info = build_root(dest, package_under_test=Path("hello.apk"), packages=["wolfi-base"],
                      repositories=[repo], cache=ExtractCache(), arch="x86_64")
    info.root, info.installed, info.uid, info.gid

Steps: resolve the closure (`qackage.apk.resolve`; the package under test is always the
*preferred* package for its name, so a local build beats any repository copy whatever
the versions); fetch and unpack each package through the `ExtractCache`; plan the root
as data (`qackage.validate.rootplan`: apk's overwrite rules, symlinked folders entered
as apk would); then write the plan into ``dest`` with copies of the cached files.

Writing uses descriptor-relative, ``O_NOFOLLOW`` calls along paths the plan proved to be
plain folders, so nothing is ever written outside ``dest``. Copies, never hardlinks into
the cache: a test may write into its root and must not change what the next root is
built from. Files are copied with ``copy_file_range`` (a reflink where the file system
can, an in-kernel copy otherwise).
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from qackage.apk.repository import Repository
from qackage.apk.resolve import resolve
from qackage.errors import EnvironmentProblem, InputError, ResolutionError
from qackage.model import Accounts, Entry, EntryKind
from qackage.validate.accounts import merge_accounts, run_as_ids
from qackage.validate.extract import CachedPackage, DirectoryHandles, ExtractCache, remove_tree, write_all
from qackage.validate.report import InstalledPackage, TestEnvironmentReport
from qackage.validate.rootplan import (
    GROUPS_FILE,
    INSTALLED_DB,
    MOUNT_POINTS,
    USERS_FILE,
    WORKSPACE,
    Layout,
    Node,
    Overwrite,
    describe_problems,
    describe_unmet,
    finish_layout,
    install_order,
    lay_packages,
    overwrite_decision,
    replaces_priority,
)

UNDER_TEST = "package under test"
NOARCH = frozenset({"", "noarch", "all"})
MAX_ACCOUNT_FILE_BYTES = 4 << 20
_COPY_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class RootInfo:
    """A built test root."""

    root: Path
    arch: str
    installed: tuple[InstalledPackage, ...]  # in install order, dependencies first
    world: tuple[str, ...]  # what was asked for (etc/apk/world)
    uid: int  # who the test runs as (accounts.run-as)
    gid: int

    @property
    def installed_db(self) -> Path:
        return self.root / INSTALLED_DB

    @property
    def workspace(self) -> Path:
        """Where the sandbox binds the workspace (``/home/build``)."""
        return self.root / WORKSPACE

    def environment_report(self, warnings: Sequence[str] = ()) -> TestEnvironmentReport:
        return TestEnvironmentReport(mode="repository", installed=self.installed, warnings=tuple(warnings))


# --------------------------------------------------------------------------- writing the plan


def applied_mode(mode: int, privileged: bool) -> int:
    """The permission bits a root gets. Set-uid/gid only when we run as root: only then do
    files get the owners the package meant, while a set-uid file owned by an unprivileged
    builder would run as that builder for anyone who can reach the root."""
    bits = stat.S_IMODE(mode)
    return bits if privileged else bits & ~(stat.S_ISUID | stat.S_ISGID)


class _DamagedCacheEntry(Exception):
    def __init__(self, tree: Path, path: str) -> None:
        super().__init__(f"{tree}: {path} is missing")
        self.tree = tree
        self.path = path


def _copy_data(source: int, target: int) -> None:
    size = os.fstat(source).st_size
    copied = 0
    try:
        while copied < size:
            sent = os.copy_file_range(source, target, size - copied)
            if sent == 0:
                break
            copied += sent
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EPERM):
            raise
        os.lseek(source, copied, os.SEEK_SET)
        os.lseek(target, copied, os.SEEK_SET)
        while chunk := os.read(source, _COPY_CHUNK):
            write_all(target, chunk)


class _Writer:
    def __init__(self, dest: Path, privileged: bool) -> None:
        self._root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        self._dirs = DirectoryHandles(self._root_fd)
        self._privileged = privileged

    def close(self) -> None:
        self._dirs.close()
        os.close(self._root_fd)

    def _owner(self, entry: Entry) -> tuple[int, int] | None:
        """The owner to set, when we can and it differs from what creating gave (root)."""
        if not self._privileged or (entry.uid, entry.gid) == (0, 0):
            return None
        return entry.uid, entry.gid

    def write(self, nodes: Mapping[str, Node]) -> None:
        for real, node in nodes.items():
            parent, name = posixpath.split(real)
            parent_fd = self._dirs.open(parent)
            kind = node.entry.kind
            if kind is EntryKind.DIR:
                os.mkdir(name, 0o700, dir_fd=parent_fd)  # the real mode once its children are in
            elif kind is EntryKind.SYMLINK:
                os.symlink(node.entry.link_target or "", name, dir_fd=parent_fd)
                owner = self._owner(node.entry)
                if owner is not None:
                    os.chown(name, *owner, dir_fd=parent_fd, follow_symlinks=False)
            elif kind is EntryKind.HARDLINK and node.hardlink_to is not None and self._same_file(nodes, node):
                target_parent, target_name = posixpath.split(node.hardlink_to)
                target_fd = self._dirs.open(target_parent)
                parent_fd = self._dirs.open(parent)
                os.link(target_name, name, src_dir_fd=target_fd, dst_dir_fd=parent_fd, follow_symlinks=False)
            else:
                self._write_file(name, parent_fd, node)
        for real, node in reversed(list(nodes.items())):
            if node.entry.kind is EntryKind.DIR:
                self._finish_folder(real, node.entry)

    @staticmethod
    def _same_file(nodes: Mapping[str, Node], node: Node) -> bool:
        """Whether the file a hardlink shares is still the one its package installed (no
        later package replaced it); otherwise the hardlink becomes a copy."""
        target = nodes.get(node.hardlink_to or "")
        return (
            target is not None
            and target.owner == node.owner
            and target.content is None
            and target.entry.path == node.entry.link_target
        )

    def _write_file(self, name: str, parent_fd: int, node: Node) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        if node.content is not None:
            fd = os.open(name, flags, 0o600, dir_fd=parent_fd)
            try:
                write_all(fd, node.content)
                self._finish_file(fd, node.entry)
            finally:
                os.close(fd)
            return
        assert node.tree is not None
        try:
            source = os.open(node.tree / node.entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise _DamagedCacheEntry(node.tree, node.entry.path) from exc
        try:
            fd = os.open(name, flags, 0o600, dir_fd=parent_fd)
            try:
                _copy_data(source, fd)
                self._finish_file(fd, node.entry)
            finally:
                os.close(fd)
        finally:
            os.close(source)

    def _finish_file(self, fd: int, entry: Entry) -> None:
        owner = self._owner(entry)
        if owner is not None:
            os.fchown(fd, *owner)  # before chmod: chown clears set-uid/gid bits
        os.fchmod(fd, applied_mode(entry.mode, self._privileged))

    def _finish_folder(self, real: str, entry: Entry) -> None:
        parent, name = posixpath.split(real)
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self._dirs.open(parent))
        try:
            owner = self._owner(entry)
            if owner is not None:
                os.fchown(fd, *owner)
            os.fchmod(fd, applied_mode(entry.mode, self._privileged))
        finally:
            os.close(fd)


def write_layout(layout: Layout, dest: Path, *, privileged: bool | None = None) -> None:
    """Create every planned node under the (empty) folder ``dest``."""
    writer = _Writer(dest, os.geteuid() == 0 if privileged is None else privileged)
    try:
        writer.write(layout.nodes)
    finally:
        writer.close()


# --------------------------------------------------------------------------- building a root


@dataclass(frozen=True, slots=True)
class _Layer:
    """A resolved package, unpacked, with where it came from."""

    cached: CachedPackage
    source: str  # for the report: UNDER_TEST or the repository


def _read_node(node: Node | None, cap: int) -> str:
    """The text of a planned file (shipped in a package, or written by the builder)."""
    if node is None:
        return ""
    if node.content is not None:
        data = node.content
    else:
        assert node.tree is not None
        path = node.tree / node.entry.path
        try:
            with path.open("rb") as handle:
                data = handle.read(cap + 1)
        except FileNotFoundError as exc:
            raise _DamagedCacheEntry(node.tree, node.entry.path) from exc
        if len(data) > cap:
            raise InputError(f"/{node.entry.path} from {node.owner} is larger than {cap} bytes")
    return data.decode("utf-8", errors="replace")


def _check_arch(arch: str, repositories: Sequence[Repository]) -> None:
    if not arch or "/" in arch:
        raise InputError(f"bad architecture {arch!r}")
    for repository in repositories:
        if repository.arch != arch:
            raise InputError(f"{repository.name}: opened for {repository.arch}, but the test root is for {arch}")


def _prepare_dest(dest: Path) -> bool:
    """Make ``dest`` an empty folder; True when we created it."""
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise InputError(f"{dest}: the test root must be a new or empty folder")
    if dest.exists():
        if any(dest.iterdir()):
            raise InputError(f"{dest}: the test root must be a new or empty folder (it has files)")
        return False
    try:
        dest.mkdir(parents=True)
    except OSError as exc:
        raise EnvironmentProblem(f"{dest}: cannot create the test root: {exc.strerror}") from exc
    dest.chmod(0o755)
    return True


def _empty(dest: Path, created: bool) -> None:
    if created:
        remove_tree(dest)
        return
    for child in list(dest.iterdir()):
        remove_tree(child)


def _resolve_layers(
    under_test: CachedPackage | None,
    world: Sequence[str],
    repositories: Sequence[Repository],
    cache: ExtractCache,
) -> tuple[_Layer, ...]:
    preferred = [under_test.info] if under_test is not None else []
    resolution = resolve(world, repositories, preferred=preferred)
    if not resolution.ok:
        raise ResolutionError(f"cannot build the test root: {describe_unmet(resolution)}")
    layers: list[_Layer] = []
    for package in install_order(resolution.packages):
        if package.repository is None:
            assert under_test is not None
            layers.append(_Layer(under_test, UNDER_TEST))
            continue
        repository = next(r for r in repositories if r is package.repository)
        assert package.entry is not None
        cached = cache.get(repository.fetch(package.entry))
        if (cached.info.name, cached.info.version) != (package.info.name, package.info.version):
            raise ResolutionError(
                f"{repository.name}: {package.entry.filename} holds {cached.label}, not what the index says"
            )
        layers.append(_Layer(cached, repository.name))
    return tuple(layers)


def _build_once(
    dest: Path,
    under_test: Path | None,
    packages: Sequence[str],
    repositories: Sequence[Repository],
    cache: ExtractCache,
    arch: str,
    accounts: Accounts,
) -> RootInfo:
    local = cache.get(under_test) if under_test is not None else None
    if local is not None and local.info.arch not in NOARCH and local.info.arch != arch:
        raise InputError(f"{under_test}: built for {local.info.arch}, but the test root is for {arch}")
    # melange adds the package under test by name and sorts and de-duplicates the list.
    world = tuple(sorted({*packages, *([local.info.name] if local is not None else [])}))
    layers = _resolve_layers(local, world, repositories, cache)
    layout = lay_packages([layer.cached for layer in layers])
    tables = merge_accounts(
        accounts,
        shipped_passwd=_read_node(layout.find_file(USERS_FILE), MAX_ACCOUNT_FILE_BYTES),
        shipped_group=_read_node(layout.find_file(GROUPS_FILE), MAX_ACCOUNT_FILE_BYTES),
    )
    records = [layer.cached.record for layer in layers]
    finish_layout(layout, records, world=world, arch=arch, accounts=accounts, tables=tables)
    if layout.problems:
        raise ResolutionError(f"the packages cannot be installed together: {describe_problems(layout)}")
    uid, gid = run_as_ids(accounts.run_as, tables)
    write_layout(layout, dest)
    installed = tuple(
        InstalledPackage(layer.cached.info.name, layer.cached.info.version, layer.source) for layer in layers
    )
    return RootInfo(root=dest, arch=arch, installed=installed, world=world, uid=uid, gid=gid)


def build_root(
    dest: Path,
    *,
    package_under_test: Path | None,
    packages: Sequence[str],
    repositories: Sequence[Repository],
    cache: ExtractCache,
    arch: str,
    accounts: Accounts = Accounts(),
) -> RootInfo:
    """Build the test root at ``dest`` (a new or empty folder): ``packages`` and the
    package under test, with everything they need, plus accounts and mount points.

    A cache entry found damaged (a file of it gone) is dropped and the root built once
    more from a fresh copy. On any failure ``dest`` is left as it was given."""
    _check_arch(arch, repositories)
    created = _prepare_dest(dest)
    try:
        try:
            return _build_once(dest, package_under_test, packages, repositories, cache, arch, accounts)
        except _DamagedCacheEntry as damaged:
            cache.discard(damaged.tree.parent.name)
            _empty(dest, created=False)
        try:
            return _build_once(dest, package_under_test, packages, repositories, cache, arch, accounts)
        except _DamagedCacheEntry as damaged:
            raise EnvironmentProblem(
                f"{damaged}: the extraction cache {cache.folder} keeps losing files; is something cleaning it?"
            ) from damaged
    except OSError as exc:
        _empty(dest, created)
        raise EnvironmentProblem(f"{dest}: cannot write the test root: {exc.strerror or exc}") from exc
    except BaseException:
        _empty(dest, created)
        raise


# The planning names stay importable from here: callers build and inspect roots through one module.
__all__ = [
    "INSTALLED_DB",
    "MOUNT_POINTS",
    "UNDER_TEST",
    "Layout",
    "Node",
    "Overwrite",
    "RootInfo",
    "applied_mode",
    "build_root",
    "describe_unmet",
    "finish_layout",
    "install_order",
    "lay_packages",
    "overwrite_decision",
    "replaces_priority",
    "write_layout",
]
