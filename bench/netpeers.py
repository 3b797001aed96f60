"""What the benches beside Docker and Podman (network_run.py, network_throughput.py, build.py)
share, set up and undone by `PeerSession`: the three engines on private state (barque and
podman on temporary roots, Debian's dockerd started on its own socket, data-root, exec-root
and pidfile), the CPU time of every process a command causes, and `HostGuard`, which puts
back what Docker changes on the host (iptables rules and chains, FORWARD policy, forwarding
and bridge-netfilter sysctls, docker0 and its veths, /etc/docker/key.json, /run/docker) —
also after Ctrl-C or an exception.

Not a benchmark itself; see bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import hashlib
import ipaddress
import json
import os
import platform
import random
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Protocol

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "bench" / "out"
DOCKER = "/usr/bin/docker"      # Debian's docker.io CLI (a newer static one may shadow it on PATH)
DOCKERD = "/usr/sbin/dockerd"
DOCKER_BRIDGE = "docker0"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Processes and their CPU time


def proc_stat(pid: int) -> tuple[int, str, float] | None:
    """(ppid, state, CPU seconds of the process and its reaped children) from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    # after "pid (comm)": state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based
    ticks = sum(int(x) for x in fields[11:15])
    return int(fields[1]), fields[0], ticks / CLK_TCK


def process_table() -> dict[int, tuple[int, str, float]]:
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            entry = proc_stat(int(name))
            if entry is not None:
                table[int(name)] = entry
    return table


