"""Starting a container's barque-monitor and reading what it reports (monitor/README.md)."""

from __future__ import annotations

import json
import os
import sys

from barque.structs import dataclass

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

MONITOR_NAME = "barque-monitor"


class MonitorError(Exception):
    """The container could not be started: the runtime's or the monitor's own message."""


def find_monitor() -> str:
    """BARQUE_MONITOR, else barque-monitor beside this Python's scripts, else on PATH."""
    from barque.engine.programs import find

    try:
        return find(MONITOR_NAME, "BARQUE_MONITOR")
    except LookupError as e:
        raise MonitorError(str(e)) from None


@dataclass
class Launch:
    container_id: str
    bundle: str
    dir: str  # the monitor's directory
    runtime: str
    runtime_root: str
    runtime_log: str
    log_file: str | None = None
    log_max_size: int = 0
    log_max_files: int = 1
    tty: bool = False
    stdin: bool = False
    stdin_once: bool = False
    restart: str = "no"
    wait_attach: bool = False
    exit_command: tuple[str, ...] = ()  # run once the container stopped for good
    health: tuple[int, int, int, int] | None = None  # interval, timeout (ms), retries, start
    hold_fds: tuple[int, ...] = ()  # sockets holding published host ports, kept by the monitor
    events: tuple[str, str, str] | None = None  # the event log, head, actor: restarts' events

    def argv(self, monitor: str) -> list[str]:
        argv = [monitor, "--id", self.container_id, "--bundle", self.bundle, "--dir", self.dir,
                "--runtime", self.runtime, "--runtime-root", self.runtime_root,
                "--runtime-log", self.runtime_log, "--restart", self.restart]
        if self.log_file:
            argv += ["--log-file", self.log_file, "--log-max-size", str(self.log_max_size),
                     "--log-max-files", str(self.log_max_files)]
        for flag, on in (("--tty", self.tty), ("--stdin", self.stdin),
                         ("--stdin-once", self.stdin_once), ("--wait-attach", self.wait_attach)):
            if on:
                argv.append(flag)
        if self.events is not None:
            argv += ["--events-log", self.events[0], "--event-head", self.events[1],
                     "--event-actor", self.events[2]]
        if self.health is not None:
            interval, timeout, retries, start = self.health
            argv += ["--health-interval", str(interval), "--health-timeout", str(timeout),
                     "--health-retries", str(retries), "--health-start-period", str(start)]
        for fd in self.hold_fds:
            argv += ["--hold-fd", str(fd)]
        if self.exit_command:
            argv += ["--exit-command", self.exit_command[0]]
            for arg in self.exit_command[1:]:
                argv += ["--exit-command-arg", arg]
        return argv


def restart_arg(host_config: dict[str, Any]) -> str:
    """HostConfig's RestartPolicy as the monitor takes it (--restart, `restart-policy`)."""
    policy = host_config.get("RestartPolicy") or {}
    name = str(policy.get("Name") or "no")
    retries = int(policy.get("MaximumRetryCount") or 0)
    return f"{name}:{retries}" if name == "on-failure" and retries else name


def set_restart(monitor_dir: str, host_config: dict[str, Any]) -> bool:
    """Give a running monitor its container's new restart policy (`restart-policy`), for
    the present run's end; False if no monitor listens (nothing runs: the next start takes
    the record's). MonitorError if the monitor refused it."""
    from barque.engine import attach

    try:
        attach.control(monitor_dir, f"restart-policy {restart_arg(host_config)}", timeout=30)
    except attach.MonitorGone:
        return False
    except attach.AttachError as e:
        raise MonitorError(str(e)) from None
    return True


def cleanup_command(root: str, runroot: str, container_id: str, run_id: str
                    ) -> tuple[str, ...]:
    """`barque container cleanup --run-id RUN ID` on these roots: what the monitor runs at
    the end (RUN names the start it belongs to: a later start's files are not its to undo)."""
    beside = os.path.join(os.path.dirname(sys.executable), "barque")
    if os.access(beside, os.X_OK):
        argv: tuple[str, ...] = (beside,)
    else:
        import shutil

        found = shutil.which("barque")
        argv = (found,) if found else (sys.executable, "-m", "barque.cli.main")
    return (*argv, "--root", root, "--runroot", runroot, "container", "cleanup", "--run-id",
            run_id, container_id)


def launch(spec: Launch) -> None:
    """Start the monitor, which creates and starts the container; return once it runs (or,
    with wait_attach, once it is created). MonitorError with the runtime's message if not."""
    import subprocess  # here: the commands that only read state (ps, inspect) never start one

    proc = subprocess.run(spec.argv(find_monitor()), stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120,
                          pass_fds=spec.hold_fds)
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        raise MonitorError(message[-1] if message else
                           f"{MONITOR_NAME} failed with status {proc.returncode}")


def read_state(monitor_dir: str, memo: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The monitor's state.json, None if there is none. With `memo` (the caller's, kept
    between calls: dir -> (bytes, parsed)) a file read again with the same bytes is not
    parsed again; the dict returned is then shared and must not be changed."""
    try:
        data = _read(os.path.join(monitor_dir, "state.json"))
    except OSError:
        return None
    if memo is not None:
        seen = memo.get(monitor_dir)
        if seen is not None and seen[0] == data:
            return seen[1]
    try:
        state = json.loads(data)
    except ValueError:
        return None
    if not isinstance(state, dict):
        return None
    if memo is not None:
        memo[monitor_dir] = (data, state)
    return state


def alive(pid: int) -> bool:
    """Is `pid` a live barque-monitor (not a zombie, nor a process that reused the number)?"""
    if pid <= 0:
        return False
    try:
        stat = _read(f"/proc/{pid}/stat")
    except OSError:
        return False
    name, _, rest = stat.partition(b" (")[2].rpartition(b")")
    return name == _MONITOR_COMM and rest.split(None, 1)[:1] != [b"Z"]


_MONITOR_COMM = MONITOR_NAME.encode()


def _read(path: str) -> bytes:
    """A small file's bytes, without a Python file object (a listing reads two a running
    container: its state.json and its monitor's /proc stat)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def request_stop(monitor_dir: str) -> None:
    """Tell the monitor the container is being stopped on purpose: no restart."""
    fd = os.open(os.path.join(monitor_dir, "stop"), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC,
                 0o600)
    os.close(fd)
