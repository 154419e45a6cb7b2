"""``qackage resolve``: the runtime dependency closure of packages over repositories.

    qackage resolve curl --repository https://packages.wolfi.dev/os --keyring keys/
    qackage resolve ./packages/x86_64/foo-1.0-r0.apk --repository ./packages --json

A ``.apk`` argument stands for itself: its name is requested and it is used in place
of any repository package of that name (the local package under test). Exit 0 when
everything resolved, 1 when something is unresolved or conflicts.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path
from typing import Any

from qackage.apk.archive import ApkArchive
from qackage.apk.limits import Limits
from qackage.apk.pkginfo import parse_atom
from qackage.apk.repository import HttpSettings, Repository
from qackage.apk.resolve import Resolution, resolve
from qackage.cli.common import add_keyring_option, add_limit_options, keyring_from, limits_from
from qackage.cli.output import dump_json, emit
from qackage.errors import InputError
from qackage.model import ConstraintOp, Dependency, PackageInfo

NAME = "resolve"
HELP = "List the runtime dependency closure of packages over apk repositories."

_MACHINE_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


def host_arch() -> str:
    machine = platform.machine()
    return _MACHINE_ARCH.get(machine.lower(), machine)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "packages",
        nargs="+",
        metavar="NAME|PKG.apk",
        help="a dependency atom (curl, so:libz.so.1, cmd:sh, foo>=1.2) or a local .apk file",
    )
    parser.add_argument(
        "-r",
        "--repository",
        action="append",
        required=True,
        metavar="DIR|URL",
        help="a repository folder or http(s) URL holding <arch>/APKINDEX.tar.gz (repeatable; earlier wins ties)",
    )
    parser.add_argument("--arch", default=None, help=f"architecture to resolve for (default: {host_arch()})")
    parser.add_argument("--cache-dir", type=Path, metavar="DIR", help="where downloads are cached")
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="seconds before a download gives up (default: 30)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    add_keyring_option(parser)
    add_limit_options(parser)


def _requests(items: list[str], limits: Limits) -> tuple[list[Dependency], list[PackageInfo]]:
    requests: list[Dependency] = []
    preferred: list[PackageInfo] = []
    for item in items:
        if item.endswith(".apk"):
            # The package under test is usually signed by a local key, not the
            # repositories' keyring, so only its indexes are verified.
            with ApkArchive.open(Path(item), limits=limits) as apk:
                info = apk.info
            preferred.append(info)
            requests.append(Dependency(info.name, ConstraintOp.EQ, info.version))
        else:
            requests.append(parse_atom(item))
    return requests, preferred


def _as_json(resolution: Resolution, arch: str, repositories: list[Repository]) -> dict[str, Any]:
    return {
        "arch": arch,
        "ok": resolution.ok,
        "repositories": [
            {
                "name": repo.name,
                "location": repo.location,
                "packages": len(repo.entries),
                "signed_by": repo.index.signed_by,
            }
            for repo in repositories
        ],
        "packages": [
            {
                "name": p.info.name,
                "version": p.info.version,
                "source": p.source,
                "filename": p.entry.filename if p.entry else None,
                "required_by": p.required_by,
                "dependency": str(p.dependency),
                "why": p.why,
            }
            for p in resolution.packages
        ],
        "unresolved": [
            {"dependency": str(u.dependency), "required_by": u.required_by, "reason": u.reason}
            for u in resolution.unresolved
        ],
        "conflicts": [
            {"dependency": str(c.dependency), "required_by": c.required_by, "package": c.package}
            for c in resolution.conflicts
        ],
    }


def _as_text(resolution: Resolution) -> str:
    lines = [f"{len(resolution.packages)} package(s):"]
    labels = [f"{p.info.name}-{p.info.version}" for p in resolution.packages]
    width = max(map(len, labels), default=0)
    source_width = max((len(p.source) for p in resolution.packages), default=0)
    for label, package in zip(labels, resolution.packages, strict=True):
        detail = package.why if package.required_by is None else f"{package.why} ({package.dependency})"
        lines.append(f"  {label:<{width}}  {package.source:<{source_width}}  {detail}")
    if resolution.unresolved:
        lines.append(f"{len(resolution.unresolved)} unresolved:")
        for item in resolution.unresolved:
            by = item.required_by or "requested"
            lines.append(f"  {item.dependency}  ({by}): {item.reason}")
    if resolution.conflicts:
        lines.append(f"{len(resolution.conflicts)} conflict(s):")
        for conflict in resolution.conflicts:
            by = conflict.required_by or "requested"
            lines.append(f"  {conflict.dependency}  ({by}) forbids {conflict.package}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    arch: str = args.arch or host_arch()
    if args.timeout <= 0:
        raise InputError("--timeout must be positive")
    keyring = keyring_from(args)
    requests, preferred = _requests(args.packages, limits_from(args))
    settings = HttpSettings(timeout=args.timeout)
    repositories = [
        Repository.open(spec, arch, keyring=keyring, cache_dir=args.cache_dir, settings=settings)
        for spec in args.repository
    ]
    resolution = resolve(requests, repositories, preferred=preferred)
    if args.json:
        emit(dump_json(_as_json(resolution, arch, repositories)), args.output)
    else:
        emit(_as_text(resolution), args.output)
    return 0 if resolution.ok else 1