def descendants(root: int, table: dict[int, tuple[int, str, float]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def tree_cpu(root: int, table: dict[int, tuple[int, str, float]] | None = None) -> float:
    """CPU seconds of a process and all its descendants, reaped children included."""
    table = process_table() if table is None else table
    pids = {root, *descendants(root, table)}
    return sum(table[p][2] for p in pids if p in table)


def pids_in(pid_files: list[Path]) -> set[int]:
    """The pids written in those of the files that exist."""
    pids = set()
    for path in pid_files:
        with contextlib.suppress(OSError, ValueError, IndexError):
            pids.add(int(path.read_text().split()[0]))
    return pids


def become_subreaper() -> None:
    """Orphans (barque-monitor, conmon, …) are re-parented to this process instead of init, so
    their CPU time is found among its descendants while they run and in RUSAGE_CHILDREN once
    reaped."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


class CpuMeter:
    """CPU seconds used by everything this process started: the reaped (RUSAGE_CHILDREN) plus
    the running descendants (daemons such as dockerd and containerd, monitors not yet gone).
    Long-lived processes excluded by pid (load generators) are left out."""

    def __init__(self) -> None:
        self.exclude: set[int] = set()
        self.keep: set[int] = set()   # children whose exit a Popen object waits for
        # pid files of long-lived helpers a run may start (Barque's network agent and DNS
        # resolver): counted like any descendant, but never waited for by settle()
        self.pid_files: list[Path] = []

    def helpers(self) -> set[int]:
        return pids_in(self.pid_files)

    def reap_orphans(self, table: dict[int, tuple[int, str, float]]) -> None:
        me = os.getpid()
        for pid, (ppid, state, _) in table.items():
            if ppid == me and state == "Z" and pid not in self.keep | self.exclude:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)

    def sample(self, skip: set[int] | None = None) -> float:
        """`skip`: more trees to leave out (another engine's daemon, idle meanwhile)."""
        self.reap_orphans(process_table())
        table = process_table()
        usage = os.times()
        live = descendants(os.getpid(), table) - self.excluded_trees(table, skip or set())
        return usage.children_user + usage.children_system + sum(table[p][2] for p in live
                                                                 if p in table)

    def settle(self, skip: set[int] | None = None, timeout: float = 3.0) -> None:
        """Wait (up to `timeout`) until the processes a run left behind — a monitor or conmon
        still cleaning up after the CLI returned — have exited, so that their CPU time is
        counted for that run and not for the next one. Daemons, kept and excluded trees are
        not waited for."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            table = process_table()
            self.reap_orphans(table)
            daemons = self.excluded_trees(table, (skip or set()) | self.keep | self.helpers())
            if not descendants(os.getpid(), table) - daemons:
                return
            time.sleep(0.005)

    def excluded_trees(self, table: dict[int, tuple[int, str, float]],
                       skip: set[int]) -> set[int]:
        out: set[int] = set()
        for pid in self.exclude | skip:
            out |= {pid, *descendants(pid, table)}
        return out


def timed(argv: list[str], meter: CpuMeter, env: dict[str, str] | None = None,
          skip: set[int] | None = None,
          timeout: float = 120.0) -> tuple[float, float, str | None]:
    """(wall s, CPU s, None) or (..., first line of the error) of one command. The wall time
    is spawn to reaped exit with a blocking wait (Popen.wait(timeout) would poll in steps).
    `skip`: process trees whose CPU is not this command's (CpuMeter.sample)."""
    cpu0 = meter.sample(skip)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    timer = signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        _, err = proc.communicate()
    except TimeoutError:
        err = f"timed out after {timeout:.0f} s".encode()
    finally:
        signal.setitimer(signal.ITIMER_REAL, *timer)
        if proc.returncode is None:   # timed out or interrupted: not left running
            proc.kill()
            proc.wait()
    wall = time.perf_counter() - start
    meter.settle(skip)
    cpu = meter.sample(skip) - cpu0
    if proc.returncode != 0:     # a timed-out command was killed: non-zero
        text = err.decode(errors="replace").strip().splitlines()
        return wall, cpu, (text[0] if text else f"exit status {proc.returncode}")
    return wall, cpu, None


class Samples(Protocol):
    """What a bench keeps of one subject's timed runs."""

    wall: list[float]
    cpu: list[float]
    failures: list[str]


def keep(into: Samples, wall: float, cpu: float, error: str | None) -> None:
    """One timed run's result (as `timed` gives it) in `into`: its seconds, or its error."""
    if error is None:
        into.wall.append(wall)
        into.cpu.append(cpu)
    else:
        into.failures.append(error)


def _alarm(signum: int, frame: object) -> NoReturn:
    raise TimeoutError("a measured command ran too long")


def raise_interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def install_signals() -> None:
    """SIGTERM, and SIGINT even where the shell started us with it ignored (a background
    job), end the measuring and run the cleanup."""
    signal.signal(signal.SIGTERM, raise_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGALRM, _alarm)


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    """Cleanup runs to the end even if Ctrl-C is pressed again."""
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


class Load:
    """N busy loops (`--load N`): the "under load" mode. Started and stopped by pid."""

    def __init__(self, count: int, meter: CpuMeter) -> None:
        self.procs = [subprocess.Popen([sys.executable, "-I", "-S", "-c", "while 1: pass"])
                      for _ in range(count)]
        meter.exclude |= {p.pid for p in self.procs}

    def stop(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()


# ---------------------------------------------------------------------------------------------
# Statistics and reporting


@dataclass
class Stats:
    median: float
    p10: float
    p90: float
    mean: float


def stats(values: list[float]) -> Stats:
    if len(values) < 2:
        return Stats(values[0], values[0], values[0], values[0])
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return Stats(statistics.median(values), deciles[0], deciles[-1], statistics.mean(values))


def timing_row(name: str, s: Samples, peer: Samples | None) -> list[str]:
    """`name`, its runs (and failures), wall median, p10, p90, CPU median and mean, and both
    medians as a multiple of `peer`'s ("-" without one). `s` has at least one run."""
    base = stats(peer.wall).median if peer else None
    base_cpu = stats(peer.cpu).median if peer else None
    w, c = stats(s.wall), stats(s.cpu)
    runs = str(len(s.wall)) + (f" ({len(s.failures)} failed)" if s.failures else "")
    return [name, runs, f"{w.median:.3f}", f"{w.p10:.3f}", f"{w.p90:.3f}",
            f"{c.median:.3f}", f"{c.mean:.3f}",
            f"{w.median / base:.2f}" if base else "-",
            f"{c.median / base_cpu:.2f}" if base_cpu else "-"]


def barque_commit(where: Path = REPO) -> str:
    """The short HEAD of the repository holding `where`, `+dirty` if its barque/ or bin/ differ
    from it."""
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True)

    top = git("rev-parse", "--show-toplevel")
    if top.returncode == 0:
        where = Path(top.stdout.strip())
    head = git("rev-parse", "--short", "HEAD")
    if head.returncode != 0:
        return "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "barque", "bin")
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    lines = (out.stdout or out.stderr).strip().splitlines()
    words = lines[0].replace(",", " ").split() if lines else ["?"]
    return words[words.index("version") + 1] if "version" in words[:-1] else " ".join(words)


def loadavg() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _package_dir(barque: str) -> Path:
    """Where the barque package the launcher runs lives (a launcher runs the python beside it;
    its own dir may be another repository's, pyenv's for one)."""
    exe = shutil.which(barque) if "/" not in barque else barque
    if not exe:
        return REPO
    top = subprocess.run(["git", "-C", str(Path(exe).resolve().parent), "rev-parse",
                          "--show-toplevel"], capture_output=True, text=True).stdout.strip()
    if top and (Path(top) / "barque" / "__init__.py").exists():  # a worktree's venv
        return Path(top)
    python = Path(exe).parent / "python3"
    if not python.exists():
        return REPO
    out = subprocess.run([str(python), "-c", "import barque, os; print(os.path.dirname("
                          "barque.__file__))"], capture_output=True, text=True)
    return Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else REPO


def machine_info(barque: str) -> dict[str, Any]:
    """`barque`: the barque executable measured; its repository's commit is reported (a venv's
    launcher lives in the worktree it was installed from)."""
    where = _package_dir(barque)
    return {"nproc": len(os.sched_getaffinity(0)), "kernel": platform.release(),
            "python": platform.python_version(), "barque": barque_commit(where),
            "date": now()}


def machine_line(info: dict[str, Any], versions: dict[str, str]) -> str:
    peers = ", ".join(f"{name} {v}" for name, v in versions.items())
    return (f"machine: nproc {info['nproc']}, kernel {info['kernel']}, python {info['python']}, "
            f"barque {info['barque']}, {peers}, {info['date']}")


def load_line(start: list[float], end: list[float]) -> str:
    fmt = " ".join
    return (f"load average (1/5/15 min): start {fmt(f'{x:.2f}' for x in start)}, "
            f"end {fmt(f'{x:.2f}' for x in end)}")


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for r in rows:
        cells = r + [""] * (len(header) - len(r))
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def box_plot(path: Path, labels: list[str], data: list[list[float]], xlabel: str,
             title: str) -> bool:
    """A box plot per subject with every sample drawn over it; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    if not data:
        return False
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.6 * len(data)))
    draw_boxes(ax, labels, data, xlabel)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def draw_boxes(ax: Any, labels: list[str], data: list[list[float]], xlabel: str) -> None:
    """One horizontal box per subject on a matplotlib Axes, every sample drawn over it."""
    ax.boxplot(data, orientation="horizontal", tick_labels=labels, showfliers=False,
               widths=0.5)
    jitter = random.Random(0)
    for i, values in enumerate(data, start=1):
        ax.scatter(values, [i + jitter.uniform(-0.15, 0.15) for _ in values], s=8, alpha=0.5)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_xlim(left=0)
    ax.grid(axis="x", alpha=0.3)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a published port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------------
# The engines


def barque_exe(explicit: str | None = None) -> str:
    """--barque, else the barque beside this interpreter, else PATH's."""
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "barque"
    return str(beside) if beside.exists() else shutil.which("barque") or "barque"


class Barque:
    """barque on a temporary root, with its own default bridge name (daemon.json), so its
    bridge and nft table are told apart from a user's Barque and removed at the end."""

    def __init__(self, tmp: Path, exe: str) -> None:
        self.root = tmp / "barque-root"
        self.runroot = tmp / "barque-run"
        self.root.mkdir(parents=True)
        self.bridge = f"bqbench{os.getpid() % 100000}"
        self.nft_table = f"barque_bench{os.getpid()}"
        (self.root / "daemon.json").write_text(json.dumps({"bridge": self.bridge,
                                                           "nft-table": self.nft_table}))
        self.cli = [exe, "--root", str(self.root), "--runroot", str(self.runroot)]

    def has_flag(self, flag: str) -> bool:
        out = subprocess.run([*self.cli, "run", "--help"], capture_output=True, text=True)
        return flag in out.stdout

    def ip_of(self, cid: str) -> str:
        return inspect_field([*self.cli, "inspect", "-f"], "{{.NetworkSettings.IPAddress}}",
                             cid)

    def pid_of(self, cid: str) -> int:
        return int(inspect_field([*self.cli, "inspect", "-f"], "{{.State.Pid}}", cid) or 0)

    def stop_agent(self) -> None:
        """The runroot's network agent stopped, as after `network-agent-idle` unused: by its
        pid file, only if that pid's command line is the agent's (never by name)."""
        pid_file = self.runroot / "netagent" / "pid"
        try:
            pid = int(pid_file.read_text().split()[0])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"barque.network.agent" not in f.read().split(b"\0"):
                    return
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError, IndexError):
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):  # ours to reap: we are a subreaper
                os.waitpid(pid, os.WNOHANG)
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rpartition(")")[2].split()[:1] == ["Z"]:
                        return
            except OSError:
                return
            time.sleep(0.01)

    def cleanup(self) -> None:
        ids = subprocess.run([*self.cli, "ps", "-aq"], capture_output=True, text=True).stdout
        if ids.split():
            subprocess.run([*self.cli, "rm", "-f", *ids.split()], capture_output=True)
        subprocess.run([*self.cli, "system", "prune", "-f", "--volumes"], capture_output=True)
        self.stop_agent()  # it would linger its idle time after the runroot is gone
        dns_pid = self.runroot / "dns" / "pid"   # the resolver barque starts per runroot
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(dns_pid.read_text().split()[0]), signal.SIGTERM)
        if Path(f"/sys/class/net/{self.bridge}").exists():
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        # daemon.json's "nft-table" names it; a Barque without that key derives it from the root
        for table in (self.nft_table,
                      "barque_" + hashlib.sha256(str(self.root).encode()).hexdigest()[:10]):
            delete_nft_tables(table)


