"""Start the cgroup migration lock's slow path early, in the background.

On cgroup v1 (and v2 without favordynmods) the first write to any cgroup.procs after a quiet
spell waits for an RCU grace period (~8-14 ms here); writes within the next grace period are
quick. `create` forks a throw-away child that rewrites its own pid into the cgroup it is
already in — a no-op move — as its first act, so that wait overlaps with the runtime's own
start-up instead of delaying the container.
"""

from __future__ import annotations

import os


def _own_procs_file() -> str | None:
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, ctrl, path = line.split(":", 2)
        base = "/sys/fs/cgroup" if not ctrl else "/sys/fs/cgroup/" + ctrl.split("=")[-1]
        procs = f"{base}{path.rstrip('/')}/cgroup.procs"
        if os.access(procs, os.W_OK):
            return procs
    return None


def start() -> int:
    """Fork the child; return its pid (0 if there is nothing to do). Reaping is the caller's."""
    procs = _own_procs_file()
    if procs is None:
        return 0
    pid = os.fork()
    if pid == 0:
        try:
            fd = os.open(procs, os.O_WRONLY)
            os.write(fd, b"0")  # "0" means the writing process itself
        finally:
            os._exit(0)
    return pid
