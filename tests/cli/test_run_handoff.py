"""An attached `run` or `start -a` cleans up after its container itself (it claims the
monitor's exit: monitor/README.md `claim-exit`), so no `container cleanup` process runs; if the
CLI dies first, the monitor's exit command still does the clean-up.

Processes are found by their command line naming the test's own root; every wait is bounded."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.cli.conftest import Barque, inspect_container, ok, until
from tests.support.marks import needs_busybox

pytestmark = [pytest.mark.root, needs_busybox]


def _cleanups_running(root: str) -> int:
    """Live `barque … container cleanup` processes on this root."""
    found = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        pairs = zip(args, args[1:], strict=False)  # adjacent: not the monitor's args
        if root.encode() in args and (b"container", b"cleanup") in pairs:
            found += 1
    return found


@contextmanager
def cleanups_seen(root: str, tail: float = 0.5) -> Iterator[list[int]]:
    """Counts the cleanup processes seen while the block runs and `tail` seconds after (an
    exit command starts as the container ends and lives ~100 ms: a scan every few ms sees
    it)."""
    seen = [0]
    stop = threading.Event()

    def scan() -> None:
        while not stop.is_set():
            seen[0] = max(seen[0], _cleanups_running(root))
            time.sleep(0.003)

    thread = threading.Thread(target=scan, daemon=True)
    thread.start()
    try:
        yield seen
        time.sleep(tail)
    finally:
        stop.set()
        thread.join(10)


def test_attached_rm_run_needs_no_exit_command(barque: Barque) -> None:
    with cleanups_seen(barque.root) as seen:
        for _ in range(3):
            result = barque.run("run", "--rm", "busybox", "sh", "-c", "echo hi; exit 3")
            assert (result.returncode, result.stdout) == (3, "hi\n"), result.stderr
    assert seen[0] == 0, "a container cleanup process ran after an attached run"
    assert barque.containers() == []


def test_start_attach_cleans_up_itself(barque: Barque) -> None:
    cid = ok(barque.run("create", "busybox", "sh", "-c", "echo kept; exit 2")).strip()
    with cleanups_seen(barque.root) as seen:
        result = barque.run("start", "-a", cid)
        assert (result.returncode, result.stdout) == (2, "kept\n"), result.stderr
    assert seen[0] == 0
    assert barque.containers() == [cid]  # kept (no --rm), unmounted
    state = inspect_container(barque, cid)["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 2)
    with open("/proc/self/mountinfo") as f:
        assert cid not in f.read()
    result = barque.run("start", "-a", cid)  # and it starts again
    assert (result.returncode, result.stdout) == (2, "kept\n"), result.stderr


def test_killed_cli_leaves_the_clean_up_to_the_monitor(barque: Barque) -> None:
    proc = subprocess.Popen(barque.argv("run", "--rm", "busybox", "sh", "-c",
                                        "echo ready; sleep 2"),
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        [cid] = barque.containers()
        proc.send_signal(signal.SIGKILL)  # mid-run, its claim held
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert inspect_container(barque, cid)["State"]["Running"]
    until(lambda: barque.containers() == [], 30)  # the exit command removed it
    with open("/proc/self/mountinfo") as f:
        assert cid not in f.read()
