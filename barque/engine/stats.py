"""`docker stats`: CPU, memory, block I/O, network and pids of running containers, from their
cgroups (through the runtime's `events --stats`, runc's format) and the host's /proc, with
Docker's arithmetic."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from barque.engine.context import Engine, find_runtime
from barque.engine.records import ContainerRecord
from barque.engine.system import mem_total

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

_NANO = 1_000_000_000


@dataclass
class Sample:
    cpu_total: int  # the container's CPU time, ns
    system: int  # the host's CPU time, ns (all CPUs)
    online_cpus: int
    memory: int  # usage without the inactive page cache, as Docker shows it
    limit: int
    pids: int
    block_read: int
    block_write: int
    net_rx: int
    net_tx: int
    # For Docker's API JSON: the runtime's stats object, each interface's counters, when.
    data: dict[str, Any] = field(default_factory=dict)
    interfaces: dict[str, dict[str, int]] = field(default_factory=dict)
    read: float = field(default_factory=time.time)


def _host_cpu_ns() -> int:
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:8]
    return sum(int(x) for x in fields) * _NANO // os.sysconf("SC_CLK_TCK")


_NET_FIELDS = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped", None, None, None, None,
               "tx_bytes", "tx_packets", "tx_errors", "tx_dropped")


def interfaces(pid: int) -> dict[str, dict[str, int]]:
    """The counters of each interface but lo in the netns of `pid` (/proc/PID/net/dev)."""
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return {}
    found = {}
    for line in lines:
        name, _, data = line.partition(":")
        if name.strip() == "lo":
            continue
        values = data.split()
        found[name.strip()] = {key: int(values[i]) for i, key in enumerate(_NET_FIELDS)
                               if key is not None}
    return found


def sample(engine: Engine, record: ContainerRecord, pid: int) -> Sample | None:
    """One reading; None if the container stopped meanwhile."""
    proc = subprocess.run([find_runtime(), "--root", engine.paths.runtime_root, "events",
                           "--stats", record.id], capture_output=True, timeout=30)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout.splitlines()[0])["data"]
    memory = data.get("memory") or {}
    raw = memory.get("raw") or memory.get("stats") or {}
    usage = int((memory.get("usage") or {}).get("usage", 0))
    inactive = int(raw.get("total_inactive_file", raw.get("inactive_file", 0)))
    limit = int((memory.get("usage") or {}).get("limit", 0))
    host = mem_total()
    if not limit or limit > host:
        limit = host
    read = write = 0
    for entry in (data.get("blkio") or {}).get("ioServiceBytesRecursive") or []:
        op = str(entry.get("op", "")).lower()
        if op == "read":
            read += int(entry.get("value", 0))
        elif op == "write":
            write += int(entry.get("value", 0))
    nets = interfaces(pid)
    rx = sum(n["rx_bytes"] for n in nets.values())
    tx = sum(n["tx_bytes"] for n in nets.values())
    cpus = len((data.get("cpu") or {}).get("usage", {}).get("percpu") or []) or os.cpu_count()
    return Sample(cpu_total=int(data["cpu"]["usage"]["total"]), system=_host_cpu_ns(),
                  online_cpus=int(cpus or 1), memory=max(usage - inactive, 0), limit=limit,
                  pids=int((data.get("pids") or {}).get("current", 0)), block_read=read,
                  block_write=write, net_rx=rx, net_tx=tx, data=data, interfaces=nets)


def cpu_percent(before: Sample, after: Sample) -> float:
    """Docker's calculateCPUPercentUnix."""
    cpu = after.cpu_total - before.cpu_total
    system = after.system - before.system
    if cpu > 0 and system > 0:
        return cpu / system * after.online_cpus * 100.0
    return 0.0


@dataclass
class ContainerStats:
    """One container's line of `docker stats`: `sample` is None when it is not running
    (Docker shows "--"); `previous` is the reading before, for the CPU %."""
    id: str
    name: str
    ref: str  # the name or ID the user gave, or the name
    sample: Sample | None
    previous: Sample | None

    @property
    def cpu_percent(self) -> float:
        if self.sample is None or self.previous is None:
            return 0.0
        return cpu_percent(self.previous, self.sample)

    @property
    def memory_percent(self) -> float:
        if self.sample is None or not self.sample.limit:
            return 0.0
        return self.sample.memory / self.sample.limit * 100


def stream(engine: Engine, names: list[str], all_: bool = False,
           interval: float = 1.0) -> Iterator[list[ContainerStats]]:
    """`docker stats`: a reading of each container every `interval` seconds, forever (the
    caller stops when it has enough). The containers named (or, without names, the running
    ones; all with `all_`) are chosen once, at the start, as Docker does."""
    if names:
        chosen = [(engine.find(name), name) for name in names]
    else:
        chosen = [(r, r.name) for r in engine.records.all()
                  if all_ or engine.state(r)["Running"]]
    previous: dict[str, Sample] = {}
    first = True
    while True:
        entries = []
        for record, ref in chosen:
            state = engine.state(record)
            reading = sample(engine, record, state["Pid"]) if state["Running"] else None
            if first and reading is not None:
                # CPU % needs two readings: Docker's first line waits for a second one too.
                time.sleep(0.5)
                previous[record.id] = reading
                reading = sample(engine, record, state["Pid"])
            entries.append(ContainerStats(record.id, record.name, ref, reading,
                                          previous.get(record.id)))
            if reading is not None:
                previous[record.id] = reading
        yield entries
        first = False
        time.sleep(interval)
