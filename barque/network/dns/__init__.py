"""The embedded DNS resolver (Docker's 127.0.0.11): one process per runroot, its files under
<runroot>/dns/."""

from __future__ import annotations

import os

from barque.network.service import PIDFILE, SOCKET  # noqa: F401  (the control socket, its pid)

CONTAINERS = "containers"  # one file per registered container: its netns path
LOG = "log"


def state_dir(runroot: str) -> str:
    return os.path.join(runroot, "dns")
