"""Keep the cgroup migration lock's fast path open while a container starts.

On cgroup v1 (and v2 without favordynmods) the first write to any cgroup.procs after a quiet
spell waits for an RCU grace period (~5-15 ms here) while holding the cgroup lock; writes
within about one more grace period after it are quick, and each one extends that window.
barque-runtime's launcher starts the first wait in a background subshell while Python starts
(bin/barque-runtime); `renew()`, called as the runtime begins `create`, `run` or `exec`,
rewrites the runtime's own cgroup (a no-op move) inside that window, so that the write which
moves the container's process, some milliseconds later, still falls in it. Outside the
window it waits once itself, which the later write would otherwise have done.
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


def renew() -> None:
    """Move this process into the cgroup it is in; quietly nothing where that is not allowed."""
    procs = _own_procs_file()
    if procs is None:
        return
    try:
        fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"0")  # "0" means the writing process itself
        finally:
            os.close(fd)
    except OSError:
        pass