def delete_nft_tables(name: str) -> None:
    """Barque's table for this bench's root, in whatever family it was made; no other."""
    out = subprocess.run(["nft", "-j", "list", "tables"], capture_output=True, text=True)
    with contextlib.suppress(ValueError):
        for item in json.loads(out.stdout or "{}").get("nftables", []):
            table = item.get("table")
            if table and table["name"] == name:
                subprocess.run(["nft", "delete", "table", table["family"], name],
                               capture_output=True)


def inspect_field(cmd: list[str], template: str, cid: str) -> str:
    out = subprocess.run([*cmd, template, cid], capture_output=True, text=True)
    value = out.stdout.strip()
    return "" if out.returncode != 0 or value in ("<no value>", "<nil>") else value


class Podman:
    """Debian's podman 4.3 on a temporary root, its default network (CNI, cni-podman0)."""

    RUN = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]

    def __init__(self, tmp: Path) -> None:
        # runc (crun cannot run on this hybrid cgroup host), cgroupfs (no systemd here), and
        # the two ulimits podman would otherwise set above this host's hard limits.
        self.cli = ["podman", "--root", str(tmp / "podman-root"), "--runroot",
                    str(tmp / "podman-run"), "--runtime", "runc", "--cgroup-manager",
                    "cgroupfs", "--events-backend", "file"]

    def ip_of(self, cid: str) -> str:
        return inspect_field([*self.cli, "inspect", "-f"], "{{.NetworkSettings.IPAddress}}",
                             cid)

    def pid_of(self, cid: str) -> int:
        return int(inspect_field([*self.cli, "inspect", "-f"], "{{.State.Pid}}", cid) or 0)

    def cleanup(self) -> None:
        subprocess.run([*self.cli, "rm", "-a", "-f", "-t", "0"], capture_output=True)
        subprocess.run([*self.cli, "rmi", "-a", "-f"], capture_output=True)


