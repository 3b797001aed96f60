"""Statistics of a cgroup v2 directory, mapped onto runc's (v1-shaped) stats object."""

from __future__ import annotations

import os

from barque.cgroups import files, stats
from barque.cgroups.base import CgroupError
from barque.cgroups.files import MAX_U64


def collect(directory: str) -> dict:
    if not os.path.isdir(directory):
        raise CgroupError(f"no stats: cgroup {directory} does not exist")
    return stats.assemble(
        cpu(directory),
        stats.cpuset([], [], {}),  # runc reports no cpuset stats on v2
        memory(directory),
        pids(directory),
        io(directory),
        hugetlb(directory),
    )


def cpu(directory: str) -> dict:
    st = files.read_keyed(directory, "cpu.stat")
    throttling = {
        "nr_periods": st.get("nr_periods", 0),
        "nr_throttled": st.get("nr_throttled", 0),
        "throttled_time": st.get("throttled_usec", 0) * 1000,
    }
    return stats.cpu(
        st.get("usage_usec", 0) * 1000,
        st.get("system_usec", 0) * 1000,
        st.get("user_usec", 0) * 1000,
        throttling,
    )


def memory(directory: str) -> dict:
    raw = files.read_keyed(directory, "memory.stat")
    usage = files.read_uint(directory, "memory.current")
    limit = files.read_uint(directory, "memory.max")
    events = files.read_keyed(directory, "memory.events")
    peak = files.read_uint(directory, "memory.peak")
    return stats.memory(
        stats.memory_entry(limit, usage, peak, events.get("max", 0)),
        _swap(directory, usage, limit),
        stats.memory_entry(),
        stats.memory_entry(),
        raw,
        raw.get("file", 0),
    )


def _swap(directory: str, usage: int, limit: int) -> dict:
    # v1 reported memory+swap; runc keeps that meaning on v2 by adding memory in.
    swap_usage = files.read_optional(directory, "memory.swap.current")
    if swap_usage is None:
        return stats.memory_entry()  # no swap accounting
    swap_limit = files.read_uint(directory, "memory.swap.max")
    if swap_limit != MAX_U64:
        swap_limit = min(swap_limit + limit, MAX_U64)
    return stats.memory_entry(swap_limit, int(swap_usage) + usage)


def pids(directory: str) -> dict:
    limit = files.read_uint(directory, "pids.max")
    return stats.pids(files.read_uint(directory, "pids.current"), 0 if limit == MAX_U64 else limit)


_IO_OPS = {
    "rbytes": ("ioServiceBytesRecursive", "Read"),
    "wbytes": ("ioServiceBytesRecursive", "Write"),
    "rios": ("ioServicedRecursive", "Read"),
    "wios": ("ioServicedRecursive", "Write"),
}


def io(directory: str) -> dict:
    tables: dict[str, list[dict]] = {"ioServiceBytesRecursive": [], "ioServicedRecursive": []}
    for line in (files.read_optional(directory, "io.stat") or "").splitlines():
        device, *counters = line.split()
        major, _, minor = device.partition(":")
        for counter in counters:
            name, _, value = counter.partition("=")
            if name in _IO_OPS:
                table, op = _IO_OPS[name]
                tables[table].append(stats.blkio_entry(int(major), int(minor), op, int(value)))
    return stats.blkio(tables)


def page_sizes(directory: str, suffix: str) -> list[str]:
    """Huge page sizes with a "hugetlb.<size><suffix>" file, e.g. ["1GB", "2MB"]."""
    names = os.listdir(directory)
    sizes = [n[8 : -len(suffix)] for n in names if n.startswith("hugetlb.") and n.endswith(suffix)]
    return sorted(s for s in sizes if "." not in s)  # not the .rsvd. variants


def hugetlb(directory: str) -> dict:
    result: dict = {}
    for size in page_sizes(directory, ".max"):
        usage = files.read_uint(directory, f"hugetlb.{size}.current")
        failcnt = files.read_keyed(directory, f"hugetlb.{size}.events").get("max", 0)
        result[size] = stats.hugetlb_entry(usage, 0, failcnt)
    return result
