"""Limits enforced through cgroups, seen by bounded attackers: a memory hog, a fork bomb."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.support.bundles import Runtime

pytestmark = pytest.mark.root

# dd holds one 64 MiB buffer: twice the 32 MiB limit below, and bounded if the limit breaks.
HOG = "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null && echo survived"


def test_memory_hog_is_oom_killed_and_reported(runtime: Runtime) -> None:
    spec = runtime.spec(["sh", "-c", "sleep 0.5; " + HOG])
    spec["linux"]["resources"]["memory"] = {"limit": 32 << 20, "swap": 32 << 20}
    cid = runtime.new_id()
    runtime.cmd("create", "--bundle", runtime.bundle(spec), cid, check=True)
    events = runtime_events(runtime, cid)
    runtime.cmd("start", cid, check=True)
    out, _ = events.communicate(timeout=60)
    kinds = [json.loads(line)["type"] for line in out.decode().splitlines()]
    assert "oom" in kinds


def runtime_events(runtime: Runtime, cid: str):  # type: ignore[no-untyped-def]
    import subprocess

    return subprocess.Popen([runtime.binary, "--root", runtime.state_root, "events",
                             "--interval", "1s", cid], stdout=subprocess.PIPE)


def test_memory_hog_killed_in_foreground(runtime: Runtime) -> None:
    spec = runtime.spec(["sh", "-c", HOG])
    spec["linux"]["resources"]["memory"] = {"limit": 32 << 20, "swap": 32 << 20}
    proc = runtime.run(spec)
    assert b"survived" not in proc.stdout


def test_fork_bomb_stops_at_pids_limit(runtime: Runtime) -> None:
    # 40 sleepers under a limit of 10: forks beyond the limit fail; bounded if it is broken.
    # The forking runs in a subshell (ash exits when a fork fails); the count uses builtins
    # only, since no fork is left once the limit is reached.
    script = ("(i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); done) 2>/dev/null; "
              "set -- /proc/[0-9]*; echo $#")
    spec = runtime.spec(["sh", "-c", script])
    spec["linux"]["resources"]["pids"] = {"limit": 10}
    proc = runtime.run(spec, timeout=60)
    assert int(proc.stdout.decode().split()[-1]) <= 10, proc.stdout


def test_update_and_stats(runtime: Runtime) -> None:
    cid = runtime.new_id()
    runtime.cmd("run", "-d", "--bundle", runtime.bundle(runtime.spec(["sleep", "600"])), cid,
                check=True)
    runtime.cmd("update", "--memory", "64m", "--pids-limit", "20", "--cpu-quota", "50000",
                "--cpu-period", "100000", cid, check=True)
    stats = json.loads(runtime.cmd("events", "--stats", cid, check=True).stdout)
    assert stats["type"] == "stats" and stats["id"] == cid
    data = stats["data"]
    assert data["memory"]["usage"]["limit"] == 64 << 20
    assert data["pids"]["limit"] == 20 and data["pids"]["current"] >= 1
    runtime.cmd("update", "-r", "-", cid, input=b'{"pids": {"limit": 30}}', check=True)
    stats = json.loads(runtime.cmd("events", "--stats", cid, check=True).stdout)
    assert stats["data"]["pids"]["limit"] == 30


def test_cgroup_visible_inside(runtime: Runtime) -> None:
    spec = runtime.spec(["sh", "-c", "cat /proc/self/cgroup; ls /sys/fs/cgroup"])
    spec["linux"]["resources"]["pids"] = {"limit": 77}
    if {"type": "cgroup"} not in spec["linux"]["namespaces"]:  # runc's default: v2 only
        spec["linux"]["namespaces"].append({"type": "cgroup"})
    out = runtime.output(spec["process"]["args"], linux=spec["linux"])
    # With a cgroup namespace the container sees itself at the root of every hierarchy.
    for line in out.splitlines():
        if line.count(":") >= 2 and line[0].isdigit():
            assert line.rsplit(":", 1)[1] == "/", line
    assert "pids" in out or "cgroup.procs" in out


def test_paused_container_does_not_run(runtime: Runtime) -> None:
    cid = runtime.new_id()
    script = "while true; do echo x >> /tmp/count; done"
    runtime.cmd("run", "-d", "--bundle", runtime.bundle(runtime.spec(["sh", "-c", script])),
                cid, check=True)
    time.sleep(0.3)
    runtime.cmd("pause", cid, check=True)
    bundle_rootfs = runtime.state(cid)["rootfs"]
    first = os.path.getsize(f"{bundle_rootfs}/tmp/count")
    time.sleep(0.3)
    assert os.path.getsize(f"{bundle_rootfs}/tmp/count") == first
    runtime.cmd("resume", cid, check=True)
    time.sleep(0.3)
    assert os.path.getsize(f"{bundle_rootfs}/tmp/count") > first


def test_relative_cgroups_path_is_found_again_by_delete(runtime: Runtime) -> None:
    cid = runtime.new_id()
    spec = runtime.spec(["sleep", "600"])
    spec["linux"]["cgroupsPath"] = f"{cid}-rel"
    spec["linux"]["resources"]["pids"] = {"limit": 33}
    runtime.cmd("run", "-d", "--bundle", runtime.bundle(spec), cid, check=True)
    pid = runtime.state(cid)["pid"]
    v2 = not os.path.isdir("/sys/fs/cgroup/pids")
    ctrl = "" if v2 else "pids"
    base = "/sys/fs/cgroup" if v2 else "/sys/fs/cgroup/pids"

    def pids_cgroup(which: object) -> str:
        with open(f"/proc/{which}/cgroup") as f:
            return next(line.strip().split(":", 2)[2] for line in f
                        if line.split(":")[1] == ctrl)

    # Relative to the runtime's own cgroup (the test's, here), as runc resolves it: on v2
    # below that cgroup's parent (runc's fs2: the own one holds processes).
    own = pids_cgroup("self")
    below = os.path.dirname(own) if v2 else own
    assert pids_cgroup(pid) == f"{below.rstrip('/')}/{cid}-rel"
    directory = f"{base}{pids_cgroup(pid)}"
    assert open(f"{directory}/pids.max").read().strip() == "33"
    runtime.cmd("delete", "--force", cid, check=True)
    assert not os.path.exists(directory)
