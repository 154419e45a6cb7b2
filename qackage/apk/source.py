"""Open whatever the user named as a package: an .apk, an extracted tree, or an
installed package inside a root filesystem."""

from __future__ import annotations

from pathlib import Path

from qackage.analyze.capture import PackageSource
from qackage.apk.archive import ApkArchive
from qackage.apk.directory import DirectorySource
from qackage.apk.limits import DEFAULT_LIMITS, Limits
from qackage.apk.signature import Keyring
from qackage.errors import InputError


def open_package(
    spec: str,
    *,
    root: Path | None = None,
    keyring: Keyring | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> PackageSource:
    """``spec`` is a path to an .apk or a folder; with ``root`` it is a package name
    installed in that root filesystem (``ROOT/lib/apk/db/installed``)."""
    if root is not None:
        # Imported here: the installed-db reader pulls in index and writer code that
        # analyzing an .apk never needs, and start-up time counts on big sweeps.
        from qackage.apk.installed import InstalledSource  # noqa: PLC0415

        return InstalledSource(root, spec, limits=limits)
    path = Path(spec)
    if path.is_dir():
        return DirectorySource(path, limits=limits)
    if not path.exists():
        raise InputError(f"{spec}: no such file or directory")
    if not path.is_file():
        raise InputError(f"{spec}: not a regular file")
    return ApkArchive.open(path, keyring=keyring, limits=limits)
