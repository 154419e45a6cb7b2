"""Caps that keep a hostile archive from exhausting memory, disk or time."""

from __future__ import annotations

from dataclasses import dataclass

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


@dataclass(frozen=True, slots=True)
class Limits:
    # Total bytes all gzip segments may inflate to. Large real packages (toolchains)
    # unpack to a few GiB; beyond this we assume a bomb.
    max_unpacked_bytes: int = 16 * GIB
    # Inflated/compressed ratio allowed once more than `ratio_floor_bytes` came out.
    # Ordinary packages stay under ~20:1; gzip's own ceiling is ~1032:1.
    max_ratio: float = 200.0
    ratio_floor_bytes: int = 64 * MIB
    max_entries: int = 1_000_000
    max_pkginfo_bytes: int = 1 * MIB
    # Control and signature segments hold a few small files; anything big is hostile.
    max_control_bytes: int = 16 * MIB
    # PAX headers and GNU long names.
    max_meta_header_bytes: int = 1 * MIB
    max_path_bytes: int = 4096
    max_symlink_depth: int = 40


DEFAULT_LIMITS = Limits()


def parse_size(text: str) -> int:
    """Parse ``512M``, ``2G``, ``1048576`` ... into bytes (binary units)."""
    units = {"": 1, "K": KIB, "M": MIB, "G": GIB, "T": 1024 * GIB}
    clean = text.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = clean, ""
    if clean and clean[-1] in units:
        number, unit = clean[:-1], clean[-1]
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"not a size: {text!r} (use e.g. 512M or 2G)") from None
    if value <= 0:
        raise ValueError(f"size must be positive: {text!r}")
    return int(value * units[unit])
