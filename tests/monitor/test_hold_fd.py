"""barque-monitor's --hold-fd (monitor/README.md): a socket holding a host port stays open in
the monitor for its whole life, reaches none of its children (the runtime, the container, a
health check, the exit command) and is closed at the end, before the exit command runs.

Ports are on 127.0.0.1, chosen by the kernel; every monitor and container is removed by the
fixtures."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import time

import pytest

from tests.monitor.test_monitor import Launched, Monitors, fd_targets

pytestmark = pytest.mark.root


def held_socket() -> tuple[socket.socket, int, str]:
    """A listening TCP socket on a kernel-chosen 127.0.0.1 port, as ports.reserve makes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock, sock.getsockname()[1], f"socket:[{os.fstat(sock.fileno()).st_ino}]"


def can_bind(port: int) -> bool:
    """Could a host process take the port (even one that sets SO_REUSEADDR)?"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
        except OSError as e:
            assert e.errno == errno.EADDRINUSE
            return False
    return True


def test_hold_fd_kept_by_the_monitor_alone(mon: Monitors, tmp_path: os.PathLike) -> None:
    sock, port, target = held_socket()
    exit_fds = os.path.join(str(tmp_path), "exit-fds")
    spec = mon.rt.spec(["sleep", "600"])
    flags = ["--hold-fd", str(sock.fileno()),
             "--health-interval", "100", "--health-timeout", "5000", "--health-retries", "3",
             "--health-start-period", "0",
             "--exit-command", "/bin/sh", "--exit-command-arg", "-c",
             "--exit-command-arg", f"ls -l /proc/$$/fd/ > {exit_fds}"]
    cmd, cid, directory, log_path, bundle = mon.command(spec, flags)
    with open(os.path.join(directory, "health.json"), "w") as f:  # the engine's job
        json.dump(dict(spec["process"], args=["ls", "-l", "/proc/self/fd/"], terminal=False), f)
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=60, pass_fds=[sock.fileno()])
        m = Launched(cid, directory, log_path, bundle, proc)
        mon.launched.append(m)
        assert proc.returncode == 0, proc.stderr
    finally:
        sock.close()  # from now on only the monitor holds the port
    assert target in fd_targets(m.pid).values()
    assert not can_bind(port)
    init = m.state["Pid"]
    assert target not in fd_targets(init).values()
    check = m.wait(lambda s: bool((s.get("Health") or {}).get("Log")), 20, "a health check")
    output = check["Health"]["Log"][0]["Output"]
    assert "0 -> /dev/null" in output and "socket:" not in output, output
    mon.rt.cmd("kill", cid, "KILL", check=True)
    m.wait_done()
    deadline = time.monotonic() + 10
    while not os.path.exists(exit_fds) and time.monotonic() < deadline:
        time.sleep(0.02)
    with open(exit_fds) as f:
        assert "socket:" not in f.read()
    assert can_bind(port)  # closed at the end


def test_hold_fd_not_open_is_refused(monitor_bin: str) -> None:
    for value in ("99", "1", "x", "-3"):
        proc = subprocess.run([monitor_bin, "--hold-fd", value, "--id", "x", "--bundle", "/",
                               "--dir", "/", "--runtime", "x", "--runtime-root", "/"],
                              capture_output=True, timeout=10)
        assert proc.returncode == 1 and proc.stdout == b""
        assert proc.stderr.startswith(b"barque-monitor: invalid --hold-fd"), proc.stderr
