#!/usr/bin/env python3
"""`barque run --rm IMAGE true` beside `podman run --rm` (and `docker run --rm` where an engine
runs), and the resident memory of the per-container monitor beside Podman's conmon.

Interleaved rounds (barque, podman, docker, barque, …) so that drift in machine load hits
every engine alike; medians with p10/p90 and each median's ratio to podman's. Every engine
runs the same image: Barque's default busybox image, loaded into Podman (and Docker) from
`barque image save-default`. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from netpeers import cgroup_parents, remove_cgroups, remove_tmp

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "bench" / "out"


def barque_cmd(root: Path) -> list[str]:
    beside = Path(sys.executable).parent / "barque"
    exe = str(beside) if beside.exists() else shutil.which("barque") or "barque"
    return [exe, "--root", str(root / "root"), "--runroot", str(root / "run")]


def podman_cmd(root: Path) -> list[str]:
    # runc (crun cannot run on this hybrid cgroup host), cgroupfs (no systemd here), and the
    # two ulimits podman would otherwise set above this host's hard limits.
    return ["podman", "--root", str(root / "root"), "--runroot", str(root / "run"),
            "--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]


PODMAN_RUN = ["--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit",
              "nproc=1024:1024"]


def docker_running() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def timed(argv: list[str]) -> float:
    """Wall seconds from spawn to exit (a blocking waitpid: no polling granularity)."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = proc.communicate()
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {err.decode().strip()}")
    return elapsed


def memory_of(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon, RssFile (KiB, /proc/PID/status) and Pss (KiB, smaps_rollup)."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                out["Pss"] = int(line.split()[1])
    return out


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"median": statistics.median(ordered), "p10": ordered[len(ordered) // 10],
            "p90": ordered[min(len(ordered) - 1, len(ordered) * 9 // 10)],
            "runs": len(ordered)}


def bench_run(subjects: dict[str, list[str]], runs: int, warmup: int) -> dict[str, Any]:
    samples: dict[str, list[float]] = {name: [] for name in subjects}
    for i in range(warmup + runs):
        for name, argv in subjects.items():
            elapsed = timed(argv)
            if i >= warmup:
                samples[name].append(elapsed)
        if (i + 1) % 10 == 0:
            print(f"round {i + 1}/{warmup + runs}", file=sys.stderr)
    return {name: stats(values) | {"samples": values} for name, values in samples.items()}


def idle_monitors(barque: list[str], podman: list[str] | None, count: int) -> dict[str, Any]:
    """Start `count` idle containers per engine; the memory of their monitors."""
    result: dict[str, Any] = {}
    ids = [subprocess.run([*barque, "run", "-d", "--network", "none", "busybox", "sleep", "600"],
                          check=True, capture_output=True, text=True).stdout.strip()
           for _ in range(count)]
    time.sleep(1)
    pids = []
    for cid in ids:
        state = json.loads((Path(barque[4]) / "containers" / cid / "state.json").read_text())
        pids.append(int(state["MonitorPid"]))
    result["barque-monitor"] = [memory_of(p) for p in pids]
    subprocess.run([*barque, "rm", "-f", *ids], capture_output=True)
    if podman is not None:
        ids = [subprocess.run([*podman, "run", "-d", *PODMAN_RUN, "busybox", "sleep", "600"],
                              check=True, capture_output=True, text=True).stdout.strip()
               for _ in range(count)]
        time.sleep(1)
        pids = [int(subprocess.run([*podman, "inspect", "--format", "{{.State.ConmonPid}}",
                                    cid], check=True, capture_output=True,
                                   text=True).stdout) for cid in ids]
        result["conmon"] = [memory_of(p) for p in pids]
        subprocess.run([*podman, "rm", "-f", "-t", "0", *ids], capture_output=True)
    return result


def version(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True)
    return (proc.stdout or proc.stderr).strip().splitlines()[0] if proc.stdout or \
        proc.stderr else "?"


def markdown(run: dict[str, Any], memory: dict[str, Any]) -> str:
    base = run.get("podman", {}).get("median")
    lines = ["| engine | runs | median s | p10 | p90 | x podman |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, s in run.items():
        ratio = f"{s['median'] / base:.2f}" if base else "-"
        lines.append(f"| {name} run --rm true | {s['runs']} | {s['median']:.3f} | "
                     f"{s['p10']:.3f} | {s['p90']:.3f} | {ratio} |")
    lines += ["", "| monitor (idle container) | VmRSS KiB | RssAnon KiB | Pss KiB | "
              "x conmon (RSS) |", "|---|---:|---:|---:|---:|"]
    conmon = statistics.median(m["VmRSS"] for m in memory["conmon"]) if "conmon" in memory \
        else None
    for name, readings in memory.items():
        rss = statistics.median(m["VmRSS"] for m in readings)
        anon = statistics.median(m["RssAnon"] for m in readings)
        pss = statistics.median(m["Pss"] for m in readings)
        ratio = f"{rss / conmon:.2f}" if conmon else "-"
        lines.append(f"| {name} | {rss:.0f} | {anon:.0f} | {pss:.0f} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--monitors", type=int, default=3, help="idle containers per engine")
    p.add_argument("--out", type=Path, default=OUT_DIR)
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="barque-bench-run-"))
    existing = cgroup_parents()
    barque = barque_cmd(tmp / "barque")
    podman = podman_cmd(tmp / "podman") if shutil.which("podman") else None
    try:
        archive = tmp / "busybox.tar"
        subprocess.run([*barque, "image", "save-default", "-o", str(archive)], check=True)
        subjects = {"barque": [*barque, "run", "--rm", "--network", "none", "busybox", "true"]}
        if podman is not None:
            subprocess.run([*podman, "load", "-q", "-i", str(archive)], check=True,
                           capture_output=True)
            subjects["podman"] = [*podman, "run", "--rm", *PODMAN_RUN, "busybox", "true"]
        if docker_running():
            subprocess.run(["docker", "load", "-q", "-i", str(archive)], check=True,
                           capture_output=True)
            subjects["docker"] = ["docker", "run", "--rm", "--network", "none", "busybox",
                                  "true"]
        load_start = os.getloadavg()
        run = bench_run(subjects, args.runs, args.warmup)
        memory = idle_monitors(barque, podman, args.monitors)
        load_end = os.getloadavg()
        print(markdown(run, memory))
        info = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "nproc": os.cpu_count(), "kernel": os.uname().release,
                "podman": version(["podman", "--version"]) if podman else None,
                "conmon": version(["conmon", "--version"]) if podman else None,
                "loadavg": [load_start, load_end]}
        print(f"\nmachine: nproc {info['nproc']}, kernel {info['kernel']}, {info['podman']}, "
              f"{info['conmon']}, {info['date']}\nload average: start "
              f"{' '.join(f'{x:.2f}' for x in load_start)}, end "
              f"{' '.join(f'{x:.2f}' for x in load_end)}")
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"container_run-{str(info['date']).replace(':', '')}.json"
        path.write_text(json.dumps({"info": info, "run": run, "memory": memory}, indent=1))
        print(f"samples: {path}")
    finally:
        if podman is not None:
            subprocess.run([*podman, "rm", "-a", "-f", "-t", "0"], capture_output=True)
            subprocess.run([*podman, "rmi", "-a", "-f"], capture_output=True)
        subprocess.run([*barque, "system", "prune", "-f", "--volumes"], capture_output=True)
        remove_tmp(tmp)  # unmounted first: the runroot's netns dir is a mount of its own
        remove_cgroups(cgroup_parents() - existing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
