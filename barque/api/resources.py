"""A container's resources: GET /containers/{id}/stats (Docker's StatsJSON, a stream or one
reading) and POST /containers/{id}/update (engine/update.py)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

from barque.api.bridge import ResponseWriter, stream_out
from barque.api.common import Handler, flag, go_kind, in_engine, json_response, read_json
from barque.engine import stats as engine_stats
from barque.engine.context import Engine
from barque.engine.errors import EngineError

_ZERO_TIME = "0001-01-01T00:00:00Z"


def _time(ts: float) -> str:
    ns = int(ts * 1_000_000_000)
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


def _cpu(sample: engine_stats.Sample | None) -> dict[str, Any]:
    if sample is None:
        return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0,
                              "usage_in_usermode": 0},
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    cpu = sample.data.get("cpu") or {}
    usage, throttling = cpu.get("usage") or {}, cpu.get("throttling") or {}
    return {"cpu_usage": {"total_usage": sample.cpu_total,
                          "usage_in_kernelmode": int(usage.get("kernel", 0)),
                          "usage_in_usermode": int(usage.get("user", 0))},
            "system_cpu_usage": sample.system, "online_cpus": sample.online_cpus,
            "throttling_data": {"periods": int(throttling.get("periods", 0)),
                                "throttled_periods": int(throttling.get("throttledPeriods", 0)),
                                "throttled_time": int(throttling.get("throttledTime", 0))}}


def _memory(sample: engine_stats.Sample) -> dict[str, Any]:
    memory = sample.data.get("memory") or {}
    usage = memory.get("usage") or {}
    found: dict[str, Any] = {"usage": int(usage.get("usage", 0)),
                             "stats": {k: int(v) for k, v in (memory.get("raw") or {}).items()},
                             "limit": sample.limit}
    if usage.get("max"):
        found["max_usage"] = int(usage["max"])
    if usage.get("failcnt"):
        found["failcnt"] = int(usage["failcnt"])
    return found


def _blkio(sample: engine_stats.Sample | None) -> dict[str, Any]:
    tables: dict[str, Any] = {"io_service_bytes_recursive": None, "io_serviced_recursive": None,
              "io_queue_recursive": None, "io_service_time_recursive": None,
              "io_wait_time_recursive": None, "io_merged_recursive": None,
              "io_time_recursive": None, "sectors_recursive": None}
    if sample is None:
        return tables
    for key, entries in (sample.data.get("blkio") or {}).items():
        name = {"ioServiceBytesRecursive": "io_service_bytes_recursive",
                "ioServicedRecursive": "io_serviced_recursive"}.get(key)
        if name is not None:
            tables[name] = [{"major": int(e.get("major", 0)), "minor": int(e.get("minor", 0)),
                             "op": str(e.get("op", "")), "value": int(e.get("value", 0))}
                            for e in entries]
    return tables


def docker_stats(record_id: str, name: str, sample: engine_stats.Sample | None,
                 previous: engine_stats.Sample | None) -> dict[str, Any]:
    """Docker's StatsJSON: zeroes (and year 1) for a container that is not running."""
    found: dict[str, Any] = {
        "read": _time(sample.read) if sample else _ZERO_TIME,
        "preread": _time(previous.read) if previous else _ZERO_TIME,
        "pids_stats": {}, "blkio_stats": _blkio(sample), "num_procs": 0, "storage_stats": {},
        "cpu_stats": _cpu(sample), "precpu_stats": _cpu(previous), "memory_stats": {},
        "name": "/" + name, "id": record_id}
    if sample is not None:
        pids = sample.data.get("pids") or {}
        found["pids_stats"] = {"current": sample.pids, **(
            {"limit": int(pids["limit"])} if pids.get("limit") else {})}
        found["memory_stats"] = _memory(sample)
        if sample.interfaces:
            found["networks"] = {name: dict(counters)
                                 for name, counters in sample.interfaces.items()}
    return found


