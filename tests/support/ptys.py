"""A program on a pseudo-terminal of its own (its controlling terminal, the program the
session leader), driven as a person at a keyboard would: wait for a prompt, type, resize."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import termios
import time

# (what to wait for in the output, then: bytes to type, or a (rows, cols) resize)
Step = tuple[bytes, "bytes | tuple[int, int]"]


def run_in_pty(argv: list[str], steps: list[Step], *, env: dict[str, str] | None = None,
               size: tuple[int, int] = (24, 80), timeout: float = 60) -> tuple[bytes, int]:
    """argv under a pty of `size` (rows, cols); each step in turn waits for its prompt, then
    types its input or resizes the terminal (the output seen so far is then forgotten: the
    next prompt must come after the resize). Killed at `timeout`. (output, exit status)."""
    import pty

    import pytest

    try:
        pid, master = pty.fork()
    except OSError as e:  # the cgroup v2 guest has no pty devices (as test_terminal skips)
        pytest.skip(f"this machine gives the test no pseudo-terminal: {e}")
    if pid == 0:
        try:
            if env is None:
                os.execv(argv[0], argv)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    _resize(master, size)
    output, todo = b"", list(steps)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the last holder of the terminal's other end is gone
                    break
                if not chunk:
                    break
                output += chunk
            if todo and todo[0][0] in output:
                action = todo.pop(0)[1]
                if isinstance(action, tuple):
                    _resize(master, action)
                    output = b""
                else:
                    os.write(master, action)
        else:
            os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(master)
    return output, os.waitstatus_to_exitcode(status)


def _resize(master: int, size: tuple[int, int]) -> None:
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