class DockerDaemon:
    """Debian's dockerd on its own socket, data-root, exec-root, pidfile and (empty) config
    file under the bench's temporary directory, stopped by its pid at the end. It still uses
    the host's network: docker0, iptables and sysctls — HostGuard puts those back."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "docker"
        self.dir.mkdir()
        self.sock = self.dir / "docker.sock"
        self.cli = [DOCKER, "-H", f"unix://{self.sock}"]
        self.env = dict(os.environ, DOCKER_CONFIG=str(self.dir / "cli"))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, meter: CpuMeter, timeout: float = 60.0) -> None:
        (self.dir / "daemon.json").write_text("{}\n")
        log = open(self.dir / "dockerd.log", "wb")   # the daemon's, for its whole life
        self.proc = subprocess.Popen(
            [DOCKERD, "--host", f"unix://{self.sock}", "--data-root", str(self.dir / "data"),
             "--exec-root", str(self.dir / "exec"), "--pidfile", str(self.dir / "docker.pid"),
             "--config-file", str(self.dir / "daemon.json")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        meter.keep.add(self.proc.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited ({self.proc.returncode}): "
                                   f"{self.log_tail()}")
            info = subprocess.run([*self.cli, "info"], capture_output=True, env=self.env)
            if info.returncode == 0:
                return
            time.sleep(0.3)
        raise RuntimeError(f"dockerd did not answer in {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.dir / "dockerd.log").read_text().strip().splitlines()[-1]
        return ""

    def ip_of(self, cid: str) -> str:
        return inspect_field([*self.cli, "inspect", "-f"], "{{.NetworkSettings.IPAddress}}",
                             cid)

    def pid_of(self, cid: str) -> int:
        return int(inspect_field([*self.cli, "inspect", "-f"], "{{.State.Pid}}", cid) or 0)

    def proxy_pid(self, host_port: int) -> int | None:
        """The docker-proxy serving host_port, one of dockerd's children."""
        if self.proc is None:
            return None
        for pid in descendants(self.proc.pid, process_table()):
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if b"-host-port" in argv and argv[argv.index(b"-host-port") + 1] == \
                        str(host_port).encode():
                    return pid
        return None

    def stop(self) -> None:
        """Containers removed, then dockerd stopped with SIGTERM (SIGKILL after 30 s), then any
        process it left (containerd, shims) killed by pid."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            ids = subprocess.run([*self.cli, "ps", "-aq"], capture_output=True, text=True,
                                 env=self.env).stdout.split()
            if ids:
                subprocess.run([*self.cli, "rm", "-f", *ids], capture_output=True,
                               env=self.env)
        tree = descendants(self.proc.pid, process_table())
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc = None


def start_docker(engines: set[str], guard: HostGuard, tmp: Path,
                 meter: CpuMeter) -> DockerDaemon | None:
    """The private dockerd, or None (with the reason printed) if it is not wanted or cannot
    run here."""
    if "docker" not in engines:
        return None
    why = guard.docker_allowed()
    if why is None:
        docker = DockerDaemon(tmp)
        progress("starting a private dockerd")
        try:
            docker.start(meter)
            return docker
        except RuntimeError as e:
            docker.stop()
            why = str(e)
        except BaseException:      # Ctrl-C while it starts: the caller never sees it
            docker.stop()
            raise
    progress(f"docker: skipped: {why}")
    return None


def load_image(archive: Path, barque: Barque, podman: Podman | None,
               docker: DockerDaemon | None) -> None:
    """One busybox image for all: Barque's default image, saved as a docker-archive (which
    Docker 20.10 loads; podman loads it too)."""
    subprocess.run([*barque.cli, "image", "save-default", "-o", str(archive) + ".oci"],
                   check=True, capture_output=True)
    subprocess.run([*barque.cli, "load", "-q", "-i", str(archive) + ".oci"], check=True,
                   capture_output=True)
    subprocess.run([*barque.cli, "save", "-o", str(archive), "busybox"], check=True,
                   capture_output=True)
    if podman is not None:
        subprocess.run([*podman.cli, "load", "-q", "-i", str(archive)], check=True,
                       capture_output=True)
    if docker is not None:
        subprocess.run([*docker.cli, "load", "-q", "-i", str(archive)], check=True,
                       capture_output=True, env=docker.env)


def mounts_under(path: Path) -> list[str]:
    prefix = str(path) + "/"
    with open("/proc/self/mountinfo") as f:
        return [m for m in (line.split()[4] for line in f) if m.startswith(prefix)]


def remove_tmp(tmp: Path) -> None:
    """Unmount what the engines left (netns files, overlay mounts), deepest first, then remove."""
    for mount in sorted(mounts_under(tmp), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True)
    leftover = mounts_under(tmp)
    if leftover:
        progress(f"warning: not removing {tmp}: still mounted: {', '.join(leftover)}")
        return
    shutil.rmtree(tmp, ignore_errors=True)


def cgroup_parents() -> set[Path]:
    """The parent cgroups the engines make: Barque's `barque`, Podman's `libpod_parent`,
    Docker's `docker` (cgroupfs driver)."""
    base = Path("/sys/fs/cgroup")
    return {p for name in ("barque", "libpod_parent", "docker")
            for p in [*base.glob(name), *base.glob(f"*/{name}")] if p.is_dir()}


