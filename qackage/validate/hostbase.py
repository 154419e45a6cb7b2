"""Host-base test roots: the host's filesystem read-only underneath, the package on top.

Used when no repository is given. Every top-level host directory becomes an overlay
whose highest layer is the package's tree (so a host copy of the package under test
can never shadow it) and whose writes go to a scratch layer (the host is never
written). Dependencies and test tools come from the host, which is why reports call
this mode weaker: a host library can satisfy what the package forgot to declare.
"""

from __future__ import annotations

import os
from pathlib import Path

from qackage.apk.installed import write_installed_db
from qackage.model import Accounts
from qackage.validate.accounts import merge_accounts, run_as_ids
from qackage.validate.extract import CachedPackage
from qackage.validate.report import InstalledPackage
from qackage.validate.runner import PreparedRoot
from qackage.validate.sandboxing import OverlayMount

# Host top-level entries that never become part of a test root: kernel and device
# filesystems are mounted fresh by the sandbox; homes and scratch space stay private.
SKIPPED_TOP_LEVEL = frozenset(
    {"proc", "sys", "dev", "tmp", "run", "home", "root", "mnt", "media", "boot", "lost+found"}
)
INSTALLED_DB = "lib/apk/db/installed"
# Shells that run melange's `set -eo pipefail` wrapper, closest to Wolfi's busybox ash first.
PIPEFAIL_SHELLS = (("/bin/busybox", "sh"), ("/usr/bin/busybox", "sh"), ("/bin/bash",), ("/usr/bin/bash",))
HOST_BASE_WARNING = (
    "host-base mode (no --repository): the host filesystem is read-only underneath the package, so host "
    "copies of dependencies and tools can satisfy the test; a pass is weaker than one in a root built "
    "from repositories"
)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


class HostBase:
    """A root factory (see `qackage.validate.runner.RootFactory`) for one package."""

    def __init__(self, package: CachedPackage, accounts: Accounts = Accounts(), host_root: Path = Path("/")) -> None:
        self._package = package
        self._accounts = accounts
        self._host = host_root

    def _layout(self, root: Path, scratch: Path) -> tuple[list[OverlayMount], list[str]]:
        overlays: list[OverlayMount] = []
        hidden: list[str] = []
        tree = self._package.tree
        for entry in sorted(os.scandir(self._host), key=lambda e: e.name):
            name = entry.name
            if name in SKIPPED_TOP_LEVEL:
                continue
            host_path = self._host / name
            if entry.is_symlink():
                # usrmerge links (bin -> usr/bin): keep them; package files must use the
                # real paths, as Wolfi's do.
                (root / name).symlink_to(os.readlink(host_path))
                if (tree / name).exists():
                    hidden.append(name)
                continue
            if not entry.is_dir(follow_symlinks=False):
                continue
            (root / name).mkdir()
            lower = ((tree / name,) if (tree / name).is_dir() else ()) + (host_path,)
            overlays.append(OverlayMount(name, lower, scratch / "upper" / name, scratch / "work" / name))
        for top in sorted(tree.iterdir()):
            if not (root / top.name).exists() and not (root / top.name).is_symlink():
                (root / top.name).mkdir()
                upper = scratch / "upper" / top.name
                overlays.append(OverlayMount(top.name, (top,), upper, scratch / "work" / top.name))
        for overlay in overlays:
            overlay.upper.mkdir(parents=True, exist_ok=True)
            overlay.work.mkdir(parents=True, exist_ok=True)
        return overlays, hidden

    def _upper_file(self, root: Path, scratch: Path, relative: str) -> Path:
        """Where a write to ``/relative`` lands: the overlay's upper layer, following the
        usrmerge links at the top (``lib/...`` -> ``usr/lib/...``)."""
        top, _, rest = relative.partition("/")
        link = root / top
        if link.is_symlink():
            return self._upper_file(root, scratch, os.path.normpath(os.path.join(os.readlink(link), rest)))
        return scratch / "upper" / top / rest

    def __call__(self, root: Path) -> PreparedRoot:
        scratch = root.parent / "host-base"
        scratch.mkdir()
        overlays, hidden = self._layout(root, scratch)
        for mount_point in ("proc", "dev", "tmp", "run", "home/build"):
            (root / mount_point).mkdir(parents=True, exist_ok=True)
        tables = merge_accounts(
            self._accounts,
            shipped_passwd=_read(self._host / "etc/passwd"),
            shipped_group=_read(self._host / "etc/group"),
        )
        writes = {
            "etc/passwd": tables.passwd_text(),
            "etc/group": tables.group_text(),
            INSTALLED_DB: write_installed_db([self._package.record]),
        }
        for relative, text in writes.items():
            target = self._upper_file(root, scratch, relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        uid, gid = run_as_ids(self._accounts.run_as, tables)
        warnings = [HOST_BASE_WARNING]
        shell = self._shell()
        if shell is None:
            shell = ("/bin/sh",)
            warnings.append("the host has neither busybox nor bash: steps run with its /bin/sh")
        if hidden:
            warnings.append(
                "package files under " + ", ".join(f"/{h}" for h in hidden) + " are hidden: the host links those "
                "directories into /usr (usrmerge)"
            )
        info = self._package.info
        return PreparedRoot(
            root=root,
            uid=uid,
            gid=gid,
            installed=(
                InstalledPackage(info.name, info.version, "package under test"),
                InstalledPackage("(host filesystem)", "", "host"),
            ),
            mode="host-base",
            warnings=tuple(warnings),
            overlays=tuple(overlays),
            shell=shell,
        )

    def _shell(self) -> tuple[str, ...] | None:
        """A shell for `set -eo pipefail` from the host (the package under test is not
        consulted: a package shipping its own busybox would change the runner)."""
        for candidate in PIPEFAIL_SHELLS:
            if (self._host / candidate[0].lstrip("/")).is_file():
                return candidate
        return None
