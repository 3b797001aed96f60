"""`update`: change a live container's resource limits, from flags or a JSON document."""

from __future__ import annotations

import sys

from barque.runtime import fastjson as json
from barque.runtime import state as st
from barque.runtime.args import Parsed
from barque.runtime.errors import RuntimeFailure

# flag → (section, key, parser)
_FLAG_MAP = {
    "blkio_weight": ("blockIO", "weight"),
    "cpu_period": ("cpu", "period"),
    "cpu_quota": ("cpu", "quota"),
    "cpu_share": ("cpu", "shares"),
    "cpu_rt_period": ("cpu", "realtimePeriod"),
    "cpu_rt_runtime": ("cpu", "realtimeRuntime"),
    "cpuset_cpus": ("cpu", "cpus"),
    "cpuset_mems": ("cpu", "mems"),
    "memory": ("memory", "limit"),
    "memory_reservation": ("memory", "reservation"),
    "memory_swap": ("memory", "swap"),
    "kernel_memory": ("memory", "kernel"),
    "kernel_memory_tcp": ("memory", "kernelTCP"),
    "pids_limit": ("pids", "limit"),
}
_STRINGS = {"cpus", "mems"}


def parse_bytes(value: str) -> int:
    """Docker's RAMInBytes: '512m', '1g', '-1'."""
    text = value.strip().lower()
    if text == "-1":
        return -1
    mult = 1
    for suffix, factor in (("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30),
                           ("kb", 1 << 10), ("mb", 1 << 20), ("gb", 1 << 30),
                           ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("b", 1)):
        if text.endswith(suffix):
            text, mult = text[: -len(suffix)], factor
            break
    try:
        return int(float(text) * mult)
    except ValueError:
        raise RuntimeFailure(f"invalid value {value!r}") from None


def resources_from(opts: Parsed) -> dict:
    if opts.resources:
        src = sys.stdin if opts.resources == "-" else open(str(opts.resources))
        try:
            res = json.loads(src.read())
        except ValueError as e:
            raise RuntimeFailure(f"invalid resources JSON: {e}") from None
        finally:
            if src is not sys.stdin:
                src.close()
        if not isinstance(res, dict):
            raise RuntimeFailure("resources must be a JSON object")
        return res
    out: dict = {}
    for flag, (section, key) in _FLAG_MAP.items():
        value = opts.values.get(flag)
        if value is None:
            continue
        text = str(value)
        if key in _STRINGS:
            parsed: object = text
        elif section == "memory":
            parsed = parse_bytes(text)
        else:
            try:
                parsed = int(text)
            except ValueError:
                raise RuntimeFailure(f"invalid value for --{flag.replace('_', '-')}: "
                                     f"{text!r}") from None
        out.setdefault(section, {})[key] = parsed
    return out


def update(container: st.Container, opts: Parsed) -> None:
    from barque.runtime.lifecycle import cgroup_of

    if container.status() == "stopped":
        raise RuntimeFailure("container not running")
    from barque.cgroups.base import CgroupError

    res = resources_from(opts)
    try:
        cgroup_of(container).set_resources(res)
    except CgroupError as e:  # a file the host lacks (blkio.weight without CFQ/BFQ)
        raise RuntimeFailure(str(e)) from None
    linux = container.config.setdefault("linux", {})
    current = linux.setdefault("resources", {})
    for section, values in res.items():
        if isinstance(values, dict) and isinstance(current.get(section), dict):
            current[section].update(values)
        else:
            current[section] = values
    container.save()
