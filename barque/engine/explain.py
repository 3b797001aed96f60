"""`barque explain`: what isolates a running container, from the kernel's own files.

One plain dict (its schema: explain.schema.json beside this file, described in
docs/explain.md): the namespaces beside the host's (explain_ns), the cgroup limits beside live
use (barque.cgroups.usage), the union filesystem (explain_fs), the security settings
(explain_security), and the cost beside the host: the monitor's memory and the start latency.
"""

from __future__ import annotations

import json
import os
import time

from barque.engine import explain_fs, explain_ns, explain_security, monitor
from barque.engine import explain_proc as proc
from barque.engine.context import Engine
from barque.engine.errors import EngineError
from barque.engine.records import ContainerRecord

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

SCHEMA = "barque.explain/v1"
SCHEMA_FILE = os.path.join(os.path.dirname(__file__), "explain.schema.json")


def explain(engine: Engine, name: str, interval: float = 1.0) -> dict[str, Any]:
    """The facts of container `name`; CPU use is sampled over `interval` seconds."""
    record = engine.find(name)
    state = engine.state(record)
    pid = int(state["Pid"])
    if not state["Running"] or pid <= 0:
        raise EngineError(f"Container {record.id} is not running", 1, 409)
    spec = _spec(engine, record)
    try:
        status = proc.status(pid)
        mounts = proc.mountinfo(pid)
        facts = {
            "schema": SCHEMA,
            "container": _container(record, state, pid),
            "namespaces": explain_ns.collect(pid, status, spec, _others(engine, record)),
            "cgroups": _cgroups(pid, spec, record, interval),
            "filesystem": explain_fs.collect(mounts, *_image(engine, record)),
            "security": explain_security.collect(pid, status, spec, mounts),
            "cost": _cost(engine, record, state),
        }
    except (OSError, ValueError) as e:
        # The process went away while we read it (/proc/PID vanished): it stopped.
        if not os.path.exists(f"/proc/{pid}"):
            raise EngineError(f"Container {record.id} is not running", 1, 409) from None
        raise EngineError(f"explain {record.id}: {e}", 1) from None
    return facts


def _spec(engine: Engine, record: ContainerRecord) -> dict[str, Any]:
    """The OCI spec the container was started with (the engine writes it at each start)."""
    path = os.path.join(engine.paths.container_dir(record.id), "config.json")
    try:
        with open(path, "rb") as f:
            spec = json.loads(f.read())
    except (OSError, ValueError):
        return {}
    return spec if isinstance(spec, dict) else {}


def _container(record: ContainerRecord, state: dict[str, Any], pid: int) -> dict[str, Any]:
    return {"id": record.id, "name": record.name, "image": record.image,
            "image_id": record.image_id, "status": state["Status"], "pid": pid,
            "command": proc.cmdline(pid), "started_at": state["StartedAt"],
            "privileged": bool(record.host_config.get("Privileged")),
            "network_mode": str(record.host_config.get("NetworkMode") or "bridge"),
            "pid_mode": str(record.host_config.get("PidMode") or "")}


def _others(engine: Engine, record: ContainerRecord) -> dict[str, dict[str, int | None]]:
    """The namespaces of every other running container, by name."""
    found = {}
    for other in engine.records.all():
        if other.id == record.id:
            continue
        state = engine.state(other)
        if state["Running"] and int(state["Pid"]) > 0:
            found[other.name] = proc.namespaces(int(state["Pid"]))
    return found


def _image(engine: Engine, record: ContainerRecord) -> tuple[Any, Any]:
    from barque.image.store import ImageError

    try:
        return engine.store, engine.store.get(record.image_id)
    except ImageError:
        return engine.store, None  # removed with -f meanwhile: the layers stay unnamed


def _cgroups(pid: int, spec: dict[str, Any], record: ContainerRecord,
             interval: float) -> dict[str, Any]:
    """The cgroup the kernel says the process is in (/proc/PID/cgroup), read through the
    driver for this host's hierarchy; CPU use over `interval` seconds."""
    from barque.cgroups import CgroupError, open_manager, usage
    from barque.cgroups.mountinfo import is_pure_v2, parse_proc_cgroup

    where = parse_proc_cgroup(proc.read_text(f"/proc/{pid}/cgroup") or "")
    cgroups_path = (spec.get("linux") or {}).get("cgroupsPath") or None
    try:
        manager = open_manager(cgroups_path, record.id, resolved=where)
        before = usage.cpu_usage_ns(manager)
        start = time.monotonic()
        time.sleep(interval)
        facts = usage.read(manager)
        elapsed = time.monotonic() - start
    except CgroupError as e:
        raise EngineError(f"cgroups of {record.id}: {e}", 1) from None
    cpu = facts["cpu"]
    cpu["sample_seconds"] = round(elapsed, 3)
    cpu["percent"] = round((cpu["usage_ns"] - before) / (elapsed * 1e9) * 100, 2)
    quota = cpu["quota_us"]
    cpu["limit_cpus"] = round(quota / cpu["period_us"], 3) if quota else None
    return {"version": 2 if is_pure_v2() else 1, "paths": where,
            "directories": usage.directories(manager), **facts}


def _cost(engine: Engine, record: ContainerRecord, state: dict[str, Any]) -> dict[str, Any]:
    """The extra memory beside the host (the monitor) and how long the start took."""
    from barque.engine.logs import parse_time

    live = monitor.read_state(engine.paths.monitor_dir(record.id)) or {}
    monitor_pid = int(live.get("MonitorPid") or 0)
    latency = None
    try:
        latency = round((parse_time(state["StartedAt"]) - parse_time(record.created)) * 1000,
                        1)
    except ValueError:
        pass
    return {"monitor_pid": monitor_pid or None,
            "monitor_rss_bytes": proc.rss_bytes(monitor_pid) if monitor_pid else None,
            "created_at": record.created, "started_at": state["StartedAt"],
            "start_latency_ms": latency}
