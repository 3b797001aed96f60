#!/usr/bin/env python3
"""The Engine API: `barque serve` beside dockerd, driven by the same docker CLI and client.

Two measurements, each engine on private state under one temporary directory (a `barque
serve` of this script's own on its own root and socket; Debian's dockerd on its own socket,
data-root and exec-root, started and stopped as bench/netpeers.py does):
- `docker -H unix://SOCK run --rm busybox true` through each, interleaved round-robin: wall
  time, and the CPU time of every process the run causes (the server, dockerd/containerd,
  the monitors, the CLI);
- requests per second of `GET /containers/json?all=1` with `--containers` containers (created,
  or `--running`) on each: `--clients` concurrent Python clients, each on one keep-alive
  connection over the unix socket, `--requests` requests each per round; the server's own
  CPU per request from /proc/PID/stat (barque serve's pid; dockerd's).
Medians, p10/p90, ratios to dockerd; a Markdown table, JSON samples and a PNG in --out.

Run as root from the repository: `python3 bench/api.py --runs 15` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import netpeers as np_
from netpeers import Barque, CpuMeter, DockerDaemon, HostGuard, progress

LIST_PATH = "/v1.41/containers/json?all=1"  # 1.41: the API of the docker CLI both are run by


@dataclass
class Engine:
    """One API server: its socket, its pid (for its own CPU) and what is not its CPU."""
    name: str
    sock: Path
    pid: int
    env: dict[str, str]
    skip: set[int] = field(default_factory=set)  # the other engine's server: idle meanwhile
    error: str | None = None  # the server does not answer, or the list fails
    run_error: str | None = None  # the run trial failed: not measured
    run_wall: list[float] = field(default_factory=list)
    run_cpu: list[float] = field(default_factory=list)
    run_failures: list[str] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)
    cpu_per_request: list[float] = field(default_factory=list)  # the server's own, seconds

    @property
    def cli(self) -> list[str]:
        return [np_.DOCKER, "-H", f"unix://{self.sock}"]


class BarqueServer:
    """`barque serve` on the bench's Barque root, a child of this process (so the CPU of
    what it runs is found among this process's descendants)."""

    def __init__(self, barque: Barque, tmp: Path) -> None:
        self.sock = tmp / "barque-api" / "barque.sock"
        self.proc = subprocess.Popen([*barque.cli, "serve", "-H", f"unix://{self.sock}"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(tmp / "barque-serve.log", "wb"))

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"barque serve exited ({self.proc.returncode})")
            try:
                if request(self.sock, "GET", "/_ping")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"barque serve did not answer in {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class UnixConnection(http.client.HTTPConnection):
    """HTTP/1.1 with keep-alive over a unix socket."""

    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=60)
        self.unix_path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(self.unix_path)


