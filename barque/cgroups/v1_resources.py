"""Write OCI linux.resources into cgroup v1 controllers, the way runc's fs driver does.

Zero or absent values leave a file alone. A limit asked of a controller the host does not
mount is an error (the limit would silently not exist), network classes and priorities
included (runc: "cannot set net_cls limit: container could not join or create cgroup").
"""

from __future__ import annotations

import errno

from barque.cgroups import files
from barque.cgroups.base import CgroupError
from barque.cgroups.mountinfo import Hierarchy


def apply(dirs: dict[str, str], unified: tuple[Hierarchy, str] | None, resources: dict) -> None:
    """`dirs`: controller -> the container's directory; `unified`: the hybrid cgroup2
    hierarchy and the container's path in it, if the host has one."""
    if resources.get("unified"):
        raise CgroupError("invalid configuration: cannot use unified on cgroup v1")
    cpu = resources.get("cpu") or {}
    set_cpuset(dirs, cpu)
    if resources.get("devices") is not None:
        set_devices(dirs, resources["devices"])
    set_memory(dirs, resources.get("memory") or {})
    set_cpu(dirs, cpu)
    set_pids(dirs, resources.get("pids"))
    set_blkio(dirs, resources.get("blockIO") or {})
    set_hugetlb(dirs, unified, resources.get("hugepageLimits") or [])
    set_network(dirs, resources.get("network") or {})
    set_rdma(dirs, resources.get("rdma") or {})


def check(resources: dict, dirs: dict[str, str] | None = None) -> None:
    """Validate the device rules and find the controllers the limits need before anything is
    written (see Manager.prepare_resources)."""
    if resources.get("unified"):
        # runc's validator, word for word: hybrid hosts included
        raise CgroupError("invalid configuration: cannot use unified on cgroup v1")
    if resources.get("devices") is not None:
        from barque.cgroups.devices import check_v1, parse_rules

        check_v1(parse_rules(resources["devices"]))
    if dirs is not None:
        for controller in network_controllers(resources.get("network") or {}):
            _need(dirs, controller)


def network_controllers(network: dict) -> list[str]:
    """The v1 controllers linux.resources.network asks for."""
    wanted = []
    if network.get("classID"):
        wanted.append("net_cls")
    if network.get("priorities"):
        wanted.append("net_prio")
    return wanted


def _need(dirs: dict[str, str], controller: str) -> str:
    if controller not in dirs:
        raise CgroupError(f"cannot set {controller} limits: no {controller} cgroup is mounted")
    return dirs[controller]


def set_cpuset(dirs: dict[str, str], cpu: dict) -> None:
    for key, name in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        if cpu.get(key):
            files.write(_need(dirs, "cpuset"), name, cpu[key])


def set_devices(dirs: dict[str, str], entries: list[dict]) -> None:
    from barque.cgroups.devices import check_v1, parse_rules

    rules = parse_rules(entries)  # validate everything before denying anything
    check_v1(rules)
    with files.Writer(_need(dirs, "devices")) as out:
        out.write("devices.deny", "a")  # the rule list starts from nothing allowed
        for rule in rules:
            out.write("devices.allow" if rule.allow else "devices.deny", rule.cgroup_string())


_MEMORY_KEYS = (
    "limit",
    "reservation",
    "swap",
    "kernel",
    "kernelTCP",
    "swappiness",
    "disableOOMKiller",
    "useHierarchy",
)


def set_memory(dirs: dict[str, str], memory: dict) -> None:
    if not any(memory.get(k) is not None for k in _MEMORY_KEYS):
        return
    directory = _need(dirs, "memory")
    limit = memory.get("limit") or 0
    if memory.get("checkBeforeUpdate") and limit > 0:
        usage = files.read_uint(directory, "memory.usage_in_bytes")
        if limit < usage:
            raise CgroupError(f"rejecting memory limit {limit} below current usage {usage}")
    _set_limit_and_swap(directory, limit, memory.get("swap") or 0)
    _set_kernel(directory, "memory.kmem.limit_in_bytes", memory.get("kernel"))
    _set_kernel(directory, "memory.kmem.tcp.limit_in_bytes", memory.get("kernelTCP"))
    if memory.get("reservation"):
        files.write(directory, "memory.soft_limit_in_bytes", memory["reservation"])
    if memory.get("disableOOMKiller"):
        files.write(directory, "memory.oom_control", "1")
    _set_swappiness(directory, memory.get("swappiness"))
    if memory.get("useHierarchy") is not None:
        _set_if_different(directory, "memory.use_hierarchy", int(memory["useHierarchy"]))