async def stats(request: web.Request) -> web.StreamResponse:
    """stream=true (the default): a reading a second until the container stops or the
    client goes; stream=false: one reading, with precpu_stats a moment before it (as
    dockerd, so the CLI's `stats --no-stream` has a CPU %), or without (one-shot=true)."""
    ref = request.match_info["id"]
    streaming, one_shot = flag(request, "stream", True), flag(request, "one-shot")
    if one_shot and streaming:
        raise EngineError("cannot have stream=true and one-shot=true", status=400)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    writer = ResponseWriter(asyncio.get_running_loop(), request, response)

    def send(data: dict[str, Any]) -> None:
        writer.write(json.dumps(data).encode() + b"\n")

    def run(engine: Engine) -> None:
        record = engine.find(ref)
        state = engine.state(record)
        if not state["Running"]:
            send(docker_stats(record.id, record.name, None, None))
            return
        if one_shot:
            send(docker_stats(record.id, record.name,
                              engine_stats.sample(engine, record, state["Pid"]), None))
            return
        for [entry] in engine_stats.stream(engine, [record.id]):
            if entry.sample is None and entry.previous is not None:
                return  # it stopped
            send(docker_stats(record.id, record.name, entry.sample, entry.previous))
            if not streaming or entry.sample is None:
                return

    return await stream_out(request, response, in_engine(request, run))


# HostConfig's resource fields `docker update` may change; zero (or none) means unchanged,
# as dockerd reads the body (the docker CLI sends every field).
_UPDATABLE = ("Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuShares",
              "CpuPeriod", "CpuQuota", "CpusetCpus", "CpusetMems", "BlkioWeight")
_UNSUPPORTED = ("CpuRealtimePeriod", "CpuRealtimeRuntime", "KernelMemory",
                "KernelMemoryTCP", "MemorySwappiness", "OomKillDisable", "Devices",
                "DeviceCgroupRules", "DeviceRequests", "BlkioWeightDevice",
                "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps",
                "BlkioDeviceWriteIOps", "Ulimits", "CpuCount", "CpuPercent",
                "IOMaximumIOps", "IOMaximumBandwidth", "CgroupParent")


def update_changes(body: dict[str, Any]) -> dict[str, Any]:
    """The body's changes for engine/update.update (400 for what Barque cannot change)."""
    changes = {key: body[key] for key in _UPDATABLE if body.get(key)}
    for key, value in changes.items():
        if not isinstance(value, (int, str)) or isinstance(value, bool):
            raise EngineError(f"json: cannot unmarshal {type(value).__name__} into Go struct "
                              f"field UpdateConfig.{key}", status=400)
    if body.get("PidsLimit") is not None:
        changes["PidsLimit"] = body["PidsLimit"]
    policy = _restart_policy(body.get("RestartPolicy"))
    if policy["Name"]:  # "": unchanged, as dockerd reads it
        changes["RestartPolicy"] = policy
    for key in _UNSUPPORTED:
        if body.get(key) not in (None, 0, "", [], False):
            raise EngineError(f"updating {key} is not supported by Barque", status=400)
    return changes


def _restart_policy(policy: Any) -> dict[str, Any]:
    """The body's RestartPolicy, its types checked as Go's encoding/json does (400)."""
    if policy is None:
        return {"Name": ""}
    if not isinstance(policy, dict):
        raise EngineError(f"json: cannot unmarshal {go_kind(policy)} into Go struct field "
                          "UpdateConfig.RestartPolicy of type container.RestartPolicy",
                          status=400)
    name, count = policy.get("Name"), policy.get("MaximumRetryCount")
    for key, value, kind, go_type in (("Name", name, str, "string"),
                                      ("MaximumRetryCount", count, int, "int")):
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise EngineError(f"json: cannot unmarshal {go_kind(value)} into Go struct field "
                              f"RestartPolicy.RestartPolicy.{key} of type {go_type}",
                              status=400)
    return {"Name": name or "", "MaximumRetryCount": count or 0}


async def update(request: web.Request) -> web.Response:
    from barque.engine.update import update as engine_update

    ref = request.match_info["id"]
    changes = update_changes(await read_json(request))
    await in_engine(request, lambda e: engine_update(e, ref, changes))
    return json_response({"Warnings": []})


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/containers/{id}/stats", stats),
    ("POST", "/containers/{id}/update", update),
]
