"""Docker's HEALTHCHECK: which check a container runs and how often (the monitor runs it,
monitor/README.md), and how its result shows in `ps` and `inspect`."""

from __future__ import annotations

import json
import os

from barque.image import oci_layout as ol

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

# Docker's defaults, in nanoseconds as the Engine API gives them.
DEFAULT_INTERVAL = 30_000_000_000
DEFAULT_TIMEOUT = 30_000_000_000
DEFAULT_RETRIES = 3


def check_args(config: dict[str, Any]) -> list[str] | None:
    """The check's command, or None when the container has no (or a disabled) check."""
    check = config.get("Healthcheck") or {}
    test = list(check.get("Test") or [])
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    if test[0] == "CMD":
        return test[1:] or None
    return None


def timing(config: dict[str, Any]) -> tuple[int, int, int, int]:
    """(interval ms, timeout ms, retries, start period ms) with Docker's defaults."""
    check = config.get("Healthcheck") or {}
    interval = int(check.get("Interval") or DEFAULT_INTERVAL)
    timeout = int(check.get("Timeout") or DEFAULT_TIMEOUT)
    retries = int(check.get("Retries") or DEFAULT_RETRIES)
    start = int(check.get("StartPeriod") or 0)
    return interval // 1_000_000, timeout // 1_000_000, retries, start // 1_000_000


def write_process(monitor_dir: str, spec: dict[str, Any], args: list[str]) -> None:
    """The check's OCI process: the container's own, running `args`, without a terminal."""
    process = dict(spec["process"])
    process["args"] = args
    process["terminal"] = False
    process.pop("consoleSize", None)
    ol.atomic_write(os.path.join(monitor_dir, "health.json"), json.dumps(process).encode())


def ps_suffix(health: dict[str, Any] | None) -> str:
    """What `docker ps` adds to "Up …": " (healthy)", " (health: starting)", …"""
    if not health:
        return ""
    status = health.get("Status", "")
    return f" (health: {status})" if status == "starting" else f" ({status})"
