"""The docker CLI on a pseudo-terminal of its own (`exec -it`, `run -it`, `attach`), typed at."""

from __future__ import annotations

import os
import shutil

from tests.api.conftest import Server
from tests.support import tools
from tests.support.ptys import Step, run_in_pty


def docker_in_pty(server: Server, args: list[str], steps: list[Step],
                  size: tuple[int, int] = (24, 80), timeout: float = 60) -> tuple[bytes, int]:
    """docker ARGS against the server under a pty of `size` (rows, cols), driven by `steps`
    (tests/support/ptys.py). (output, exit status)."""
    tools.require("docker")
    docker = shutil.which("docker")
    assert docker is not None
    env = {**os.environ, "DOCKER_HOST": server.host,
           "DOCKER_CONFIG": os.path.join(os.path.dirname(server.socket), "docker-config")}
    return run_in_pty([docker, *args], steps, env=env, size=size, timeout=timeout)