def remove_cgroups(paths: set[Path]) -> None:
    """Empty cgroup trees this run made (rmdir refuses one still in use), children first."""
    for top in paths:
        for path in sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if path.is_dir():
                with contextlib.suppress(OSError):
                    path.rmdir()
        try:
            top.rmdir()
        except OSError as e:
            progress(f"warning: cgroup {top} left behind: {e.strerror}")


# ---------------------------------------------------------------------------------------------
# The host as Docker found it

SYSCTLS = ["net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding",
           "net/ipv6/conf/default/forwarding", "net/bridge/bridge-nf-call-iptables",
           "net/bridge/bridge-nf-call-ip6tables", "net/bridge/bridge-nf-call-arptables"]
IPT_TABLES = ("filter", "nat", "mangle", "raw", "security")   # iptables-nft's nft tables
FAMILIES = {"iptables": "ip", "ip6tables": "ip6"}
DOCKER_FILES = ["/etc/docker/key.json", "/etc/docker", "/run/docker"]


@dataclass
class Dump:
    """One `iptables-save` output: per table, chain policies and the rules in order."""

    policies: dict[str, dict[str, str]] = field(default_factory=dict)
    rules: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Dump:
        dump = cls()
        table = ""
        for line in text.splitlines():
            if line.startswith("*"):
                table = line[1:]
                dump.policies[table] = {}
                dump.rules[table] = []
            elif line.startswith(":"):
                chain, policy = line[1:].split()[:2]
                dump.policies[table][chain] = policy
            elif line.startswith("-A "):
                dump.rules[table].append(line)
        return dump

    def canonical(self) -> str:
        return "\n".join(f"{t} {c} {p}" for t, cs in sorted(self.policies.items())
                         for c, p in sorted(cs.items())) + "\n" + "\n".join(
            f"{t} {r}" for t, rs in sorted(self.rules.items()) for r in rs)


def save_rules(tool: str) -> str:
    if not shutil.which(f"{tool}-save"):
        return ""
    return subprocess.run([f"{tool}-save"], capture_output=True, text=True).stdout


def nft_json() -> list[dict[str, Any]]:
    out = subprocess.run(["nft", "-j", "list", "ruleset"], capture_output=True, text=True)
    try:
        return list(json.loads(out.stdout).get("nftables", []))
    except ValueError:
        return []


def nft_iptables_objects(items: list[dict[str, Any]]) -> tuple[set[tuple[str, str]],
                                                              set[tuple[str, str, str]],
                                                              set[tuple[str, str, str]]]:
    """iptables-nft's own tables (ip/ip6 filter, nat, …), their chains, the chains with rules."""
    tables, chains, used = set(), set(), set()
    for item in items:
        for kind, obj in item.items():
            if not isinstance(obj, dict) or obj.get("family") not in ("ip", "ip6"):
                continue
            name = obj.get("table", obj.get("name"))
            if name not in IPT_TABLES:
                continue
            if kind == "table":
                tables.add((obj["family"], obj["name"]))
            elif kind == "chain":
                chains.add((obj["family"], obj["table"], obj["name"]))
            elif kind == "rule":
                used.add((obj["family"], obj["table"], obj["chain"]))
    return tables, chains, used


def read_sysctl(name: str) -> str | None:
    with contextlib.suppress(OSError):
        return Path("/proc/sys", name).read_text().strip()
    return None


def br_netfilter_state() -> str:
    if Path("/proc/modules").exists():
        loaded = any(line.split()[0] == "br_netfilter"
                     for line in Path("/proc/modules").read_text().splitlines())
        if loaded:
            return "module loaded"
        return "built in" if Path("/proc/sys/net/bridge").exists() else "not loaded"
    return "built in" if Path("/proc/sys/net/bridge").exists() else "absent"


