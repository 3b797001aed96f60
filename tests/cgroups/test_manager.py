"""The Manager interface against the real kernel, whichever driver this host gets.

On the hybrid CI host these exercise the v1 driver; inside ../shared/tools/cgroup2-guest the
same tests exercise the v2 driver.
"""

from __future__ import annotations

import errno
import mmap
import os
import posixpath
import select
import struct
import time

import pytest
from cgtest import PURE_V2, SIGKILL, Harness, knob, root

from barque.cgroups import CgroupError, open_manager

pytestmark = root

MiB = 1 << 20
_kept = b""  # a child's allocation, kept alive while it is measured


def test_driver_matches_host(cg: Harness) -> None:
    m = cg.manager(create=False)
    assert m.version == (2 if PURE_V2 else 1)


def test_create_add_pid_pids_destroy(cg: Harness) -> None:
    m = cg.manager()
    assert m.exists()
    for mount in m.mounts():
        assert os.path.isdir(mount.host_path)
    child = cg.child(m, lambda: None, hold=True)
    assert m.pids() == [child.pid]
    with open(f"/proc/{child.pid}/cgroup") as f:
        assert m.path in f.read()
    child.kill()
    m.destroy()
    assert not m.exists()
    assert all(not os.path.exists(mount.host_path) for mount in m.mounts())
    m.destroy()  # already gone: no error


def test_pids_includes_sub_cgroups(cg: Harness) -> None:
    outer = cg.manager("outer")
    inner = cg.manager("outer/inner")
    child = cg.child(inner, lambda: None, hold=True)
    assert outer.pids() == [child.pid]
    outer.kill_all(SIGKILL)
    assert os.WTERMSIG(child.wait()) == SIGKILL
    outer.destroy()  # removes the inner cgroup first
    assert not inner.exists()


def test_memory_limit_is_written(cg: Harness) -> None:
    m = cg.manager()
    m.set_resources({"memory": {"limit": 32 * MiB, "reservation": 16 * MiB}})
    assert knob(m, "memory", "memory.limit_in_bytes", "memory.max") == str(32 * MiB)
    assert knob(m, "memory", "memory.soft_limit_in_bytes", "memory.low") == str(16 * MiB)
    m.set_resources({"memory": {"limit": -1}})  # update: unlimited
    assert knob(m, "memory", "memory.limit_in_bytes", "memory.max") in ("max", str(2**63 - 4096))


def _allocate_64mib() -> int:
    data = b"x" * (64 * MiB)  # written, so every page is charged
    return len(data) % 7  # not reached under a 32 MiB limit


def test_oom_kill_is_counted(cg: Harness) -> None:
    m = cg.manager()
    m.set_resources({"memory": {"limit": 32 * MiB, "swap": 32 * MiB}})  # swap = limit: none
    event_fd = m.oom_event_fd()
    assert m.oom_kill_count() == 0
    status = cg.child(m, _allocate_64mib).wait()
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == SIGKILL
    assert m.oom_kill_count() >= 1
    if m.version == 1:
        assert event_fd is not None
        assert select.select([event_fd], [], [], 5)[0] == [event_fd]
        assert struct.unpack("<Q", os.read(event_fd, 8))[0] >= 1
        os.close(event_fd)
    else:
        assert event_fd is None


def _fork_until_refused(result_fd: int) -> int:
    hold_r, hold_w = os.pipe()
    forked, err = 0, 0
    for _ in range(30):  # bounded: the limit is 10
        try:
            pid = os.fork()
        except OSError as e:
            err = e.errno or 0
            break
        if pid == 0:
            os.close(hold_w)
            os.read(hold_r, 1)  # until the parent closes the pipe
            os._exit(0)
        forked += 1
    os.write(result_fd, struct.pack("<II", forked, err))
    os.close(hold_w)
    while True:
        try:
            os.wait()
        except ChildProcessError:
            return 0


def test_pids_limit_stops_forks(cg: Harness) -> None:
    m = cg.manager()
    m.set_resources({"pids": {"limit": 10}})
    assert knob(m, "pids", "pids.max", "pids.max") == "10"
    result_r, result_w = os.pipe()
    child = cg.child(m, lambda: _fork_until_refused(result_w))
    forked, err = struct.unpack("<II", os.read(result_r, 8))
    assert (forked, err) == (9, errno.EAGAIN)  # the forking child itself is the 10th
    assert child.wait() == 0
    os.close(result_r)
    os.close(result_w)
    m.set_resources({"pids": {"limit": -1}})
    assert knob(m, "pids", "pids.max", "pids.max") == "max"


def test_cpu_quota_and_shares(cg: Harness) -> None:
    m = cg.manager()
    m.set_resources({"cpu": {"shares": 512, "quota": 50000, "period": 100000}})
    if m.version == 1:
        assert knob(m, "cpu", "cpu.shares", "") == "512"
        assert knob(m, "cpu", "cpu.cfs_quota_us", "") == "50000"
        assert knob(m, "cpu", "cpu.cfs_period_us", "") == "100000"
    else:
        assert knob(m, "cpu", "", "cpu.weight") == "20"
        assert knob(m, "cpu", "", "cpu.max") == "50000 100000"
    m.set_resources({"cpu": {"quota": -1}})  # update: no quota
    assert knob(m, "cpu", "cpu.cfs_quota_us", "cpu.max") in ("-1", "max 100000")


def test_cpuset(cg: Harness) -> None:
    m = cg.manager()
    m.set_resources({"cpu": {"cpus": "0", "mems": "0"}})
    assert knob(m, "cpuset", "cpuset.cpus", "cpuset.cpus") == "0"
    assert knob(m, "cpuset", "cpuset.mems", "cpuset.mems") == "0"
    child = cg.child(m, lambda: None, hold=True)
    assert os.sched_getaffinity(child.pid) == {0}


