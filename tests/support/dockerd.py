"""A private dockerd (own socket, data-root, exec-root, pidfile, cgroup parent, no bridge and
no iptables rules) with barque-runtime registered, for tests that drive it with the docker CLI.

dockerd starts its own containerd under the exec-root; stopping dockerd stops it. Whatever the
daemon leaves (mounts under its dirs, its cgroups) is removed after."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.tools import require

START_TIMEOUT_S = 60.0


@contextmanager
def private_dockerd(prefix: str, runtimes: dict[str, str]) -> Iterator[list[str]]:
    """Start dockerd with `runtimes` ({name: path}); yield the docker CLI's argv prefix."""
    require("dockerd", "docker", "containerd")
    work = tempfile.mkdtemp(prefix=f"{prefix}-dockerd-")
    sock = os.path.join(work, "docker.sock")
    config = os.path.join(work, "daemon.json")
    with open(config, "w") as f:
        json.dump({"runtimes": {n: {"path": p} for n, p in runtimes.items()}}, f)
    cgroup_parent = f"/{prefix}-docker"
    argv = ["dockerd", "--config-file", config, "-H", f"unix://{sock}",
            "--data-root", f"{work}/data", "--exec-root", f"{work}/exec",
            "--pidfile", f"{work}/dockerd.pid", "--bridge", "none", "--iptables=false",
            "--ip6tables=false", "--ip-masq=false", "--cgroup-parent", cgroup_parent,
            "--exec-opt", "native.cgroupdriver=cgroupfs"]
    log_path = os.path.join(work, "dockerd.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
    # --config: the CLI's own config dir, never the user's ~/.docker
    docker = ["docker", "--config", os.path.join(work, "cli"), "-H", f"unix://{sock}"]
    try:
        _wait_ready(proc, docker, log_path)
        yield docker
    finally:
        _stop(proc, docker)
        _unmount_below(work)
        _remove_cgroups(cgroup_parent)
        shutil.rmtree(work, ignore_errors=True)


def _wait_ready(proc: subprocess.Popen, docker: list[str], log_path: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while subprocess.run([*docker, "version"], capture_output=True).returncode != 0:
        if proc.poll() is not None:
            raise AssertionError("dockerd exited early: " + open(log_path).read()[-3000:])
        assert time.monotonic() < deadline, "dockerd did not start"
        time.sleep(0.2)


def _stop(proc: subprocess.Popen, docker: list[str]) -> None:
    ids = subprocess.run([*docker, "ps", "-aq"], capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run([*docker, "rm", "-f", *ids], capture_output=True, timeout=120)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    # dockerd's containerd and shims are in dockerd's session: end any that outlived it.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _unmount_below(path: str) -> None:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f if line.split()[4].startswith(path)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


def _remove_cgroups(parent: str) -> None:
    """rmdir the cgroup parent (deepest first) in every hierarchy; they are empty by now."""
    root = "/sys/fs/cgroup"
    for hierarchy in ["", *os.listdir(root)]:
        top = os.path.join(root, hierarchy).rstrip("/") + parent
        if not os.path.isdir(top):
            continue
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: len(w[0]), reverse=True):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass
