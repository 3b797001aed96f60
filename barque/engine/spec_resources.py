"""HostConfig's resource settings as OCI linux.resources, rlimits and devices, the way
moby's daemon/oci_linux.go maps them."""

from __future__ import annotations

import os
import re
import stat

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

CPU_PERIOD = 100_000  # µs: the CFS period `--cpus` is expressed against

# Device rules every container gets (moby's oci.DefaultLinuxSpec + runc's defaults).
_DEFAULT_DEVICE_RULES = [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},   # /dev/zero
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},   # /dev/null
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},   # /dev/urandom
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},   # /dev/random
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},   # /dev/tty
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},   # /dev/console
    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},  # /dev/fuse
]  # fmt: skip


class ResourceError(Exception):
    pass


def resources(host_config: dict[str, Any]) -> dict[str, Any]:
    hc = host_config
    out: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    if hc.get("Memory"):
        memory["limit"] = int(hc["Memory"])
    swap = hc.get("MemorySwap")
    if swap:
        if not hc.get("Memory"):
            raise ResourceError("You should always set the Memory limit when using Memoryswap "
                                "limit, see usage")  # moby: no full stop
        if swap != -1 and swap < hc["Memory"]:
            raise ResourceError("Minimum memoryswap limit should be larger than memory limit, "
                                "see usage")
        memory["swap"] = int(swap)
    if hc.get("MemoryReservation"):
        memory["reservation"] = int(hc["MemoryReservation"])
    if hc.get("OomKillDisable"):
        memory["disableOOMKiller"] = True
    swappiness = hc.get("MemorySwappiness")
    if swappiness is not None and swappiness != -1:  # -1: the docker CLI's "unset"
        memory["swappiness"] = int(swappiness)
    if memory:
        out["memory"] = memory
    cpu: dict[str, Any] = {}
    if hc.get("NanoCpus"):
        if hc.get("CpuQuota") or hc.get("CpuPeriod"):
            raise ResourceError("Conflicting options: Nano CPUs and CPU Period cannot both be "
                                "set")
        cpu["period"] = CPU_PERIOD
        cpu["quota"] = int(hc["NanoCpus"]) * CPU_PERIOD // 1_000_000_000
    if hc.get("CpuQuota"):
        cpu["quota"] = int(hc["CpuQuota"])
    if hc.get("CpuPeriod"):
        cpu["period"] = int(hc["CpuPeriod"])
    if hc.get("CpuShares"):
        cpu["shares"] = int(hc["CpuShares"])
    if hc.get("CpusetCpus"):
        cpu["cpus"] = str(hc["CpusetCpus"])
    if hc.get("CpusetMems"):
        cpu["mems"] = str(hc["CpusetMems"])
    if cpu:
        out["cpu"] = cpu
    pids = hc.get("PidsLimit")
    if pids:
        out["pids"] = {"limit": int(pids) if pids > 0 else -1}
    block_io = blkio(hc)
    if block_io:
        out["blockIO"] = block_io
    rules = list(_DEFAULT_DEVICE_RULES)
    if hc.get("Privileged"):
        rules = [{"allow": True, "access": "rwm"}]
    for dev, access in devices(hc):
        rules.append({"allow": True, "type": dev["type"], "major": dev["major"],
                      "minor": dev["minor"], "access": access})
    if not hc.get("Privileged"):  # moby: a privileged container has every device already
        rules += device_cgroup_rules(hc)
    out["devices"] = rules
    return out


_THROTTLES = (("BlkioDeviceReadBps", "throttleReadBpsDevice"),
              ("BlkioDeviceWriteBps", "throttleWriteBpsDevice"),
              ("BlkioDeviceReadIOps", "throttleReadIOPSDevice"),
              ("BlkioDeviceWriteIOps", "throttleWriteIOPSDevice"))


def blkio(hc: dict[str, Any]) -> dict[str, Any]:
    """linux.resources.blockIO: the weight, and per device (its host node's numbers, as
    moby's getBlkioWeightDevices/getBlkioThrottleDevices find them) weights and limits."""
    out: dict[str, Any] = {}
    if hc.get("BlkioWeight"):
        out["weight"] = int(hc["BlkioWeight"])
    weights = [{**_block_numbers(entry), "weight": _field(entry, "Weight", 2**16)}
               for entry in _entries(hc, "BlkioWeightDevice")]
    if weights:
        out["weightDevice"] = weights
    for key, oci_key in _THROTTLES:
        limits = [{**_block_numbers(entry), "rate": _field(entry, "Rate", 2**64)}
                  for entry in _entries(hc, key)]
        if limits:
            out[oci_key] = limits
    return out


