"""The two engines the compatibility suite compares: Debian's dockerd, started by the suite
on directories and a socket of its own, and Barque on a root of its own; both hold the same
busybox image under the same tag."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

# Debian's docker.io brings both: the daemon and its 20.10 client (the oracle the issue's
# 174 commands were tried with), never a newer client found first on PATH.
# Elsewhere (Docker's own packages) the daemon on PATH and its client beside it.
DOCKERD = "/usr/sbin/dockerd" if os.path.exists("/usr/sbin/dockerd") else "dockerd"
DOCKER_CLI = "/usr/bin/docker"
IMAGE = "busybox:latest"


@dataclass
class Result:
    stdout: str
    stderr: str
    code: int


@dataclass
class Engine:
    """One engine: the argv prefix of its CLI and the environment to run it in."""

    name: str
    prefix: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def run(self, argv: list[str], stdin: str | None = None, timeout: float = 60) -> Result:
        proc = subprocess.run(
            [*self.prefix, *argv], capture_output=True, text=True, timeout=timeout,
            input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
            env={**os.environ, **self.env})
        return Result(proc.stdout, proc.stderr, proc.returncode)

    def lines(self, *argv: str) -> list[str]:
        return self.run(list(argv)).stdout.split()

    def reset(self, kinds: set[str]) -> None:
        """Remove what a case made: every container, and the volumes, networks and images
        other than the suite's when the case may have made them."""
        ids = self.lines("ps", "-aq", "--no-trunc")
        if ids:
            self.run(["rm", "-f", "-v", *ids], timeout=120)
        if "volume" in kinds:
            vols = self.lines("volume", "ls", "-q")
            if vols:
                self.run(["volume", "rm", "-f", *vols])
        if "network" in kinds:
            nets = [n for n in self.lines("network", "ls", "--format", "{{.Name}}")
                    if n not in ("bridge", "host", "none")]
            if nets:
                self.run(["network", "rm", *nets])
        if "image" in kinds:
            refs = self.lines("images", "--format", "{{.Repository}}:{{.Tag}}")
            extra = [r for r in refs if r != IMAGE]
            if extra:
                self.run(["rmi", "-f", *extra])
            dangling = self.lines("images", "-q", "-f", "dangling=true")
            if dangling:
                self.run(["rmi", "-f", *dangling])
            self.run(["builder", "prune", "-a", "-f"])


class Dockerd:
    """Debian's dockerd on a data root, exec root, socket and pid file of its own, with no
    bridge and no iptables: it never touches docker0, the host's firewall or another
    helper's dockerd. Its cgroups go under a parent carrying the run's mark."""

    def __init__(self, run_prefix: str) -> None:
        self.work = tempfile.mkdtemp(prefix=f"{run_prefix}-dockerd-")
        self.socket = os.path.join(self.work, "docker.sock")
        self.pidfile = os.path.join(self.work, "docker.pid")
        self.log = os.path.join(self.work, "dockerd.log")
        self.cgroup_parent = f"{run_prefix}-docker"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        argv = [shutil.which(DOCKERD) or DOCKERD, "--data-root", os.path.join(self.work, "data"),
                "--exec-root", os.path.join(self.work, "exec"),
                "-H", f"unix://{self.socket}", "--pidfile", self.pidfile,
                "--bridge", "none", "--iptables=false", "--ip6tables=false",
                "--ip-masq=false", "--cgroup-parent", self.cgroup_parent,
                "--config-file", self._config_file()]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        cli = self.engine()
        while cli.run(["version", "--format", "{{.Server.Version}}"]).code != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not start:\n{self.tail()}")
            time.sleep(0.1)

    def _config_file(self) -> str:
        # An empty config: never the host's /etc/docker/daemon.json.
        path = os.path.join(self.work, "daemon.json")
        with open(path, "w") as f:
            f.write("{}\n")
        return path

    def engine(self) -> Engine:
        config = os.path.join(self.work, "client")
        os.makedirs(config, exist_ok=True)
        return Engine("docker", [DOCKER_CLI, "-H", f"unix://{self.socket}"],
                      {"DOCKER_CONFIG": config})

    def tail(self) -> str:
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-20:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM to our dockerd by its pid (it stops its containerd), SIGKILL after 30 s;
        then whatever it left mounted under its directories, then the directories."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._kill_leftovers()
        self._unmount_all()
        shutil.rmtree(self.work, ignore_errors=True)

    def _kill_leftovers(self, timeout: float = 15) -> None:
        """containerd and its shims name our directories in their argv: wait for them to go,
        then kill the stragglers by pid."""
        deadline = time.monotonic() + timeout
        while True:
            pids = _pids_naming(self.work)
            if not pids:
                return
            if time.monotonic() > deadline:
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.2)
                return
            time.sleep(0.1)

    def _unmount_all(self) -> None:
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
        for point in reversed(points):
            if point == self.work or point.startswith(self.work + "/"):
                subprocess.run(["umount", "--lazy", point], check=False,
                               stderr=subprocess.DEVNULL)


def _pids_naming(path: str) -> list[int]:
    needle = path.encode()
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if needle in f.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found
