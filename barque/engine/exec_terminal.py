"""`exec -it` on the caller's own terminal: the exec's pty copied to and from it, with the
detach keys watched for, and the process left running when they come (as dockerd does)."""

from __future__ import annotations

import os
import select
import signal

from barque.engine.attach import write_all
from barque.engine.context import EngineError
from barque.engine.detach_keys import Watch
from barque.engine.exec import Execution
from barque.linux import terminal


def size(fd: int) -> tuple[int, int]:
    """The terminal's (rows, columns); (0, 0) where fd is no terminal."""
    try:
        got = os.get_terminal_size(fd)
    except OSError:
        return 0, 0
    return got.lines, got.columns


def proxy(execution: Execution, keys: bytes) -> bool:
    """Our terminal (fd 0 and 1, raw) and the exec's pty, both ways, until the process's end
    (its pty closes) or the detach keys (True)."""
    assert execution.master is not None
    master, watch = execution.master, Watch(keys)
    saved = terminal.make_raw(0)
    signal.signal(signal.SIGWINCH, lambda *_: _resize(execution))
    readers = [master, 0]
    try:
        while master in readers:
            try:
                ready, _, _ = select.select(readers, [], [])
            except InterruptedError:
                continue
            if master in ready:
                data = _read(master)  # EIO: the runtime, the pty's last other holder, is gone
                if not data:
                    break
                _write(1, data)
            if 0 in ready:
                data = _read(0)
                if not data:
                    readers.remove(0)
                    continue
                _write(master, watch.feed(data))
                if watch.detached:
                    return True
        return False
    finally:
        signal.signal(signal.SIGWINCH, signal.SIG_DFL)
        terminal.restore(0, saved)


def carry_on_detached(execution: Execution) -> None:
    """Detached from an exec: as with dockerd, its process runs on. Its pty's master is
    ours, so a child of ours, in a session of its own, holds it, drains its output and
    waits for the end (the runtime's temporary files, exec_die); we return at once."""
    assert execution.master is not None
    if os.fork() != 0:
        os.close(execution.master)
        execution.master = None
        return
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        while _read(execution.master):
            pass
        execution.wait()
    finally:
        os._exit(0)


def _resize(execution: Execution) -> None:
    rows, cols = size(0)
    if rows and cols:
        try:
            execution.resize(rows, cols)
        except (OSError, EngineError):
            pass


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""


def _write(fd: int, data: bytes) -> None:
    try:
        write_all(fd, data)
    except OSError:
        pass
