"""Helpers for cgroup tests against the real kernel: forked children that start only once
they are in the cgroup, and a harness that removes every cgroup and child afterwards."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest

from barque.cgroups import Manager, open_manager
from barque.cgroups.mountinfo import is_pure_v2
from barque.linux.libc import libc

PURE_V2 = is_pure_v2()
IS_ROOT = os.geteuid() == 0
SIGKILL = 9
PR_SET_PDEATHSIG = 1

needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root to create cgroups")
root = [pytest.mark.root, needs_root]
v1_only = pytest.mark.skipif(PURE_V2, reason="cgroup v1 driver: this host is pure cgroup v2")
v2_only = [
    pytest.mark.cgroup2,
    pytest.mark.skipif(
        not PURE_V2,
        reason="cgroup v2 driver: needs a pure cgroup v2 host, run inside "
        "../shared/tools/cgroup2-guest (this host has cgroup v1 or hybrid cgroups)",
    ),
]


class Child:
    """A forked child that runs `fn` only after the test has put it into a cgroup.

    Its exit status is fn's return value (99 if fn raised). With hold=True it then blocks
    until killed. It dies with the test process, so nothing outlives a crashed run.
    """

    def __init__(self, fn: Callable[[], int | None], hold: bool = False) -> None:
        read_end, self._go = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            libc.prctl(PR_SET_PDEATHSIG, SIGKILL)
            os.close(self._go)
            code = 99
            try:
                os.read(read_end, 1)
                code = fn() or 0
                if hold:
                    os.read(read_end, 1)  # the test never writes again: blocks until killed
            finally:
                os._exit(code)
        os.close(read_end)
        self.pid = pid
        self.status: int | None = None

    def start(self) -> None:
        os.write(self._go, b"x")

    def wait(self, timeout: float = 30.0) -> int:
        """The wait status (see os.waitstatus_to_exitcode); kills the child on timeout."""
        deadline = time.monotonic() + timeout
        while self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = status
                os.close(self._go)
                break
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"child {self.pid} did not exit within {timeout}s")
            time.sleep(0.01)
        return self.status

    def kill(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, SIGKILL)
            except ProcessLookupError:
                pass
            self.status = os.waitpid(self.pid, 0)[1]
            os.close(self._go)


class Harness:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.managers: list[Manager] = []
        self.children: list[Child] = []

    def manager(self, name: str = "c", create: bool = True) -> Manager:
        m = open_manager(f"/{self.prefix}/{name}", name)
        self.managers.append(m)
        if create:
            m.create()
        return m

    def child(self, m: Manager, fn: Callable[[], int | None], hold: bool = False) -> Child:
        """A child already in `m`'s cgroup and running `fn`."""
        c = Child(fn, hold)
        self.children.append(c)
        m.add_pid(c.pid)
        c.start()
        return c

    def cleanup(self) -> None:
        for c in self.children:
            c.kill()
        for m in self.managers:
            if m.exists():
                m.kill_all(SIGKILL)
                m.destroy()


def knob(m: Manager, controller: str, v1_name: str, v2_name: str) -> str:
    """A control file of the container's cgroup, by its v1 or v2 name as the driver needs."""
    if m.version == 2:
        return _read(f"{m.dir}/{v2_name}")  # type: ignore[attr-defined]
    return _read(f"{m.dirs[controller]}/{v1_name}")  # type: ignore[attr-defined]


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()
