"""A container's limits beside its live use, the same shape on v1 and v2 (for `barque explain`).

Usage comes from the driver's stats() (runc's stats object), the limits it lacks (the CPU
quota) from the controller files themselves. None means "no limit".
"""

from __future__ import annotations

from barque.cgroups import files
from barque.cgroups.base import Manager

# v1 reports "no memory limit" as the largest page-aligned signed 64-bit number; v2 as "max"
# (runc: 2^64-1). Anything this large is no limit at all.
_UNLIMITED = 2**62


def _limit(value: int) -> int | None:
    return None if not value or value >= _UNLIMITED else value


def cpu_quota(manager: Manager) -> tuple[int | None, int]:
    """(quota, period) in microseconds; quota None when the CPU time is not limited."""
    if manager.version == 2:
        text = files.read_optional(_v2_dir(manager), "cpu.max") or "max 100000"
        quota_v2, _, period_v2 = text.partition(" ")
        return (None if quota_v2 == "max" else int(quota_v2)), int(period_v2 or 100000)
    directory = getattr(manager, "dirs", {}).get("cpu")
    if directory is None:
        return None, 100000
    quota_text = files.read_optional(directory, "cpu.cfs_quota_us") or "-1"
    period = files.read_uint(directory, "cpu.cfs_period_us") or 100000
    quota_v1 = int(quota_text)
    return (None if quota_v1 < 0 else quota_v1), period


def _v2_dir(manager: Manager) -> str:
    from barque.cgroups.v2 import CgroupV2Manager

    assert isinstance(manager, CgroupV2Manager)
    return manager.dir


def directories(manager: Manager) -> dict[str, str]:
    """The container's directory in each hierarchy: {"memory": path, ...}; {"": path} on v2."""
    if manager.version == 2:
        return {"": _v2_dir(manager)}
    return dict(getattr(manager, "dirs", {}))


def cpu_usage_ns(manager: Manager) -> int:
    """CPU time used so far by every task of the cgroup, in nanoseconds."""
    return int(manager.stats()["cpu"]["usage"].get("total", 0))


def read(manager: Manager) -> dict:
    """{memory: {current, peak, limit}, pids: {current, limit}, io: {read_bytes,
    write_bytes}, cpu: {quota_us, period_us, usage_ns}, oom_kills}; limits None if unset."""
    data = manager.stats()
    memory = (data.get("memory") or {}).get("usage") or {}
    pids = data.get("pids") or {}
    read_bytes = write_bytes = 0
    for entry in (data.get("blkio") or {}).get("ioServiceBytesRecursive") or []:
        op = str(entry.get("op", "")).lower()
        if op == "read":
            read_bytes += int(entry.get("value", 0))
        elif op == "write":
            write_bytes += int(entry.get("value", 0))
    quota, period = cpu_quota(manager)
    return {
        "memory": {"current": int(memory.get("usage", 0)),
                   "peak": int(memory.get("max", 0)) or None,
                   "limit": _limit(int(memory.get("limit", 0)))},
        "pids": {"current": int(pids.get("current", 0)),
                 "limit": _limit(int(pids.get("limit", 0)))},
        "io": {"read_bytes": read_bytes, "write_bytes": write_bytes},
        "cpu": {"quota_us": quota, "period_us": period,
                "usage_ns": int(data["cpu"]["usage"].get("total", 0))},
        "oom_kills": manager.oom_kill_count(),
    }
