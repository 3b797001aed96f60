"""Resource values checked before anything is made, in the words of moby's
verifyPlatformContainerResources (daemon/daemon_unix.go): a value the kernel would refuse
part-way through a start, or one that would silently mean something else, fails `create`,
`run` and `update` up front. Plus the kernel's limits on a process's arguments and
environment, which would otherwise fail the container's execve after it was made."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

MIN_MEMORY = 6 * 1024 * 1024  # moby's linuxMinMemory: room for a container to start at all
INT64_MAX = 2**63 - 1  # the Engine API's fields are int64
MAX_CPUSET_ID = 8192  # moby: "the normal maximum number of CPUs in Linux"
MAX_ARG_STRLEN = 32 * 4096  # the kernel's limit on one argument or environment string


class ResourceCheckError(Exception):
    pass


def _int(host_config: dict[str, Any], key: str) -> int:
    value = host_config.get(key) or 0
    if isinstance(value, bool) or not isinstance(value, int) or not -INT64_MAX - 1 <= value \
            <= INT64_MAX:
        raise ResourceCheckError(f"json: cannot unmarshal number {value} into Go struct field "
                                 f"HostConfig.{key} of type int64")
    return value


def check(host_config: dict[str, Any]) -> None:
    check_cgroup_parent(host_config.get("CgroupParent"))
    check_memory(host_config)
    check_cpus(host_config)
    check_cpuset(str(host_config.get("CpusetCpus") or ""), _available("cpus"), "CPUs",
                 "cpus")
    check_cpuset(str(host_config.get("CpusetMems") or ""), _available("mems"),
                 "memory nodes", "mems")


def check_cgroup_parent(parent: Any) -> None:
    """What the cgroupfs driver cannot take as a cgroup's path (a NUL, a newline that would
    garble /proc/PID/cgroup, runc's systemd form "slice:prefix:name")."""
    if parent is None or parent == "":
        return
    if not isinstance(parent, str):
        raise ResourceCheckError("json: cannot unmarshal into Go struct field "
                                 "HostConfig.CgroupParent of type string")
    if "\0" in parent or "\n" in parent:
        raise ResourceCheckError(f"invalid cgroup parent {parent!r}: a cgroup's name cannot "
                                 "hold a NUL or a newline")
    if os.path.join(parent, "x").count(":") == 2:
        raise ResourceCheckError(f"invalid cgroup parent {parent}: \"slice:prefix:name\" is the "
                                 "systemd cgroup driver's, Barque uses cgroupfs")


def check_memory(host_config: dict[str, Any]) -> None:
    memory = _int(host_config, "Memory")
    if memory != 0 and memory < MIN_MEMORY:
        raise ResourceCheckError("Minimum memory limit allowed is 6MB")
    _int(host_config, "MemorySwap")
    reservation = _int(host_config, "MemoryReservation")
    if reservation != 0 and reservation < MIN_MEMORY:
        raise ResourceCheckError("Minimum memory reservation allowed is 6MB")
    if memory > 0 and reservation > 0 and memory < reservation:
        raise ResourceCheckError("Minimum memory limit can not be less than memory reservation "
                                 "limit, see usage")


