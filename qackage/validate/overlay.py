"""Overlay mounts for host-base roots: checked, then mounted privately around bubblewrap.

A host-base root lays a package's tree over the host's folders (`OverlayMount`). The
overlays are mounted before bwrap starts, in a private mount namespace made by
util-linux ``unshare``: `overlay_prefix` gives the command words that create that
namespace, mount each overlay under the root and then exec bwrap, so bwrap's recursive
bind of the root carries them into the sandbox, the host never sees them, and they
vanish with the last process of the run.

Mounting needs root; `find_overlay_tools` says so (and which programs are missing) as
an `EnvironmentProblem` before anything starts.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qackage.errors import EnvironmentProblem, InputError
from qackage.validate.sandboxing import OverlayMount

# The mounting script's name ($0), which starts its error messages; bubblewrap reports those lines.
SCRIPT_NAME = "qackage-overlays"
MESSAGE_PREFIX = f"{SCRIPT_NAME}: "

# Runs on the host, as root, in the fresh mount namespace: mount each overlay, then become bwrap.
# Arguments: the mount program, the overlay count, four words per overlay, then bwrap's command.
_OVERLAY_SCRIPT = f"""\
mount_program=$1; count=$2; shift 2
while [ "$count" -gt 0 ]; do
  "$mount_program" -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4" || {{
    echo "{MESSAGE_PREFIX}cannot mount an overlay at $4 (lower $1, upper $2, work $3)" >&2; exit 125; }}
  shift 4; count=$((count - 1))
done
exec "$@"
"""


@dataclass(frozen=True, slots=True)
class OverlayTools:
    """Host programs that mount overlays for a run (found by `find_overlay_tools`)."""

    unshare: str
    shell: str
    mount: str


def find_overlay_tools() -> OverlayTools:
    """The host programs overlays need; EnvironmentProblem when they cannot be used."""
    if os.geteuid() != 0:
        raise EnvironmentProblem("overlay mounts (host-base roots) need qackage to run as root")
    found = {name: shutil.which(name) for name in ("unshare", "sh", "mount")}
    missing = sorted(name for name, path in found.items() if path is None)
    if missing:
        raise EnvironmentProblem(f"overlay mounts need {', '.join(missing)} (util-linux, mount) on PATH")
    return OverlayTools(unshare=str(found["unshare"]), shell=str(found["sh"]), mount=str(found["mount"]))


def overlay_prefix(overlays: Sequence[OverlayMount], root: Path, tools: OverlayTools) -> list[str]:
    """Command words that mount ``overlays`` under ``root`` privately and then exec what follows."""
    if not overlays:
        return []
    words = [tools.unshare, "--mount", "--propagation", "private", "--", tools.shell, "-c", _OVERLAY_SCRIPT]
    words += [SCRIPT_NAME, tools.mount, str(len(overlays))]
    for overlay in overlays:
        lower = ":".join(str(path) for path in overlay.lower)
        words += [lower, str(overlay.upper), str(overlay.work), str(root / overlay.target)]
    return words


def check_overlays(overlays: Sequence[OverlayMount], root: Path) -> None:
    """InputError unless every overlay can be mounted as asked (no I/O beyond looking)."""
    for overlay in overlays:
        target = posixpath.normpath(overlay.target) if overlay.target else ""
        if not target or target.startswith(("/", "..")) or target == ".":
            raise InputError(f"overlay target {overlay.target!r} must be a folder inside the root")
        if not plain_directory(root, target):
            raise InputError(f"overlay target {overlay.target} is not a folder of the root {root}")
        if not overlay.lower:
            raise InputError(f"overlay at {overlay.target} has no lower folder")
        for path in (*overlay.lower, overlay.upper, overlay.work):
            if not path.is_absolute() or not path.is_dir():
                raise InputError(f"overlay folder {path} is not an existing absolute folder")
            if any(character in str(path) for character in ":,\\"):
                # They separate overlayfs mount options; escaping them is not worth the risk.
                raise InputError(f"overlay folder {path} contains ':', ',' or a backslash")


def plain_directory(base: Path, relative: str) -> bool:
    """``base/relative`` is a folder reached without following any symlink."""
    current = base
    for part in (p for p in relative.split("/") if p not in ("", ".")):
        current = current / part
        if current.is_symlink() or not current.is_dir():
            return False
    return True
