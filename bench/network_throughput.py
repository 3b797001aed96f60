#!/usr/bin/env python3
"""TCP throughput host -> container: straight to the container's address over its veth, and
through a port published at 127.0.0.1, for Barque, Docker and Podman.

Each engine runs one busybox container listening on port 5001 (`nc -ll -p 5001 -e sh -c
'exec dd of=/dev/null bs=1M'`: a persistent listener that hands every connection to a dd
reading 1 MiB at a time), published with `-p 127.0.0.1:HOSTPORT:5001`. The host sends a fixed
amount (`--size`, default 1 GiB of zeros, Python `sendall` from one 4 MiB buffer), shuts its
side down and waits for the receiver to close: the time to deliver everything. Paths:
- `<engine>, container IP`: to the container's address through the bridge and veth;
- `barque, 127.0.0.1 published`: Barque's kernel DNAT (nftables output hook, route_localnet);
- `docker, 127.0.0.1 published`: Docker's default userland proxy (`docker-proxy`, a Go process
  copying between two sockets; Docker 20.10 does not DNAT traffic to 127.0.0.0/8);
- `podman, 127.0.0.1 published`: the CNI portmap plugin's iptables DNAT (route_localnet);
- `host loopback`: a receiver on the host at 127.0.0.1 (Python, 1 MiB reads): the ceiling.
Interleaved rounds; medians with p10/p90 in MiB/s, CPU seconds per GiB (sender + receiver +
proxy + softirq and ksoftirqd) and each path's ratio to Docker's proxy. Traffic goes only to
127.0.0.1 and the containers' addresses. The host is put back as before Docker started
(netpeers.HostGuard).

Run as root from the repository: `python3 bench/network_throughput.py --runs 10`.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import netpeers as np_
from netpeers import Barque, DockerDaemon, Podman, progress

PORT = 5001
CHUNK = 4 << 20
PEER = "docker, 127.0.0.1 published"
LISTENER = ["nc", "-ll", "-p", str(PORT), "-e", "sh", "-c",
            "exec dd of=/dev/null bs=1M 2>/dev/null"]
RECEIVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(4)
print(s.getsockname()[1], flush=True)
buf = bytearray(1 << 20)
while True:
    c, _ = s.accept()
    while c.recv_into(buf):
        pass
    c.close()
"""


@dataclass
class Path_:
    """One way from the host to a receiver."""

    name: str
    host: str
    port: int
    cpu_pids: Callable[[], list[int]]    # receiver (and proxy) processes whose CPU counts
    error: str | None = None
    mib_s: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    cpu_per_gib: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def softirq_s() -> float:
    """System-wide softirq time: where much of the kernel's packet work is accounted, and the
    ksoftirqd threads' time: where that work goes when softirqs pile up (under load)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return int(fields[7]) / np_.CLK_TCK + sum(cpu for _, _, cpu in ksoftirqd())


def ksoftirqd() -> list[tuple[int, str, float]]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                comm = Path(f"/proc/{name}/comm").read_text().strip()
            except OSError:
                continue
            if comm.startswith("ksoftirqd/"):
                entry = np_.proc_stat(int(name))
                if entry is not None:
                    out.append(entry)
    return out


def others_cpu(pids: list[int]) -> float:
    table = np_.process_table()
    return sum(np_.tree_cpu(pid, table) for pid in pids if pid) + softirq_s()


def transfer(path: Path_, size: int, buf: memoryview) -> tuple[float, float]:
    """(wall s, CPU s) of sending `size` bytes and waiting for the receiver to close."""
    pids = path.cpu_pids()
    cpu0, thread0 = others_cpu(pids), time.thread_time()
    start = time.perf_counter()
    with socket.create_connection((path.host, path.port), timeout=60) as s:
        sent = 0
        while sent < size:
            piece = buf[:min(len(buf), size - sent)]
            s.sendall(piece)
            sent += len(piece)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    wall = time.perf_counter() - start
    return wall, time.thread_time() - thread0 + others_cpu(pids) - cpu0


def wait_ready(path: Path_, timeout: float = 20.0) -> str | None:
    """None once a connection to the path is accepted and closed by the receiver."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((path.host, path.port), timeout=5) as s:
                s.shutdown(socket.SHUT_WR)
                s.recv(1)
                return None
        except OSError as e:
            last = str(e)
            time.sleep(0.2)
    return f"not reachable: {last}"