def links() -> dict[str, str | None]:
    """Every link of the host's netns -> its master (bridge) or None."""
    out = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True)
    return {link["ifname"]: link.get("master") for link in json.loads(out.stdout or "[]")}


def bridge_subnets(name: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = subprocess.run(["ip", "-j", "addr", "show", "dev", name], capture_output=True,
                         text=True)
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for link in json.loads(out.stdout or "[]") if out.returncode == 0 else []:
        for addr in link.get("addr_info", []):
            if addr.get("scope") == "global":
                nets.append(ipaddress.ip_network(f"{addr['local']}/{addr['prefixlen']}",
                                                 strict=False))
    return nets


class HostGuard:
    """Saves, before Docker starts, what it changes on the host, and puts it back afterwards.

    Docker's rules are taken out one by one (its chains flushed and deleted, its rules in the
    built-in chains deleted, policies reset), not by `iptables-restore` of the saved dump:
    with iptables-nft a restored table replaces the whole nft table, and so would also drop
    rules other programs (podman's CNI plugins, other tests) added meanwhile. Afterwards the
    dumps are compared with the saved ones; any difference left is printed."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "host-before"
        self.dir.mkdir()
        self.dumps = {tool: save_rules(tool) for tool in FAMILIES}
        for tool, text in self.dumps.items():
            (self.dir / f"{tool}-save.txt").write_text(text)
        ruleset = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True)
        (self.dir / "nft-ruleset.txt").write_text(ruleset.stdout)   # for reference
        self.nft_tables, self.nft_chains, _ = nft_iptables_objects(nft_json())
        self.sysctls = {name: read_sysctl(name) for name in SYSCTLS}
        self.br_netfilter = br_netfilter_state()
        self.links = links()
        self.files = {path: os.path.lexists(path) for path in DOCKER_FILES}

    def docker_allowed(self) -> str | None:
        """Why this bench may not start a Docker here, or None."""
        if DOCKER_BRIDGE in self.links:
            return f"{DOCKER_BRIDGE} exists already (another Docker runs here?)"
        if not os.access(DOCKERD, os.X_OK):
            return "no dockerd (apt-get install docker.io)"
        return None

    def restore(self) -> list[str]:
        """Put everything back; returns warnings about what could not be."""
        warnings: list[str] = []
        ours = DOCKER_BRIDGE not in self.links    # else another Docker's: leave its rules
        subnets = bridge_subnets(DOCKER_BRIDGE) if ours else []
        self.remove_links(warnings)
        for tool in FAMILIES:
            if self.dumps[tool] or save_rules(tool):
                self.undo_rules(tool, subnets, ours, warnings)
        self.remove_nft_leftovers(warnings)
        for name, value in self.sysctls.items():
            if value is not None and read_sysctl(name) != value:
                with contextlib.suppress(OSError):
                    Path("/proc/sys", name).write_text(value + "\n")
                if read_sysctl(name) != value:
                    warnings.append(f"sysctl {name} could not be set back to {value}")
        if self.br_netfilter == "not loaded" and br_netfilter_state() == "module loaded":
            if subprocess.run(["modprobe", "-r", "br_netfilter"]).returncode != 0:
                warnings.append("br_netfilter was loaded by Docker and could not be unloaded")
        self.remove_files()
        warnings += self.differences()
        return warnings

    def remove_links(self, warnings: list[str]) -> None:
        if DOCKER_BRIDGE in self.links:
            return      # not ours
        now = links()
        for name, master in now.items():
            if master == DOCKER_BRIDGE and name not in self.links:
                subprocess.run(["ip", "link", "del", name], capture_output=True)
        if DOCKER_BRIDGE in now:
            subprocess.run(["ip", "link", "del", DOCKER_BRIDGE], capture_output=True)
        if DOCKER_BRIDGE in links():
            warnings.append(f"{DOCKER_BRIDGE} could not be removed")

    def undo_rules(self, tool: str, subnets: list[Any], docker: bool,
                   warnings: list[str]) -> None:
        before, after = Dump.parse(self.dumps[tool]), Dump.parse(save_rules(tool))
        for table, args in undo_plan(before, after, subnets, docker):
            self.iptables(tool, table, args, warnings)

    @staticmethod
    def iptables(tool: str, table: str, args: list[str], warnings: list[str]) -> None:
        done = subprocess.run([tool, "-w", "-t", table, *args], capture_output=True, text=True)
        if done.returncode != 0:
            warnings.append(f"{tool} -t {table} {shlex.join(args)}: {done.stderr.strip()}")

    def remove_nft_leftovers(self, warnings: list[str]) -> None:
        """iptables-nft makes base chains (and tables) on first use; those it made for Docker
        that hold no rule now are deleted. Only iptables-nft's own tables are looked at."""
        tables, chains, used = nft_iptables_objects(nft_json())
        for family, table, chain in sorted(chains - self.nft_chains - used):
            subprocess.run(["nft", "delete", "chain", family, table, chain],
                           capture_output=True)
        tables, chains, used = nft_iptables_objects(nft_json())
        for family, table in sorted(tables - self.nft_tables):
            if not any(c[:2] == (family, table) for c in chains):
                subprocess.run(["nft", "delete", "table", family, table], capture_output=True)
            else:
                warnings.append(f"nft table {family} {table} made during the bench still "
                                "has chains")

    def remove_files(self) -> None:
        for path in DOCKER_FILES:
            if self.files[path] or not os.path.lexists(path):
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                if path == "/run/docker" or not os.listdir(path):
                    shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)

    def differences(self) -> list[str]:
        out = []
        for tool in FAMILIES:
            before = Dump.parse(self.dumps[tool]).canonical().splitlines()
            after = Dump.parse(save_rules(tool)).canonical().splitlines()
            extra = sorted(set(after) - set(before))
            missing = sorted(set(before) - set(after))
            if extra or missing:
                out.append(f"{tool} differs from before the bench (another program changed "
                           f"it meanwhile?): added {extra[:10]}, missing {missing[:10]}")
        new_links = [n for n, m in links().items()
                     if n not in self.links and (n == DOCKER_BRIDGE or m == DOCKER_BRIDGE)]
        if new_links:
            out.append(f"links left: {', '.join(new_links)}")
        return out


