"""Statistics of a container's v1 cgroups in runc's stats shape (runc libcontainer/cgroups/fs)."""

from __future__ import annotations

import os

from barque.cgroups import files, stats
from barque.cgroups.files import MAX_U64


def collect(dirs: dict[str, str]) -> dict:
    """`dirs` maps each controller to the container's directory in its hierarchy."""
    return stats.assemble(
        cpu(dirs.get("cpu"), dirs.get("cpuacct")),
        cpuset(dirs.get("cpuset")),
        memory(dirs.get("memory")),
        pids(dirs.get("pids")),
        blkio(dirs.get("blkio")),
        hugetlb(dirs),
    )


def _numbers(text: str | None) -> list[int]:
    return [int(n) for n in (text or "").split()]


def cpu(cpu_dir: str | None, acct: str | None) -> dict:
    throttling = files.read_keyed(cpu_dir, "cpu.stat") if cpu_dir else {}
    if acct is None:
        return stats.cpu(0, 0, 0, throttling)
    ticks = files.read_keyed(acct, "cpuacct.stat")  # in USER_HZ ticks
    hz = os.sysconf("SC_CLK_TCK")
    return stats.cpu(
        files.read_uint(acct, "cpuacct.usage"),
        ticks.get("system", 0) * 1_000_000_000 // hz,
        ticks.get("user", 0) * 1_000_000_000 // hz,
        throttling,
        (_numbers(files.read_optional(acct, "cpuacct.usage_percpu")), *_usage_by_mode(acct)),
    )


def _usage_by_mode(acct: str) -> tuple[list[int], list[int]]:
    """(kernel, user) per cpu from cpuacct.usage_all: "cpu user system" then a row a cpu."""
    rows = (files.read_optional(acct, "cpuacct.usage_all") or "").splitlines()[1:]
    table = [_numbers(row) for row in rows]
    return [r[2] for r in table if len(r) == 3], [r[1] for r in table if len(r) == 3]


def cpuset(directory: str | None) -> dict:
    if directory is None:
        return stats.cpuset([], [], {})
    knobs = {k: int(files.read_optional(directory, f"cpuset.{k}") or 0) for k in stats.CPUSET_KNOBS}
    return stats.cpuset(
        stats.parse_list(files.read(directory, "cpuset.cpus")),
        stats.parse_list(files.read(directory, "cpuset.mems")),
        knobs,
    )


def _memory_entry(directory: str, prefix: str) -> dict:
    if not files.has(directory, prefix + "usage_in_bytes"):
        return stats.memory_entry()  # e.g. no swap accounting: memsw files are missing
    return stats.memory_entry(
        files.read_uint(directory, prefix + "limit_in_bytes"),
        files.read_uint(directory, prefix + "usage_in_bytes"),
        files.read_uint(directory, prefix + "max_usage_in_bytes"),
        files.read_uint(directory, prefix + "failcnt"),
    )


def memory(directory: str | None) -> dict:
    if directory is None:
        empty = stats.memory_entry()
        return stats.memory(empty, empty, empty, empty, {}, 0)
    raw = files.read_keyed(directory, "memory.stat")
    return stats.memory(
        _memory_entry(directory, "memory."),
        _memory_entry(directory, "memory.memsw."),
        _memory_entry(directory, "memory.kmem."),
        _memory_entry(directory, "memory.kmem.tcp."),
        raw,
        raw.get("cache", 0),
    )


def pids(directory: str | None) -> dict:
    if directory is None:
        return stats.pids(0, 0)
    limit = files.read_uint(directory, "pids.max")
    return stats.pids(files.read_uint(directory, "pids.current"), 0 if limit == MAX_U64 else limit)


# runc's JSON name -> file suffix; the last six exist with CFQ only.
_BLKIO_TABLES = (
    ("ioServiceBytesRecursive", "io_service_bytes_recursive"),
    ("ioServicedRecursive", "io_serviced_recursive"),
    ("ioQueueRecursive", "io_queued_recursive"),
    ("ioServiceTimeRecursive", "io_service_time_recursive"),
    ("ioWaitTimeRecursive", "io_wait_time_recursive"),
    ("ioMergedRecursive", "io_merged_recursive"),
    ("ioTimeRecursive", "time_recursive"),
    ("sectorsRecursive", "sectors_recursive"),
)


def _blkio_entries(text: str) -> list[dict]:
    """Lines "8:0 Read 4096" or "8:0 4096"; the "Total N" line is not per device."""
    entries = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 2 or ":" not in fields[0]:
            continue
        major, _, minor = fields[0].partition(":")
        op = fields[1] if len(fields) == 3 else ""
        entries.append(stats.blkio_entry(int(major), int(minor), op, int(fields[-1])))
    return entries


def blkio(directory: str | None) -> dict:
    if directory is None:
        return stats.blkio({})
    # CFQ's full set, else BFQ's, else the throttling layer's (always there) counters.
    prefix = next(
        (p for p in ("blkio.", "blkio.bfq.") if files.has(directory, p + "io_serviced_recursive")),
        "blkio.throttle.",
    )
    return stats.blkio(
        {
            key: _blkio_entries(files.read_optional(directory, prefix + name) or "")
            for key, name in _BLKIO_TABLES
        }
    )


def hugetlb(dirs: dict[str, str]) -> dict:
    from barque.cgroups import v2_stats
    from barque.cgroups.mountinfo import UNIFIED_KEY

    directory = dirs.get("hugetlb")
    if directory is None:
        unified = dirs.get(UNIFIED_KEY)  # hybrid hosts may have hugetlb on cgroup2 only
        return v2_stats.hugetlb(unified) if unified and os.path.isdir(unified) else {}
    result: dict = {}
    for size in v2_stats.page_sizes(directory, ".limit_in_bytes"):
        prefix = f"hugetlb.{size}."
        result[size] = stats.hugetlb_entry(
            files.read_uint(directory, prefix + "usage_in_bytes"),
            files.read_uint(directory, prefix + "max_usage_in_bytes"),
            files.read_uint(directory, prefix + "failcnt"),
        )
    return result
