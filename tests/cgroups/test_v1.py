"""What only the cgroup v1 (and hybrid) driver does; skipped on pure cgroup v2 hosts."""

from __future__ import annotations

import os

import pytest
from cgtest import Harness, root, v1_only

from barque.cgroups import CgroupError
from barque.cgroups.mountinfo import hierarchies

pytestmark = [*root, v1_only]

MiB = 1 << 20


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def test_every_hierarchy_gets_the_cgroup_and_the_pid(cg: Harness) -> None:
    m = cg.manager()
    assert m.version == 1
    mounts = m.mounts()
    assert {os.path.basename(h.mountpoint) for h in hierarchies()} == {x.subdir for x in mounts}
    by_subdir = {x.subdir: x for x in mounts}
    if "systemd" in by_subdir:
        assert by_subdir["systemd"].options == "name=systemd"
    for x in mounts:
        assert x.fstype == ("cgroup2" if x.options == "" else "cgroup")
        assert x.host_path.endswith(m.path)
    child = cg.child(m, lambda: None, hold=True)
    with open(f"/proc/{child.pid}/cgroup") as f:
        lines = f.read().splitlines()
    assert all(line.endswith(m.path) for line in lines), lines


def test_cpuset_is_usable_right_after_create(cg: Harness) -> None:
    m = cg.manager("a/b")
    parent = os.path.dirname(m.dirs["cpuset"])
    for directory in (parent, m.dirs["cpuset"]):
        assert _read(f"{directory}/cpuset.cpus") and _read(f"{directory}/cpuset.mems")
    cg.child(m, lambda: None, hold=True)  # an empty cpuset would refuse it (ENOSPC)


def test_device_rules_are_written_in_order(cg: Harness) -> None:
    m = cg.manager()
    m.set_resources(
        {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": True, "type": "c", "major": 136, "access": "rw"},
            ]
        }
    )
    listed = _read(f"{m.dirs['devices']}/devices.list").splitlines()
    assert sorted(listed) == ["c 136:* rw", "c 1:3 rwm"]


def test_unified_is_refused(cg: Harness) -> None:
    m = cg.manager()
    with pytest.raises(CgroupError, match="invalid configuration: cannot use unified on cgroup v1"):
        m.set_resources({"unified": {"pids.max": "5"}})


def test_memory_and_swap_update_in_either_direction(cg: Harness) -> None:
    m = cg.manager()
    memory = m.dirs["memory"]
    if not os.path.exists(f"{memory}/memory.memsw.limit_in_bytes"):
        pytest.skip("no swap accounting on this host")
    m.set_resources({"memory": {"limit": 32 * MiB, "swap": 64 * MiB}})
    m.set_resources({"memory": {"limit": 128 * MiB, "swap": 256 * MiB}})  # swap must go first
    assert _read(f"{memory}/memory.memsw.limit_in_bytes") == str(256 * MiB)
    m.set_resources({"memory": {"limit": 16 * MiB, "swap": 16 * MiB}})  # limit must go first
    assert _read(f"{memory}/memory.limit_in_bytes") == str(16 * MiB)
    assert _read(f"{memory}/memory.memsw.limit_in_bytes") == str(16 * MiB)
    with pytest.raises(CgroupError, match="must be >= memory limit"):
        m.set_resources({"memory": {"limit": 32 * MiB, "swap": 16 * MiB}})


def test_other_memory_knobs(cg: Harness) -> None:
    m = cg.manager()
    memory = m.dirs["memory"]
    m.set_resources(
        {
            "memory": {
                "kernel": 64 * MiB,
                "kernelTCP": 64 * MiB,
                "swappiness": 10,
                "disableOOMKiller": True,
                "useHierarchy": True,
            }
        }
    )
    assert _read(f"{memory}/memory.swappiness") == "10"
    assert "oom_kill_disable 1" in _read(f"{memory}/memory.oom_control")
    with pytest.raises(CgroupError, match="swappiness"):
        m.set_resources({"memory": {"swappiness": 101}})


def test_cpu_burst_and_idle(cg: Harness) -> None:
    m = cg.manager()
    cpu = m.dirs["cpu"]
    m.set_resources({"cpu": {"quota": 20000, "period": 100000, "burst": 5000, "idle": 0}})
    if os.path.exists(f"{cpu}/cpu.cfs_burst_us"):
        assert _read(f"{cpu}/cpu.cfs_burst_us") == "5000"
    # A quota below the old burst: the kernel takes it only once the burst is lowered.
    m.set_resources({"cpu": {"quota": 1000, "period": 10000, "burst": 0}})
    assert _read(f"{cpu}/cpu.cfs_period_us") == "10000"
    with pytest.raises(CgroupError, match="cpu shares"):
        m.set_resources({"cpu": {"shares": 1}})


def test_blkio_weight(cg: Harness) -> None:
    m = cg.manager()
    blkio = m.dirs["blkio"]
    if not any(os.path.exists(f"{blkio}/{n}") for n in ("blkio.weight", "blkio.bfq.weight")):
        pytest.skip("no CFQ or BFQ weight file on this host")
    m.set_resources({"blockIO": {"weight": 500}})
    name = "blkio.bfq.weight" if os.path.exists(f"{blkio}/blkio.bfq.weight") else "blkio.weight"
    assert _read(f"{blkio}/{name}").split()[-1] == "500"


def test_hugetlb_on_a_hybrid_host_uses_cgroup2(cg: Harness) -> None:
    m = cg.manager()
    unified = m.unified()
    if "hugetlb" in m.dirs or unified is None:
        pytest.skip("hugetlb is a v1 controller here, or there is no cgroup2 mount")
    top = unified[0].mountpoint
    before = _read(f"{top}/cgroup.subtree_control").split()
    if "hugetlb" not in _read(f"{top}/cgroup.controllers").split():
        pytest.skip("no hugetlb controller on the cgroup2 mount")
    try:
        m.set_resources({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MiB}]})
        host_dir = m.dirs[""]
        assert _read(f"{host_dir}/hugetlb.2MB.max") == str(4 * MiB)
        assert "2MB" in m.stats()["hugetlb"]
    finally:
        cg.cleanup()
        cg.managers.clear()
        _restore_subtree(top, f"/{cg.prefix}", before)


def _restore_subtree(top: str, prefix: str, before: list[str]) -> None:
    # Leave the host's cgroup2 root as found: the prefix goes first, it had hugetlb enabled.
    from barque.cgroups import open_manager

    open_manager(prefix, "x").destroy()
    if "hugetlb" not in before:
        with open(f"{top}/cgroup.subtree_control", "w") as f:
            f.write("-hugetlb")
