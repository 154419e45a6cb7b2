"""``qackage build-fixtures SCENARIO... --out DIR``: build fixture scenarios into a repository."""

from __future__ import annotations

import argparse
from pathlib import Path

from qackage.apk.writer import SigningKey
from qackage.build import RepositoryBuild, build_repository
from qackage.cli.output import emit
from qackage.errors import InputError

NAME = "build-fixtures"
HELP = "build fixture scenarios (folders of melange build files) into a signed APK repository"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="a scenario folder, e.g. fixtures/hello")
    parser.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="the repository to write: DIR/<arch>/*.apk, DIR/<arch>/APKINDEX.tar.gz, DIR/keyring/",
    )
    parser.add_argument("--arch", metavar="ARCH", help="package architecture (default: this machine's)")
    parser.add_argument(
        "--signing-key",
        metavar="FILE",
        help="RSA private key (PEM) to sign with; default: one generated once and kept in DIR/signing/",
    )


def run(args: argparse.Namespace) -> int:
    key = _load_key(Path(args.signing_key)) if args.signing_key else None
    build = build_repository([Path(s) for s in args.scenarios], Path(args.out), arch=args.arch, signing_key=key)
    emit(render(build))
    return 0


def render(build: RepositoryBuild) -> str:
    lines: list[str] = []
    for result in build.scenarios:
        names = " ".join(p.info.name for p in result.packages)
        state = "built" if result.rebuilt else "up to date"
        lines.append(f"{result.scenario}: {state}, {len(result.packages)} packages ({names})")
    lines += [
        f"repository: {build.root} ({build.arch}, {len(build.packages)} packages)",
        f"index: {build.index}",
        f"keyring: {build.keyring} ({build.key_name})",
    ]
    return "\n".join(lines) + "\n"


def _load_key(path: Path) -> SigningKey:
    try:
        return SigningKey.load(path)
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"--signing-key {path}: not a readable RSA private key (PEM): {exc}") from exc
