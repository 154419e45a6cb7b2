"""/etc/passwd and /etc/group for test roots, and who a test runs as."""

from __future__ import annotations

import pytest

from qackage.errors import InputError
from qackage.model import Account, Accounts, Group
from qackage.validate.accounts import (
    GroupEntry,
    PasswdEntry,
    home_folders,
    merge_accounts,
    parse_group,
    parse_passwd,
    run_as_ids,
)

WOLFI_PASSWD = """\
root:x:0:0:root:/root:/bin/ash
nobody:x:65534:65534:nobody:/:/sbin/nologin
# a comment some images carry
nginx:x:101:101:nginx:/var/lib/nginx:/sbin/nologin
"""
WOLFI_GROUP = "root:x:0:\nwheel:x:10:root\nnginx:x:101:nginx\n"


def test_defaults_are_root_and_melanges_build_user() -> None:
    tables = merge_accounts(Accounts())
    assert tables.passwd_text() == "root:x:0:0:root:/root:/bin/sh\nbuild:x:1000:1000:build:/home/build:/bin/sh\n"
    assert tables.group_text() == "root:x:0:\nbuild:x:1000:build\n"
    assert run_as_ids(None, tables) == (0, 0)


def test_shipped_files_are_merged_and_keep_their_entries() -> None:
    tables = merge_accounts(Accounts(), shipped_passwd=WOLFI_PASSWD, shipped_group=WOLFI_GROUP)
    assert [u.name for u in tables.users] == ["root", "nobody", "nginx", "build"]
    assert tables.user("root") == PasswdEntry("root", 0, 0, "root", "/root", "/bin/ash")  # the package's root
    assert [g.name for g in tables.groups] == ["root", "wheel", "nginx", "build"]
    assert parse_group(tables.group_text()) == tables.groups
    assert parse_passwd(tables.passwd_text()) == tables.users


def test_test_accounts_win_over_shipped_ones() -> None:
    accounts = Accounts(
        users=(Account("nginx", 2000, 2000, "/bin/sh", "/srv/nginx"), Account("alice", 1234)),
        groups=(Group("web", 3000, ("nginx", "alice")), Group("build", 1000, ("build", "alice"))),
    )
    tables = merge_accounts(accounts, shipped_passwd=WOLFI_PASSWD, shipped_group=WOLFI_GROUP)
    assert tables.user("nginx") == PasswdEntry("nginx", 2000, 2000, "nginx", "/srv/nginx", "/bin/sh")
    assert tables.user("alice") == PasswdEntry("alice", 1234, 1234, "alice", "/home/alice", "/bin/sh")
    assert "web:x:3000:nginx,alice\n" in tables.group_text()
    assert "build:x:1000:build,alice\n" in tables.group_text()
    assert [u.name for u in home_folders(accounts, tables)] == ["root", "nginx", "build", "alice"]


def test_run_as_by_name_and_by_number() -> None:
    tables = merge_accounts(Accounts(users=(Account("svc", 500, 600),)))
    assert run_as_ids("build", tables) == (1000, 1000)
    assert run_as_ids("svc", tables) == (500, 600)
    assert run_as_ids("500", tables) == (500, 600)  # a listed uid brings its group
    assert run_as_ids("4242", tables) == (4242, 4242)
    assert run_as_ids("0", tables) == (0, 0)
    with pytest.raises(InputError, match="no user named 'ghost'"):
        run_as_ids("ghost", tables)


@pytest.mark.parametrize(
    ("accounts", "message"),
    [
        (Accounts(users=(Account("bad:name", 5),)), "cannot go into"),
        (Accounts(users=(Account("x", -1),)), "is not from 0"),
        (Accounts(users=(Account("x", 5, homedir="relative"),)), "not an absolute path"),
        (Accounts(users=(Account("x", 5, shell="/bin/sh\nroot::0:0::/:/bin/sh"),)), "line break"),
        (Accounts(groups=(Group("g", 7, ("ok", "bad,member")),)), "cannot go into"),
        (Accounts(groups=(Group("g", 2**32),)), "is not from 0"),
    ],
)
def test_unwritable_accounts_are_refused(accounts: Accounts, message: str) -> None:
    with pytest.raises(InputError, match=message):
        merge_accounts(accounts)


def test_malformed_shipped_files_are_reported() -> None:
    with pytest.raises(InputError, match="line 2: expected 7"):
        merge_accounts(Accounts(), shipped_passwd="root:x:0:0:root:/root:/bin/sh\nbroken:x:1\n")
    with pytest.raises(InputError, match="gid 'zero'"):
        parse_group("root:x:zero:\n")
    assert parse_group("wheel:x:10: a , b \n") == (GroupEntry("wheel", 10, ("a", "b")),)
