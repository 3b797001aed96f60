"""Write OCI linux.resources into a cgroup v2 directory, converting v1 notions as runc does.

Zero or absent values leave the file alone (runc's "unset"); -1 means "max".
"""

from __future__ import annotations

import errno

from barque.cgroups import files
from barque.cgroups.base import CgroupError


def check(resources: dict) -> None:
    """Validate the device rules before anything is written (see Manager.prepare_resources)."""
    if resources.get("devices") is not None:
        from barque.cgroups import v2_devices

        v2_devices.check(resources["devices"])
    _reject_network(resources)


def _reject_network(resources: dict) -> None:
    """net_cls and net_prio are v1 controllers: cgroup v2 has nothing to apply them with, and
    a class or priority silently not set would fail open."""
    network = resources.get("network") or {}
    if network.get("classID") or network.get("priorities"):
        raise CgroupError("cannot set linux.resources.network: the net_cls and net_prio "
                          "controllers do not exist in cgroup v2")


def apply(directory: str, resources: dict) -> None:
    _reject_network(resources)
    cpu = resources.get("cpu") or {}
    _reject_realtime(cpu)
    set_pids(directory, resources.get("pids"))
    set_memory(directory, resources.get("memory") or {})
    set_io(directory, resources.get("blockIO") or {})
    set_cpu(directory, cpu)
    if resources.get("devices") is not None:
        from barque.cgroups import v2_devices

        v2_devices.apply(directory, resources["devices"])
    set_cpuset(directory, cpu)
    set_hugetlb(directory, resources.get("hugepageLimits") or [])
    set_rdma(directory, resources.get("rdma") or {})
    set_unified(directory, resources.get("unified") or {})


def _max(value: int) -> str:
    return "max" if value == -1 else str(value)


def _reject_realtime(cpu: dict) -> None:
    # v2 has no RT bandwidth files: refuse rather than silently run without the limit.
    if cpu.get("realtimeRuntime") or cpu.get("realtimePeriod"):
        raise CgroupError("cpu.realtimeRuntime/realtimePeriod are not supported on cgroup v2")


def set_pids(directory: str, pids: dict | None) -> None:
    if pids is None or pids.get("limit") is None:
        return
    limit = pids["limit"]
    files.write(directory, "pids.max", "max" if limit < 0 else limit)  # 0 is a real limit


def swap_to_v2(swap: int, limit: int) -> int | None:
    """OCI memory.swap (memory+swap, v1 style) as memory.swap.max (swap alone); None: unset."""
    if limit == -1 and swap == 0:
        return -1  # unlimited memory implies unlimited swap, as with v1
    if swap == 0:
        return None
    if swap == -1:
        return -1
    if limit in (0, -1):
        raise CgroupError(f"cannot set memory swap {swap} without a memory limit")
    if swap < limit:
        raise CgroupError(f"memory swap {swap} must be >= memory limit {limit}")
    return swap - limit


def set_memory(directory: str, memory: dict) -> None:
    # kernel, kernelTCP, swappiness, disableOOMKiller, useHierarchy: no v2 files (runc ignores).
    limit = memory.get("limit") or 0
    reservation = memory.get("reservation") or 0
    swap = swap_to_v2(memory.get("swap") or 0, limit)
    if memory.get("checkBeforeUpdate") and limit > 0:
        _check_usage(directory, limit)
    if swap is not None:
        _set_swap(directory, swap)
    if limit:
        files.write(directory, "memory.max", _max(limit))
    if reservation:
        files.write(directory, "memory.low", _max(reservation))


def _set_swap(directory: str, swap: int) -> None:
    if not files.has(directory, "memory.swap.max"):
        if swap in (0, -1):
            return  # no swap accounting: "no swap" and "unlimited" are what we have anyway
        raise CgroupError(f"cannot limit swap to {swap}: {directory}/memory.swap.max is missing")
    files.write(directory, "memory.swap.max", _max(swap))


def _check_usage(directory: str, limit: int) -> None:
    usage = files.read_uint(directory, "memory.current")
    if limit < usage:
        raise CgroupError(f"rejecting memory limit {limit} below current usage {usage}")


def shares_to_weight(shares: int) -> int:
    """cpu.shares [2, 262144] to cpu.weight [1, 10000], runc's linear mapping."""
    if not shares:
        return 0
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


