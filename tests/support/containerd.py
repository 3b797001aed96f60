"""A private containerd (own root, state, socket, config) for tests that drive it with ctr."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.tools import require


@contextmanager
def private_containerd(prefix: str) -> Iterator[str]:
    """Start containerd; yield its socket path; stop it and remove everything it made."""
    require("containerd", "ctr", "containerd-shim-runc-v2")
    work = tempfile.mkdtemp(prefix=f"{prefix}-containerd-")
    sock = os.path.join(work, "containerd.sock")
    config = os.path.join(work, "config.toml")
    with open(config, "w") as f:
        f.write(
            f'version = 2\nroot = "{work}/root"\nstate = "{work}/state"\n'
            f'[grpc]\n  address = "{sock}"\n'
            f'[ttrpc]\n  address = "{sock}.ttrpc"\n'
            f'[debug]\n  address = "{sock}.debug"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        )
    with open(os.path.join(work, "log"), "wb") as log:
        proc = subprocess.Popen(["containerd", "--config", config], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(sock):
            assert proc.poll() is None, "containerd exited early: " + open(
                os.path.join(work, "log")).read()[-2000:]
            assert time.monotonic() < deadline, "containerd did not start"
            time.sleep(0.1)
        yield sock
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        _unmount_below(work)
        shutil.rmtree(work, ignore_errors=True)


def _unmount_below(path: str) -> None:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f if line.split()[4].startswith(path)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)