def undo_plan(before: Dump, after: Dump, subnets: list[Any],
              docker: bool) -> list[tuple[str, list[str]]]:
    """The (table, iptables arguments) that take out what Docker (if `docker`: this bench's
    Docker ran) and the CNI portmap plugin added between the two dumps: their rules in other
    chains deleted, their new chains flushed and deleted, changed policies set back. Rules
    and chains anyone else added are kept."""
    plan: list[tuple[str, list[str]]] = []
    for table, rules in after.rules.items():
        old_policies = before.policies.get(table, {})
        prefixes = (*(["DOCKER"] if docker else []), *cni_prefixes(after, before, table))
        if not prefixes:
            continue
        chains = [c for c in after.policies[table]
                  if c.startswith(prefixes) and c not in old_policies]
        added = Counter(rules) - Counter(before.rules.get(table, []))
        for rule, count in added.items():
            words = shlex.split(rule)
            if words[1] not in chains and is_dockers(words, subnets, prefixes):
                plan += [(table, ["-D", *words[1:]])] * count
        plan += [(table, [action, chain]) for action in ("-F", "-X") for chain in chains]
        if docker:
            plan += [(table, ["-P", chain, old_policies[chain]])
                     for chain, policy in after.policies[table].items()
                     if policy != "-" and old_policies.get(chain, policy) != policy]
    return plan


def cni_prefixes(after: Dump, before: Dump, table: str) -> tuple[str, ...]:
    """Podman's CNI portmap plugin makes CNI-HOSTPORT-* chains on first use and never removes
    them. Made during the bench and with no port mapped any more (CNI-HOSTPORT-DNAT empty),
    they are taken out too; the plugin makes them again when it next needs them."""
    chain = "CNI-HOSTPORT-DNAT"
    if chain not in after.policies.get(table, {}) or chain in before.policies.get(table, {}):
        return ()
    if any(rule.split()[1] == chain for rule in after.rules[table]):
        return ()
    return ("CNI-HOSTPORT-",)


def is_dockers(words: list[str], subnets: list[Any], prefixes: tuple[str, ...]) -> bool:
    """A rule Docker added: jumps to one of its chains (or CNI's, see cni_prefixes), names
    docker0, or matches an address in docker0's subnet (the MASQUERADE rules of its bridge
    and of published ports)."""
    if any(w.startswith(prefixes) for w in words[1:]):
        return True
    if "DOCKER" not in prefixes:
        return False
    if DOCKER_BRIDGE in words:
        return True
    for flag in ("-s", "-d", "--source", "--destination"):
        if flag in words[:-1]:
            with contextlib.suppress(ValueError):
                net = ipaddress.ip_network(words[words.index(flag) + 1], strict=False)
                if any(net.version == s.version and net.subnet_of(s) for s in subnets):
                    return True
    return False


def add_peer_args(p: argparse.ArgumentParser, *, runs: int, runs_help: str, warmup: int,
                  pause_help: str) -> None:
    """The options every bench beside the peers takes."""
    p.add_argument("--runs", type=int, default=runs, help=f"{runs_help} (default {runs})")
    p.add_argument("--warmup", type=int, default=warmup,
                   help=f"untimed rounds first (default {warmup})")
    p.add_argument("--pause", type=float, default=0.0, metavar="MS", help=pause_help)
    p.add_argument("--load", type=int, default=0, metavar="N",
                   help="N busy loops running during the timed rounds (default 0)")
    p.add_argument("--engines", default="barque,docker,podman",
                   help="comma-separated subset of barque,docker,podman")
    p.add_argument("--barque", default=None, metavar="PATH",
                   help="the barque to measure (default: beside this python3, else PATH's)")
    p.add_argument("--out", type=Path, default=OUT_DIR, help="where JSON and PNG go")


