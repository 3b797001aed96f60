"""The `barque` CLI under test: run as a user would, on a root dir of each test's own."""

from __future__ import annotations

import itertools
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


def _barque() -> list[str]:
    beside = os.path.join(os.path.dirname(sys.executable), "barque")
    if os.access(beside, os.X_OK):
        return [beside]
    found = shutil.which("barque")
    return [found] if found else [sys.executable, "-m", "barque.cli.main"]


@dataclass
class Barque:
    root: str
    runroot: str

    def argv(self, *args: str) -> list[str]:
        return [*_barque(), "--root", self.root, "--runroot", self.runroot, *args]

    def run(self, *args: str, timeout: float = 60,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    def containers(self) -> list[str]:
        path = os.path.join(self.root, "containers")
        return sorted(os.listdir(path)) if os.path.isdir(path) else []


_ROOTS = itertools.count()


def daemon_json(if_prefix: str, n: int) -> dict[str, object]:
    """A test root's network settings: names that carry the run's mark, and subnets of its
    own. Several test runs share this host: two roots that both chose Docker's first free
    pool before either bridge was up would route each other's subnets away; a random /24 of
    10.160.0.0/11 for the default bridge and /20 of 10.128.0.0/11 for user networks keep
    them apart (and clear of the 10.192.0.0/10 the tests name in --subnet)."""
    bip, pool = secrets.randbelow(8192), secrets.randbelow(512)
    return {"bridge": f"{if_prefix}b{n}", "nft-table": f"{if_prefix}_{n}",
            # the network agent's and the resolver's linger (teardown stops them anyway)
            "network-agent-idle": 5, "dns-resolver-idle": 5,
            "bip": f"10.{160 + bip // 256}.{bip % 256}.1/24",
            "default-address-pools": [
                {"base": f"10.{128 + pool // 16}.{pool % 16 * 16}.0/20", "size": 24}]}


def new_barque(root: str, runroot: str, if_prefix: str) -> Barque:
    """A root of a test's own, its network names marked (daemon_json); remove_everything
    unmakes it."""
    os.makedirs(root, mode=0o700)
    with open(os.path.join(root, "daemon.json"), "w") as f:
        json.dump(daemon_json(if_prefix, next(_ROOTS)), f)
    return Barque(root, runroot)


@pytest.fixture
def barque(run_prefix: str, if_prefix: str) -> Iterator[Barque]:
    # The run prefix in the paths lets the suite's leak check spot a mount we left behind; the
    # interface prefix in the default bridge's and the nftables table's names, a link or table.
    work = tempfile.mkdtemp(prefix=f"{run_prefix}-cli-")
    b = new_barque(os.path.join(work, "root"), os.path.join(work, "run"), if_prefix)
    try:
        yield b
    finally:
        remove_everything(b, work)
        shutil.rmtree(work, ignore_errors=True)


def remove_everything(b: Barque, work: str) -> None:
    """Whatever a test left (a failed assertion skips its own clean-up): every container
    force-removed, its monitor, processes and mounts with it; then no process of `work` left
    (a monitor's last step, `barque container cleanup`, may still be running: removing the
    root under it would leave the files its open state DB writes, -wal and -shm)."""
    if os.path.exists(os.path.join(b.root, "barque.db")):
        ids = b.run("ps", "-aq", "--no-trunc").stdout.split()
        if ids:
            b.run("rm", "-f", "-v", *ids, timeout=120)
        b.run("network", "prune", "-f")
    _stop_helpers(b)
    _wait_for_processes_naming(work)
    _remove_default_bridge(b)


def _stop_helpers(b: Barque) -> None:
    """The runroot's network agent and DNS resolver, which linger after their last use: by
    their pid files (SIGTERM, then SIGKILL), never by name."""
    from barque.network import agent, service
    from barque.network.dns import state_dir

    for directory in (agent.state_dir(b.runroot), state_dir(b.runroot)):
        service.stop(directory)


def _remove_default_bridge(b: Barque) -> None:
    """What Docker keeps for the daemon's life and Barque for the host's: the default bridge
    and the firewall's table (a test root's names carry the run's mark)."""
    from barque.network import config, links
    from barque.network.firewall import Firewall

    settings = config.load(b.root)
    links.delete_bridge(settings.bridge)
    Firewall(settings.nft_table).delete_table()
    netns_dir = os.path.join(b.runroot, "netns")  # a mount of itself, as `ip netns` makes
    with open("/proc/self/mountinfo") as f:  # ismount: no, a bind mount of its own fs
        mounted = any(line.split()[4] == netns_dir for line in f)
    if mounted:
        subprocess.run(["umount", "--lazy", netns_dir], check=False)


def _wait_for_processes_naming(path: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    needle = path.encode()
    while time.monotonic() < deadline:
        busy = False
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    busy = needle in f.read()
            except OSError:
                continue
            if busy:
                break
        if not busy:
            return
        time.sleep(0.05)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.args, result.stdout, result.stderr)
    return result.stdout


def inspect_container(barque: Barque, name: str) -> dict:
    [obj] = json.loads(ok(barque.run("inspect", name)))
    return obj


def until(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def cleanup(barque: Barque) -> Barque:
    """The `barque` fixture, which removes every container the test made."""
    return barque
