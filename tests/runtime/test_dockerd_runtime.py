"""dockerd drives barque-runtime as it drives runc (`--add-runtime` / daemon.json "runtimes").

A private Debian docker.io dockerd (own socket, data-root, exec-root, cgroup parent, no bridge
and no iptables rules) has barque-runtime registered as "barque". Each test does the same
thing with `--runtime runc` and `--runtime barque` and compares what the docker CLI shows:
output, exit code, effect."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import RUN_PREFIX, runtime_binary
from tests.support.docker_archive import write_busybox_archive
from tests.support.dockerd import private_dockerd

pytestmark = [pytest.mark.root, pytest.mark.slow]

IMAGE = f"{RUN_PREFIX}-busybox:latest"
V2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
# (controller, file) of the memory and pids limits, read on the host in the container's cgroup
LIMIT_FILES = ([("", "memory.max"), ("", "pids.max")] if V2 else
               [("memory", "memory.limit_in_bytes"), ("pids", "pids.max")])
RUNTIMES = ("runc", "barque")


@pytest.fixture(scope="module")
def docker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    with private_dockerd(RUN_PREFIX, {"barque": runtime_binary()}) as cli:
        archive = str(tmp_path_factory.mktemp("dockerd") / "busybox.tar")
        write_busybox_archive(archive, IMAGE)
        subprocess.run([*cli, "load", "-i", archive], check=True, capture_output=True)
        yield cli


def sh(docker: list[str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([*docker, *args], capture_output=True, text=True, timeout=timeout)


def ok(docker: list[str], *args: str) -> str:
    proc = sh(docker, *args)
    assert proc.returncode == 0, f"docker {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def beside_runc(observe: Callable[[str], object]) -> object:
    """`observe` under each runtime; barque's observation must equal runc's."""
    seen = {rt: observe(rt) for rt in RUNTIMES}
    assert seen["barque"] == seen["runc"]
    return seen["runc"]


def run_args(rt: str, name: str) -> list[str]:
    return ["run", "--name", f"{RUN_PREFIX}-{name}-{rt}", "--network", "none", "--runtime", rt]


def test_registered(docker: list[str]) -> None:
    assert "barque" in ok(docker, "info", "--format", "{{json .Runtimes}}")


def test_detached_lifecycle(docker: list[str]) -> None:
    """run -d with --memory and --pids-limit, logs, exec, top, stats, pause/unpause,
    update -m, stop, rm."""
    def observe(rt: str) -> dict:
        name = f"{RUN_PREFIX}-life-{rt}"
        ok(docker, *run_args(rt, "life"), "-d", "--memory", "64m", "--pids-limit", "50",
           IMAGE, "sh", "-c", "echo started; exec sleep 300")
        seen: dict[str, object] = {}
        try:
            _until(lambda: "started" in ok(docker, "logs", name))
            seen["logs"] = ok(docker, "logs", name)
            seen["limits"] = limits(docker, name)
            seen["own cgroup"] = in_own_cgroup(docker, name)
            exit_code = sh(docker, "exec", name, "sh", "-c", "exit 9").returncode
            seen["exec exit"] = exit_code
            seen["exec -u -w"] = ok(docker, "exec", "-u", "1000", "-w", "/tmp", name, "sh", "-c",
                                    "id -u; pwd")
            # dockerd asks the runtime (`ps --format json`) which host pids are the container's
            top = ok(docker, "top", name, "-o", "pid,comm").splitlines()
            seen["top"] = [row.split()[1] for row in top]
            stats = ok(docker, "stats", "--no-stream", "--format",
                       "{{.MemUsage}} {{.PIDs}}", name).split()
            seen["stats limit, pids"] = (stats[-2], stats[-1])
            ok(docker, "pause", name)
            seen["paused"] = ok(docker, "inspect", "-f", "{{.State.Status}}", name).strip()
            ok(docker, "unpause", name)
            seen["unpaused"] = ok(docker, "inspect", "-f", "{{.State.Status}}", name).strip()
            ok(docker, "update", "-m", "128m", "--memory-swap", "256m", name)
            seen["updated"] = limits(docker, name)[0]
            ok(docker, "stop", "-t", "1", name)
            seen["stopped"] = ok(docker, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}",
                                 name).strip()
        finally:
            sh(docker, "rm", "-f", name)
        seen["removed"] = sh(docker, "inspect", name).returncode
        return seen

    seen = beside_runc(observe)
    assert isinstance(seen, dict)
    assert seen["logs"] == "started\n" and seen["limits"] == [str(64 << 20), "50"]
    assert seen["own cgroup"] and seen["exec exit"] == 9
    assert seen["exec -u -w"] == "1000\n/tmp\n" and seen["top"] == ["COMMAND", "sleep"]
    assert seen["stats limit, pids"] == ("64MiB", "1")
    assert (seen["paused"], seen["unpaused"]) == ("paused", "running")
    assert seen["updated"] == str(128 << 20)
    assert seen["stopped"] == "exited 137" and seen["removed"] == 1


def limits(docker: list[str], name: str) -> list[str]:
    """The memory and pids limits in the container's cgroup, read from the host."""
    pid = ok(docker, "inspect", "-f", "{{.State.Pid}}", name).strip()
    paths: dict[str, str] = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(","):
                paths[controller] = path
    values = []
    for controller, file in LIMIT_FILES:
        with open(os.path.join("/sys/fs/cgroup", controller) + paths[controller] + "/" + file) as f:
            values.append(f.read().strip())
    return values


