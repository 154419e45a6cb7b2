"""Options several commands share (limits, keyrings), parsed once."""

from __future__ import annotations

import argparse

from qackage.apk.limits import DEFAULT_LIMITS, Limits, parse_size
from qackage.apk.signature import Keyring
from qackage.errors import InputError


def add_limit_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("safety limits for untrusted archives")
    group.add_argument(
        "--max-unpacked-size",
        metavar="SIZE",
        help=f"refuse archives that unpack to more (default {DEFAULT_LIMITS.max_unpacked_bytes >> 30}G)",
    )
    group.add_argument(
        "--max-ratio",
        type=float,
        metavar="N",
        help=f"refuse compression ratios above N:1 (default {DEFAULT_LIMITS.max_ratio:g})",
    )
    group.add_argument(
        "--max-entries",
        type=int,
        metavar="N",
        help=f"refuse archives with more members (default {DEFAULT_LIMITS.max_entries})",
    )


def limits_from(args: argparse.Namespace) -> Limits:
    changes: dict[str, float | int] = {}
    if args.max_unpacked_size:
        try:
            changes["max_unpacked_bytes"] = parse_size(args.max_unpacked_size)
        except ValueError as exc:
            raise InputError(f"--max-unpacked-size: {exc}") from exc
    if args.max_ratio is not None:
        if args.max_ratio <= 1:
            raise InputError("--max-ratio must be greater than 1")
        changes["max_ratio"] = args.max_ratio
    if args.max_entries is not None:
        if args.max_entries <= 0:
            raise InputError("--max-entries must be positive")
        changes["max_entries"] = args.max_entries
    return Limits(**{**_as_dict(DEFAULT_LIMITS), **changes})  # type: ignore[arg-type]


def _as_dict(limits: Limits) -> dict[str, float | int]:
    return {name: getattr(limits, name) for name in Limits.__slots__}


def add_keyring_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keyring",
        metavar="DIR",
        help="verify signatures against the public keys in DIR (unsigned input is then refused)",
    )


def keyring_from(args: argparse.Namespace) -> Keyring | None:
    return Keyring.load(args.keyring) if args.keyring else None