def parse_peer_args(p: argparse.ArgumentParser, argv: list[str] | None,
                    checks: Callable[[argparse.Namespace], list[tuple[bool, str]]] | None = None
                    ) -> argparse.Namespace:
    """add_peer_args' options parsed and checked (with the bench's own `checks`: (ok, rule))."""
    args = p.parse_args(argv)
    args.barque = barque_exe(args.barque)
    args.engines = set(args.engines.split(","))
    rules = [(args.runs >= 1, "--runs >= 1"), (args.warmup >= 0, "--warmup >= 0"),
             (args.load >= 0, "--load >= 0"), (args.pause >= 0, "--pause >= 0"),
             (args.engines <= {"barque", "docker", "podman"},
              "--engines from barque,docker,podman"), *(checks(args) if checks else [])]
    broken = [rule for ok, rule in rules if not ok]
    if broken:
        p.error(", ".join(broken))
    return args


class PeerSession:
    """What every bench beside the peers sets up, and always undoes (also after Ctrl-C or an
    exception): root checked, signals, a subreaper, the CPU meter, a temp dir, Barque and
    Podman on private roots, a private dockerd, busybox loaded into each, the host guard,
    the optional busy loops (`timed_rounds`) and the machine line.

        with PeerSession("network_run", args, "barque-bench-net-") as s:
            ... s.barque, s.docker, s.podman, s.meter, s.tmp ...
            with s.timed_rounds():
                ...timed rounds...
    `cleanups` run first at the end (the bench's own, e.g. a receiver to kill)."""

    def __init__(self, name: str, args: argparse.Namespace, tmp_prefix: str,
                 needs: str = "namespaces, bridges, netfilter") -> None:
        if os.geteuid() != 0:
            sys.exit(f"{name} needs root ({needs})")
        self.args = args
        self.meter = CpuMeter()
        self.info = machine_info(args.barque)
        self.versions = {"docker": version([DOCKERD, "--version"]),
                         "podman": version(["podman", "--version"])}
        self.cleanups: list[Callable[[], object]] = []
        self.load_start: list[float] = []
        self.load_end: list[float] = []
        self._tmp_prefix = tmp_prefix
        self._load: Load | None = None
        self.guard: HostGuard | None = None
        self.docker: DockerDaemon | None = None

    def __enter__(self) -> PeerSession:
        install_signals()
        become_subreaper()
        self.tmp = Path(tempfile.mkdtemp(prefix=self._tmp_prefix))
        self._cgroups = cgroup_parents()
        self.barque = Barque(self.tmp, self.args.barque)
        self.podman = Podman(self.tmp) if "podman" in self.args.engines and \
            shutil.which("podman") else None
        try:
            self.guard = HostGuard(self.tmp)
            self.docker = start_docker(self.args.engines, self.guard, self.tmp, self.meter)
            progress("loading busybox into every engine")
            load_image(self.tmp / "busybox.tar", self.barque, self.podman, self.docker)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    @contextlib.contextmanager
    def timed_rounds(self) -> Iterator[None]:
        """The load average before and after, and --load's busy loops running meanwhile."""
        self.load_start = loadavg()
        self._load = Load(self.args.load, self.meter) if self.args.load else None
        yield
        self.load_end = loadavg()

    def __exit__(self, *exc: object) -> None:
        with signals_ignored():
            for cleanup in reversed(self.cleanups):
                cleanup()
            if self._load is not None:
                self._load.stop()
            if self.docker is not None:
                self.docker.stop()
            if self.podman is not None:
                self.podman.cleanup()
            self.barque.cleanup()
            if self.guard is not None:
                for warning in self.guard.restore():
                    progress(f"warning: {warning}")
                progress("host restored: iptables, sysctls, links and Docker's files as found")
            remove_cgroups(cgroup_parents() - self._cgroups)
            remove_tmp(self.tmp)

    def lines(self) -> list[str]:
        """The machine and load lines every result ends with."""
        return [machine_line(self.info, self.versions),
                load_line(self.load_start, self.load_end)]

    def write_samples(self, name: str, mode: str, fields: dict[str, Any],
                      plot: Callable[[Path, str], bool]) -> None:
        """NAME-DATE.json in --out (the machine, versions, load and `fields`) and the plot
        that plot(PATH, TITLE) draws beside it."""
        out: Path = self.args.out
        out.mkdir(parents=True, exist_ok=True)
        stamp = str(self.info["date"]).replace(":", "")
        path = out / f"{name}-{stamp}.json"
        path.write_text(json.dumps({
            "benchmark": name, "mode": mode, "machine": self.info, "versions": self.versions,
            "loadavg": {"start": self.load_start, "end": self.load_end}, **fields},
            indent=1) + "\n")
        png = out / f"{name}-{stamp}.png"
        info = self.info
        plotted = plot(png, f"{name}: {info['nproc']} cpus, {info['kernel']}, {mode}, "
                            f"barque {info['barque']}")
        progress(f"samples: {path}")
        progress(f"plot: {png}" if plotted else "plot: skipped (no samples or no matplotlib)")


def interruptible(main: Callable[[], int]) -> int:
    """main()'s exit code; 130 after Ctrl-C (its PeerSession has cleaned up by then)."""
    try:
        return main()
    except KeyboardInterrupt:
        progress("interrupted (cleaned up)")
        return 130