def request(sock: Path, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
    conn = UnixConnection(sock)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data,
                     headers={"Content-Type": "application/json"} if data else {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def own_cpu(pid: int) -> float:
    """The process's own CPU seconds (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / np_.CLK_TCK


# ---------------------------------------------------------------------------------------------
# docker run --rm busybox true


def run_argv(engine: Engine, network: str | None) -> list[str]:
    return [*engine.cli, "run", "--rm", *(["--network", network] if network else []),
            "busybox", "true"]


def run_rounds(engines: list[Engine], meter: CpuMeter, count: int, record: bool,
               pause: float, network: str | None) -> None:
    for i in range(count):
        for e in engines:
            if e.error is not None or e.run_error is not None:
                continue
            if pause:
                time.sleep(pause)
            wall, cpu, error = np_.timed(run_argv(e, network), meter, e.env, e.skip)
            if not record:
                continue
            if error is None:
                e.run_wall.append(wall)
                e.run_cpu.append(cpu)
            else:
                e.run_failures.append(error)
        if record and (i + 1) % 10 == 0:
            progress(f"run: round {i + 1}/{count}")


# ---------------------------------------------------------------------------------------------
# GET /containers/json


def make_containers(engine: Engine, count: int, running: bool) -> None:
    cmd = ["sleep", "3600"] if running else ["true"]
    for i in range(count):
        status, body = request(engine.sock, "POST", f"/v1.41/containers/create?name=bench{i}",
                               {"Image": "busybox", "Cmd": cmd,
                                "HostConfig": {"NetworkMode": "none"}})
        if status != 201:
            raise RuntimeError(f"{engine.name}: create: {status} {body[:200]!r}")
        if running:
            cid = json.loads(body)["Id"]
            status, body = request(engine.sock, "POST", f"/v1.41/containers/{cid}/start")
            if status not in (204, 304):
                raise RuntimeError(f"{engine.name}: start: {status} {body[:200]!r}")


def list_round(engine: Engine, clients: int, requests: int) -> tuple[float, float]:
    """(requests per second, server CPU seconds per request) of one round: `clients`
    threads, each `requests` GETs on one keep-alive connection, all let go at once."""
    conns = [UnixConnection(engine.sock) for _ in range(clients)]
    for conn in conns:
        conn.connect()
    errors: list[str] = []
    gate = threading.Barrier(clients + 1)

    def client(conn: UnixConnection) -> None:
        gate.wait()
        for _ in range(requests):
            conn.request("GET", LIST_PATH)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                errors.append(f"status {response.status}")
                return

    threads = [threading.Thread(target=client, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    cpu0 = own_cpu(engine.pid)
    gate.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    cpu = own_cpu(engine.pid) - cpu0
    for conn in conns:
        conn.close()
    if errors:
        raise RuntimeError(f"{engine.name}: GET /containers/json: {errors[0]}")
    total = clients * requests
    return total / wall, cpu / total


def list_rounds(engines: list[Engine], count: int, record: bool, clients: int,
                requests: int) -> None:
    for i in range(count):
        for e in engines:
            if e.error is not None:
                continue
            try:
                rps, cpu = list_round(e, clients, requests)
            except (OSError, RuntimeError, http.client.HTTPException) as err:
                e.error = f"list fails: {err}"
                continue
            if record:
                e.rps.append(rps)
                e.cpu_per_request.append(cpu)
        if record and (i + 1) % 10 == 0:
            progress(f"list: round {i + 1}/{count}")


# ---------------------------------------------------------------------------------------------
# Report


def ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}" if value is not None and base else "-"


def table(engines: list[Engine]) -> str:
    peer = next((e for e in engines if e.name == "dockerd"), None)
    run_base = np_.stats(peer.run_wall).median if peer and peer.run_wall else None
    cpu_base = np_.stats(peer.run_cpu).median if peer and peer.run_cpu else None
    rps_base = np_.stats(peer.rps).median if peer and peer.rps else None
    req_cpu_base = np_.stats(peer.cpu_per_request).median if peer and peer.cpu_per_request \
        else None
    header = ["server", "run --rm true: median s", "p10", "p90", "CPU median s",
              "x dockerd", "CPU x dockerd", "GET /containers/json: req/s median", "p10",
              "p90", "server CPU ms/req", "req/s x dockerd", "CPU/req x dockerd"]
    rows = []
    for e in engines:
        row = [e.name]
        if e.run_wall:
            w, c = np_.stats(e.run_wall), np_.stats(e.run_cpu)
            row += [f"{w.median:.3f}", f"{w.p10:.3f}", f"{w.p90:.3f}", f"{c.median:.3f}",
                    ratio(w.median, run_base), ratio(c.median, cpu_base)]
        else:
            why = e.error or e.run_error or (f"no successful run: {e.run_failures[:1]}"
                                             if e.run_failures else "not measured")
            row += [why, "", "", "", "", ""]
        if e.rps:
            r, q = np_.stats(e.rps), np_.stats(e.cpu_per_request)
            row += [f"{r.median:.0f}", f"{r.p10:.0f}", f"{r.p90:.0f}",
                    f"{q.median * 1000:.2f}", ratio(r.median, rps_base),
                    ratio(q.median, req_cpu_base)]
        else:
            row += [e.error or "-"]
        rows.append(row)
    return np_.markdown_table(header, rows)


def plot(path: Path, engines: list[Engine], title: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    panels = [(lambda e: e.run_wall, "docker run --rm busybox true, wall s"),
              (lambda e: e.rps, "GET /containers/json, requests/s per round")]
    panels = [(get, label) for get, label in panels if any(get(e) for e in engines)]
    if not panels:
        return False
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 1.6 + 1.4 * len(panels)),
                             squeeze=False)
    for ax, (get, label) in zip(axes[:, 0], panels, strict=True):
        measured = [e for e in engines if get(e)]
        np_.draw_boxes(ax, [e.name for e in measured], [get(e) for e in measured], label)
    axes[0, 0].set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write_outputs(args: argparse.Namespace, engines: list[Engine], info: dict[str, Any],
                  versions: dict[str, str], mode: str,
                  load: tuple[list[float], list[float]]) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = str(info["date"]).replace(":", "")
    path = args.out / f"api-{stamp}.json"
    path.write_text(json.dumps({
        "benchmark": "api", "mode": mode, "machine": info, "versions": versions,
        "loadavg": {"start": load[0], "end": load[1]},
        "list": {"path": LIST_PATH, "containers": args.containers, "running": args.running,
                 "clients": args.clients, "requests_per_client": args.requests},
        "engines": [{"name": e.name, "error": e.error, "run_error": e.run_error,
                     "run_command": run_argv(e, args.network),
                     "run_failures": e.run_failures, "run_wall_s": e.run_wall,
                     "run_cpu_s": e.run_cpu, "list_rps": e.rps,
                     "list_server_cpu_s_per_request": e.cpu_per_request}
                    for e in engines]}, indent=1) + "\n")
    png = args.out / f"api-{stamp}.png"
    plotted = plot(png, engines, f"api: {info['nproc']} cpus, {info['kernel']}, {mode}, "
                                 f"barque {info['barque']}")
    progress(f"samples: {path}")
    progress(f"plot: {png}" if plotted else "plot: skipped (no samples or no matplotlib)")


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    np_.add_peer_args(p, runs=15, runs_help="timed rounds of each measurement", warmup=2,
                      pause_help="idle time before each timed `run`, in ms (default 0)")
    p.set_defaults(engines="barque,docker")
    p.add_argument("--network", default=None,
                   help="the run's --network (default: each engine's default bridge)")
    p.add_argument("--containers", type=int, default=100,
                   help="containers on each engine while listing (default 100)")
    p.add_argument("--running", action="store_true",
                   help="start them (sleep 3600, --network none) instead of only creating")
    p.add_argument("--clients", type=int, default=10,
                   help="concurrent API clients while listing (default 10)")
    p.add_argument("--requests", type=int, default=50,
                   help="GETs per client per round (default 50)")
    p.add_argument("--only", choices=["run", "list"], default=None,
                   help="one of the two measurements")
    return np_.parse_peer_args(p, argv, lambda a: [
        ("podman" not in a.engines, "--engines from barque,docker (podman has no API "
                                    "server here)"),
        (a.containers >= 0, "--containers >= 0"), (a.clients >= 1, "--clients >= 1"),
        (a.requests >= 1, "--requests >= 1")])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("api needs root (namespaces, bridges, netfilter)")
    np_.install_signals()
    np_.become_subreaper()
    meter = CpuMeter()
    tmp = Path(tempfile.mkdtemp(prefix="barque-bench-api-"))
    cgroups = np_.cgroup_parents()
    barque = Barque(tmp, args.barque)
    docker: DockerDaemon | None = None
    guard: HostGuard | None = None
    load: np_.Load | None = None
    engines: list[Engine] = []
    info = np_.machine_info(args.barque)
    versions = {"dockerd": np_.version([np_.DOCKERD, "--version"]),
                "docker CLI": np_.version([np_.DOCKER, "--version"])}
    load_start = load_end = np_.loadavg()
    try:
        guard = HostGuard(tmp)
        docker = np_.start_docker(args.engines, guard, tmp, meter)
        progress("loading busybox into every engine")
        np_.load_image(tmp / "busybox.tar", barque, None, docker)
        engines = start_engines(args, barque, tmp, meter, docker)
        load_start = np_.loadavg()
        load = np_.Load(args.load, meter) if args.load else None
        measure(args, engines, meter)
        load_end = np_.loadavg()
    except KeyboardInterrupt:
        progress("interrupted: cleaning up")
        return 130
    finally:
        with np_.signals_ignored():
            if load is not None:
                load.stop()
            for stop in _STOPS:
                stop()
            if docker is not None:
                docker.stop()
            barque.cleanup()
            if guard is not None:
                for warning in guard.restore():
                    progress(f"warning: {warning}")
                progress("host restored: iptables, sysctls, links and Docker's files as found")
            np_.remove_cgroups(np_.cgroup_parents() - cgroups)
            np_.remove_tmp(tmp)
    mode = (f"pause {args.pause:g} ms before each run" if args.pause else "back to back") + \
        (f", under load ({args.load} busy loops)" if args.load else "") + \
        f", {args.containers} {'running' if args.running else 'created'} containers listed" \
        f" by {args.clients} clients"
    print(f"`docker run --rm busybox true` and GET /containers/json, {args.runs} "
          f"interleaved rounds, {mode}\n")
    print(table(engines))
    print(f"\n{np_.machine_line(info, versions)}  \n{np_.load_line(load_start, load_end)}")
    write_outputs(args, engines, info, versions, mode, (load_start, load_end))
    return 0


_STOPS: list[Any] = []  # what main's clean-up stops first (the barque server)


def start_engines(args: argparse.Namespace, barque: Barque, tmp: Path, meter: CpuMeter,
                  docker: DockerDaemon | None) -> list[Engine]:
    engines = []
    if "barque" in args.engines:
        server = BarqueServer(barque, tmp)
        _STOPS.append(server.stop)
        meter.keep.add(server.proc.pid)
        env = dict(os.environ, DOCKER_CONFIG=str(tmp / "barque-api" / "cli"))
        engine = Engine("barque serve", server.sock, server.proc.pid, env)
        try:
            server.wait_ready()
        except RuntimeError as err:
            engine.error = str(err)
        engines.append(engine)
    if docker is not None and docker.proc is not None:
        engines.append(Engine("dockerd", docker.sock, docker.proc.pid, docker.env))
    servers = {e.pid for e in engines}
    for e in engines:
        e.skip = servers - {e.pid}
    return engines


def measure(args: argparse.Namespace, engines: list[Engine], meter: CpuMeter) -> None:
    working = [e for e in engines if e.error is None]
    if args.only in (None, "run"):
        for e in working:  # a trial: an engine that fails it is reported, not measured
            _, _, error = np_.timed(run_argv(e, args.network), meter, e.env, e.skip)
            if error is not None:
                e.run_error = f"run fails here: {error}"
                progress(f"{e.name}: {e.run_error}")
        run_rounds(engines, meter, args.warmup, False, 0, args.network)
        progress(f"run: {args.runs} timed rounds")
        run_rounds(engines, meter, args.runs, True, args.pause / 1000, args.network)
    if args.only in (None, "list"):
        for e in engines:
            if e.error is None:
                progress(f"{e.name}: making {args.containers} containers")
                make_containers(e, args.containers, args.running)
        list_rounds(engines, args.warmup, False, args.clients, args.requests)
        progress(f"list: {args.runs} timed rounds")
        list_rounds(engines, args.runs, True, args.clients, args.requests)


if __name__ == "__main__":
    sys.exit(main())