def _set_limit_and_swap(directory: str, limit: int, swap: int) -> None:
    """memory.limit_in_bytes and memory.memsw.limit_in_bytes (memory+swap), runc's order."""
    swap_file = "memory.memsw.limit_in_bytes"
    if limit > 0 and 0 < swap < limit:
        raise CgroupError(f"memory swap {swap} must be >= memory limit {limit}")
    accounting = files.has(directory, swap_file)
    if limit == -1 and swap == 0 and accounting:
        swap = -1  # unlimited memory means unlimited swap too
    if swap and not accounting:
        if swap not in (-1, limit):
            raise CgroupError(
                f"cannot limit memory+swap to {swap}: {directory}/{swap_file} "
                "is missing (no swap accounting)"
            )
        swap = 0  # what was asked is what we get without accounting
    # The kernel wants memsw >= limit at every moment: raise memsw first when it grows.
    swap_first = bool(limit and swap) and (
        swap == -1 or files.read_uint(directory, "memory.limit_in_bytes") < swap
    )
    if swap_first:
        files.write(directory, swap_file, swap)
    if limit:
        files.write(directory, "memory.limit_in_bytes", limit)
    if swap and not swap_first:
        files.write(directory, swap_file, swap)


def _set_kernel(directory: str, name: str, value: int | None) -> None:
    if not value:
        return
    try:
        files.write(directory, name, value)
    except CgroupError as e:
        # Kernel memory limits are gone from recent kernels; runc ignores them altogether.
        if e.errno not in (errno.ENOENT, errno.EOPNOTSUPP):
            raise


def _set_swappiness(directory: str, swappiness: int | None) -> None:
    if swappiness is None or swappiness == -1:
        return
    if not 0 <= swappiness <= 100:
        raise CgroupError(f"invalid memory swappiness {swappiness}: it must be 0-100")
    files.write(directory, "memory.swappiness", swappiness)


def _set_if_different(directory: str, name: str, value: int) -> None:
    # New kernels refuse use_hierarchy=0 but accept re-writing the value already there.
    if files.read_uint(directory, name) != value:
        files.write(directory, name, value)


def set_cpu(dirs: dict[str, str], cpu: dict) -> None:
    keys = ("shares", "quota", "period", "burst", "realtimeRuntime", "realtimePeriod", "idle")
    if not any(cpu.get(k) is not None for k in keys):
        return
    directory = _need(dirs, "cpu")
    if cpu.get("shares"):
        _set_shares(directory, cpu["shares"])
    _set_cfs(directory, cpu.get("quota") or 0, cpu.get("period") or 0, cpu.get("burst"))
    # RT period before runtime: the runtime must fit in the period.
    if cpu.get("realtimePeriod"):
        files.write(directory, "cpu.rt_period_us", cpu["realtimePeriod"])
    if cpu.get("realtimeRuntime"):
        files.write(directory, "cpu.rt_runtime_us", cpu["realtimeRuntime"])
    idle = cpu.get("idle")
    if idle is not None and (idle or files.has(directory, "cpu.idle")):
        files.write(directory, "cpu.idle", idle)


def _set_shares(directory: str, shares: int) -> None:
    files.write(directory, "cpu.shares", shares)
    actual = files.read_uint(directory, "cpu.shares")
    if actual != shares:  # the kernel clamps silently; runc reports it
        raise CgroupError(f"cpu shares {shares} is out of range: the kernel set {actual}")


