"""Builders for the stats object of `runc events --stats` (runc's types/events.go).

runc's JSON tags mark some fields `omitempty`: those are left out when zero or empty, here
too, so `barque-runtime events` prints what runc prints.
"""

from __future__ import annotations


def _put(section: dict, key: str, value: object) -> None:
    if value:  # omitempty
        section[key] = value


def memory_entry(limit: int = 0, usage: int = 0, max_usage: int = 0, failcnt: int = 0) -> dict:
    entry: dict = {"limit": limit}
    _put(entry, "usage", usage)
    _put(entry, "max", max_usage)
    entry["failcnt"] = failcnt
    return entry


def memory(
    usage: dict, swap: dict, kernel: dict, kernel_tcp: dict, raw: dict[str, int], cache: int
) -> dict:
    section: dict = {}
    _put(section, "cache", cache)
    section.update(usage=usage, swap=swap, kernel=kernel, kernelTCP=kernel_tcp)
    _put(section, "raw", raw)
    return section


def cpu(
    total: int,
    kernel: int,
    user: int,
    throttling: dict[str, int],
    percpu: tuple[list[int], list[int], list[int]] = ([], [], []),
) -> dict:
    """`throttling` has cpu.stat's keys: nr_periods, nr_throttled, throttled_time (ns)."""
    usage: dict = {}
    _put(usage, "total", total)
    _put(usage, "percpu", percpu[0])
    _put(usage, "percpu_kernel", percpu[1])
    _put(usage, "percpu_user", percpu[2])
    usage.update(kernel=kernel, user=user)
    throttle: dict = {}
    _put(throttle, "periods", throttling.get("nr_periods", 0))
    _put(throttle, "throttledPeriods", throttling.get("nr_throttled", 0))
    _put(throttle, "throttledTime", throttling.get("throttled_time", 0))
    return {"usage": usage, "throttling": throttle}


def pids(current: int, limit: int) -> dict:
    section: dict = {}
    _put(section, "current", current)
    _put(section, "limit", limit)
    return section


def blkio_entry(major: int, minor: int, op: str, value: int) -> dict:
    entry: dict = {}
    _put(entry, "major", major)
    _put(entry, "minor", minor)
    _put(entry, "op", op)
    _put(entry, "value", value)
    return entry


def blkio(tables: dict[str, list[dict]]) -> dict:
    """`tables` is keyed by runc's JSON names (ioServiceBytesRecursive, ...)."""
    section: dict = {}
    for key, entries in tables.items():
        _put(section, key, entries)
    return section


def hugetlb_entry(usage: int, max_usage: int, failcnt: int) -> dict:
    entry: dict = {}
    _put(entry, "usage", usage)
    _put(entry, "max", max_usage)
    entry["failcnt"] = failcnt
    return entry


CPUSET_KNOBS = (
    "cpu_exclusive",
    "mem_hardwall",
    "mem_exclusive",
    "memory_migrate",
    "memory_spread_page",
    "memory_spread_slab",
    "memory_pressure",
    "sched_load_balance",
    "sched_relax_domain_level",
)


def cpuset(cpus: list[int], mems: list[int], knobs: dict[str, int]) -> dict:
    section: dict = {}
    _put(section, "cpus", cpus)
    _put(section, "mems", mems)
    for knob in CPUSET_KNOBS:
        section[knob] = knobs.get(knob, 0)
    return section


def parse_list(text: str) -> list[int]:
    """A kernel list like "0-3,7" as [0, 1, 2, 3, 7]."""
    result: list[int] = []
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        if low:
            result.extend(range(int(low), int(high or low) + 1))
    return result


def assemble(
    cpu_: dict, cpuset_: dict, memory_: dict, pids_: dict, blkio_: dict, hugetlb: dict
) -> dict:
    """The stats object, keys in runc's order."""
    return {
        "cpu": cpu_,
        "cpuset": cpuset_,
        "memory": memory_,
        "pids": pids_,
        "blkio": blkio_,
        "hugetlb": hugetlb,
    }