def in_own_cgroup(docker: list[str], name: str) -> bool:
    """The container's init, seen from the host, is in <cgroup parent>/<id> in the pids
    hierarchy (v1) or the unified one (v2)."""
    full_id, pid = ok(docker, "inspect", "-f", "{{.Id}} {{.State.Pid}}", name).split()
    with open(f"/proc/{pid}/cgroup") as f:
        lines = [line.rstrip() for line in f if ":pids:" in line or line.startswith("0::")]
    want = f"/{RUN_PREFIX}-docker/{full_id}"
    return bool(lines) and all(line.endswith(want) for line in lines
                               if V2 or ":pids:" in line)


def test_interactive_tty(docker: list[str]) -> None:
    """`docker run -it` under a pty: a terminal inside, stdin typed through, the exit code."""
    def observe(rt: str) -> tuple[int, bool, bool]:
        code, out = _in_pty([*docker, *run_args(rt, "tty"), "--rm", "-it", IMAGE, "sh"],
                            b"tty; echo typed-$((6*7)); exit 5\n")
        return code, "/dev/pts/0" in out, "typed-42" in out

    assert beside_runc(observe) == (5, True, True)


def test_exec_with_a_tty(docker: list[str]) -> None:
    def observe(rt: str) -> tuple[int, bool]:
        name = f"{RUN_PREFIX}-exectty-{rt}"
        ok(docker, *run_args(rt, "exectty"), "-d", IMAGE, "sleep", "300")
        try:
            code, out = _in_pty([*docker, "exec", "-it", name, "sh", "-c", "tty; exit 2"], b"")
        finally:
            sh(docker, "rm", "-f", name)
        return code, "/dev/pts/" in out

    assert beside_runc(observe) == (2, True)


def test_restart_policy_on_failure(docker: list[str]) -> None:
    def observe(rt: str) -> tuple[str, str]:
        name = f"{RUN_PREFIX}-restart-{rt}"
        ok(docker, *run_args(rt, "restart"), "-d", "--restart", "on-failure:2", IMAGE,
           "sh", "-c", "echo run; exit 7")
        try:
            state = "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}"
            _until(lambda: ok(docker, "inspect", "-f", state, name).strip() == "2 exited 7",
                   timeout=60)
            return ok(docker, "inspect", "-f", state, name).strip(), ok(docker, "logs", name)
        finally:
            sh(docker, "rm", "-f", name)

    assert beside_runc(observe) == ("2 exited 7", "run\nrun\nrun\n")


