"""Watching processes a test started, by pid or by command line (watched, never killed)."""

from __future__ import annotations

import os
import time


def alive(pid: int | None) -> bool:
    """Whether `pid` runs: a zombie or a dead task counts as gone."""
    if pid is None:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[-1][:1] not in ("Z", "X")
    except OSError:
        return False


def wait_gone(pid: int | None, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def module_pids(module: str, runroot: str) -> list[int]:
    """Processes running `python -m module` for `runroot` (both among their arguments)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if module.encode() in args and runroot.encode() in args:
                pids.append(int(entry))
    return pids
