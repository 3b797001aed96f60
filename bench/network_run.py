#!/usr/bin/env python3
"""`run --rm busybox true` on each engine's default network beside Docker and Podman.

Subjects, interleaved round-robin (so drift in machine load hits all alike), each engine on
private state under one temporary directory:
- `barque run --rm busybox true` (its default network: the bridge, once Barque has networking)
  and `barque run --rm --network none busybox true` (the no-network baseline);
- `docker run --rm busybox true` (docker0) and `--network none`: Debian's docker.io, a dockerd
  this script starts on its own socket, data-root and exec-root and stops at the end;
- `podman run --rm busybox true` (its default CNI bridge) and `--network none`.
Wall time and CPU time (every process the run causes, daemons included) per run; medians,
p10/p90 and ratios to Docker's bridge run. The host's iptables, sysctls and links are put back
as they were before Docker started (see netpeers.HostGuard), also on Ctrl-C.

Run as root from the repository: `python3 bench/network_run.py --runs 30` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import netpeers as np_
from netpeers import Barque, CpuMeter, DockerDaemon, Podman, progress

TARGET = "barque, bridge"   # the target: at most 0.5x the Docker bridge row
PEER = "docker, bridge"


@dataclass
class Subject:
    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    skip: set[int] = field(default_factory=set)   # other engines' daemons: not its CPU
    before: Callable[[], None] | None = None      # untimed, before each timed run (--cold)
    error: str | None = None
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def barque_networking(barque: Barque) -> str | None:
    """None if barque's default network gives the container an eth0; else why not."""
    out = subprocess.run([*barque.cli, "run", "--rm", "busybox", "ls", "/sys/class/net"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return f"fails here: {out.stderr.strip().splitlines()[:1]}"
    if "eth0" not in out.stdout.split():
        return "skipped: Barque's default network gives no eth0 yet (networking not merged)"
    return None


def make_subjects(engines: set[str], barque: Barque, docker: DockerDaemon | None,
                  podman: Podman | None, cold: bool = False) -> list[Subject]:
    subjects = []
    if "barque" in engines:
        bridge = Subject("barque, bridge", [*barque.cli, "run", "--rm", "busybox", "true"])
        bridge.error = barque_networking(barque)
        subjects += [bridge, Subject("barque, none", [*barque.cli, "run", "--rm", "--network",
                                                      "none", "busybox", "true"])]
        if cold:
            bridge.before = barque.stop_agent
    if docker is not None:
        run = [*docker.cli, "run", "--rm"]
        subjects += [Subject("docker, bridge", [*run, "busybox", "true"], docker.env),
                     Subject("docker, none", [*run, "--network", "none", "busybox", "true"],
                             docker.env)]
    if podman is not None:
        run = [*podman.cli, "run", "--rm", *Podman.RUN]
        subjects += [Subject("podman, bridge", [*run, "busybox", "true"]),
                     Subject("podman, none", [*run, "--network", "none", "busybox", "true"])]
    dockerd = {docker.proc.pid} if docker is not None and docker.proc is not None else set()
    for s in subjects:
        if not s.name.startswith("docker"):
            s.skip = dockerd
    return subjects


def rounds(subjects: list[Subject], meter: CpuMeter, count: int, record: bool,
           pause: float) -> None:
    working = [s for s in subjects if s.error is None]
    for i in range(count):
        for s in working:
            if s.before is not None:
                s.before()
            if pause:
                time.sleep(pause)
            wall, cpu, error = np_.timed(s.argv, meter, s.env, s.skip)
            if record:
                np_.keep(s, wall, cpu, error)
        if record and (i + 1) % 10 == 0:
            progress(f"round {i + 1}/{count}")


def trial(subjects: list[Subject], meter: CpuMeter) -> None:
    for s in subjects:
        if s.error is None:
            _, _, error = np_.timed(s.argv, meter, s.env, s.skip)
            if error is not None:
                s.error = f"fails here: {error}"
        if s.error:
            progress(f"{s.name}: {s.error}")


HEADER = ["engine, network", "runs", "median s", "p10", "p90", "CPU median s", "CPU mean s",
          "x docker bridge", "CPU x docker bridge"]


def table(subjects: list[Subject]) -> str:
    peer = next((s for s in subjects if s.name == PEER and s.wall), None)
    rows = []
    for s in subjects:
        if not s.wall:
            rows.append([s.name, s.error or f"no successful run: {s.failures[:1]}"])
            continue
        rows.append(np_.timing_row(s.name, s, peer))
    return np_.markdown_table(HEADER, rows)


def network_costs(subjects: list[Subject]) -> str:
    """Per engine: bridge median minus none median, the price of its default network."""
    medians = {s.name: np_.stats(s.wall).median for s in subjects if s.wall}
    parts = []
    for engine in ("barque", "docker", "podman"):
        bridge, none = medians.get(f"{engine}, bridge"), medians.get(f"{engine}, none")
        if bridge is not None and none is not None:
            parts.append(f"{engine} +{(bridge - none) * 1000:.0f} ms")
    return "network's cost (bridge median - none median): " + (", ".join(parts) or "-")


def verdict(subjects: list[Subject]) -> str:
    medians = {s.name: np_.stats(s.wall).median for s in subjects if s.wall}
    if TARGET in medians and PEER in medians:
        ratio = medians[TARGET] / medians[PEER]
        return (f"target (barque bridge <= 0.5x docker bridge): {ratio:.2f}x, "
                f"{'met' if ratio <= 0.5 else 'NOT met'}")
    return "target (barque bridge <= 0.5x docker bridge): not measured"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    np_.add_peer_args(p, runs=30, runs_help="timed runs per subject", warmup=3,
                      pause_help="idle time before each timed run, in ms (default 0: back to "
                                 "back)")
    p.add_argument("--cold", action="store_true",
                   help="stop barque's network agent before each of its bridge runs, as on "
                        "the first bridge run after a reboot")
    p.add_argument("--networks", default="bridge,none",
                   help="comma-separated subset of bridge,none (the rows measured)")
    args = np_.parse_peer_args(p, argv, lambda a: [
        (set(a.networks.split(",")) <= {"bridge", "none"}, "--networks from bridge,none")])
    args.networks = set(args.networks.split(","))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return np_.interruptible(lambda: measure(args))


def measure(args: argparse.Namespace) -> int:
    with np_.PeerSession("network_run", args, "barque-bench-net-") as s:
        subjects = [sub for sub in make_subjects(args.engines, s.barque, s.docker, s.podman,
                                                 args.cold)
                    if sub.name.split(", ")[1] in args.networks]
        trial(subjects, s.meter)
        rounds(subjects, s.meter, args.warmup, record=False, pause=0)
        with s.timed_rounds():
            progress(f"{args.runs} timed rounds")
            rounds(subjects, s.meter, args.runs, record=True, pause=args.pause / 1000)
    mode = (f"pause {args.pause:g} ms before each run" if args.pause else "back to back") + \
        (f", under load ({args.load} busy loops)" if args.load else "") + \
        (", barque's network agent stopped before each bridge run" if args.cold else "")
    print(f"`run --rm busybox true`, {args.runs} interleaved rounds, {mode}\n")
    print(table(subjects))
    print("\n" + "  \n".join([network_costs(subjects), verdict(subjects), *s.lines()]))
    write_outputs(s, subjects, mode)
    return 0


def write_outputs(s: np_.PeerSession, subjects: list[Subject], mode: str) -> None:
    measured = [sub for sub in subjects if sub.wall]
    s.write_samples("network_run", mode, {"subjects": [
        {"name": sub.name, "command": sub.argv, "error": sub.error, "failures": sub.failures,
         "wall_s": sub.wall, "cpu_s": sub.cpu} for sub in subjects]},
        lambda png, title: np_.box_plot(png, [m.name for m in measured],
                                        [m.wall for m in measured], "run --rm true, wall s",
                                        title))


if __name__ == "__main__":
    sys.exit(main())