def start_listener(name: str, cli: list[str], env: dict[str, str] | None, run_flags: list[str],
                   engine: np_.Barque | np_.Podman | np_.DockerDaemon) -> list[Path_]:
    """One detached listening container; its direct path and its published path."""
    host_port = np_.free_port()
    out = subprocess.run([*cli, "run", "-d", *run_flags, "-p", f"127.0.0.1:{host_port}:{PORT}",
                          "busybox", *LISTENER], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        error = f"fails here: {out.stderr.strip()[:200]}"
        return [Path_(f"{name}, container IP", "", 0, list, error),
                Path_(f"{name}, 127.0.0.1 published", "", 0, list, error)]
    cid = out.stdout.strip().splitlines()[-1]
    ip, pid = engine.ip_of(cid), engine.pid_of(cid)

    def receiver() -> list[int]:
        return [pid]

    def with_proxy() -> list[int]:
        proxy = engine.proxy_pid(host_port) if isinstance(engine, DockerDaemon) else None
        return [pid, proxy] if proxy else [pid]

    direct = Path_(f"{name}, container IP", ip, PORT, receiver,
                   None if ip else "no IPAddress in inspect")
    published = Path_(f"{name}, 127.0.0.1 published", "127.0.0.1", host_port, with_proxy)
    return [direct, published]


def start_receiver() -> subprocess.Popen[str]:
    """The host's own receiver at 127.0.0.1 (the loopback row)."""
    return subprocess.Popen([sys.executable, "-I", "-S", "-c", RECEIVER],
                            stdout=subprocess.PIPE, text=True)


def make_paths(args: argparse.Namespace, barque: Barque, docker: DockerDaemon | None,
               podman: Podman | None, receiver: subprocess.Popen[str]) -> list[Path_]:
    assert receiver.stdout is not None
    port = int(receiver.stdout.readline())
    paths = [Path_("host loopback", "127.0.0.1", port, lambda: [receiver.pid])]
    if "barque" in args.engines:
        if not barque.has_flag("--publish"):
            why = "skipped: this barque has no -p/--publish yet (networking not merged)"
            paths += [Path_("barque, container IP", "", 0, list, why),
                      Path_("barque, 127.0.0.1 published", "", 0, list, why)]
        else:
            paths += start_listener("barque", barque.cli, None, [], barque)
    if docker is not None:
        paths += start_listener("docker", docker.cli, docker.env, [], docker)
    if podman is not None:
        paths += start_listener("podman", podman.cli, None, Podman.RUN, podman)
    for path in paths:
        if path.error is None:
            path.error = wait_ready(path)
        if path.error:
            progress(f"{path.name}: {path.error}")
    return paths


def rounds(paths: list[Path_], size: int, count: int, record: bool, pause: float) -> None:
    buf = memoryview(bytes(CHUNK))
    for i in range(count):
        for path in (p for p in paths if p.error is None):
            if pause:
                time.sleep(pause)
            try:
                wall, cpu = transfer(path, size, buf)
            except OSError as e:
                if record:
                    path.failures.append(str(e))
                continue
            if record:
                path.wall.append(wall)
                path.mib_s.append(size / wall / 2**20)
                path.cpu_per_gib.append(cpu / (size / 2**30))
        if record:
            progress(f"round {i + 1}/{count}")


HEADER = ["path", "runs", "median MiB/s", "p10", "p90", "median s", "CPU s/GiB",
          "x docker proxy"]


def table(paths: list[Path_]) -> str:
    peer = next((p for p in paths if p.name == PEER and p.mib_s), None)
    base = np_.stats(peer.mib_s).median if peer else None
    rows = []
    for p in paths:
        if not p.mib_s:
            rows.append([p.name, p.error or f"no successful run: {p.failures[:1]}"])
            continue
        t, w, c = np_.stats(p.mib_s), np_.stats(p.wall), np_.stats(p.cpu_per_gib)
        runs = str(len(p.mib_s)) + (f" ({len(p.failures)} failed)" if p.failures else "")
        rows.append([p.name, runs, f"{t.median:.0f}", f"{t.p10:.0f}", f"{t.p90:.0f}",
                     f"{w.median:.3f}", f"{c.median:.2f}",
                     f"{t.median / base:.2f}" if base else "-"])
    return np_.markdown_table(HEADER, rows)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    np_.add_peer_args(p, runs=10, runs_help="timed transfers per path", warmup=1,
                      pause_help="idle time before each timed transfer, in ms (default 0)")
    p.add_argument("--size", type=int, default=1024, metavar="MIB",
                   help="bytes per transfer, in MiB (default 1024)")
    return np_.parse_peer_args(p, argv, lambda a: [(a.size >= 1, "--size >= 1")])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return np_.interruptible(lambda: measure(args))


def measure(args: argparse.Namespace) -> int:
    size = args.size << 20
    with np_.PeerSession("network_throughput", args, "barque-bench-tput-") as s:
        receiver = start_receiver()
        s.cleanups.append(receiver.kill)
        s.cleanups.append(receiver.wait)
        s.meter.keep.add(receiver.pid)
        paths = make_paths(args, s.barque, s.docker, s.podman, receiver)
        rounds(paths, size, args.warmup, record=False, pause=0)
        with s.timed_rounds():
            progress(f"{args.runs} timed rounds of {args.size} MiB per path")
            rounds(paths, size, args.runs, record=True, pause=args.pause / 1000)
    mode = (f"pause {args.pause:g} ms before each transfer" if args.pause else "back to back") \
        + (f", under load ({args.load} busy loops)" if args.load else "")
    print(f"TCP host -> container, {args.size} MiB per transfer, {args.runs} interleaved "
          f"rounds, {mode}\n")
    print(table(paths))
    print("\n" + "  \n".join(s.lines()))
    write_outputs(s, paths, mode)
    return 0


def write_outputs(s: np_.PeerSession, paths: list[Path_], mode: str) -> None:
    measured = [p for p in paths if p.mib_s]
    s.write_samples("network_throughput", mode, {"size_mib": s.args.size, "paths": [
        {"name": p.name, "address": f"{p.host}:{p.port}", "error": p.error,
         "failures": p.failures, "mib_s": p.mib_s, "wall_s": p.wall,
         "cpu_s_per_gib": p.cpu_per_gib} for p in paths]},
        lambda png, title: np_.box_plot(png, [m.name for m in measured],
                                        [m.mib_s for m in measured],
                                        "MiB/s host -> container", title))


if __name__ == "__main__":
    sys.exit(main())
