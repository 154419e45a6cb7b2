"""The users and groups of a test root: ``/etc/passwd`` and ``/etc/group`` as melange makes them.

Layers, later ones winning for the same name (an entry keeps the place it first had):

1. ``root`` (uid/gid 0), which every image has;
2. what the installed packages shipped in ``/etc/passwd`` and ``/etc/group``;
3. the ``build`` user and group (1000, home ``/home/build``) that melange always adds;
4. the test's ``environment.accounts`` users and groups.

`run_as_ids` turns ``accounts.run-as`` (a name or a number) into the uid/gid to run as;
unset means root, like melange's bubblewrap runner when it runs as root.
Everything here is pure: texts in, texts and numbers out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from qackage.errors import InputError
from qackage.model import Account, Accounts, Group

MAX_ID = 2**32 - 2  # (uid_t)-1 means "no change" to chown(2)
BUILD_USER = "build"
BUILD_ID = 1000
BUILD_HOME = "/home/build"
DEFAULT_SHELL = "/bin/sh"


@dataclass(frozen=True, slots=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    gecos: str = ""
    home: str = "/"
    shell: str = DEFAULT_SHELL
    password: str = "x"  # noqa: S105 - the "see /etc/shadow" placeholder, not a secret

    def line(self) -> str:
        return f"{self.name}:{self.password}:{self.uid}:{self.gid}:{self.gecos}:{self.home}:{self.shell}"


@dataclass(frozen=True, slots=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...] = ()
    password: str = "x"  # noqa: S105 - the "see /etc/shadow" placeholder, not a secret

    def line(self) -> str:
        return f"{self.name}:{self.password}:{self.gid}:{','.join(self.members)}"


@dataclass(frozen=True, slots=True)
class AccountTables:
    users: tuple[PasswdEntry, ...]
    groups: tuple[GroupEntry, ...]

    def passwd_text(self) -> str:
        return "".join(user.line() + "\n" for user in self.users)

    def group_text(self) -> str:
        return "".join(group.line() + "\n" for group in self.groups)

    def user(self, name: str) -> PasswdEntry | None:
        return next((u for u in self.users if u.name == name), None)

    def user_by_uid(self, uid: int) -> PasswdEntry | None:
        return next((u for u in self.users if u.uid == uid), None)


# --------------------------------------------------------------------------- parsing


def _check_name(name: str, what: str, label: str) -> str:
    if not name or any(c in name for c in ":,\n\r\0") or name != name.strip() or name.startswith(("-", "+")):
        raise InputError(f"{label}: {what} name {name!r} cannot go into /etc/passwd or /etc/group")
    return name


def _check_field(value: str, what: str, label: str) -> str:
    if any(c in value for c in ":\n\r\0"):
        raise InputError(f"{label}: {what} {value!r} cannot contain ':' or a line break")
    return value


def _id(text: str, what: str, label: str) -> int:
    if not text.isdigit() or int(text) > MAX_ID:
        raise InputError(f"{label}: {what} {text!r} is not a number from 0 to {MAX_ID}")
    return int(text)


def _lines(text: str) -> Iterable[tuple[int, str]]:
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        # NIS "+"/"-" compat lines mean nothing without NIS; comments are not standard but occur.
        if line and not line.startswith(("#", "+", "-")):
            yield number, line


def parse_passwd(text: str, label: str = "/etc/passwd") -> tuple[PasswdEntry, ...]:
    users: list[PasswdEntry] = []
    for number, line in _lines(text):
        fields = line.split(":")
        where = f"{label}: line {number}"
        if len(fields) != 7:
            raise InputError(f"{where}: expected 7 ':'-separated fields, found {len(fields)}")
        name, password, uid, gid, gecos, home, shell = fields
        users.append(
            PasswdEntry(
                _check_name(name, "user", where),
                _id(uid, "uid", where),
                _id(gid, "gid", where),
                gecos,
                home,
                shell,
                password,
            )
        )
    return tuple(users)


def parse_group(text: str, label: str = "/etc/group") -> tuple[GroupEntry, ...]:
    groups: list[GroupEntry] = []
    for number, line in _lines(text):
        fields = line.split(":")
        where = f"{label}: line {number}"
        if len(fields) != 4:
            raise InputError(f"{where}: expected 4 ':'-separated fields, found {len(fields)}")
        name, password, gid, members = fields
        listed = tuple(_check_name(m.strip(), "member", where) for m in members.split(",") if m.strip())
        groups.append(GroupEntry(_check_name(name, "group", where), _id(gid, "gid", where), listed, password))
    return tuple(groups)


# --------------------------------------------------------------------------- merging


def user_entry(account: Account, label: str = "accounts.users") -> PasswdEntry:
    """A configured account as a passwd line: the group defaults to the uid, the home to
    ``/home/<name>``, the shell to ``/bin/sh``."""
    name = _check_name(account.username, "user", label)
    for value in (account.uid, account.gid if account.gid is not None else 0):
        if not 0 <= value <= MAX_ID:
            raise InputError(f"{label}: {name}: id {value} is not from 0 to {MAX_ID}")
    home = account.homedir or f"/home/{name}"
    if not home.startswith("/"):
        raise InputError(f"{label}: {name}: home {home!r} is not an absolute path")
    return PasswdEntry(
        name=name,
        uid=account.uid,
        gid=account.uid if account.gid is None else account.gid,
        gecos=name,
        home=_check_field(home, "home", label),
        shell=_check_field(account.shell or DEFAULT_SHELL, "shell", label),
    )


def group_entry(group: Group, label: str = "accounts.groups") -> GroupEntry:
    name = _check_name(group.groupname, "group", label)
    if not 0 <= group.gid <= MAX_ID:
        raise InputError(f"{label}: {name}: gid {group.gid} is not from 0 to {MAX_ID}")
    members = tuple(_check_name(m, "member", f"{label}: {name}") for m in group.members)
    return GroupEntry(name, group.gid, members)


def _layered(layers: Sequence[Iterable[PasswdEntry]]) -> tuple[PasswdEntry, ...]:
    merged: dict[str, PasswdEntry] = {}
    for layer in layers:
        for user in layer:
            merged[user.name] = user
    return tuple(merged.values())


def _layered_groups(layers: Sequence[Iterable[GroupEntry]]) -> tuple[GroupEntry, ...]:
    merged: dict[str, GroupEntry] = {}
    for layer in layers:
        for group in layer:
            merged[group.name] = group
    return tuple(merged.values())


ROOT_USER = PasswdEntry("root", 0, 0, "root", "/root", DEFAULT_SHELL)
ROOT_GROUP = GroupEntry("root", 0)
MELANGE_USER = PasswdEntry(BUILD_USER, BUILD_ID, BUILD_ID, BUILD_USER, BUILD_HOME, DEFAULT_SHELL)
MELANGE_GROUP = GroupEntry(BUILD_USER, BUILD_ID, (BUILD_USER,))


def merge_accounts(accounts: Accounts, *, shipped_passwd: str = "", shipped_group: str = "") -> AccountTables:
    """The tables for a test root whose packages shipped ``shipped_passwd``/``shipped_group``."""
    users = _layered(
        [
            [ROOT_USER],
            parse_passwd(shipped_passwd),
            [MELANGE_USER],
            [user_entry(account) for account in accounts.users],
        ]
    )
    groups = _layered_groups(
        [
            [ROOT_GROUP],
            parse_group(shipped_group),
            [MELANGE_GROUP],
            [group_entry(group) for group in accounts.groups],
        ]
    )
    return AccountTables(users, groups)


def run_as_ids(run_as: str | None, tables: AccountTables) -> tuple[int, int]:
    """The uid and gid for ``accounts.run-as``: a user name from the tables, or a number
    (whose gid is that user's when the tables list the uid, else the same number)."""
    if run_as is None or not run_as.strip():
        return 0, 0
    wanted = run_as.strip()
    if wanted.isdigit():
        uid = _id(wanted, "uid", "accounts.run-as")
        known = tables.user_by_uid(uid)
        return uid, known.gid if known is not None else uid
    user = tables.user(wanted)
    if user is None:
        names = ", ".join(u.name for u in tables.users)
        raise InputError(f"accounts.run-as: no user named {wanted!r} in the test root (it has: {names})")
    return user.uid, user.gid


def home_folders(accounts: Accounts, tables: AccountTables) -> tuple[PasswdEntry, ...]:
    """The users whose home the root must hold: root, build, and the test's own users."""
    wanted = {"root", BUILD_USER, *(account.username for account in accounts.users)}
    return tuple(user for user in tables.users if user.name in wanted and user.home not in ("", "/"))


__all__ = [
    "BUILD_HOME",
    "BUILD_ID",
    "BUILD_USER",
    "AccountTables",
    "GroupEntry",
    "PasswdEntry",
    "group_entry",
    "home_folders",
    "merge_accounts",
    "parse_group",
    "parse_passwd",
    "run_as_ids",
    "user_entry",
]
