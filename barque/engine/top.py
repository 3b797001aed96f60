"""`docker top` / GET /containers/{id}/top: the host's `ps` output, only the container's
processes (the runtime's `ps` says which pids are its)."""

from __future__ import annotations

import json
import subprocess

from barque.engine import events, lifecycle
from barque.engine.context import Engine, EngineError
from barque.structs import dataclass


@dataclass
class ProcessTable:
    """The API's {Titles, Processes}: `ps`'s column titles, then one row per process."""
    titles: list[str]
    processes: list[list[str]]


def top(engine: Engine, name: str, ps_args: list[str] | None = None) -> ProcessTable:
    """`ps_args` as `ps` takes them (default -ef), run on the host."""
    record = engine.find(name)
    if not engine.state(record)["Running"]:
        raise EngineError(f"Container {record.id} is not running", 1, 409)
    proc = lifecycle.call_runtime(engine, "ps", "--format", "json", record.id)
    pids = {str(p) for p in json.loads(proc.stdout or b"[]")}
    listing = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True)
    if listing.returncode != 0:
        raise EngineError(f"ps: {listing.stderr.strip()}", 1)
    events.container(engine, record, "top")
    return parse_ps(listing.stdout, pids)


def parse_ps(output: str, pids: set[str]) -> ProcessTable:
    """The rows of `ps` output whose PID column is one of `pids`."""
    header, *rows = output.splitlines() or [""]
    titles = header.split()
    if "PID" not in titles:
        raise EngineError("Couldn't find PID field in ps output", 1)
    column = titles.index("PID")
    processes = []
    for row in rows:
        fields = row.split(None, len(titles) - 1)  # the last column (CMD) keeps its spaces
        if len(fields) > column and fields[column] in pids:
            processes.append(fields)
    return ProcessTable(titles, processes)
