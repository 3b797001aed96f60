"""Docker's event log, without a daemon: as Podman's file backend, one JSON line per event
appended to `<runroot>/events/events.log` (O_APPEND, one write each, so concurrent `barque`
processes, monitors' exit commands and `barque serve` never interleave), rotated to
`events.log.1` when it grows past MAX_SIZE; `barque events` and GET /events read and follow it.

The engine emits (CLI and API runs alike); emitting never fails an operation."""

from __future__ import annotations

import json
import os
import time

from barque.engine import event_filters
from barque.engine.paths import Paths

TYPE_CHECKING = False  # not typing's: every command opens an Engine, which imports this
if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator
    from typing import Any

MAX_SIZE = 1 << 20  # Podman's events_logfile_max_size
_POLL = 0.05

# root -> runroot of every Engine this process opened: image functions get only the store.
_RUNROOTS: dict[str, str] = {}


def register(paths: Paths) -> None:
    _RUNROOTS[paths.root] = paths.runroot


def log_path(runroot: str) -> str:
    return os.path.join(runroot, "events", "events.log")


# --- writing ---------------------------------------------------------------------------------

def message(type_: str, action: str, actor_id: str, attributes: dict[str, str],
            time_ns: int | None = None) -> dict[str, Any]:
    """dockerd's events.Message, with the deprecated status/id/from it still sends for
    containers and images (API < 1.52)."""
    ns = time.time_ns() if time_ns is None else time_ns
    msg: dict[str, Any] = {}
    if type_ in ("container", "image"):  # omitempty, as Go's encoder
        old = {"status": action, "id": actor_id,
               "from": attributes.get("image", "") if type_ == "container" else ""}
        msg.update((k, v) for k, v in old.items() if v)
    msg.update({"Type": type_, "Action": action,
                "Actor": {"ID": actor_id, "Attributes": dict(attributes)},
                "scope": "local", "time": ns // 1_000_000_000, "timeNano": ns})
    return msg


def emit(paths: Paths | str, type_: str, action: str, actor_id: str,
         attributes: dict[str, str] | None = None) -> None:
    """Append one event (paths: a Paths or a runroot)."""
    runroot = paths if isinstance(paths, str) else paths.runroot
    line = json.dumps(message(type_, action, actor_id, attributes or {}),
                      separators=(",", ":")).encode() + b"\n"
    try:
        _append(log_path(runroot), line)
    except OSError:
        pass  # a read-only or vanished runroot: the operation itself went through


def emit_image(store: Any, action: str, actor_id: str, name: str) -> None:
    """An image event, from functions given only the store (its root -> the runroot)."""
    emit_in(getattr(store, "root", ""), "image", action, actor_id, {"name": name})


def emit_in(root: str, type_: str, action: str, actor_id: str,
            attributes: dict[str, str]) -> None:
    """An event of the root's runroot (a root no Engine of this process opened: none)."""
    runroot = _RUNROOTS.get(root)
    if runroot is not None:
        emit(runroot, type_, action, actor_id, attributes)


def container(engine: Any, record: Any, action: str, **extra: str) -> None:
    """A container event: its labels, image and name, then `extra` (exitCode, signal...)."""
    emit(engine.paths, "container", action, record.id, {**_attributes(record), **extra})


def _attributes(record: Any) -> dict[str, str]:
    labels = record.config.get("Labels") or {}
    attributes = {str(k): str(v) for k, v in labels.items()}
    attributes.update(image=str(record.config.get("Image") or record.image_id),
                      name=record.name)
    return attributes


def monitor_args(engine: Any, record: Any) -> tuple[str, str, str]:
    """The monitor's --events-log, --event-head, --event-actor (monitor/events.c writes a
    restart's die and start): the message's members before Action, and its Actor open after
    the last attribute (never empty: image and name)."""
    attributes = _attributes(record)
    head = json.dumps({"id": record.id, "from": attributes["image"], "Type": "container"},
                      separators=(",", ":"))[1:-1]
    actor = json.dumps({"ID": record.id, "Attributes": attributes}, separators=(",", ":"))
    return log_path(engine.paths.runroot), head, actor[:-2]


def network(engine: Any, net: Any, action: str, **extra: str) -> None:
    emit(engine.paths, "network", action, net.id, {"name": net.name, "type": net.driver,
                                                    **extra})


def volume(root: str, name: str, action: str) -> None:
    emit_in(root, "volume", action, name, {"driver": "local"})


def starting(engine: Any, record: Any, attach: bool = False) -> None:
    """What comes before a `start`: `attach` (a client waits to), each network's `connect`,
    each volume's `mount`."""
    _forget_ends(engine.paths.container_dir(record.id))
    if attach:
        container(engine, record, "attach")
    for net in _networks_of(engine, record):
        network(engine, net, "connect", container=record.id)
    for entry in _volumes_of(record):
        emit(engine.paths, "volume", "mount", entry["source"], {
            "container": record.id, "destination": entry["target"], "driver": "local",
            "propagation": entry.get("propagation") or "",
            "read/write": "false" if entry.get("read_only") else "true"})


def _forget_ends(directory: str) -> None:
    """The markers of the runs before this start (died())."""
    try:
        names = [n for n in os.listdir(directory) if n.startswith(".died-")]
    except OSError:
        return
    for name in names:
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            pass


def _networks_of(engine: Any, record: Any) -> list[Any]:
    """The networks the container has endpoints on (none for --network none|host|container:).
    """
    from barque.network.store import NetworkStore

    try:
        store = NetworkStore(engine.records.conn)
        found = (store.find(e.network_id) for e in store.endpoints_of(record.id))
        return [n for n in found if n is not None]
    except Exception:  # noqa: BLE001 (an event is never worth failing the operation)
        return []


def _volumes_of(record: Any) -> list[dict[str, Any]]:
    return [m for m in record.mounts if m.get("type") == "volume" and m.get("source")]


def died(engine: Any, record: Any) -> None:
    """`die` once per run, whichever of the exit command, an attached run's clean-up,
    `stop`, `kill` or `rm -f` sees the end first: a marker named for the run's end in the
    container's dir, made with O_EXCL (the next start removes it)."""
    state = engine.state(record)
    end = "".join(c for c in str(state.get("FinishedAt") or "") if c.isalnum())
    marker = os.path.join(engine.paths.container_dir(record.id), f".died-{end}")
    try:
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    except FileExistsError:
        return
    except OSError:
        pass  # no container dir: no other reporter either
    if state.get("OOMKilled"):
        container(engine, record, "oom")
    container(engine, record, "die", exitCode=str(int(state.get("ExitCode") or 0)))
    for net in _networks_of(engine, record):
        network(engine, net, "disconnect", container=record.id)
    for entry in _volumes_of(record):
        emit(engine.paths, "volume", "unmount", entry["source"],
             {"container": record.id, "driver": "local"})


def _append(path: str, line: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, line)  # one write: appended whole (a regular file, O_APPEND)
        if os.fstat(fd).st_size > MAX_SIZE:
            _rotate(path, fd)
    finally:
        os.close(fd)


def _rotate(path: str, fd: int) -> None:
    """The full log becomes events.log.1 (replacing the older one); one rotator at a time,
    and only if no other process rotated this file already."""
    from barque.linux import locks

    with locks.locked_dir(os.path.dirname(path)):
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return
        if same:
            os.rename(path, path + ".1")


# --- reading ---------------------------------------------------------------------------------

def _lines_of(fd: int, rest: bytes) -> tuple[list[bytes], bytes]:
    data = rest
    while chunk := os.read(fd, 1 << 16):
        data += chunk
    *lines, rest = data.split(b"\n")
    return lines, rest


def _decode(lines: list[bytes]) -> Iterator[dict[str, Any]]:
    for line in lines:
        try:
            msg = json.loads(line)
        except ValueError:
            continue  # a line cut by a crash mid-write: skipped
        if isinstance(msg, dict):
            yield msg


def _open(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return -1


def read(runroot: str, since_ns: int | None = None, until_ns: int | None = None,
         filters: dict[str, list[str]] | None = None, follow: bool = False,
         stopped: Callable[[], bool] = lambda: False
         ) -> Generator[dict[str, Any], None, None]:
    """The events matching `filters`: with `since_ns` or `until_ns`, the logged ones in that
    window first; with `follow`, new ones as they come until `until_ns` (or `stopped()`).
    The log is opened (and, without a window, its end taken) now, not at the first next():
    what happens once this returned is in the stream."""
    path = log_path(runroot)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    past = since_ns is not None or until_ns is not None
    fd = _open(path)
    if fd < 0:
        fd = _open_created(path)
    if fd >= 0 and not past:
        os.lseek(fd, 0, os.SEEK_END)  # only what comes from now on
    return _read(path, fd, past, since_ns, until_ns, filters, follow, stopped)


def _read(path: str, fd: int, past: bool, since_ns: int | None, until_ns: int | None,
          filters: dict[str, list[str]] | None, follow: bool,
          stopped: Callable[[], bool]) -> Generator[dict[str, Any], None, None]:
    try:
        if past:  # the rotated file first, then the current one
            old = _open(path + ".1")
            if old >= 0:
                try:
                    lines, _ = _lines_of(old, b"")
                finally:
                    os.close(old)
                yield from _window(_decode(lines), since_ns, until_ns, filters)
        rest = b""
        while True:
            if fd >= 0:
                lines, rest = _lines_of(fd, rest)
                yield from _window(_decode(lines), since_ns, until_ns, filters)
            if not follow or stopped() or (until_ns is not None and time.time_ns() > until_ns):
                return
            time.sleep(_POLL)
            new = _newer(path, fd)
            if new >= 0:
                if fd >= 0:  # rotated: the rest of the old file (a write that raced with
                    lines, _ = _lines_of(fd, rest)  # the rename), then the new one
                    yield from _window(_decode(lines), since_ns, until_ns, filters)
                    os.close(fd)
                fd, rest = new, b""
    finally:
        if fd >= 0:
            os.close(fd)


def _open_created(path: str) -> int:
    """The log, made empty if no event was ever written (a follower waits on it)."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return -1


def _newer(path: str, fd: int) -> int:
    """A descriptor of the file now at `path` if it is not `fd`'s (a rotation); else -1."""
    try:
        current = os.stat(path).st_ino
    except FileNotFoundError:
        return -1
    if fd >= 0 and current == os.fstat(fd).st_ino:
        return -1
    return _open(path)


def _window(messages: Iterator[dict[str, Any]], since_ns: int | None, until_ns: int | None,
            filters: dict[str, list[str]] | None) -> Iterator[dict[str, Any]]:
    for msg in messages:
        stamp = int(msg.get("timeNano") or 0)
        if since_ns is not None and stamp < since_ns:
            continue
        if until_ns is not None and stamp > until_ns:
            continue
        if not filters or event_filters.matches(msg, filters):
            yield msg
