"""The docker CLI on a pseudo-terminal of its own (`exec -it`, `run -it`, `attach`), typed at."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import termios
import time

from tests.api.conftest import Server
from tests.support import tools

Step = tuple[bytes, "bytes | tuple[int, int]"]


def docker_in_pty(server: Server, args: list[str], steps: list[Step],
                  size: tuple[int, int] = (24, 80), timeout: float = 60) -> tuple[bytes, int]:
    """docker ARGS under a pty of `size` (rows, cols); each step waits for its prompt in the
    output, then types its input (or, for a (rows, cols) pair, resizes the terminal).
    (output, exit status)."""
    import pty
    import shutil

    tools.require("docker")
    docker = shutil.which("docker")
    assert docker is not None
    env = {**os.environ, "DOCKER_HOST": server.host,
           "DOCKER_CONFIG": os.path.join(os.path.dirname(server.socket), "docker-config")}
    pid, master = pty.fork()
    if pid == 0:
        os.execve(docker, [docker, *args], env)
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
    output, todo = b"", list(steps)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                output += chunk
            if todo and todo[0][0] in output:
                action = todo.pop(0)[1]
                if isinstance(action, tuple):
                    fcntl.ioctl(master, termios.TIOCSWINSZ,
                                struct.pack("HHHH", *action, 0, 0))
                    output = b""  # the next step's prompt must come after this
                else:
                    os.write(master, action)
        else:
            os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(master)
    return output, os.waitstatus_to_exitcode(status)