def _set_cfs(directory: str, quota: int, period: int, burst: int | None) -> None:
    later = []
    if period and not _write_before_quota(directory, "cpu.cfs_period_us", period, quota):
        later.append(("cpu.cfs_period_us", period))
    # Kernels before 5.14 have no burst: ignored, as runc does.
    if burst is not None and files.has(directory, "cpu.cfs_burst_us"):
        if not _write_before_quota(directory, "cpu.cfs_burst_us", burst, quota):
            later.append(("cpu.cfs_burst_us", burst))
    if quota:
        files.write(directory, "cpu.cfs_quota_us", quota)
    for name, value in later:
        files.write(directory, name, value)


def _write_before_quota(directory: str, name: str, value: int, quota: int) -> bool:
    """Write now; False if the kernel refused it against the old quota, which is about to
    change: then it is written again after the quota (runc's order)."""
    try:
        files.write(directory, name, value)
    except CgroupError as e:
        if e.errno == errno.EINVAL and quota:
            return False
        raise
    return True


def set_pids(dirs: dict[str, str], pids: dict | None) -> None:
    if pids is None or pids.get("limit") is None:
        return
    limit = pids["limit"]
    files.write(_need(dirs, "pids"), "pids.max", "max" if limit < 0 else limit)


_THROTTLES = (
    ("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
    ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
    ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
    ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device"),
)


def set_blkio(dirs: dict[str, str], blkio: dict) -> None:
    if not any(blkio.values()):
        return
    directory = _need(dirs, "blkio")
    # CFQ's files (blkio.weight) are gone from blk-mq kernels; BFQ has its own.
    prefix = "blkio.bfq." if files.has(directory, "blkio.bfq.weight") else "blkio."
    if blkio.get("weight"):
        files.write(directory, prefix + "weight", blkio["weight"])
    if blkio.get("leafWeight"):
        files.write(directory, "blkio.leaf_weight", blkio["leafWeight"])
    for dev in blkio.get("weightDevice") or []:
        device = f"{dev['major']}:{dev['minor']}"
        if dev.get("weight"):
            files.write(directory, prefix + "weight_device", f"{device} {dev['weight']}")
        if dev.get("leafWeight"):
            files.write(directory, "blkio.leaf_weight_device", f"{device} {dev['leafWeight']}")
    for key, name in _THROTTLES:
        for dev in blkio.get(key) or []:
            files.write(directory, name, f"{dev['major']}:{dev['minor']} {dev.get('rate') or 0}")


def set_hugetlb(dirs: dict[str, str], unified: tuple[Hierarchy, str] | None, limits: list) -> None:
    if not limits:
        return
    if "hugetlb" in dirs:
        directory = dirs["hugetlb"]
        for entry in limits:
            size, limit = entry["pageSize"], entry["limit"]
            if files.has(directory, f"hugetlb.{size}.rsvd.limit_in_bytes"):
                files.write(directory, f"hugetlb.{size}.rsvd.limit_in_bytes", limit)
            files.write(directory, f"hugetlb.{size}.limit_in_bytes", limit)
        return
    # Hybrid hosts may give hugetlb to cgroup2 only (as this project's CI host does).
    if unified is None or "hugetlb" not in files.read(unified[0].mountpoint, "cgroup.controllers"):
        raise CgroupError("cannot set hugepage limits: no hugetlb cgroup controller")
    from barque.cgroups import v2, v2_resources

    directory = v2.make_path(unified[0].mountpoint, unified[1], {"hugetlb"})
    v2_resources.set_hugetlb(directory, limits)


def set_network(dirs: dict[str, str], network: dict) -> None:
    if network.get("classID"):
        files.write(_need(dirs, "net_cls"), "net_cls.classid", int(network["classID"]))
    for prio in network.get("priorities") or []:
        name, priority = str(prio.get("name", "")), prio.get("priority")
        if not name or "\n" in name or " " in name or not isinstance(priority, int):
            raise CgroupError(f"invalid linux.resources.network priority {prio!r}")
        files.write(_need(dirs, "net_prio"), "net_prio.ifpriomap", f"{name} {priority}")


def set_rdma(dirs: dict[str, str], rdma: dict) -> None:
    if not rdma:
        return
    from barque.cgroups import v2_resources

    v2_resources.set_rdma(_need(dirs, "rdma"), rdma)  # rdma.max reads the same in v1 and v2