def set_cpu(directory: str, cpu: dict) -> None:
    idle = cpu.get("idle")
    if idle is not None and (idle or files.has(directory, "cpu.idle")):
        files.write(directory, "cpu.idle", idle)
    shares = cpu.get("shares") or 0
    if shares and not idle:  # the kernel ignores the weight of an idle cgroup
        files.write(directory, "cpu.weight", shares_to_weight(shares))
    burst = cpu.get("burst")
    burst_later = burst is not None and not _try_burst(directory, burst)
    quota, period = cpu.get("quota") or 0, cpu.get("period") or 0
    if quota or period:
        value = f"{quota if quota > 0 else 'max'} {period or 100000}"
        files.write(directory, "cpu.max", value)
    if burst_later:
        files.write(directory, "cpu.max.burst", cpu["burst"])


def _try_burst(directory: str, burst: int) -> bool:
    """Write cpu.max.burst now; False if it must wait for a larger quota in cpu.max."""
    try:
        files.write(directory, "cpu.max.burst", burst)
    except CgroupError as e:
        if e.errno == errno.ENOENT:
            return True  # kernel older than 5.14: no burst, ignored as runc does
        if e.errno == errno.EINVAL:
            return False
        raise
    return True


def set_cpuset(directory: str, cpu: dict) -> None:
    if cpu.get("cpus"):
        files.write(directory, "cpuset.cpus", cpu["cpus"])
    if cpu.get("mems"):
        files.write(directory, "cpuset.mems", cpu["mems"])


def blkio_to_io_weight(weight: int) -> int:
    """blkio weight [10, 1000] to io.weight [1, 10000], runc's conversion."""
    return 1 + (weight - 10) * 9999 // 990 if weight else 0


_THROTTLES = (
    ("throttleReadBpsDevice", "rbps"),
    ("throttleWriteBpsDevice", "wbps"),
    ("throttleReadIOPSDevice", "riops"),
    ("throttleWriteIOPSDevice", "wiops"),
)


def set_io(directory: str, blkio: dict) -> None:
    # BFQ takes blkio weights as they are; io.weight needs them converted.
    bfq = files.has(directory, "io.bfq.weight")
    name, convert = ("io.bfq.weight", int) if bfq else ("io.weight", blkio_to_io_weight)
    if blkio.get("weight"):
        files.write(directory, name, convert(blkio["weight"]))
    for dev in blkio.get("weightDevice") or []:
        if dev.get("weight"):
            files.write(directory, name, f"{dev['major']}:{dev['minor']} {convert(dev['weight'])}")
    for key, op in _THROTTLES:
        for dev in blkio.get(key) or []:
            rate = dev.get("rate") or "max"  # v1 wrote 0 to lift a limit
            files.write(directory, "io.max", f"{dev['major']}:{dev['minor']} {op}={rate}")


def set_hugetlb(directory: str, limits: list) -> None:
    for entry in limits:
        size, limit = entry["pageSize"], entry["limit"]
        # Reservation limits (kernel 5.7+) are the better ones, the spec says: set both.
        if files.has(directory, f"hugetlb.{size}.rsvd.max"):
            files.write(directory, f"hugetlb.{size}.rsvd.max", limit)
        files.write(directory, f"hugetlb.{size}.max", limit)


def set_rdma(directory: str, rdma: dict) -> None:
    for device, limits in rdma.items():
        parts = [f"hca_handle={limits['hcaHandles']}"] if "hcaHandles" in limits else []
        if "hcaObjects" in limits:
            parts.append(f"hca_object={limits['hcaObjects']}")
        files.write(directory, "rdma.max", f"{device} {' '.join(parts)}")


def set_unified(directory: str, unified: dict) -> None:
    for key, value in unified.items():
        if "/" in key or key in ("", ".", ".."):
            raise CgroupError(f"unified resource {key!r} must be a file name")
        try:
            files.write(directory, key, value)
        except CgroupError as e:
            _explain_unified(directory, key, e)
            raise


def _explain_unified(directory: str, key: str, error: CgroupError) -> None:
    if error.errno not in (errno.ENOENT, errno.EPERM, errno.EACCES):
        return
    controller = key.partition(".")[0]
    available = files.read(directory, "cgroup.controllers").split()
    if controller not in available and controller != "cgroup":
        raise CgroupError(
            f"unified resource {key!r}: controller {controller!r} is not available", error.errno
        ) from error
