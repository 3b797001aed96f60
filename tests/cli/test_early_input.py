"""Input typed before the container is ready is kept (`run -it`, `exec -it`): the CLI and the
runtime put the terminal in raw mode without flushing it, as docker does (TCSANOW, never
TCSAFLUSH)."""

from __future__ import annotations

import os
import pty
import select
import signal
import time

import pytest

from tests.cli.conftest import Barque, ok, until
from tests.support.marks import needs_busybox

pytestmark = [pytest.mark.root, needs_busybox]


def _type_ahead(b: Barque, argv: list[str], typed: bytes,
                timeout: float = 30) -> tuple[bytes, int | None]:
    """Run barque under a pty with `typed` already waiting in its input, as if typed at once;
    (output, exit status — None if it hung, then it is killed)."""
    pid, master = pty.fork()
    if pid == 0:
        os.execv(b.argv()[0], b.argv(*argv))
    os.write(master, typed)  # before barque even started: certainly before the container
    output, status, is_open = b"", None, True
    deadline = time.monotonic() + timeout
    try:
        while status is None and time.monotonic() < deadline:
            ready = select.select([master], [], [], 0.2)[0] if is_open else time.sleep(0.05)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: barque exited and closed the pty
                    chunk = b""
                output += chunk
                is_open = bool(chunk)
            got, code = os.waitpid(pid, os.WNOHANG)
            if got:
                status = os.waitstatus_to_exitcode(code)
        while is_open and select.select([master], [], [], 0.2)[0]:  # what is left
            try:
                chunk = os.read(master, 4096)
            except OSError:
                chunk = b""
            output += chunk
            is_open = bool(chunk)
        if status is None:  # it hung: our own child, killed by its pid
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    finally:
        os.close(master)
    return output, status


def _lines(output: bytes) -> list[bytes]:
    return [line.strip() for line in output.replace(b"\r", b"\n").split(b"\n")]


def test_run_it_keeps_input_typed_before_the_container_is_ready(cleanup: Barque) -> None:
    # h''i: the echo of the typed line shows "h''i", only the shell's output shows "hi"
    output, code = _type_ahead(cleanup, ["run", "--rm", "-it", "busybox", "sh"],
                               b"echo h''i; exit 3\n")
    assert code == 3, output
    assert b"hi" in _lines(output), output


def test_exec_it_keeps_input_typed_before_the_process_is_ready(cleanup: Barque) -> None:
    b = cleanup
    ok(b.run("run", "-d", "--name", "ea", "busybox", "sleep", "300"))
    until(lambda: b.run("exec", "ea", "true").returncode == 0)
    output, code = _type_ahead(b, ["exec", "-it", "ea", "sh"], b"echo h''i; exit 4\n")
    assert code == 4, output
    assert b"hi" in _lines(output), output
