"""The test root as data: what apk would leave after installing packages, without touching the disk.

    layout = lay_packages([cached_glibc, cached_busybox, cached_hello])   # in install order
    finish_layout(layout, records, world=world, arch="x86_64", accounts=accounts, tables=tables)
    layout.nodes, layout.owners, layout.problems

Everything here is pure: packages (their declared entries and where their unpacked
files lie) in, a `Layout` out. `qackage.validate.rootfs` resolves and unpacks the
packages, and writes the plan into a folder.

The plan follows apk's rules. A file another package already installed may be
overwritten only by a package of the same name or origin, or one that ``replaces`` it
(``replaces_priority`` breaks ties); otherwise both packages are named in a problem.
Paths are resolved with chroot semantics - a folder another package made a symlink
(``bin -> usr/bin``) is entered as apk would, an absolute target resolves inside the
root - so every planned node has a real path whose parents are plain folders, and
the writer never has to follow a link.
"""

from __future__ import annotations

import dataclasses
import enum
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qackage.apk import chroot
from qackage.apk.installed import InstalledDir, InstalledRecord, write_installed_db
from qackage.apk.limits import DEFAULT_LIMITS
from qackage.apk.pkginfo import parse_atom
from qackage.apk.resolve import Resolution, ResolvedPackage, offers
from qackage.apk.version import satisfies
from qackage.errors import InputError
from qackage.model import Accounts, Entry, EntryKind, PackageInfo
from qackage.validate.accounts import BUILD_USER, AccountTables, home_folders
from qackage.validate.extract import CachedPackage

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
MAX_SHOWN_PROBLEMS = 5


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


# --------------------------------------------------------------------------- the layout


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
        walked = chroot.walk(path, self._lookup, follow_last=follow_last, missing_last=True, max_hops=self.max_symlinks)
        if walked.outcome is chroot.Outcome.MISSING:
            raise _Unplaceable(f"/{walked.path} does not exist")
        if walked.outcome is chroot.Outcome.NOT_A_FOLDER:
            raise _Unplaceable(f"/{walked.path} is a {self.nodes[walked.path].entry.kind.value}, not a folder")
        if walked.outcome is chroot.Outcome.LOOP:
            raise _Unplaceable(f"too many symlinks resolving /{path}")
        return walked.path

    def _lookup(self, real: str) -> chroot.Found:
        node = self.nodes.get(real)
        return chroot.entry_found(node.entry if node is not None else None)

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


# --------------------------------------------------------------------------- laying packages


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


def describe_problems(layout: Layout) -> str:
    """The first few problems of a plan, in one line."""
    shown = layout.problems[:MAX_SHOWN_PROBLEMS]
    more = len(layout.problems) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more else "")