def host_cpus() -> int:
    """runtime.NumCPU(), as moby's sysinfo.NumCPU: the CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except OSError:
        return os.cpu_count() or 1


def check_cpus(host_config: dict[str, Any]) -> None:
    nano = _int(host_config, "NanoCpus")
    count = host_cpus()
    # moby leaves the lower bound to the kernel (a CFS quota under 1 ms, i.e. below 0.01 CPU
    # at the 100 ms period, fails on write); the same words, before anything is made.
    if nano < 0 or 0 < nano < 10_000_000 or nano > count * 1_000_000_000:
        raise ResourceCheckError(f"Range of CPUs is from 0.01 to {count}.00, as there are only "
                                 f"{count} CPUs available")
    period = _int(host_config, "CpuPeriod")
    if period != 0 and not 1000 <= period <= 1_000_000:
        raise ResourceCheckError("CPU cfs period can not be less than 1ms (i.e. 1000) or larger "
                                 "than 1s (i.e. 1000000)")
    quota = _int(host_config, "CpuQuota")
    if 0 < quota < 1000:
        raise ResourceCheckError("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    shares = _int(host_config, "CpuShares")
    if shares < 0:
        raise ResourceCheckError("shares: invalid argument")


def parse_list(text: str, maximum: int = 0) -> set[int]:
    """moby's parsers.ParseUintListMaximum: "0-2,5" -> {0, 1, 2, 5}."""
    if not text:
        return set()
    out: set[int] = set()
    for part in text.split(","):
        low, dash, high = part.partition("-")
        try:
            first = int(low) if low.isdigit() else -1
            last = (int(high) if high.isdigit() else -1) if dash else first
        except ValueError:
            first = last = -1
        if first < 0 or last < first:
            raise ValueError(f"invalid format: {text}")
        if maximum and last > maximum:
            raise ValueError(f"value of out range, maximum is {maximum}")
        out.update(range(first, last + 1))
    return out


def _available(kind: str) -> str:
    """The host's cpuset (moby's sysInfo.Cpus / Mems): what the cpuset cgroup root offers."""
    for path in (f"/sys/fs/cgroup/cpuset/cpuset.{kind}", f"/sys/fs/cgroup/cpuset.{kind}.effective",
                 f"/sys/fs/cgroup/cpuset/cpuset.effective_{kind}"):
        try:
            with open(path) as f:
                text = f.read().strip()
            if text:
                return text
        except OSError:
            continue
    if kind == "cpus":
        return _format(sorted(os.sched_getaffinity(0)))
    return "0"


def _format(ids: list[int]) -> str:
    ranges: list[str] = []
    for i in ids:
        if ranges and i == int(ranges[-1].split("-")[-1]) + 1:
            ranges[-1] = f"{ranges[-1].split('-')[0]}-{i}"
        else:
            ranges.append(str(i))
    return ",".join(ranges)


def check_cpuset(requested: str, available: str, noun: str, kind: str) -> None:
    if not requested:
        return
    have = parse_list(available)
    try:
        wanted = parse_list(requested, max([MAX_CPUSET_ID, *have]))
    except ValueError as e:
        raise ResourceCheckError(f"Invalid value {requested} for cpuset {kind}: {e}") from None
    if not wanted <= have:
        raise ResourceCheckError(f"Requested {noun} are not available - requested {requested}, "
                                 f"available: {available}")


def check_process(args: list[str], env: list[str]) -> None:
    """What execve would refuse with E2BIG, refused before the container is made."""
    for entry in env:
        if len(entry.encode()) + 1 > MAX_ARG_STRLEN:
            name = entry.partition("=")[0]
            raise ResourceCheckError(f"environment variable {name} is too long: "
                                     f"{len(entry.encode())} bytes, the most the kernel takes "
                                     f"is {MAX_ARG_STRLEN - 1}")
    for arg in args:
        if len(arg.encode()) + 1 > MAX_ARG_STRLEN:
            raise ResourceCheckError(f"an argument of the command is too long: "
                                     f"{len(arg.encode())} bytes, the most the kernel takes is "
                                     f"{MAX_ARG_STRLEN - 1}")
    total = sum(len(s.encode()) + 1 + 8 for s in [*args, *env])  # each string and its pointer
    limit = os.sysconf("SC_ARG_MAX")
    if total > limit:
        raise ResourceCheckError(f"the command and environment are too long: {total} bytes, the "
                                 f"most the kernel takes is {limit}")


