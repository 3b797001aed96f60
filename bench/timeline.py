#!/usr/bin/env python3
"""Where one command's time goes: every process it causes, when each starts (exec) and ends,
and the CPU each used — from the kernel's own scheduler trace events (ftrace), so the command
runs at full speed, not slowed by ptrace as under strace.

    python3 bench/timeline.py [--tail S] -- barque run --rm busybox true

Prints one line per exec and exit (ms since the command's first exec), then the tree's CPU
time by process name. Processes the command's tree forks are followed, including ones that
outlive it (the monitor's exit command): the trace goes on for --tail seconds after the
command returns. Root only; tracefs is mounted at /sys/kernel/tracing if it is not, and the
events it enables are disabled again at the end (also on Ctrl-C).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

TRACING = "/sys/kernel/tracing"
EVENTS = ("sched/sched_process_exec", "sched/sched_process_exit", "sched/sched_process_fork",
          "sched/sched_stat_runtime")
LINE = re.compile(r"\s*(.+?)-(\d+)\s+\[\d+\]\s+\S+\s+([\d.]+): (\w+): (.*)")


@dataclass
class Event:
    ts: float
    pid: int
    kind: str
    detail: str
    comm: str


def _write(name: str, value: str) -> None:
    with open(os.path.join(TRACING, name), "w") as f:
        f.write(value)


@contextlib.contextmanager
def tracing() -> Iterator[None]:
    mounted = False
    if not os.path.exists(os.path.join(TRACING, "trace")):
        subprocess.run(["mount", "-t", "tracefs", "nodev", TRACING], check=True)
        mounted = True
    try:
        _write("tracing_on", "0")
        _write("trace", "")
        _write("buffer_size_kb", "20000")
        for event in EVENTS:
            _write(f"events/{event}/enable", "1")
        _write("tracing_on", "1")
        yield
    finally:
        _write("tracing_on", "0")
        for event in EVENTS:
            _write(f"events/{event}/enable", "0")
        if mounted:
            subprocess.run(["umount", TRACING], check=False)


def parse(text: str) -> tuple[list[Event], collections.Counter[int], dict[int, str]]:
    """The events in order, CPU ns per pid, and each pid's last command name."""
    events, cpu, names = [], collections.Counter[int](), {}
    for line in text.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        comm, pid, ts, kind, detail = m.groups()
        if kind == "sched_stat_runtime":
            run = re.search(r"pid=(\d+) runtime=(\d+)", detail)
            if run:
                cpu[int(run.group(1))] += int(run.group(2))
                names[int(run.group(1))] = comm
            continue
        events.append(Event(float(ts), int(pid), kind, detail, comm))
    return events, cpu, names


def tree(events: list[Event], program: str) -> tuple[float, set[int]]:
    """When the command's first exec happened, and every pid of its tree."""
    start, mine = None, set()
    for e in events:
        if start is None and e.kind == "sched_process_exec" and \
                os.path.basename(program) in e.detail:
            start = e.ts
            mine.add(e.pid)
        elif start is not None and e.kind == "sched_process_fork":
            forked = re.search(r"pid=(\d+).*child_pid=(\d+)", e.detail)
            if forked and int(forked.group(1)) in mine:
                mine.add(int(forked.group(2)))
    if start is None:
        raise SystemExit(f"no exec of {program} in the trace")
    return start, mine


def report(events: list[Event], cpu: collections.Counter[int], names: dict[int, str],
           start: float, mine: set[int]) -> None:
    for e in events:
        if e.pid not in mine or e.ts < start:
            continue
        ms = (e.ts - start) * 1000
        if e.kind == "sched_process_exec":
            filename = re.search(r"filename=(\S+)", e.detail)
            print(f"{ms:8.1f}  exec  {e.pid:>7}  {filename.group(1) if filename else '?'}")
        elif e.kind == "sched_process_exit":
            print(f"{ms:8.1f}  exit  {e.pid:>7}  {e.comm:<16} cpu {cpu[e.pid] / 1e6:6.1f} ms")
        elif e.kind == "sched_process_fork":
            child = re.search(r"child_pid=(\d+)", e.detail)
            print(f"{ms:8.1f}  fork  {e.pid:>7}  -> {child.group(1) if child else '?'}")
    by_name = collections.Counter[str]()
    for pid in mine:
        by_name[names.get(pid, "?")] += cpu[pid]
    print(f"CPU of the whole tree: {sum(cpu[p] for p in mine) / 1e6:.1f} ms")
    for name, ns in by_name.most_common():
        print(f"  {name:<20} {ns / 1e6:7.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tail", type=float, default=0.3,
                    help="seconds to keep tracing after the command returns (default 0.3)")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("no command given")
    with tracing():
        code = subprocess.run(command).returncode
        time.sleep(args.tail)
    with open(os.path.join(TRACING, "trace")) as f:
        events, cpu, names = parse(f.read())
    _write("trace", "")
    start, mine = tree(events, command[0])
    report(events, cpu, names, start, mine)
    sys.exit(code)


if __name__ == "__main__":
    main()
