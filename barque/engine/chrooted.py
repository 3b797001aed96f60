"""A child process confined to a container's root, for the work `cp` does in it.

Whatever the container planted (symlinks, swapped directories, a `..`) then resolves inside
its root, as the kernel resolves paths for the container itself: nothing of the container's
is ever looked up on the host. The child is this Python forked, so before it enters the
root it loses what could turn the container's files into code or privileges: it can import
no module from a path (a planted `/usr/lib/python3*/…` stays data), it keeps only the
capabilities the work needs, no new privileges and is not dumpable. It reports on a status
pipe, one JSON object a line; the work's data goes through a pipe of its own.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable

from barque.linux import capabilities as caps
from barque.linux import prctl

_PR_SET_DUMPABLE = 4

# What the work may need, by name (everything else is dropped before the work starts).
READ_CAPS = ("CAP_DAC_READ_SEARCH",)
WRITE_CAPS = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID")


class ChildError(Exception):
    """The child's own report of why its work failed; `kind` names the error's class."""

    def __init__(self, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.kind = kind


def _lock_imports() -> None:
    """From here on only built-in and frozen modules import: after the chroot a path
    finder would load the container's files as code."""
    import importlib.machinery as machinery

    allowed = (machinery.BuiltinImporter, machinery.FrozenImporter)
    sys.meta_path[:] = [f for f in sys.meta_path if f in allowed]
    sys.path_hooks.clear()
    sys.path_importer_cache.clear()
    sys.path.clear()


def _confine(root_fd: int, keep: int, keep_fds: set[int]) -> None:
    for fd in sorted(set(range(3, _max_fd())) - keep_fds - {root_fd}):
        try:
            os.close(fd)
        except OSError:
            pass
    _lock_imports()
    prctl.set_no_new_privs()
    prctl.prctl(_PR_SET_DUMPABLE, 0)
    caps.drop_bounding(keep)  # before the chroot: it reads the host's cap_last_cap
    os.fchdir(root_fd)
    os.chroot(".")
    os.close(root_fd)
    caps.set_ambient([])
    caps.capset(keep, keep, 0)


def _max_fd() -> int:
    try:
        return max(int(name) for name in os.listdir("/proc/self/fd")) + 1
    except (OSError, ValueError):
        return 1024


def _report(fd: int, message: dict[str, object]) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(fd, data):]


def spawn(root_fd: int, work: Callable[[int, int], None], cap_names: tuple[str, ...],
          keep_fds: tuple[int, ...] = ()) -> tuple[int, int, int]:
    """Fork a child that confines itself to the directory `root_fd` and runs
    work(data_write_fd, status_write_fd). Returns (pid, data read fd, status read fd)."""
    keep = caps.mask(caps.known(list(cap_names))[0])
    data_r, data_w = os.pipe()
    status_r, status_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child never returns to the test runner)
        code = 0
        try:
            os.close(data_r)
            os.close(status_r)
            _confine(root_fd, keep, {data_w, status_w, *keep_fds})
            work(data_w, status_w)
        except BaseException as e:  # noqa: BLE001 (everything goes to the parent)
            code = 1
            try:
                _report(status_w, {"error": _describe(e), "kind": type(e).__name__})
            except BaseException:  # noqa: BLE001
                pass
        os._exit(code)
    os.close(data_w)
    os.close(status_w)
    return pid, data_r, status_r


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    return str(e) or type(e).__name__


def report(status_fd: int, message: dict[str, object]) -> None:
    """(In the child) one status line for the parent."""
    _report(status_fd, message)


class Status:
    """(In the parent) the child's status lines, read as they come."""

    def __init__(self, fd: int) -> None:
        self._file = os.fdopen(fd, "rb")

    def next(self) -> dict[str, object] | None:
        line = self._file.readline()
        if not line:
            return None
        message = json.loads(line)
        if "error" in message:
            raise ChildError(str(message["error"]), str(message.get("kind") or ""))
        return dict(message)

    def close(self) -> None:
        self._file.close()


def finish(pid: int, status: Status) -> None:
    """Wait for the child; ChildError with its last report if it failed."""
    try:
        while status.next() is not None:
            pass
    finally:
        status.close()
        _, code = os.waitpid(pid, 0)
    if code != 0:
        raise ChildError("the copy's helper process failed")
