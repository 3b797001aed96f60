"""Reading one instruction's arguments and flags as BuildKit's dockerfile2llb does, after
the parser (parser.py) checked their shape: ENV/LABEL pairs, ARG declarations, RUN's
--mount/--network, COPY/ADD's flags, HEALTHCHECK, EXPOSE, and the exec/shell forms.
Errors are ValueError with BuildKit's words; the builder adds the line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from barque.build.dockerfile.instructions import Instruction
from barque.structs import dataclass

# --- Go's time.ParseDuration -------------------------------------------------------------

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
          "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")


def _go_quote(text: str) -> str:
    from barque.build.dockerfile.parser import go_quote
    return go_quote(text)


def parse_duration(text: str) -> int:
    """A Go duration ("1m30s", "1.5h", "-2s", "0") in nanoseconds; ValueError with Go's
    words otherwise."""
    orig, s, sign = text, text, 1
    if s[:1] in ("-", "+"):
        sign, s = (-1 if s[0] == "-" else 1), s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"time: invalid duration {_go_quote(orig)}")
    total = 0.0
    while s:
        match = _DURATION_PART.match(s)
        assert match is not None
        whole, frac, unit = match.groups()
        if not whole and not frac:
            raise ValueError(f"time: invalid duration {_go_quote(orig)}")
        if not unit:
            raise ValueError(f"time: missing unit in duration {_go_quote(orig)}")
        if unit not in _UNITS:
            raise ValueError(f"time: unknown unit {_go_quote(unit)} in duration "
                             f"{_go_quote(orig)}")
        total += float(f"{whole or 0}.{frac or 0}") * _UNITS[unit]
        s = s[match.end():]
    return sign * int(total)


def _parse_int32(text: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError(f"strconv.ParseInt: parsing {_go_quote(text)}: invalid syntax")
    value = int(text)
    if not -2**31 <= value < 2**31:
        raise ValueError(f"strconv.ParseInt: parsing {_go_quote(text)}: value out of range")
    return value


# --- HEALTHCHECK -------------------------------------------------------------------------

_HEALTH_FLAGS = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
                 "start-interval": "StartInterval"}


def healthcheck(instr: Instruction) -> dict[str, object]:
    """The image config's Healthcheck: {"Test": [...], "Interval": ns, ...} (zero values
    left out, as the image config's omitempty does)."""
    if not instr.args:
        raise ValueError("HEALTHCHECK requires at least one argument")
    kind, args = instr.args[0].upper(), instr.args[1:]
    if kind == "NONE":
        if args:
            raise ValueError("HEALTHCHECK NONE takes no arguments")
        return {"Test": ["NONE"]}
    if kind != "CMD":
        raise ValueError(f"Unknown type {_go_quote(kind)} in HEALTHCHECK (try CMD)")
    if not args or (not instr.json_form and not args[0]):
        raise ValueError("Missing command after HEALTHCHECK CMD")
    health: dict[str, object] = {"Test": ["CMD" if instr.json_form else "CMD-SHELL", *args]}
    for flag, key in _HEALTH_FLAGS.items():
        value = instr.flags.get(flag, [""])[-1]
        duration = parse_duration(value) if value else 0
        if duration and duration < 1_000_000:
            raise ValueError(f"Interval {_go_quote(flag)} cannot be less than 1ms")
        if duration:
            health[key] = duration
    retries = instr.flags.get("retries", [""])[-1]
    if retries:
        count = _parse_int32(retries)
        if count < 0:
            raise ValueError(f"--retries cannot be negative ({count})")
        if count:
            health["Retries"] = count
    return health


# --- RUN --mount -------------------------------------------------------------------------

MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING_MODES = ("shared", "private", "locked")


def _csv_fields(spec: str) -> list[str]:
    """Go's encoding/csv reading of one record (quotes allowed around a field)."""
    import csv
    try:
        rows = list(csv.reader([spec], strict=True))
    except csv.Error as e:
        raise ValueError(f"failed to parse csv mounts: {e}") from None
    return rows[0] if rows else []


def check_mount_syntax(spec: str) -> None:
    """What BuildKit checks of a --mount before expansion: its CSV, and `from` (a stage
    or image name) not using variables."""
    for item in _csv_fields(spec):
        key, sep, value = item.partition("=")
        if sep and key.lower() == "from":
            idx = value.find("$")
            if idx != -1 and idx != len(value) - 1:
                raise ValueError(f"'{key.lower()}' doesn't support variable expansion, "
                                 "define alias stage instead")


@dataclass
class MountSpec:
    type: str = "bind"
    target: str = ""
    source: str = ""
    from_: str = ""
    readonly: bool = True
    id: str = ""
    sharing: str = ""
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    required: bool = False
    env: str | None = None
    size: int = 0


def _unused(env: Mapping[str, str]) -> None:
    del env
