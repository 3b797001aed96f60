"""Sizes as Docker's go-units parses them: `-m 64m` (RAMInBytes: 1024-based) and log options
like `max-size=10m` (FromHumanSize: 1000-based)."""

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
