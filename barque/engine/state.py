"""A container's Docker state, from its record (what outlives a run) and its monitor's
state.json (what is live).

The record keeps: Status ("created", "exited", "dead"), ExitCode, Error, StartedAt,
FinishedAt, OOMKilled, RestartCount, Paused (set by pause/unpause). While a monitor exists
its state.json is the truth for the run; once the monitor has ended it is folded back into
the record (`settle`). A monitor that died without writing its final state leaves the
container "dead", never shown as running.
"""

from __future__ import annotations

import time

from barque.engine import monitor, start_error
from barque.engine.records import ContainerRecord

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time, which Docker prints for "never"

_LIVE = ("created", "running", "restarting")


def now() -> str:
    """RFC 3339 in UTC with nanoseconds, as Docker prints times."""
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + \
        f".{ns % 1_000_000_000:09d}Z"


def initial() -> dict[str, Any]:
    return {"Status": "created", "ExitCode": 0, "Error": "", "StartedAt": ZERO_TIME,
            "FinishedAt": ZERO_TIME, "OOMKilled": False, "RestartCount": 0, "Paused": False}


def current(record: ContainerRecord, monitor_dir: str,
            memo: dict[str, Any] | None = None) -> dict[str, Any]:
    """Docker's State object (plus RestartCount) for the container now (`memo`: see
    monitor.read_state)."""
    saved = {**initial(), **record.state}
    live = monitor.read_state(monitor_dir, memo)
    status = str(saved["Status"])
    pid = 0
    merged = dict(saved)
    if live is not None:  # each start empties the monitor's dir: this is the latest run
        merged.update({k: live[k] for k in ("ExitCode", "OOMKilled", "RestartCount", "Error")
                       if k in live})
        # the monitor records the runtime's own words; State.Error has Docker's around them
        merged["Error"] = start_error.docker_words(str(merged.get("Error") or ""))
        for key in ("StartedAt", "FinishedAt"):
            if live.get(key):
                merged[key] = live[key]
        status = str(live.get("Status", status))
        if status in _LIVE:
            if monitor.alive(int(live.get("MonitorPid") or 0)):
                pid = int(live.get("Pid") or 0)
            else:
                status = "dead"
                merged["Error"] = merged.get("Error") or "barque-monitor died"
        elif status == "exited" and live.get("Error") and not live.get("StartedAt"):
            status = _before_failed_start(saved)
    elif status in _LIVE and status != "created":
        status = "exited"  # the run dir is gone (a reboot): the container did not survive it
    if status == "running" and saved.get("Paused"):
        status = "paused"
    result: dict[str, Any] = {
        "Status": status,
        "Running": status in ("running", "paused", "restarting"),
        "Paused": status == "paused",
        "Restarting": status == "restarting",
        "OOMKilled": bool(merged.get("OOMKilled")),
        "Dead": status == "dead",
        "Pid": pid,
        "ExitCode": int(merged.get("ExitCode") or 0),
        "Error": str(merged.get("Error") or ""),
        "StartedAt": str(merged.get("StartedAt") or ZERO_TIME),
        "FinishedAt": str(merged.get("FinishedAt") or ZERO_TIME),
        "RestartCount": int(merged.get("RestartCount") or 0),
    }
    if live is not None and isinstance(live.get("Health"), dict):
        result["Health"] = live["Health"]
    elif isinstance(saved.get("Health"), dict):
        result["Health"] = saved["Health"]
    return result


def creating(monitor_dir: str) -> bool:
    """The monitor is there and has not yet run the runtime's create (an attached start
    waits for its client). Not the State's "created": a start that failed leaves that too."""
    live = monitor.read_state(monitor_dir)
    return live is not None and live.get("Status") == "created" and \
        monitor.alive(int(live.get("MonitorPid") or 0))


def _before_failed_start(saved: dict[str, Any]) -> str:
    """A start that failed leaves the container as it was, as Docker's: `created` if it
    never ran. (An attached start saves "running" before the monitor's create: a container
    that never finished a run had not run.)"""
    if saved["Status"] in ("created", "exited"):
        return str(saved["Status"])
    return "created" if saved.get("FinishedAt", ZERO_TIME) == ZERO_TIME else "exited"


def settled(record: ContainerRecord, state: dict[str, Any]) -> dict[str, Any]:
    """The record's state once a run is over (nothing live left to ask)."""
    keys = ("ExitCode", "Error", "StartedAt", "FinishedAt", "OOMKilled", "RestartCount",
            "Health")
    keep: dict[str, Any] = {k: state[k] for k in keys if k in state}
    return {**record.state, **keep, "Status": state["Status"], "Paused": False}