# moby's verifyPlatformContainerResources for what the host's cgroups may lack: the value is
# dropped with a warning (the Warnings of the create), then what is left is range-checked.
_BLKIO = (
    ("BlkioWeightDevice", "blkio.weight_device", "Your kernel does not support Block I/O "
     "weight_device or the cgroup is not mounted. Weight-device discarded."),
    ("BlkioDeviceReadBps", "blkio.throttle.read_bps_device", "Your kernel does not support "
     "BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit "
     "discarded."),
    ("BlkioDeviceWriteBps", "blkio.throttle.write_bps_device", "Your kernel does not support "
     "BPS Block I/O write limit or the cgroup is not mounted. Block I/O BPS write limit "
     "discarded."),
    ("BlkioDeviceReadIOps", "blkio.throttle.read_iops_device", "Your kernel does not support "
     "IOPS Block read limit or the cgroup is not mounted. Block I/O IOPS read limit "
     "discarded."),
    ("BlkioDeviceWriteIOps", "blkio.throttle.write_iops_device", "Your kernel does not "
     "support IOPS Block write limit or the cgroup is not mounted. Block I/O IOPS write limit "
     "discarded."),
)


def adapt(host_config: dict[str, Any]) -> list[str]:
    """Drop (with dockerd's warnings) the swappiness and block I/O settings this host's
    cgroups cannot apply, then refuse values out of range. Changes `host_config` in place,
    as dockerd does (inspect shows what is kept)."""
    from barque.engine import spec_resources

    try:
        spec_resources.check_blkio_shapes(host_config)
    except spec_resources.ResourceError as e:
        raise ResourceCheckError(str(e)) from None
    warnings: list[str] = []
    swappiness = host_config.get("MemorySwappiness")
    if swappiness is not None and (isinstance(swappiness, bool) or
                                   not isinstance(swappiness, int)):
        raise ResourceCheckError(f"json: cannot unmarshal {type(swappiness).__name__} into "
                                 "Go struct field HostConfig.MemorySwappiness of type int64")
    if swappiness == -1:  # the docker CLI's default: unset
        swappiness = host_config["MemorySwappiness"] = None
    if swappiness is not None and not _has("memory", "memory.swappiness"):
        # cgroup v2 has no swappiness at all
        warnings.append("Your kernel does not support memory swappiness capabilities or the "
                        "cgroup is not mounted. Memory swappiness discarded.")
        swappiness = host_config["MemorySwappiness"] = None
    if swappiness is not None and not 0 <= swappiness <= 100:
        raise ResourceCheckError(f"Invalid value: {swappiness}, valid memory swappiness range "
                                 "is 0-100")
    weight = _int(host_config, "BlkioWeight")
    if not 0 <= weight < 2**16:  # a uint16 in the API
        raise ResourceCheckError(f"json: cannot unmarshal number {weight} into Go struct "
                                 "field HostConfig.BlkioWeight of type uint16")
    if weight > 0 and not _has("blkio", "blkio.weight"):
        warnings.append("Your kernel does not support Block I/O weight or the cgroup is not "
                        "mounted. Weight discarded.")
        weight = host_config["BlkioWeight"] = 0
    if weight > 0 and not 10 <= weight <= 1000:
        raise ResourceCheckError("Range of blkio weight is from 10 to 1000")
    for key, name, warning in _BLKIO:
        if host_config.get(key) and not _has("blkio", name):
            warnings.append(warning)
            host_config[key] = []
    return warnings


def _has(controller: str, name: str) -> bool:
    """What moby's sysinfo finds: v1's file (BFQ's blkio.bfq.* for the weights on blk-mq
    kernels, as runc writes them), or v2's controller (io for every blkio setting; v2 has no
    swappiness)."""
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):  # pure cgroup v2
        if controller == "memory" and name == "memory.swappiness":
            return False
        try:
            with open("/sys/fs/cgroup/cgroup.controllers") as f:
                return ("io" if controller == "blkio" else controller) in f.read().split()
        except OSError:
            return False
    base = f"/sys/fs/cgroup/{controller}"
    return os.path.exists(f"{base}/{name}") or (name.startswith("blkio.weight") and
                                                os.path.exists(f"{base}/blkio.bfq.{name[6:]}"))
