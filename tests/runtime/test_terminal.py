"""A terminal through --console-socket, as containerd's shim asks for one."""

from __future__ import annotations

import array
import os
import socket
import time

import pytest

from tests.support.bundles import Runtime

pytestmark = pytest.mark.root


def receive_master(listener: socket.socket) -> int | None:
    """The pty master sent on the console socket, or None if the runtime closed it empty."""
    conn, _ = listener.accept()
    with conn:
        fds = array.array("i")
        _, anc, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    return fds[0] if fds else None


def read_until(fd: int, needle: bytes, timeout: float = 10) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    os.set_blocking(fd, False)
    while needle not in out and time.monotonic() < deadline:
        try:
            out += os.read(fd, 4096)
        except BlockingIOError:
            time.sleep(0.02)
        except OSError:
            break
    return out


def test_console_socket_terminal(runtime: Runtime) -> None:
    sock_path = os.path.join(runtime.tmp, "console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(1)
    spec = runtime.spec(["sh"], terminal=True)
    spec["process"]["consoleSize"] = {"height": 30, "width": 101}
    cid = runtime.new_id()
    import subprocess

    create = subprocess.Popen([runtime.binary, "--root", runtime.state_root, "create",
                               "--bundle", runtime.bundle(spec), "--console-socket", sock_path,
                               cid], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    master = receive_master(listener)
    _, err = create.communicate(timeout=30)
    assert create.returncode == 0 and master is not None, err
    runtime.cmd("start", cid, check=True)
    os.write(master, b"tty; stty size; echo done-$((40+2))\n")
    out = read_until(master, b"done-42")
    assert b"/dev/pts/0" in out or b"/dev/console" in out
    assert b"30 101" in out
    assert b"done-42" in out
    os.write(master, b"exit 3\n")
    deadline = time.monotonic() + 10
    while runtime.state(cid)["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runtime.state(cid)["status"] == "stopped"
    os.close(master)
    listener.close()


def test_terminal_without_console_socket_is_refused(runtime: Runtime) -> None:
    spec = runtime.spec(["sh"], terminal=True)
    proc = runtime.cmd("create", "--bundle", runtime.bundle(spec), runtime.new_id())
    assert proc.returncode == 1 and b"console socket" in proc.stderr


def test_run_proxies_terminal(runtime: Runtime) -> None:
    import pty
    import subprocess

    try:
        master, slave = pty.openpty()
    except OSError as e:
        pytest.skip(f"this machine gives the test no pseudo-terminal: {e}")
    spec = runtime.spec(["sh", "-c", "tty; echo in-tty-$((6*7))"], terminal=True)
    proc = subprocess.Popen([runtime.binary, "--root", runtime.state_root, "run", "--bundle",
                             runtime.bundle(spec), runtime.new_id()], stdin=slave, stdout=slave,
                            stderr=slave)
    os.close(slave)
    out = read_until(master, b"in-tty-42")
    assert proc.wait(timeout=30) == 0
    assert b"in-tty-42" in out and b"/dev/pts/" in out
    os.close(master)


def test_exec_tty_through_console_socket(runtime: Runtime) -> None:
    import subprocess

    cid = runtime.new_id()
    runtime.cmd("run", "-d", "--bundle", runtime.bundle(runtime.spec(["sleep", "600"])), cid,
                check=True)
    sock_path = os.path.join(runtime.tmp, "exec-console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(1)
    proc = subprocess.Popen([runtime.binary, "--root", runtime.state_root, "exec", "--tty",
                             "--detach", "--console-socket", sock_path, cid, "sh", "-c",
                             "tty; echo exec-$((20+22)); sleep 1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    master = receive_master(listener)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and master is not None, err
    out = read_until(master, b"exec-42")
    assert b"/dev/pts/" in out and b"exec-42" in out
    os.close(master)
    listener.close()
