"""Pure functions: cgroupsPath handling, mountinfo parsing, value conversions, stats shape."""

from __future__ import annotations

import pytest

from barque.cgroups import CgroupError, CgroupMount, open_manager, paths, stats
from barque.cgroups.mountinfo import parse_mountinfo, parse_proc_cgroup
from barque.cgroups.v1 import _mount
from barque.cgroups.v2_resources import blkio_to_io_weight, shares_to_weight, swap_to_v2

HYBRID_MOUNTINFO = """\
25 30 0:23 / /sys rw,nosuid shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 /docker/abc /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
42 31 0:32 / /mnt/mem\\040copy rw,relatime - cgroup cgroup rw,memory
"""
KNOWN = {"cpu", "cpuacct", "memory", "pids", "name=systemd"}


def test_parse_mountinfo_finds_each_hierarchy_once() -> None:
    found = parse_mountinfo(HYBRID_MOUNTINFO, KNOWN)
    assert [(h.mountpoint, h.fstype, h.controllers) for h in found] == [
        ("/sys/fs/cgroup/cpu,cpuacct", "cgroup", ["cpu", "cpuacct"]),
        ("/sys/fs/cgroup/memory", "cgroup", ["memory"]),
        ("/sys/fs/cgroup/pids", "cgroup", ["pids"]),
        ("/sys/fs/cgroup/systemd", "cgroup", ["name=systemd"]),
        ("/sys/fs/cgroup/unified", "cgroup2", []),
    ]  # the second memory mount (a bind mount, with an escaped space) is not a new hierarchy


def test_mountinfo_unescapes_and_maps_subtree_roots() -> None:
    text = "42 31 0:99 / /mnt/mem\\040copy rw - cgroup cgroup rw,memory\n"
    (h,) = parse_mountinfo(text, KNOWN)
    assert h.mountpoint == "/mnt/mem copy"
    pids = parse_mountinfo(HYBRID_MOUNTINFO, KNOWN)[2]
    assert pids.root == "/docker/abc"
    assert pids.host_dir("/docker/abc/x") == "/sys/fs/cgroup/pids/x"
    assert pids.host_dir("/docker/abc") == "/sys/fs/cgroup/pids"


def test_mounts_describe_comounted_named_and_unified_hierarchies() -> None:
    cpu, memory, _pids, systemd, unified = parse_mountinfo(HYBRID_MOUNTINFO, KNOWN)
    assert _mount(cpu, "/h/cpu") == CgroupMount(
        "cpu,cpuacct", "cgroup", "cpu,cpuacct", "/h/cpu", ["cpu", "cpuacct"]
    )
    assert _mount(memory, "/h/m") == CgroupMount("memory", "cgroup", "memory", "/h/m", [])
    assert _mount(systemd, "/h/s") == CgroupMount("systemd", "cgroup", "name=systemd", "/h/s", [])
    assert _mount(unified, "/h/u") == CgroupMount("unified", "cgroup2", "", "/h/u", [])


def test_parse_proc_cgroup() -> None:
    own = parse_proc_cgroup("4:memory:/a/b\n1:cpu,cpuacct:/\n9:name=systemd:/s\n0::/u\n")
    assert own == {"memory": "/a/b", "cpu,cpuacct": "/", "name=systemd": "/s", "": "/u"}


@pytest.mark.parametrize(
    "given, expected",
    [
        ("/default/abc", ("/default/abc", False)),
        ("//a/../b/./c/", ("/b/c", False)),
        ("/../../etc", ("/etc", False)),
        (None, ("/myid", False)),
        ("", ("/myid", False)),
        ("foo/bar", ("foo/bar", True)),
    ],
)
def test_parse_cgroups_path(given: str | None, expected: tuple[str, bool]) -> None:
    assert paths.parse(given, "myid") == expected


def test_relative_path_joins_own_cgroup_and_cannot_escape_root() -> None:
    assert paths.join("/user.slice/s", "foo/bar") == "/user.slice/s/foo/bar"
    assert paths.join("/a", "../../../x") == "/x"


@pytest.mark.parametrize("given", ["system.slice:barque:abc", ":barque:abc"])
def test_systemd_cgroups_path_is_refused(given: str) -> None:
    with pytest.raises(CgroupError, match="systemd cgroup driver is not supported"):
        open_manager(given, "abc")


def test_root_cgroup_is_refused() -> None:
    with pytest.raises(CgroupError, match="root cgroup"):
        open_manager("/", "abc")
    with pytest.raises(CgroupError, match="no container id"):
        open_manager(None, "")


def test_cpu_shares_to_weight_matches_runc() -> None:
    assert [shares_to_weight(s) for s in (0, 2, 512, 1024, 262144)] == [0, 1, 20, 39, 10000]


def test_blkio_weight_to_io_weight_matches_runc() -> None:
    assert [blkio_to_io_weight(w) for w in (0, 10, 500, 1000)] == [0, 1, 4950, 10000]


@pytest.mark.parametrize(
    "swap, limit, expected",
    [(0, 0, None), (0, -1, -1), (-1, 100, -1), (100, 100, 0), (300, 100, 200), (0, 100, None)],
)
def test_swap_to_v2(swap: int, limit: int, expected: int | None) -> None:
    assert swap_to_v2(swap, limit) == expected


@pytest.mark.parametrize("swap, limit", [(100, 0), (100, -1), (50, 100)])
def test_swap_to_v2_refuses_impossible_values(swap: int, limit: int) -> None:
    with pytest.raises(CgroupError):
        swap_to_v2(swap, limit)


def test_stats_builders_follow_runc_omitempty() -> None:
    assert stats.memory_entry() == {"limit": 0, "failcnt": 0}
    assert stats.memory_entry(5, 3, 4, 1) == {"limit": 5, "usage": 3, "max": 4, "failcnt": 1}
    cpu = stats.cpu(10, 2, 3, {"nr_periods": 4, "nr_throttled": 0, "throttled_time": 7})
    assert cpu == {
        "usage": {"total": 10, "kernel": 2, "user": 3},
        "throttling": {"periods": 4, "throttledTime": 7},
    }
    assert stats.pids(0, 0) == {}
    assert stats.parse_list("0-3,7") == [0, 1, 2, 3, 7]
    assert stats.parse_list("") == []