def test_failed_write_names_file_and_value(cg: Harness) -> None:
    m = cg.manager()
    with pytest.raises(CgroupError, match=r"'4096-9999'.*cpuset\.cpus"):
        m.set_resources({"cpu": {"cpus": "4096-9999"}})


def _spin(counter: mmap.mmap) -> None:
    n = 0
    while True:
        n += 1
        if n % 1000 == 0:
            struct.pack_into("<Q", counter, 0, n)


def _count(counter: mmap.mmap) -> int:
    return struct.unpack_from("<Q", counter, 0)[0]


def _advances(counter: mmap.mmap) -> bool:
    before = _count(counter)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if _count(counter) != before:
            return True
    return False


def test_freeze_and_thaw(cg: Harness) -> None:
    m = cg.manager()
    counter = mmap.mmap(-1, 8)  # shared with the child
    cg.child(m, lambda: _spin(counter))
    assert _advances(counter)
    m.freeze()
    assert m.is_frozen()
    frozen_at = _count(counter)
    time.sleep(0.3)
    assert _count(counter) == frozen_at
    m.thaw()
    assert not m.is_frozen()
    assert _advances(counter)


def test_kill_all_keeps_a_paused_container_paused(cg: Harness) -> None:
    m = cg.manager()
    children = [cg.child(m, lambda: None, hold=True) for _ in range(3)]
    m.freeze()
    m.kill_all(15)  # v1 delivers it at the thaw, v2 at once (fatal signals wake frozen tasks)
    assert m.is_frozen()
    m.thaw()
    for child in children:
        assert os.WTERMSIG(child.wait()) == 15
    assert m.pids() == []


def test_kill_all_sigkill(cg: Harness) -> None:
    m = cg.manager()
    children = [cg.child(m, lambda: None, hold=True) for _ in range(3)]
    m.kill_all(SIGKILL)
    for child in children:
        assert os.WTERMSIG(child.wait()) == SIGKILL
    assert not m.is_frozen()


def _use_memory_and_cpu() -> None:
    global _kept  # keep the pages
    _kept = b"x" * (8 * MiB)
    end = time.monotonic() + 0.2
    while time.monotonic() < end:
        pass


def test_stats_have_runc_shape(cg: Harness) -> None:
    m = cg.manager()
    m.set_resources({"memory": {"limit": 256 * MiB}, "pids": {"limit": 100}})
    cg.child(m, _use_memory_and_cpu, hold=True)
    deadline = time.monotonic() + 10
    while m.stats()["memory"]["usage"].get("usage", 0) < 8 * MiB:
        assert time.monotonic() < deadline, m.stats()["memory"]
        time.sleep(0.05)
    s = m.stats()
    assert list(s) == ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb"]
    assert s["memory"]["usage"]["limit"] == 256 * MiB
    assert set(s["memory"]) >= {"usage", "swap", "kernel", "kernelTCP", "raw"}
    assert s["pids"] == {"current": 1, "limit": 100}
    time.sleep(0.3)  # let the child burn its 0.2 s of cpu
    usage = m.stats()["cpu"]["usage"]
    assert usage["total"] > 0 and "kernel" in usage and "user" in usage


def test_devices_deny_all_but_dev_null(cg: Harness) -> None:
    m = cg.manager()
    m.set_resources(
        {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            ]
        }
    )

    def probe() -> int:
        os.close(os.open("/dev/null", os.O_RDWR))
        try:
            os.close(os.open("/dev/zero", os.O_RDONLY))
        except PermissionError:
            return 0
        return 3

    assert os.waitstatus_to_exitcode(cg.child(m, probe).wait()) == 0


def test_update_devices_to_allow_all(cg: Harness) -> None:
    m = cg.manager()
    m.set_resources({"devices": [{"allow": False, "access": "rwm"}]})
    m.set_resources({"devices": [{"allow": True, "access": "rwm"}]})

    def probe() -> int:
        os.close(os.open("/dev/zero", os.O_RDONLY))
        return 0

    assert os.waitstatus_to_exitcode(cg.child(m, probe).wait()) == 0


def _block_device() -> tuple[int, int] | None:
    for name in sorted(os.listdir("/sys/block")):
        try:
            with open(f"/sys/block/{name}/dev") as f:
                major, minor = f.read().strip().split(":")
        except OSError:
            continue
        return int(major), int(minor)
    return None


def test_block_io_throttle(cg: Harness) -> None:
    device = _block_device()
    if device is None:
        pytest.skip("no block device on this machine")
    m = cg.manager()
    major, minor = device
    m.set_resources(
        {"blockIO": {"throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": MiB}]}}
    )
    text = knob(m, "blkio", "blkio.throttle.read_bps_device", "io.max")
    assert f"{major}:{minor} " in text and str(MiB) in text


def test_relative_and_default_paths(cg: Harness) -> None:
    relative = open_manager("foo/bar", "id1")
    with open("/proc/self/cgroup") as f:
        own = dict(line.split(":", 2)[1:] for line in f.read().splitlines())
    key = "" if relative.version == 2 else "name=systemd"
    # v2: below the parent of our own cgroup (ours holds a process), as runc's fs2
    base = own[key] if relative.version == 1 else posixpath.dirname(own[key])
    assert relative.path == base.rstrip("/") + "/foo/bar"
    assert open_manager(None, "id1").path == "/id1"
    assert open_manager(f"/{cg.prefix}/x", "id1").path == f"/{cg.prefix}/x"