def test_memory_limit_oom_kill(docker: list[str]) -> None:
    def observe(rt: str) -> tuple[int, str]:
        name = f"{RUN_PREFIX}-oom-{rt}"
        try:
            proc = sh(docker, *run_args(rt, "oom"), "-m", "16m", "--memory-swap", "16m", IMAGE,
                      "sh", "-c", "x=a; while true; do x=$x$x; done")
            return proc.returncode, ok(docker, "inspect", "-f",
                                       "{{.State.OOMKilled}} {{.State.ExitCode}}", name).strip()
        finally:
            sh(docker, "rm", "-f", name)

    assert beside_runc(observe) == (137, "true 137")


def test_pids_limit_refuses_forks(docker: list[str]) -> None:
    def observe(rt: str) -> tuple[int, bool]:
        proc = sh(docker, *run_args(rt, "pids"), "--rm", "--pids-limit", "4", IMAGE, "sh",
                  "-c", "for i in 1 2 3 4 5 6; do sleep 3 & done; wait")
        return proc.returncode, "can't fork" in proc.stderr

    assert beside_runc(observe) == (2, True)  # sh gives up at the first refused fork


@pytest.mark.parametrize("command,code", [("no-such-command", 127), ("/etc", 126),
                                          ("/etc/passwd", 126)])
def test_a_command_that_cannot_start(docker: list[str], command: str, code: int) -> None:
    """dockerd maps the runtime's words to 127/126: the words must be runc's."""
    def observe(rt: str) -> tuple[int, str, int, str]:
        run = sh(docker, *run_args(rt, "nostart"), "--rm", IMAGE, command)
        name = f"{RUN_PREFIX}-nostart-exec-{rt}"
        ok(docker, *run_args(rt, "nostart-exec"), "-d", IMAGE, "sleep", "300")
        try:
            exe = sh(docker, "exec", name, command)
        finally:
            sh(docker, "rm", "-f", name)
        # exec's reason: runc 1.1.5 in the pure v2 guest says "stat /etc: no such file or
        # directory" for a path that exists; the words up to the command are compared
        exec_words = _runtime_words(exe.stdout + exe.stderr).partition(f'"{command}": ')
        return run.returncode, _runtime_words(run.stderr), exe.returncode, exec_words[:2]

    run_code, run_words, exec_code, exec_words = beside_runc(observe)  # type: ignore[misc]
    assert run_code == code and exec_code == 126
    assert run_words.startswith("unable to start container process: exec: ")
    assert exec_words == ("unable to start container process: exec: ", f'"{command}": ')


def _runtime_words(stderr: str) -> str:
    """The runtime's own error, without what names the runtime (runc's "runc create failed: ")
    and without dockerd's wrapping."""
    m = re.search(r"(unable to start container process: .*?)(: unknown|$)", stderr, re.M)
    return m.group(1) if m else stderr


def _until(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _in_pty(argv: list[str], typed: bytes, timeout: float = 60) -> tuple[int, str]:
    """Run argv with a pty as its stdio (as a user's terminal); type `typed`; return its exit
    code and everything it wrote."""
    try:
        pid, fd = pty.fork()
    except OSError as e:  # as tests/runtime/test_terminal.py (the cgroup v2 guest has none)
        pytest.skip(f"this machine gives the test no pseudo-terminal: {e}")
    if pid == 0:
        os.execvp(argv[0], argv)
    out = b""
    deadline = time.monotonic() + timeout
    sent = False
    try:
        while time.monotonic() < deadline:
            if not sent and (b"# " in out or not typed):
                os.write(fd, typed)
                sent = True
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the other side closed
                    break
                if not chunk:
                    break
                out += chunk
    finally:
        os.close(fd)
        if time.monotonic() >= deadline:
            os.kill(pid, 9)  # our own child: the docker CLI that did not end in time
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_a_user_in_a_workdir_only_root_may_enter(docker: list[str]) -> None:
    """`-u 1000 -w /root`: the process starts in /root (runc's chdir is root's) and fails
    only where it reads it."""
    def observe(rt: str) -> tuple[int, str]:
        proc = sh(docker, *run_args(rt, "workdir"), "--rm", "-u", "1000", "-w", "/root", IMAGE,
                  "sh", "-c", "pwd; ls")
        return proc.returncode, proc.stdout

    assert beside_runc(observe) == (1, "/root\n")
