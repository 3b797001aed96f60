"""What only the cgroup v2 driver does. Run inside ../shared/tools/cgroup2-guest."""

from __future__ import annotations

import os
import time

import pytest
from cgtest import SIGKILL, Harness, root, v2_only

from barque.cgroups import CgroupError, CgroupMount

pytestmark = [*root, *v2_only]

MiB = 1 << 20
_kept = b""  # a child's allocation, kept alive while it is measured


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def test_create_enables_controllers_on_the_way_down(cg: Harness) -> None:
    m = cg.manager("a/b")
    assert m.version == 2
    top = "/sys/fs/cgroup"
    wanted = {"cpu", "memory", "pids", "io"}
    for directory in (top, f"{top}/{cg.prefix}", f"{top}/{cg.prefix}/a"):
        assert wanted <= set(_read(f"{directory}/cgroup.subtree_control").split()), directory
    assert wanted <= set(_read(f"{m.dir}/cgroup.controllers").split())
    assert m.mounts() == [CgroupMount("", "cgroup2", "", f"{top}/{cg.prefix}/a/b", [])]


def test_memory_conversions(cg: Harness) -> None:
    m = cg.manager()
    d = m.dir
    m.set_resources({"memory": {"limit": 32 * MiB, "swap": 64 * MiB, "reservation": 16 * MiB}})
    assert _read(f"{d}/memory.max") == str(32 * MiB)
    assert _read(f"{d}/memory.swap.max") == str(32 * MiB)  # v1 memory+swap minus memory
    assert _read(f"{d}/memory.low") == str(16 * MiB)
    m.set_resources({"memory": {"limit": 32 * MiB, "swap": 32 * MiB}})
    assert _read(f"{d}/memory.swap.max") == "0"
    m.set_resources({"memory": {"limit": -1}})
    assert _read(f"{d}/memory.max") == "max"
    assert _read(f"{d}/memory.swap.max") == "max"
    with pytest.raises(CgroupError, match="without a memory limit"):
        m.set_resources({"memory": {"swap": 64 * MiB}})


def _hold_8mib() -> None:
    global _kept
    _kept = b"x" * (8 * MiB)


def test_check_before_update_rejects_limit_below_usage(cg: Harness) -> None:
    m = cg.manager()
    cg.child(m, _hold_8mib, hold=True)
    deadline = time.monotonic() + 10
    while int(_read(f"{m.dir}/memory.current")) < 8 * MiB:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(CgroupError, match="below current usage"):
        m.set_resources({"memory": {"limit": 4 * MiB, "checkBeforeUpdate": True}})
    assert _read(f"{m.dir}/memory.max") == "max"


def test_cpu_weight_max_burst_idle(cg: Harness) -> None:
    m = cg.manager()
    d = m.dir
    m.set_resources({"cpu": {"shares": 1024, "quota": 20000, "period": 50000, "burst": 5000}})
    assert _read(f"{d}/cpu.weight") == "39"
    assert _read(f"{d}/cpu.max") == "20000 50000"
    if os.path.exists(f"{d}/cpu.max.burst"):
        assert _read(f"{d}/cpu.max.burst") == "5000"
    m.set_resources({"cpu": {"quota": 1000, "burst": 0}})  # quota under the old burst
    assert _read(f"{d}/cpu.max") == "1000 100000"
    if os.path.exists(f"{d}/cpu.idle"):
        m.set_resources({"cpu": {"idle": 1}})
        assert _read(f"{d}/cpu.idle") == "1"
    with pytest.raises(CgroupError, match="realtime"):
        m.set_resources({"cpu": {"realtimeRuntime": 1000}})


def test_io_weight(cg: Harness) -> None:
    m = cg.manager()
    d = m.dir
    if os.path.exists(f"{d}/io.bfq.weight"):
        m.set_resources({"blockIO": {"weight": 500}})
        assert _read(f"{d}/io.bfq.weight").split()[-1] == "500"
    elif os.path.exists(f"{d}/io.weight"):
        m.set_resources({"blockIO": {"weight": 500}})
        assert _read(f"{d}/io.weight") == "default 4950"
    else:
        pytest.skip("neither io.bfq.weight nor io.weight in this kernel")


def test_unified_keys(cg: Harness) -> None:
    m = cg.manager()
    m.set_resources({"unified": {"pids.max": "7", "memory.high": "max"}})
    assert _read(f"{m.dir}/pids.max") == "7"
    with pytest.raises(CgroupError, match="must be a file name"):
        m.set_resources({"unified": {"../pids.max": "7"}})
    with pytest.raises(CgroupError, match="controller 'nosuch' is not available"):
        m.set_resources({"unified": {"nosuch.max": "7"}})


def test_hugetlb(cg: Harness) -> None:
    m = cg.manager()
    d = m.dir
    if not os.path.exists(f"{d}/hugetlb.2MB.max"):
        pytest.skip("no 2MB hugetlb controller")
    m.set_resources({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MiB}]})
    assert _read(f"{d}/hugetlb.2MB.max") == str(4 * MiB)
    assert m.stats()["hugetlb"]["2MB"] == {"failcnt": 0}
    with pytest.raises(CgroupError, match="hugetlb.3MB.max"):
        m.set_resources({"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]})


def _attached_device_programs(directory: str) -> int:
    from barque.linux import bpf

    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return len(bpf.prog_query(fd, bpf.BPF_CGROUP_DEVICE))
    finally:
        os.close(fd)


def test_device_filter_is_replaced_not_stacked(cg: Harness) -> None:
    m = cg.manager()
    d = m.dir
    assert _attached_device_programs(d) == 0
    rules = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    ]
    m.set_resources({"devices": rules})
    m.set_resources({"devices": rules})
    assert _attached_device_programs(d) == 1
    m.set_resources({"memory": {"limit": 64 * MiB}})  # no devices key: filter untouched
    assert _attached_device_programs(d) == 1


def test_kill_all_uses_cgroup_kill(cg: Harness) -> None:
    m = cg.manager()
    inner = cg.manager("c/inner")
    # Tasks live in leaves only: "c" has controllers enabled for its child.
    children = [cg.child(inner, lambda: None, hold=True) for _ in range(2)]
    m.kill_all(SIGKILL)
    for child in children:
        assert os.WTERMSIG(child.wait()) == SIGKILL
    assert _read(f"{m.dir}/cgroup.freeze") == "0"
