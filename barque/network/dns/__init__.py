"""The embedded DNS resolver (Docker's 127.0.0.11): one process per runroot, its files under
<runroot>/dns/."""

from __future__ import annotations

import os

SOCKET = "sock"          # the control socket (register / unregister)
PIDFILE = "pid"          # the resolver's pid; it holds a flock on it while it lives
CONTAINERS = "containers"  # one file per registered container: its netns path
LOG = "log"


def state_dir(runroot: str) -> str:
    return os.path.join(runroot, "dns")
