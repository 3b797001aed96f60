"""Read-only commands: list, ps and events."""

from __future__ import annotations

import sys
import time

from barque.runtime import fastjson as json
from barque.runtime import state as st
from barque.runtime.errors import RuntimeFailure


def _table(rows: list[list[str]]) -> str:
    """Go's tabwriter as runc configures it: min width 12, padding 3."""
    widths = [max(12, max(len(r[i]) for r in rows) + 3) for i in range(len(rows[0]) - 1)]
    out = []
    for r in rows:
        cells = [c.ljust(widths[i]) for i, c in enumerate(r[:-1])] + [r[-1]]
        out.append("".join(cells).rstrip() + "\n")
    return "".join(out)


def list_containers(root: str, fmt: str, quiet: bool) -> int:
    states = []
    for cid in st.list_ids(root):
        try:
            states.append(st.load(root, cid).oci_state())
        except RuntimeFailure:
            continue
    if quiet:
        sys.stdout.write("".join(s["id"] + "\n" for s in states))
    elif fmt == "json":
        sys.stdout.write(json.go_dumps(states) + "\n")  # runc: compact, one line
    elif fmt == "table":
        rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
        rows += [[s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"]]
                 for s in states]
        sys.stdout.write(_table(rows))
    else:
        raise RuntimeFailure(f"invalid format option {fmt!r}")
    return 0


def ps(container: st.Container, fmt: str, ps_args: list[str]) -> int:
    from barque.runtime.lifecycle import cgroup_of

    pids = sorted(cgroup_of(container).pids())
    if fmt == "json":
        sys.stdout.write(json.dumps(pids) + "\n")
        return 0
    if fmt != "table":
        raise RuntimeFailure(f"invalid format option {fmt!r}")
    import subprocess

    args = ps_args or ["-ef"]
    try:
        out = subprocess.run(["ps", *args], capture_output=True, check=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise RuntimeFailure(f"ps: {e}") from None
    lines = out.splitlines()
    if not lines:
        return 0
    header = lines[0].split()
    if "PID" not in header:
        raise RuntimeFailure("couldn't find PID field in ps output")
    col = header.index("PID")
    wanted = {str(p) for p in pids}
    sys.stdout.write(lines[0] + "\n")
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col] in wanted:
            sys.stdout.write(line + "\n")
    return 0


def _seconds(interval: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for suffix in ("ms", "s", "m", "h"):
        if interval.endswith(suffix):
            try:
                return float(interval[: -len(suffix)]) * units[suffix]
            except ValueError:
                break
    raise RuntimeFailure(f"invalid interval {interval!r}")


# runc's types.Stats: its fields in struct order; Go maps (memory "raw", hugetlb) sorted.
_STATS_ORDER = ("cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt",
                "network_interfaces")
_CPUSET_ORDER = ("cpus", "cpu_exclusive", "mems", "mem_hardwall", "mem_exclusive",
                 "memory_migrate", "memory_spread_page", "memory_spread_slab", "memory_pressure",
                 "sched_load_balance", "sched_relax_domain_level")


def _ordered(d: dict, order: tuple[str, ...]) -> dict:
    out = {k: d[k] for k in order if k in d}
    out.update((k, v) for k, v in d.items() if k not in out)
    return out


def _runc_stats(stats: dict) -> dict:
    """The stats in the shape runc's events prints, so scripts see the same JSON."""
    stats = dict(stats)
    stats.setdefault("intel_rdt", {})
    stats.setdefault("network_interfaces", None)
    if isinstance(stats.get("cpuset"), dict):
        stats["cpuset"] = _ordered(stats["cpuset"], _CPUSET_ORDER)
    memory = stats.get("memory")
    if isinstance(memory, dict) and isinstance(memory.get("raw"), dict):
        stats["memory"] = dict(memory, raw=dict(sorted(memory["raw"].items())))
    if isinstance(stats.get("hugetlb"), dict):
        stats["hugetlb"] = dict(sorted(stats["hugetlb"].items()))
    return _ordered(stats, _STATS_ORDER)


def events(container: st.Container, interval: str, once: bool) -> int:
    """runc's events: stats every interval (or once), and an "oom" event on each OOM kill."""
    from barque.runtime.lifecycle import cgroup_of

    period = _seconds(interval)
    if container.status() == "stopped":
        raise RuntimeFailure("container with id " + container.id + " is not running")
    cgroup = cgroup_of(container)

    def emit(kind: str, data: dict | None = None) -> None:
        event: dict = {"type": kind, "id": container.id}
        if data is not None:
            event["data"] = _runc_stats(data)
        sys.stdout.write(json.go_dumps(event) + "\n")  # runc's encoder: compact, one line
        sys.stdout.flush()

    if once:
        emit("stats", cgroup.stats())
        return 0
    ooms = cgroup.oom_kill_count()
    next_stats = time.monotonic()
    while container.init_alive() or cgroup.exists() and cgroup.pids():
        now = time.monotonic()
        count = cgroup.oom_kill_count()
        if count > ooms:
            ooms = count
            emit("oom")
        if now >= next_stats:
            emit("stats", cgroup.stats())
            next_stats = now + period
        time.sleep(min(0.1, period))
    count = cgroup.oom_kill_count() if cgroup.exists() else ooms
    if count > ooms:
        emit("oom")
    return 0


