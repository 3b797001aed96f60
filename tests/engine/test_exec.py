"""engine.exec's Execution for a caller without a terminal (the Engine API): a pty of ours
that the runtime proxies, its resize, and the process's pid."""

from __future__ import annotations

import os
import select
import time

import pytest

from barque.engine import exec as engine_exec
from barque.engine.context import Engine, Paths
from tests.cli.conftest import Barque, ok
from tests.support.marks import needs_busybox


def _read_until(fd: int, text: bytes, timeout: float = 20) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while text not in out:
        assert time.monotonic() < deadline, out
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the other side is gone
                break
            if not chunk:
                break
            out += chunk
    return out


@pytest.mark.root
@needs_busybox
def test_a_pty_of_ours_its_size_and_the_pid(barque: Barque) -> None:
    b = barque
    ok(b.run("run", "-d", "--name", "box", "busybox", "sleep", "300"))
    with Engine(Paths(b.root, b.runroot)) as engine:
        container_id, process = engine_exec.process_for(engine, "box", ["sh"], env=[],
                                                        user=None, workdir=None, tty=True)
        execution = engine_exec.Execution(engine, container_id, process, detach=False,
                                          interactive=True, pty=(33, 111))
        master = execution.master
        assert master is not None
        try:
            pid = execution.wait_started()
            assert pid > 0 and os.path.exists(f"/proc/{pid}")
            os.write(master, b"stty size\r")
            assert b"33 111" in _read_until(master, b"33 111")
            execution.resize(40, 120)
            time.sleep(0.2)  # the runtime passes it on at its SIGWINCH
            os.write(master, b"stty size; exit 4\r")
            assert b"40 120" in _read_until(master, b"40 120")
            assert execution.wait() == 4
        finally:
            os.close(master)
        left = os.listdir(engine.paths.container_dir(container_id))
        assert not [n for n in left if n.startswith(".exec-")]  # process, log, pid files
