"""Sizes and durations as Docker's go-units parses and prints them: `-m 64m` (RAMInBytes:
1024-based), log options like `max-size=10m` (FromHumanSize: 1000-based), `4.26MB`
(HumanSize), `64MiB` (BytesSize)."""

from __future__ import annotations

import re

_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?\Z")
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def parse_bytes(text: str, binary: bool = False) -> int:
    """"64m" -> 64 MiB with `binary`, 64 MB without; ValueError in go-units' words."""
    match = _SIZE_RE.match(text.strip())
    if not match:
        raise ValueError(f"invalid size: '{text}'")
    number, unit = float(match.group(1)), (match.group(2) or "").lower()
    size = number * (1024 if binary else 1000) ** _POWERS[unit]
    if not size < 2 ** 63:  # an int64 in Docker; also inf from a 400-digit number
        raise ValueError(f"invalid size: '{text}'")
    return int(size)


def ram_in_bytes(text: str) -> int:
    return parse_bytes(text, binary=True)


def human_duration(seconds: float) -> str:
    """units.HumanDuration; thresholds as in docker/go-units duration.go."""
    whole_seconds = int(seconds)
    if whole_seconds < 1:
        return "Less than a second"
    if whole_seconds == 1:
        return "1 second"
    if whole_seconds < 60:
        return f"{whole_seconds} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _size_and_unit(size: float, base: float, units: tuple[str, ...]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return size, units[i]


def human_size(size: float, precision: int = 3) -> str:
    """units.HumanSizeWithPrecision(size, 3), as docker ps/images print sizes: 4.26MB.
    (Go's %.Ng is C's, and Python's, for finite numbers.)"""
    value, unit = _size_and_unit(float(size), 1000.0, _DECIMAL_UNITS)
    return f"{value:.{precision}g}{unit}"


def bytes_size(size: float) -> str:
    """units.BytesSize: binary units with 4 significant digits, e.g. 1.5MiB, 64MiB."""
    value, unit = _size_and_unit(float(size), 1024.0, _BINARY_UNITS)
    return f"{value:.4g}{unit}"


def progress_bar(done: int, total: int | None) -> str:
    """`[=====>     ]  1.235MB/3.4MB` as Docker's JSON progress draws a layer's transfer
    (50 columns; sizes with 4 significant digits); the pull and push streams of both front
    ends carry it."""
    if not total or done > total:
        return f"{human_size(done, 4):>8}"
    filled = min(50, int(done / total * 100) // 2)
    return f"[{'=' * filled}>{' ' * (50 - filled)}] {human_size(done, 4):>8}/{human_size(total, 4)}"
