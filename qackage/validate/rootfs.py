"""Build the root filesystem a test runs in, from packages, the way apko builds melange's test image.

    info = build_root(dest, package_under_test=Path("hello.apk"), packages=["wolfi-base"],
                      repositories=[repo], cache=ExtractCache(), arch="x86_64")
    info.root, info.installed, info.uid, info.gid

Steps: resolve the closure (`qackage.apk.resolve`; the package under test is always the
*preferred* package for its name, so a local build beats any repository copy whatever
the versions); fetch and unpack each package through the `ExtractCache`; plan the root
as data (`Layout`), the way apk would lay the packages one after the other; then write
the plan into ``dest`` with copies of the cached files.

The plan follows apk's rules. A file another package already installed may be
overwritten only by a package of the same name or origin, or one that ``replaces`` it
(``replaces_priority`` breaks ties); otherwise both packages are named in an error.
Paths are resolved in the plan with chroot semantics - a folder another package made a
symlink (``bin -> usr/bin``) is entered as apk would, an absolute target resolves inside
the root - so nothing is ever written outside ``dest``. Writing uses descriptor-relative,
``O_NOFOLLOW`` calls along paths the plan proved to be plain folders.

Copies, never hardlinks into the cache: a test may write into its root and must not
change what the next root is built from. Files are copied with ``copy_file_range`` (a
reflink where the file system can, an in-kernel copy otherwise).
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import os
import posixpath
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qackage.apk.installed import InstalledDir, InstalledRecord, write_installed_db
from qackage.apk.limits import DEFAULT_LIMITS
from qackage.apk.pkginfo import parse_atom
from qackage.apk.repository import Repository
from qackage.apk.resolve import Resolution, ResolvedPackage, offers, resolve
from qackage.apk.version import satisfies
from qackage.errors import EnvironmentProblem, InputError, ResolutionError
from qackage.model import Accounts, Entry, EntryKind, PackageInfo
from qackage.validate.accounts import BUILD_USER, AccountTables, home_folders, merge_accounts, run_as_ids
from qackage.validate.extract import CachedPackage, DirectoryHandles, ExtractCache, remove_tree, write_all
from qackage.validate.report import InstalledPackage, TestEnvironmentReport

UNDER_TEST = "package under test"
INSTALLED_DB = "lib/apk/db/installed"
WORLD = "etc/apk/world"
ARCH_FILE = "etc/apk/arch"
USERS_FILE = "etc/passwd"
GROUPS_FILE = "etc/group"
WORKSPACE = "home/build"  # melange's workspace, bound there by the sandbox, whatever the build user's home
# Where the sandbox mounts other things (tmpfs, proc, dev): they must be folders too.
MOUNT_POINTS: tuple[tuple[str, int], ...] = (
    ("tmp", 0o1777),
    ("var/tmp", 0o1777),
    ("run", 0o755),
    ("proc", 0o555),
    ("dev", 0o755),
)
NOARCH = frozenset({"", "noarch", "all"})
MAX_SHOWN_PROBLEMS = 5
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


# --------------------------------------------------------------------------- resolution


def describe_unmet(resolution: Resolution) -> str:
    """One line naming what could not be resolved, why, and who needed it."""
    parts = [
        f"{item.dependency} ({'requested' if item.required_by is None else 'needed by ' + item.required_by}): "
        f"{item.reason}"
        for item in resolution.unresolved
    ]
    parts += [
        f"{c.package} is forbidden by {c.dependency} "
        f"({'requested' if c.required_by is None else 'from ' + c.required_by})"
        for c in resolution.conflicts
    ]
    return "; ".join(parts)


def install_order(packages: Sequence[ResolvedPackage]) -> tuple[ResolvedPackage, ...]:
    """Dependencies before the packages that need them (as apk installs), otherwise in
    resolution order; a dependency cycle is broken where the walk first meets it."""
    offering: dict[str, list[ResolvedPackage]] = {}
    for package in packages:
        for name in {package.info.name, *(atom.name for atom in package.info.provides)}:
            offering.setdefault(name, []).append(package)

    def needs(package: ResolvedPackage) -> list[ResolvedPackage]:
        found: list[ResolvedPackage] = []
        for dep in package.info.depends:
            if not dep.conflict:
                found += [p for p in offering.get(dep.name, ()) if offers(p.info, dep)][:1]
        return found

    ordered: list[ResolvedPackage] = []
    seen: set[str] = set()
    for start in packages:
        if start.info.name in seen:
            continue
        seen.add(start.info.name)
        stack = [(start, iter(needs(start)))]
        while stack:
            package, pending = stack[-1]
            following = next((p for p in pending if p.info.name not in seen), None)
            if following is None:
                stack.pop()
                ordered.append(package)
                continue
            seen.add(following.info.name)
            stack.append((following, iter(needs(following))))
    return tuple(ordered)


# --------------------------------------------------------------------------- apk's overwrite rules


class Overwrite(enum.Enum):
    REPLACE = "replace"  # the new package's file wins
    KEEP = "keep"  # the installed file stays; the new package's copy is skipped
    CONFLICT = "conflict"


def _replaces(package: PackageInfo, other: PackageInfo) -> bool:
    for text in package.replaces:
        try:
            atom = parse_atom(text)
        except InputError:
            continue  # a malformed replaces line grants nothing
        if not atom.conflict and atom.name == other.name and satisfies(other.version, atom):
            return True
    return False


def replaces_priority(info: PackageInfo) -> int:
    for key, value in info.extra:
        if key in ("replaces_priority", "q") and value.strip().isdigit():
            return int(value)
    return 0


def overwrite_decision(installed: PackageInfo, incoming: PackageInfo) -> Overwrite:
    """What apk does when ``incoming`` ships a file ``installed`` already owns."""
    if installed.name == incoming.name:
        return Overwrite.REPLACE
    if incoming.origin and installed.origin == incoming.origin:
        return Overwrite.REPLACE  # subpackages of one build may move files between them
    installed_priority = replaces_priority(installed) if _replaces(installed, incoming) else -1
    incoming_priority = replaces_priority(incoming) if _replaces(incoming, installed) else -1
    if installed_priority > incoming_priority:
        return Overwrite.KEEP
    if incoming_priority >= 0:
        return Overwrite.REPLACE
    return Overwrite.CONFLICT


def applied_mode(mode: int, privileged: bool) -> int:
    """The permission bits a root gets. Set-uid/gid only when we run as root: only then do
    files get the owners the package meant, while a set-uid file owned by an unprivileged
    builder would run as that builder for anyone who can reach the root."""
    bits = stat.S_IMODE(mode)
    return bits if privileged else bits & ~(stat.S_ISUID | stat.S_ISGID)


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True, slots=True)
class Node:
    """One thing in the planned root, at its real path (every parent a plain folder)."""

    entry: Entry  # as the package declared it (entry.path: its path in the package)
    owner: str | None = None  # the package that put it there; None for what the builder adds
    tree: Path | None = None  # the cache tree its content comes from
    hardlink_to: str | None = None  # for a hardlink: the real path of the file it shares
    content: bytes | None = None  # for a file the builder writes


class _Unplaceable(Exception):
    pass


@dataclass
class Layout:
    """The root as apk would leave it, computed without touching the disk."""

    nodes: dict[str, Node] = field(default_factory=dict)  # real path -> node, parents first
    owners: dict[str, str] = field(default_factory=dict)  # package path -> package owning it
    problems: list[str] = field(default_factory=list)
    packages: dict[str, PackageInfo] = field(default_factory=dict)
    max_symlinks: int = DEFAULT_LIMITS.max_symlink_depth

    def label(self, name: str | None) -> str:
        info = self.packages.get(name or "")
        return f"{info.name}-{info.version}" if info else "the test root"

    # -- paths ---------------------------------------------------------------------------

    def resolve(self, path: str, *, follow_last: bool = True) -> str:
        """The real path of ``path``: symlinks followed inside the root (absolute targets
        start again at the root, ``..`` stops at it). The last component may be missing."""
        pending = [p for p in path.split("/") if p not in ("", ".")]
        resolved: list[str] = []
        hops = 0
        while pending:
            part = pending.pop(0)
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = "/".join([*resolved, part])
            node = self.nodes.get(candidate)
            last = not pending
            if node is None:
                if last:
                    resolved.append(part)
                    continue
                raise _Unplaceable(f"/{candidate} does not exist")
            kind = node.entry.kind
            if kind is EntryKind.SYMLINK and (follow_last or not last):
                hops += 1
                if hops > self.max_symlinks:
                    raise _Unplaceable(f"too many symlinks resolving /{path}")
                target = node.entry.link_target or ""
                if target.startswith("/"):
                    resolved = []
                pending = [p for p in target.split("/") if p not in ("", ".")] + pending
                continue
            if not last and kind is not EntryKind.DIR:
                raise _Unplaceable(f"/{candidate} is a {kind.value}, not a folder")
            resolved.append(part)
        return "/".join(resolved)

    def _folder(self, real: str) -> bool:
        return real == "" or (real in self.nodes and self.nodes[real].entry.kind is EntryKind.DIR)

    def _enter_existing(self, real: str) -> str:
        """``real`` names a node: the folder it is or leads to, else _Unplaceable."""
        node = self.nodes[real]
        if node.entry.kind is EntryKind.SYMLINK:
            target = self.resolve(real)
            if self._folder(target):
                return target
            raise _Unplaceable(f"/{real} is a symlink to {node.entry.link_target}, which is not a folder in the root")
        if node.entry.kind is not EntryKind.DIR:
            raise _Unplaceable(f"/{real} is a {node.entry.kind.value} from {self.label(node.owner)}")
        return real

    # -- packages ------------------------------------------------------------------------

    def add_package(self, info: PackageInfo, entries: Iterable[Entry], tree: Path | None) -> None:
        """Lay one package over what is planned so far, as apk installs it."""
        self.packages[info.name] = info
        label = self.label(info.name)
        folders: dict[str, str] = {"": ""}  # package folder -> real folder
        placed: dict[str, str] = {}  # package file -> real path (for its hardlinks)
        for entry in entries:
            parent, name = posixpath.split(entry.path)
            real_parent = folders.get(parent)
            if real_parent is None:
                continue  # its folder could not be placed: reported once already
            real = f"{real_parent}/{name}" if real_parent else name
            if entry.kind is EntryKind.DIR:
                folder = self._place_folder(real, entry, info)
                if folder is not None:
                    folders[entry.path] = folder
                continue
            existing = self.nodes.get(real)
            if existing is not None and existing.entry.kind is EntryKind.DIR:
                self.problems.append(
                    f"/{entry.path}: a {entry.kind.value} in {label} but a folder from {self.label(existing.owner)}"
                )
                continue
            if not self._may_install(entry.path, info):
                continue
            hardlink_to = placed.get(entry.link_target or "") if entry.kind is EntryKind.HARDLINK else None
            self.nodes[real] = Node(entry, info.name, tree, hardlink_to)
            placed[entry.path] = real

    def _place_folder(self, real: str, entry: Entry, info: PackageInfo) -> str | None:
        existing = self.nodes.get(real)
        if existing is None:
            self.nodes[real] = Node(entry, info.name)
            return real
        try:
            return self._enter_existing(real)
        except _Unplaceable as exc:
            self.problems.append(f"/{entry.path}: a folder in {self.label(info.name)}, but {exc}")
            return None

    def _may_install(self, path: str, info: PackageInfo) -> bool:
        """apk's file ownership check, by the path the package names."""
        current = self.owners.get(path)
        if current is not None and current != info.name:
            decision = overwrite_decision(self.packages[current], info)
            if decision is Overwrite.KEEP:
                return False
            if decision is Overwrite.CONFLICT:
                self.problems.append(
                    f"/{path}: shipped by both {self.label(current)} and {self.label(info.name)}, "
                    "and neither replaces the other"
                )
                return False
        self.owners[path] = info.name
        return True

    # -- what the builder adds -----------------------------------------------------------

    def ensure_folder(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> str | None:
        """``mkdir -p`` in the plan; a folder that exists keeps its mode. Returns its real path."""
        current = ""
        parts = [p for p in path.split("/") if p]
        try:
            for index, part in enumerate(parts):
                real = f"{current}/{part}" if current else part
                if real in self.nodes:
                    current = self._enter_existing(real)
                    continue
                last = index == len(parts) - 1
                entry = Entry(
                    real, EntryKind.DIR, mode if last else 0o755, uid=uid if last else 0, gid=gid if last else 0
                )
                self.nodes[real] = Node(entry)
                current = real
        except _Unplaceable as exc:
            self.problems.append(f"/{path}: cannot be made a folder: {exc}")
            return None
        return current

    def find_file(self, path: str) -> Node | None:
        """The regular file (or hardlink) ``path`` leads to, if any."""
        try:
            node = self.nodes.get(self.resolve(path))
        except _Unplaceable:
            return None
        if node is None or node.entry.kind not in (EntryKind.FILE, EntryKind.HARDLINK):
            return None
        return node

    def put_file(self, path: str, content: bytes, mode: int = 0o644) -> None:
        """Write a file the builder makes; through a final symlink as a program writing it
        would. A file a package shipped keeps its owner (apk then sees it modified)."""
        parent = self.ensure_folder(posixpath.dirname(path))
        if parent is None:
            return
        name = posixpath.basename(path)
        real = f"{parent}/{name}" if parent else name
        existing = self.nodes.get(real)
        if existing is not None and existing.entry.kind is EntryKind.SYMLINK:
            try:
                real = self.resolve(real)
            except _Unplaceable as exc:
                self.problems.append(f"/{path}: cannot be written: {exc}")
                return
            existing = self.nodes.get(real)
            if not real or (existing is None and not self._folder(posixpath.dirname(real))):
                self.problems.append(f"/{path}: cannot be written: it leads to /{real}, outside any folder")
                return
        if existing is not None and existing.entry.kind not in (EntryKind.FILE, EntryKind.HARDLINK):
            self.problems.append(f"/{path}: cannot be written: it is a {existing.entry.kind.value}")
            return
        if existing is None:
            self.nodes[real] = Node(Entry(real, EntryKind.FILE, mode, len(content)), content=content)
        else:
            entry = dataclasses.replace(existing.entry, kind=EntryKind.FILE, size=len(content), link_target=None)
            self.nodes[real] = Node(entry, existing.owner, content=content)

    # -- results -------------------------------------------------------------------------

    def owned_record(self, record: InstalledRecord) -> InstalledRecord:
        """``record`` without the files another package took over or that apk skipped."""
        name = record.info.name
        dirs = []
        for folder in record.dirs:
            files = tuple(
                f
                for f in folder.files
                if self.owners.get(posixpath.join(folder.path, f.name) if folder.path else f.name) == name
            )
            dirs.append(InstalledDir(folder.path, folder.acl, files))
        return InstalledRecord(record.entry, tuple(dirs))


# --------------------------------------------------------------------------- writing the plan


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


def lay_packages(packages: Sequence[CachedPackage]) -> Layout:
    """The plan after installing ``packages`` in this order."""
    layout = Layout()
    for package in packages:
        layout.add_package(package.info, package.entries, package.tree)
    return layout


def finish_layout(
    layout: Layout,
    records: Sequence[InstalledRecord],
    *,
    world: Sequence[str],
    arch: str,
    accounts: Accounts,
    tables: AccountTables,
) -> None:
    """Add what the image builder adds over the packages: homes and mount points, the
    account files, and apk's database (``records`` in install order), world and arch."""
    for user in home_folders(accounts, tables):
        layout.ensure_folder(user.home, 0o700 if user.name == "root" else 0o755, user.uid, user.gid)
    build = tables.user(BUILD_USER)
    layout.ensure_folder(WORKSPACE, 0o755, *((build.uid, build.gid) if build is not None else (0, 0)))
    for path, mode in MOUNT_POINTS:
        layout.ensure_folder(path, mode)
    layout.put_file(USERS_FILE, tables.passwd_text().encode())
    layout.put_file(GROUPS_FILE, tables.group_text().encode())
    layout.put_file(WORLD, "".join(f"{atom}\n" for atom in world).encode())
    layout.put_file(ARCH_FILE, f"{arch}\n".encode())
    owned = [layout.owned_record(record) for record in records]
    layout.put_file(INSTALLED_DB, write_installed_db(owned).encode())


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


def _problems(layout: Layout) -> str:
    shown = layout.problems[:MAX_SHOWN_PROBLEMS]
    more = len(layout.problems) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more else "")


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
        raise ResolutionError(f"the packages cannot be installed together: {_problems(layout)}")
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
