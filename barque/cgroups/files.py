"""Reading and writing cgroupfs files, shared by both drivers.

Every failure becomes a CgroupError naming the file (and the value, for writes), so the
runtime can print it as is.
"""

from __future__ import annotations

import errno
import os
import time

from barque.cgroups.base import CgroupError, Manager

MAX_U64 = 2**64 - 1  # what runc reports for an unlimited v2 value ("max")
SIGKILL = 9  # Linux numbering; spares importing `signal` on the runtime's start path


def write(directory: str, name: str, value: str | int) -> None:
    path = f"{directory}/{name}"
    data = str(value).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as e:
        raise CgroupError(f"cannot open {path} to write {value!r}: {e.strerror}", e.errno) from e
    try:
        # cgroupfs takes one value per write(2): never let it be split.
        os.write(fd, data)
    except OSError as e:
        raise CgroupError(f"cannot write {value!r} to {path}: {e.strerror}", e.errno) from e
    finally:
        os.close(fd)


class Writer:
    """cgroupfs files kept open for several one-value writes each (v1's device rules): an
    open(2) through cgroupfs costs more than the write."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._fds: dict[str, int] = {}

    def write(self, name: str, value: str) -> None:
        path = f"{self.directory}/{name}"
        fd = self._fds.get(name)
        if fd is None:
            try:
                fd = self._fds[name] = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            except OSError as e:
                raise CgroupError(f"cannot open {path} to write {value!r}: {e.strerror}",
                                  e.errno) from e
        try:
            os.write(fd, value.encode())
        except OSError as e:
            raise CgroupError(f"cannot write {value!r} to {path}: {e.strerror}", e.errno) from e

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def read(directory: str, name: str) -> str:
    path = f"{directory}/{name}"
    try:
        with open(path, "rb") as f:
            return f.read().decode().strip()
    except OSError as e:
        raise CgroupError(f"cannot read {path}: {e.strerror}", e.errno) from e


def read_optional(directory: str, name: str) -> str | None:
    """The file's content, or None when the kernel does not provide the file."""
    try:
        return read(directory, name)
    except CgroupError as e:
        if e.errno == errno.ENOENT:
            return None
        raise


def parse_uint(text: str) -> int:
    return MAX_U64 if text == "max" else int(text)


def read_uint(directory: str, name: str) -> int:
    """The first number in the file; 0 when the kernel does not provide the file."""
    text = read_optional(directory, name)
    return parse_uint(text.split()[0]) if text else 0


def read_keyed(directory: str, name: str) -> dict[str, int]:
    """A flat keyed file ("key value" lines: memory.stat, cpu.stat, memory.events ...)."""
    text = read_optional(directory, name)
    result: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if value:
            result[key] = parse_uint(value.strip())
    return result


def has(directory: str, name: str) -> bool:
    return os.path.exists(f"{directory}/{name}")


def mkdir(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise CgroupError(f"cannot create cgroup {path}: {e.strerror}", e.errno) from e


def tree_pids(directory: str) -> list[int]:
    """Every pid in the cgroup and its descendants."""
    pids: list[int] = []
    for dirpath, _dirs, _files in os.walk(directory):
        text = read_optional(dirpath, "cgroup.procs") or ""
        pids.extend(int(p) for p in text.split())
    return pids


def signal_pids(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass  # exited meanwhile


def kill_frozen(manager: Manager, sig: int) -> None:
    """Signal every task with the cgroup frozen, so that none can fork away from the signal."""
    was_frozen = manager.is_frozen()
    try:
        manager.freeze()
    except CgroupError:
        # freeze() thawed it back; signal anyway: a missed fork beats no signal at all.
        signal_pids(manager.pids(), sig)
        return
    signal_pids(manager.pids(), sig)
    # A paused container stays paused, unless it is being killed: frozen tasks die only thawed.
    if not was_frozen or sig == SIGKILL:
        manager.thaw()


def remove_tree(directory: str, timeout: float = 2.0) -> None:
    """rmdir the cgroup and its children, children first; a missing dir is not an error.

    Retries on EBUSY because a killed task leaves its cgroup a little after it is reaped.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            _rmdir_children_first(directory)
            return
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() > deadline:
                raise CgroupError(f"cannot remove cgroup {directory}: {e.strerror}", e.errno) from e
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _rmdir_children_first(directory: str) -> None:
    if not os.path.isdir(directory):
        return
    for dirpath, _dirs, _files in os.walk(directory, topdown=False):
        try:
            os.rmdir(dirpath)
        except FileNotFoundError:
            pass
