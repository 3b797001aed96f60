"""Reading a container's json-file log (written by its monitor) as `docker logs` does:
rotated files oldest first, --since/--until, --tail, and --follow until the container stops."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from barque.engine.errors import EngineError
from barque.structs import dataclass

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any, BinaryIO

    from barque.engine.context import Engine


@dataclass
class Entry:
    stream: str  # "stdout" or "stderr"
    text: bytes
    time: str  # RFC 3339 with nanoseconds, as logged

    @property
    def seconds(self) -> float:
        return parse_time(self.time)


def parse_time(text: str) -> float:
    """An RFC 3339 time (nanoseconds allowed) as Unix seconds."""
    main, _, frac = text.rstrip("Z").partition(".")
    digits = main[:4] + main[5:7] + main[8:10] + main[11:13] + main[14:16] + main[17:]
    if len(main) == 19 and main[4] + main[7] + main[10] + main[13] + main[16] == "--T::" \
            and digits.isascii() and digits.isdigit():  # what Barque writes: no strptime
        stamp = datetime(int(main[:4]), int(main[5:7]), int(main[8:10]), int(main[11:13]),
                         int(main[14:16]), int(main[17:]), tzinfo=UTC)
    else:
        stamp = datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return stamp.timestamp() + (float("0." + frac) if frac else 0.0)


def parse_since(text: str, now: float | None = None) -> float:
    """--since/--until: a Unix time (with fraction), an RFC 3339 time, or a duration before
    now ("10m", "1h30m", "2s")."""
    now = time.time() if now is None else now
    value = text.strip()
    try:
        return float(value)
    except ValueError:
        pass
    total, number = 0.0, ""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    i = 0
    while i < len(value):
        if value[i].isdigit() or value[i] == ".":
            number += value[i]
            i += 1
            continue
        unit = next((u for u in ("ns", "us", "µs", "ms", "s", "m", "h") if value.startswith(u, i)),
                    None)
        if unit is None or not number:
            break
        total += float(number) * units[unit]
        number, i = "", i + len(unit)
    else:
        if not number and total:
            return now - total
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            main = value.rstrip("Z").partition(".")[0]
            return datetime.strptime(main, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    raise ValueError(f'invalid value for "since": failed to parse value as time or '
                     f'duration: "{text}"')


def parse_tail(text: str) -> int | None:
    """--tail (the API's `tail`): "all" or "" for every entry (None), else a count; a
    negative count means all too, as Docker takes it."""
    if text in ("all", ""):
        return None
    if text.lstrip("-").isdigit():
        return int(text) if int(text) >= 0 else None
    raise ValueError(f'invalid value for "tail": "{text}"')


class NotReadable(EngineError):
    """A container that keeps no log (`--log-driver none`): dockerd's words for `logs`."""


def check_readable(host_config: dict[str, Any]) -> None:
    if (host_config.get("LogConfig") or {}).get("Type") == "none":
        raise NotReadable("configured logging driver does not support reading", status=400)


def container_logs(engine: Engine, name: str, since: float | None = None,
                   until: float | None = None, tail: int | None = None,
                   follow_: bool = False) -> Iterator[Entry]:
    """`docker logs`: the container's entries (an unknown container fails here, before any is
    read); with `follow_`, new ones as they come, until the container stops."""
    record = engine.find(name)
    check_readable(record.host_config)
    path = engine.paths.log_file(record.id)
    if follow_:
        return follow(path, lambda: bool(engine.state(record)["Running"]), since, until, tail)
    return read(path, since, until, tail)


def _files(path: str) -> list[str]:
    rotated = []
    i = 1
    while os.path.exists(f"{path}.{i}"):
        rotated.append(f"{path}.{i}")
        i += 1
    return [*reversed(rotated), path]


def _parse(line: bytes) -> Entry | None:
    try:
        data = json.loads(line)
        return Entry(str(data.get("stream", "stdout")), str(data["log"]).encode(
            "utf-8", "surrogateescape"), str(data.get("time", "")))
    except (ValueError, KeyError, TypeError):
        return None  # a line cut by a crash: skipped, as Docker does


def _read_all(path: str) -> Iterator[Entry]:
    for name in _files(path):
        try:
            with open(name, "rb") as f:
                for line in f:
                    entry = _parse(line)
                    if entry is not None:
                        yield entry
        except FileNotFoundError:
            continue


def read(path: str, since: float | None = None, until: float | None = None,
         tail: int | None = None) -> Iterator[Entry]:
    if tail is None:
        yield from (e for e in _read_all(path) if (since is None or e.seconds >= since) and
                    (until is None or e.seconds <= until))
    else:
        yield from _select(list(_read_all(path)), since, until, tail)


def follow(path: str, running: Callable[[], bool], since: float | None = None,
           until: float | None = None, tail: int | None = None,
           poll: float = 0.1) -> Iterator[Entry]:
    """What is logged so far (as read()), then new entries as they come, until the container
    is no longer running and everything it wrote has been read."""
    current = _open(path)
    # The current file is read through the descriptor kept for following: no entry written
    # meanwhile falls between "so far" and "from now on".
    old: list[Entry] = [e for name in _files(path)[:-1] for e in _entries_of(name)]
    partial = b""
    if current is not None:
        data = current.read()
        *lines, partial = data.split(b"\n")
        old += [e for e in map(_parse, lines) if e is not None]
    yield from _select(old, since, until, tail)
    while True:
        alive = running()
        chunk = current.read() if current is not None else b""
        if chunk:
            partial += chunk
            *lines, partial = partial.split(b"\n")
            for entry in map(_parse, lines):
                if entry is not None and (until is None or entry.seconds <= until):
                    yield entry
            continue
        current, rotated = _reopen_if_rotated(path, current)
        if rotated:
            partial = b""
            continue
        if not alive or (until is not None and time.time() > until):
            if current is not None:
                current.close()
            return
        time.sleep(poll)


def _entries_of(name: str) -> list[Entry]:
    try:
        with open(name, "rb") as f:
            return [e for e in map(_parse, f) if e is not None]
    except FileNotFoundError:
        return []


def _select(entries: list[Entry], since: float | None, until: float | None,
            tail: int | None) -> list[Entry]:
    chosen = [e for e in entries if (since is None or e.seconds >= since) and
              (until is None or e.seconds <= until)]
    if tail is not None:
        chosen = chosen[-tail:] if tail > 0 else []
    return chosen


def _open(path: str) -> BinaryIO | None:
    try:
        return open(path, "rb")  # noqa: SIM115 (kept open while following)
    except FileNotFoundError:
        return None


def _reopen_if_rotated(path: str, f: BinaryIO | None) -> tuple[BinaryIO | None, bool]:
    """(the file to read on, whether it is a new one: the monitor rotated the log)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f, False
    if f is None or os.fstat(f.fileno()).st_ino != st.st_ino or f.tell() > st.st_size:
        if f is not None:
            f.close()
        return _open(path), True
    return f, False