def check_blkio_shapes(hc: dict[str, Any]) -> None:
    """The shapes the Engine API's JSON decoding would refuse (before any device is looked
    at, and before a host without the cgroup files discards the values)."""
    for entry in _entries(hc, "BlkioWeightDevice"):
        _field(entry, "Weight", 2**16)
    for key, _ in _THROTTLES:
        for entry in _entries(hc, key):
            _field(entry, "Rate", 2**64)
    _rule_strings(hc)


def _entries(hc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = hc.get(key) or []
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise ResourceError(f"json: cannot unmarshal into Go struct field HostConfig.{key}")
    return value


def _field(entry: dict[str, Any], key: str, limit: int) -> int:
    value = entry.get(key) or 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < limit:
        raise ResourceError(f"json: cannot unmarshal number {value} into Go struct field "
                            f"{'WeightDevice' if key == 'Weight' else 'ThrottleDevice'}.{key} "
                            f"of type uint{16 if key == 'Weight' else 64}")
    return value


def _block_numbers(entry: dict[str, Any]) -> dict[str, int]:
    """The major and minor numbers of the device node at Path on the host (moby stats it
    and takes any node's rdev; the kernel refuses what is not a block device at start)."""
    path = entry.get("Path")
    if not isinstance(path, str) or not path:
        raise ResourceError(f"stat {path or ''}: no such file or directory")
    try:
        st = os.stat(path)
    except OSError as e:
        raise DeviceError(f"stat {path}: {(e.strerror or str(e)).lower()}") from None
    return {"major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev)}


def device_cgroup_rules(hc: dict[str, Any]) -> list[dict[str, Any]]:
    """--device-cgroup-rule / DeviceCgroupRules: "TYPE MAJOR:MINOR ACCESS" as allow rules,
    "*" a wildcard (an OCI rule without the number), in moby's words for a bad one."""
    out = []
    for rule in _rule_strings(hc):
        match = _DEVICE_CGROUP_RULE.match(rule)
        if not match:
            raise ResourceError(f"invalid device cgroup rule format: '{rule}'")
        kind, major, minor, access = match.groups()
        entry: dict[str, Any] = {"allow": True, "type": kind, "access": access}
        for name, number in (("major", major), ("minor", minor)):
            if number == "*":
                continue
            if int(number) >= 2**32:  # moby's ParseInt fails past int64, the kernel sooner
                raise ResourceError(f"invalid {name} value in device cgroup rule format: "
                                    f"'{rule}'")
            entry[name] = int(number)
        out.append(entry)
    return out


def _rule_strings(hc: dict[str, Any]) -> list[str]:
    rules = hc.get("DeviceCgroupRules") or []
    if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
        raise ResourceError("json: cannot unmarshal into Go struct field "
                            "HostConfig.DeviceCgroupRules of type []string")
    return rules


_DEVICE_CGROUP_RULE = re.compile(r"([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})\Z")


_RLIMITS = {
    "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
    "rss", "rtprio", "rttime", "sigpending", "stack", "as",
}


def rlimits(host_config: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for limit in host_config.get("Ulimits") or []:
        name = str(limit.get("Name", "")).lower()
        if name not in _RLIMITS:
            raise ResourceError(f"invalid ulimit type: {name}")
        out.append({"type": "RLIMIT_" + name.upper(), "soft": int(limit["Soft"]),
                    "hard": int(limit["Hard"])})
    return out


class DeviceError(ResourceError):
    """A --device whose host node is missing: dockerd finds it at start, not at create."""


def devices(host_config: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """--device HOST[:CONTAINER[:PERMS]] entries: (OCI linux.devices entry, its cgroup
    permissions)."""
    out = []
    for entry in host_config.get("Devices") or []:
        host = entry.get("PathOnHost", "")
        target = entry.get("PathInContainer") or host
        access = entry.get("CgroupPermissions") or "rwm"
        if not host.startswith("/") or not target.startswith("/"):
            raise ResourceError(f"invalid device path: {host}")
        if not set(access) <= set("rwm"):
            raise ResourceError(f"invalid device mode: {access}")
        try:
            st = os.stat(host)
        except OSError as e:
            raise DeviceError(f"error gathering device information while adding custom "
                                f"device \"{host}\": {(e.strerror or str(e)).lower()}") from None
        if stat.S_ISCHR(st.st_mode):
            kind = "c"
        elif stat.S_ISBLK(st.st_mode):
            kind = "b"
        else:
            raise DeviceError(f"error gathering device information while adding custom "
                                f"device \"{host}\": not a device node")
        out.append(({"path": target, "type": kind, "major": os.major(st.st_rdev),
                     "minor": os.minor(st.st_rdev), "fileMode": stat.S_IMODE(st.st_mode),
                     "uid": 0, "gid": 0}, access))
    return out
