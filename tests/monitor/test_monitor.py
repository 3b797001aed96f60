"""barque-monitor driven for real: barque-runtime, busybox bundles, its files and sockets.

Every wait is bounded; every monitor, container and directory a test makes is removed by the
fixtures (monitors by the pid their state.json gives, containers by `delete --force`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from tests.support.bundles import Runtime

pytestmark = pytest.mark.root

LOG_LINE = re.compile(
    rb'^\{"log":"(.*)","stream":"(stdout|stderr)",'
    rb'"time":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{0,8}[1-9])?Z)"\}$'
)


def parse_time(text: str) -> float:
    """An RFC 3339 UTC time with up to 9 fraction digits, in seconds since the epoch."""
    base, _, frac = text.rstrip("Z").partition(".")
    whole = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return whole + (int(frac.ljust(9, "0")) / 1e9 if frac else 0.0)


class Launched:
    """One monitor and its container."""

    def __init__(self, cid: str, directory: str, log: str | None, bundle: str,
                 proc: subprocess.CompletedProcess) -> None:
        self.id = cid
        self.dir = directory
        self.log = log
        self.bundle = bundle
        self.proc = proc
        self.pid = 0
        try:
            self.pid = self.state["MonitorPid"]
        except (OSError, ValueError):
            pass

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    @property
    def state(self) -> dict:
        with open(self.path("state.json")) as f:
            return json.load(f)

    def monitor_alive(self) -> bool:
        """Alive and still this monitor (the pid is not reused by something else)."""
        try:
            with open(f"/proc/{self.pid}/cmdline", "rb") as f:
                if self.id.encode() not in f.read():
                    return False
            with open(f"/proc/{self.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def wait(self, pred: Callable[[dict], bool], timeout: float = 30, what: str = "") -> dict:
        deadline = time.monotonic() + timeout
        state: dict = {}
        while time.monotonic() < deadline:
            try:
                state = self.state
                if pred(state):
                    return state
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what or pred}: last state {state}")

    def wait_done(self, timeout: float = 30) -> dict:
        """The final state, once the monitor has exited."""
        state = self.wait(lambda s: s["Status"] == "exited", timeout, "exited")
        deadline = time.monotonic() + timeout
        while self.monitor_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not self.monitor_alive(), "the monitor outlived its container"
        return self.state if self.state != state else state

    def log_entries(self, path: str | None = None) -> list[tuple[bytes, str, str]]:
        """(raw escaped log text, stream, time) per line, each line checked for Docker's shape."""
        entries = []
        with open(path or self.log or "", "rb") as f:
            for line in f.read().split(b"\n")[:-1]:
                m = LOG_LINE.match(line)
                assert m, f"not a Docker json-file line: {line!r}"
                entries.append((m.group(1), m.group(2).decode(), m.group(3).decode()))
        return entries

    def logged(self, stream: str = "stdout") -> str:
        """The decoded text of one stream in the log."""
        return "".join(json.loads(b'"' + raw + b'"') for raw, s, _ in self.log_entries()
                       if s == stream)


class Monitors:
    def __init__(self, rt: Runtime, binary: str) -> None:
        self.rt = rt
        self.binary = binary
        self.launched: list[Launched] = []

    def command(self, spec: dict, flags: list[str], log: bool = True, long_dir: bool = False
                ) -> tuple[list[str], str, str, str | None, str]:
        cid = self.rt.new_id()
        # long_dir: past the 108 bytes a unix socket's path may have
        directory = os.path.join(self.rt.tmp, f"mon-{cid}" + ("-" + "d" * 100 if long_dir else ""))
        os.makedirs(directory)
        bundle = self.rt.bundle(spec, copy_rootfs=False)
        log_path = os.path.join(directory, "ctr.log") if log else None
        cmd = [self.binary, "--id", cid, "--bundle", bundle, "--dir", directory,
               "--runtime", self.rt.binary, "--runtime-root", self.rt.state_root,
               "--runtime-log", os.path.join(directory, "runtime.log")]
        if log_path:
            cmd += ["--log-file", log_path]
        return cmd + flags, cid, directory, log_path, bundle

    def launch(self, args: list[str], flags: list[str] | None = None, log: bool = True,
               terminal: bool = False, spec: dict | None = None, timeout: float = 60,
               long_dir: bool = False) -> Launched:
        spec = spec or self.rt.spec(args, terminal=terminal)
        cmd, cid, directory, log_path, bundle = self.command(spec, flags or [], log, long_dir)
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout)
        launched = Launched(cid, directory, log_path, bundle, proc)
        self.launched.append(launched)
        return launched

    def adopt(self, cid: str, directory: str, log_path: str | None, bundle: str) -> Launched:
        """A monitor launched some other way (its state.json names it)."""
        launched = Launched(cid, directory, log_path, bundle,
                            subprocess.CompletedProcess([], 0))
        self.launched.append(launched)
        return launched

    def cleanup(self) -> None:
        for m in self.launched:
            if not m.pid:
                try:
                    m.pid = m.state["MonitorPid"]
                except (OSError, ValueError, KeyError):
                    pass
            if m.pid and m.monitor_alive():
                os.kill(m.pid, signal.SIGKILL)
                deadline = time.monotonic() + 10
                while m.monitor_alive() and time.monotonic() < deadline:
                    time.sleep(0.02)
        self.rt.cleanup()  # delete --force every container id it handed out
        for m in self.launched:
            shutil.rmtree(m.dir, ignore_errors=True)
            shutil.rmtree(m.bundle, ignore_errors=True)


def attach(m: Launched) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(m.path("attach.sock"))
    return sock


def attach_long(m: Launched) -> socket.socket:
    """attach.sock in a directory too deep for sun_path: through /proc/self/fd."""
    dir_fd = os.open(m.dir, os.O_PATH | os.O_DIRECTORY)
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(30)
        sock.connect(f"/proc/self/fd/{dir_fd}/attach.sock")
        return sock
    finally:
        os.close(dir_fd)


def read_to_eof(sock: socket.socket, timeout: float = 30) -> bytes:
    data = bytearray()  # grows in place: a client must keep up with the container
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(1 << 20)
        if not chunk:
            return bytes(data)
        data += chunk
    raise AssertionError(f"no EOF from the monitor; got {bytes(data[-200:])!r}")


def read_until(sock: socket.socket, needle: bytes, timeout: float = 30) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while needle not in data and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def demux(data: bytes) -> tuple[bytes, bytes]:
    """Docker's stdcopy: 8-byte headers [stream, 0, 0, 0, size (big-endian)] before chunks."""
    out, err, pos = b"", b"", 0
    while pos < len(data):
        assert len(data) - pos >= 8, f"truncated header at {pos}: {data!r}"
        stream, z1, z2, z3, size = struct.unpack(">BBBBI", data[pos:pos + 8])
        assert (z1, z2, z3) == (0, 0, 0) and stream in (1, 2), f"bad header {data[pos:pos+8]!r}"
        chunk = data[pos + 8:pos + 8 + size]
        assert len(chunk) == size, "truncated frame"
        if stream == 1:
            out += chunk
        else:
            err += chunk
        pos += 8 + size
    return out, err


def ctl(m: Launched, line: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(m.path("ctl.sock"))
        sock.sendall(line.encode() + b"\n")
        return read_until(sock, b"\n", 10).decode()


def ppid(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("PPid:"):
                return int(line.split()[1])
    raise AssertionError("no PPid")


def fd_targets(pid: int) -> dict[int, str]:
    base = f"/proc/{pid}/fd"
    targets = {}
    for n in os.listdir(base):
        try:
            targets[int(n)] = os.readlink(os.path.join(base, n))
        except FileNotFoundError:  # closed meanwhile: the init may still be in its execve
            pass
    return targets


# ---- launching ----


def test_launch_returns_once_running_and_detaches(mon: Monitors) -> None:
    start = time.monotonic()
    m = mon.launch(["sleep", "600"], timeout=20)  # capture_output: returns only at EOF
    assert time.monotonic() - start < 15
    assert (m.proc.returncode, m.proc.stdout, m.proc.stderr) == (0, b"", b"")
    state = m.state
    assert state["Status"] == "running" and state["Pid"] > 0
    assert (state["FinishedAt"], state["ExitCode"], state["RestartCount"]) == ("", 0, 0)
    assert state["OOMKilled"] is False and state["Error"] == ""
    assert parse_time(state["StartedAt"]) <= time.time() + 1
    assert m.monitor_alive() and state["MonitorPid"] == m.pid
    assert os.getsid(m.pid) == m.pid  # a session of its own
    fds = fd_targets(m.pid)
    assert [fds[i] for i in (0, 1, 2)] == ["/dev/null"] * 3
    # the init is the monitor's child (subreaper) and writes into the monitor's pipes
    init = state["Pid"]
    assert ppid(init) == m.pid
    init_fds = fd_targets(init)
    assert init_fds[1].startswith("pipe:") and init_fds[1] in fds.values()
    assert init_fds[0] == "/dev/null"  # no --stdin
    assert mon.rt.state(m.id)["status"] == "running"
    assert os.path.exists(m.path("attach.sock")) and os.path.exists(m.path("ctl.sock"))
    mon.rt.cmd("kill", m.id, "KILL", check=True)
    final = m.wait_done()
    assert final["ExitCode"] == 137 and final["Pid"] == 0


def test_exit_code_state_and_cleanup(mon: Monitors) -> None:
    m = mon.launch(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert m.proc.returncode == 0, m.proc.stderr
    final = m.wait_done()
    assert final["Status"] == "exited" and final["ExitCode"] == 3 and final["Pid"] == 0
    assert final["FinishedAt"] and parse_time(final["FinishedAt"]) >= parse_time(
        final["StartedAt"])
    assert final["OOMKilled"] is False and final["RestartCount"] == 0 and final["Error"] == ""
    assert final["MonitorPid"] == m.pid
    for name in ("attach.sock", "ctl.sock", "console.sock"):
        assert not os.path.exists(m.path(name)), name
    assert not os.path.exists(os.path.join(mon.rt.state_root, m.id))  # runtime's deleted
    assert mon.rt.cmd("state", m.id).returncode != 0
    entries = m.log_entries()
    assert sorted((raw, stream) for raw, stream, _ in entries) == [
        (b"err\\n", "stderr"), (b"out\\n", "stdout")]


def test_failed_create_reports_the_runtime_error(mon: Monitors) -> None:
    start = time.monotonic()
    m = mon.launch(["nope"], timeout=30)
    assert time.monotonic() - start < 20
    assert m.proc.returncode == 1
    assert m.proc.stdout == b""
    assert m.proc.stderr == (b'barque-runtime run failed: '  # runc's words, with our name
                             b'unable to start container process: '
                             b'exec: "nope": executable file not found in $PATH\n')
    assert not os.path.exists(os.path.join(mon.rt.state_root, m.id))
    assert mon.rt.cmd("state", m.id).returncode != 0
    for name in ("attach.sock", "ctl.sock"):
        assert not os.path.exists(m.path(name)), name
    deadline = time.monotonic() + 10
    while m.monitor_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not m.monitor_alive()
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    assert m.id not in out
    state = m.state
    assert state["Status"] == "exited" and state["ExitCode"] == 127
    assert "executable file not found" in state["Error"]


# ---- logs ----


def test_log_lines_in_docker_shape(mon: Monitors) -> None:
    out_fmt = (r"a\042b\134c\011\074\076\046\001\015\n"  # a"b\c TAB <>& ^A CR
               r"\377\303\251\342\200\250\n")              # invalid byte, é, U+2028
    err_fmt = r"\033[1mbold\n"
    script = ('printf "$0"; printf "$1" >&2; head -c 20000 /dev/zero | tr "\\000" x; echo; '
              "printf partial")
    m = mon.launch(["sh", "-c", script, out_fmt, err_fmt])
    assert m.proc.returncode == 0, m.proc.stderr
    assert m.wait_done()["ExitCode"] == 0
    entries = m.log_entries()
    out = [(raw, t) for raw, s, t in entries if s == "stdout"]
    err = [raw for raw, s, _ in entries if s == "stderr"]
    assert [raw for raw, _ in out] == [
        b'a\\"b\\\\c\\t\\u003c\\u003e\\u0026\\u0001\\r\\n',
        "\\ufffd\u00e9\\u2028\\n".encode(),
        b"x" * 16384,          # 16 KiB of a line without its end: a piece of its own
        b"x" * 3616 + b"\\n",  # the rest, with the newline
        b"partial",            # the end of the stream: a last line without newline
    ]
    assert out[2][1] == out[3][1]  # the pieces of one line share its time
    assert err == [b"\\u001b[1mbold\\n"]
    # and it decodes back to what the container wrote (invalid bytes replaced)
    assert m.logged("stdout").startswith('a"b\\c\t<>&\x01\r\n\ufffd\u00e9\u2028\n')


def test_log_rotation(mon: Monitors) -> None:
    m = mon.launch(["seq", "1", "3000"], ["--log-max-size", "2000", "--log-max-files", "3"])
    assert m.proc.returncode == 0, m.proc.stderr
    m.wait_done()
    assert m.log
    files = [m.log, m.log + ".1", m.log + ".2"]
    for path in files:
        assert os.path.exists(path), path
        assert 0 < os.path.getsize(path) <= 2000, (path, os.path.getsize(path))
    assert not os.path.exists(m.log + ".3")
    numbers = [int(json.loads(b'"' + raw + b'"')) for path in reversed(files)
               for raw, _, _ in m.log_entries(path)]
    assert numbers == list(range(numbers[0], 3001))  # oldest file first, nothing lost between


def test_log_rotation_single_file_truncates(mon: Monitors) -> None:
    m = mon.launch(["seq", "1", "1000"], ["--log-max-size", "500"])
    assert m.proc.returncode == 0, m.proc.stderr
    m.wait_done()
    assert m.log and 0 < os.path.getsize(m.log) <= 500
    assert not os.path.exists(m.log + ".1")
    assert m.log_entries()[-1][0] == b"1000\\n"


# ---- attach and control ----


def test_attach_receives_stdcopy_frames(mon: Monitors) -> None:
    m = mon.launch(["sh", "-c", "read x; echo hello; echo oops >&2; echo bye"], ["--stdin"],
                   log=False)
    assert m.proc.returncode == 0, m.proc.stderr
    first, second = attach(m), attach(m)
    first.sendall(b"go\n")
    got = [read_to_eof(first), read_to_eof(second)]
    for data in got:
        assert data[:1] in (b"\x01", b"\x02")
        out, err = demux(data)
        assert (out, err) == (b"hello\nbye\n", b"oops\n")
    first.close()
    second.close()
    assert m.wait_done()["ExitCode"] == 0
    assert not os.path.exists(m.path("ctr.log"))


def test_wait_attach_loses_no_output(mon: Monitors) -> None:
    m = mon.launch(["sh", "-c", "echo first; echo second >&2"], ["--wait-attach"])
    assert m.proc.returncode == 0, m.proc.stderr
    assert m.state["Status"] == "created"
    sock = attach(m)
    out, err = demux(read_to_eof(sock))
    sock.close()
    assert (out, err) == (b"first\n", b"second\n")
    assert m.wait_done()["ExitCode"] == 0


def test_stdin_once_through_attach(mon: Monitors) -> None:
    m = mon.launch(["cat"], ["--stdin", "--stdin-once"])
    assert m.proc.returncode == 0, m.proc.stderr
    assert fd_targets(m.state["Pid"])[0].startswith("pipe:")
    sock = attach(m)
    sock.sendall(b"hello\nworld")
    sock.shutdown(socket.SHUT_WR)  # the half-close closes the container's stdin
    out, err = demux(read_to_eof(sock))
    # EOF comes after the final state: an attached client reads its exit code at once
    assert m.state["Status"] == "exited" and m.state["ExitCode"] == 0
    sock.close()
    assert (out, err) == (b"hello\nworld", b"")
    assert m.wait_done()["ExitCode"] == 0
    assert m.logged() == "hello\nworld"


def test_stdin_once_empty_input(mon: Monitors) -> None:
    m = mon.launch(["cat"], ["--stdin", "--stdin-once"])
    assert m.proc.returncode == 0, m.proc.stderr
    watcher = attach(m)  # attached for output only: its going away closes nothing
    watcher.close()
    time.sleep(0.3)
    assert m.state["Status"] == "running"
    sock = attach(m)
    sock.shutdown(socket.SHUT_WR)  # `run -i` with empty input
    assert read_to_eof(sock) == b""
    sock.close()
    assert m.wait_done()["ExitCode"] == 0


def test_slow_client_is_dropped_without_blocking(mon: Monitors) -> None:
    total = 800 * 10000
    # Paced (1 ms between 10 kB chunks): the fast reader keeps up even on a loaded machine,
    # while the one that never reads falls 8 MB behind, far past what the monitor queues.
    script = ("read x; i=0; while [ $i -lt 800 ]; do head -c 10000 /dev/zero; usleep 1000; "
              "i=$((i+1)); done; echo done")
    m = mon.launch(["sh", "-c", script], ["--stdin"], log=False)
    assert m.proc.returncode == 0, m.proc.stderr
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(m.path("attach.sock"))  # never reads while the container writes
    fast = attach(m)
    fast.sendall(b"go\n")
    out, _ = demux(read_to_eof(fast, 60))
    assert len(out) == total + 5 and out.endswith(b"done\n")
    final = m.wait_done()
    assert final["ExitCode"] == 0
    slow.settimeout(10)
    got = 0
    while chunk := slow.recv(1 << 20):
        got += len(chunk)
    assert got < total  # dropped part way
    slow.close()
    fast.close()


def test_close_stdin_through_ctl(mon: Monitors) -> None:
    m = mon.launch(["cat"], ["--stdin"])
    assert m.proc.returncode == 0, m.proc.stderr
    sock = attach(m)
    sock.sendall(b"abc\n")
    assert read_until(sock, b"abc\n").endswith(b"abc\n")
    assert m.state["Status"] == "running"  # no --stdin-once: stdin stays open
    assert ctl(m, "close-stdin") == "ok\n"
    read_to_eof(sock)
    sock.close()
    assert m.wait_done()["ExitCode"] == 0


def test_ctl_errors(mon: Monitors) -> None:
    m = mon.launch(["sleep", "600"])
    assert m.proc.returncode == 0, m.proc.stderr
    assert ctl(m, "resize 30 100").startswith("error ")  # no terminal
    assert ctl(m, "frobnicate").startswith("error ")
    assert ctl(m, "close-stdin") == "ok\n"
    mon.rt.cmd("kill", m.id, "KILL", check=True)
    m.wait_done()


def test_tty_wait_attach_resize(mon: Monitors) -> None:
    m = mon.launch(["sh", "-c", "read line; stty size; echo done-$((6*7))"],
                   ["--tty", "--stdin", "--wait-attach"], terminal=True)
    assert m.proc.returncode == 0, m.proc.stderr
    state = m.state
    assert state["Status"] == "created" and state["Pid"] == 0 and state["StartedAt"] == ""
    time.sleep(0.3)
    # Nothing runs before the first attach client: not even the runtime's container.
    assert m.state["Status"] == "created"
    assert mon.rt.cmd("state", m.id).returncode != 0
    sock = attach(m)
    m.wait(lambda s: s["Status"] == "running", 20, "running")
    assert not os.path.exists(m.path("console.sock"))  # used once, removed
    assert ctl(m, "resize 30 100") == "ok\n"
    sock.sendall(b"go\n")
    data = read_to_eof(sock)
    sock.close()
    assert b"30 100\r\n" in data and b"done-42\r\n" in data  # raw terminal output
    assert b"\x01\x00\x00\x00" not in data and b"\x02\x00\x00\x00" not in data
    assert m.wait_done()["ExitCode"] == 0
    entries = m.log_entries()
    assert {stream for _, stream, _ in entries} == {"stdout"}
    assert "30 100\r\n" in m.logged()


def test_tty_stdin_once_sends_eof(mon: Monitors) -> None:
    m = mon.launch(["cat"], ["--tty", "--stdin", "--stdin-once", "--wait-attach"],
                   terminal=True)
    assert m.proc.returncode == 0, m.proc.stderr
    sock = attach(m)
    sock.sendall(b"hello\n")
    sock.shutdown(socket.SHUT_WR)  # a pty cannot be closed: cat gets the terminal's EOF
    data = read_to_eof(sock)
    sock.close()
    assert data.count(b"hello\r\n") == 2  # the terminal's echo, then cat's
    assert m.wait_done()["ExitCode"] == 0


def test_tty_restart_gets_a_new_terminal(mon: Monitors) -> None:
    m = mon.launch(["sh", "-c", "echo hi-$((6*7)); exit 1"],
                   ["--tty", "--restart", "on-failure:1"], terminal=True)
    assert m.proc.returncode == 0, m.proc.stderr
    final = m.wait_done()
    assert (final["ExitCode"], final["RestartCount"], final["Error"]) == (1, 1, "")
    assert m.logged() == "hi-42\r\n" * 2


def test_long_directory_path(mon: Monitors) -> None:
    m = mon.launch(["sh", "-c", "read x; echo in-tty-$((6*7))"],
                   ["--tty", "--stdin", "--wait-attach"], terminal=True, long_dir=True)
    assert len(m.path("attach.sock")) > 108
    assert m.proc.returncode == 0, m.proc.stderr
    assert m.state["Status"] == "created"
    sock = attach_long(m)
    sock.sendall(b"go\n")
    assert b"in-tty-42" in read_to_eof(sock)
    sock.close()
    assert m.wait_done()["ExitCode"] == 0
    assert not os.path.exists(m.path("attach.sock"))


# ---- restarts ----


def test_restart_on_failure_with_limit(mon: Monitors) -> None:
    m = mon.launch(["sh", "-c", "echo run; exit 1"], ["--restart", "on-failure:2"])
    assert m.proc.returncode == 0, m.proc.stderr
    final = m.wait_done()
    assert (final["Status"], final["ExitCode"], final["RestartCount"]) == ("exited", 1, 2)
    assert m.logged() == "run\n" * 3
    assert not os.path.exists(os.path.join(mon.rt.state_root, m.id))


def test_on_failure_does_not_restart_success(mon: Monitors) -> None:
    m = mon.launch(["echo", "run"], ["--restart", "on-failure"])
    assert m.proc.returncode == 0, m.proc.stderr
    final = m.wait_done()
    assert (final["ExitCode"], final["RestartCount"]) == (0, 0)
    assert m.logged() == "run\n"


def test_restart_no_never_restarts(mon: Monitors) -> None:
    m = mon.launch(["sh", "-c", "echo run; exit 1"], ["--restart", "no"])
    assert m.proc.returncode == 0, m.proc.stderr
    final = m.wait_done()
    assert (final["ExitCode"], final["RestartCount"]) == (1, 0)
    time.sleep(0.5)
    assert m.logged() == "run\n" and m.state["RestartCount"] == 0


@pytest.mark.parametrize("policy", ["always", "unless-stopped"])
def test_restart_always_until_stopped(mon: Monitors, policy: str) -> None:
    m = mon.launch(["sleep", "600"], ["--restart", policy])
    assert m.proc.returncode == 0, m.proc.stderr
    first = m.state["Pid"]
    mon.rt.cmd("kill", m.id, "KILL", check=True)  # not stopped by the engine: restarts
    state = m.wait(lambda s: s["Status"] == "running" and s["Pid"] not in (0, first), 20,
                   "restarted")
    assert state["RestartCount"] == 1 and state["ExitCode"] == 0
    assert ppid(state["Pid"]) == m.pid
    with open(m.path("stop"), "w"):
        pass  # the engine stops it on purpose
    mon.rt.cmd("kill", m.id, "KILL", check=True)
    final = m.wait_done()
    assert (final["Status"], final["ExitCode"], final["RestartCount"]) == ("exited", 137, 1)
    assert os.path.exists(m.path("stop"))  # never removed by the monitor
    assert not os.path.exists(os.path.join(mon.rt.state_root, m.id))


def test_restart_policy_request_applies_to_this_run(mon: Monitors) -> None:
    """`restart-policy` (docker update --restart): the new policy decides at the present
    run's end; RestartCount goes on and counts against a new on-failure limit."""
    m = mon.launch(["sleep", "600"], ["--restart", "no"])
    assert m.proc.returncode == 0, m.proc.stderr
    for bad in ("sometimes", "on-failure:", "on-failure:-1", "on-failure:x", "always:1",
                "on-failure:99999999999", ""):
        assert ctl(m, f"restart-policy {bad}") == f"error invalid restart policy: {bad}\n"
    assert ctl(m, "restart-policy always") == "ok\n"
    pid = m.state["Pid"]
    mon.rt.cmd("kill", m.id, "KILL", check=True)
    state = m.wait(lambda s: s["Status"] == "running" and s["Pid"] not in (0, pid), 20,
                   "restarted")
    assert state["RestartCount"] == 1 and state["LastExitCode"] == 137
    assert ctl(m, "restart-policy on-failure:1") == "ok\n"  # one restart done: no more
    mon.rt.cmd("kill", m.id, "KILL", check=True)
    final = m.wait_done()
    assert (final["Status"], final["ExitCode"], final["RestartCount"]) == ("exited", 137, 1)


def test_restart_policy_no_during_backoff(mon: Monitors) -> None:
    """As dockerd's restart manager: a restart decided before the update (the container is
    `restarting`) still happens; none after it."""
    m = mon.launch(["sh", "-c", "echo run; exit 1"], ["--restart", "always"])
    assert m.proc.returncode == 0, m.proc.stderr
    m.wait(lambda s: s["RestartCount"] >= 3, 30, "three restarts")
    assert ctl(m, "restart-policy no") == "ok\n"
    # the count includes a pending restart: what it says now is the last one
    count = m.state["RestartCount"]
    final = m.wait_done()
    assert (final["Status"], final["ExitCode"], final["RestartCount"]) == ("exited", 1, count)
    assert m.logged() == "run\n" * (count + 1)  # the pending restart was done


def test_failed_restart_records_the_error(mon: Monitors) -> None:
    m = mon.launch(["sh", "-c", "echo run; sleep 0.5; exit 1"], ["--restart", "on-failure:3"])
    assert m.proc.returncode == 0, m.proc.stderr
    config = os.path.join(m.bundle, "config.json")
    with open(config) as f:
        spec = json.load(f)
    spec["process"]["args"] = ["nope"]  # the next create fails
    with open(config, "w") as f:
        json.dump(spec, f)
    final = m.wait_done()
    assert final["Status"] == "exited" and final["RestartCount"] == 1
    assert final["Error"] == ('barque-runtime run failed: unable to start container process: '
                              'exec: "nope": executable file not found in $PATH')
    assert final["ExitCode"] == 127 and final["Pid"] == 0
    # the runtime's own line on the container's stderr is not the container's output: as
    # containerd's shim, only a started run's output is logged
    assert m.logged() == "run\n" and m.logged("stderr") == ""
    assert not os.path.exists(os.path.join(mon.rt.state_root, m.id))


def test_stop_during_backoff_ends_it(mon: Monitors) -> None:
    m = mon.launch(["echo", "run"], ["--restart", "always"])
    assert m.proc.returncode == 0, m.proc.stderr
    m.wait(lambda s: s["RestartCount"] >= 4, 30, "four restarts")
    # the back-off is now 800 ms or more: `stop` ends it without a restart
    state = m.wait(lambda s: s["Status"] == "restarting", 10, "restarting")
    assert state["Pid"] == 0 and state["FinishedAt"]
    count = state["RestartCount"]  # counts the pending restart, as Docker's does
    start = time.monotonic()
    with open(m.path("stop"), "w"):
        pass
    final = m.wait_done(10)
    assert time.monotonic() - start < 0.7  # inotify: no waiting out the back-off
    assert final["Status"] == "exited" and final["RestartCount"] == count - 1
    assert m.logged() == "run\n" * (final["RestartCount"] + 1)  # restarts really done


def test_backoff_doubles(mon: Monitors) -> None:
    m = mon.launch(["sh", "-c", "echo run; exit 1"], ["--restart", "on-failure:5"])
    assert m.proc.returncode == 0, m.proc.stderr
    final = m.wait_done(60)
    assert (final["RestartCount"], final["ExitCode"], final["Error"]) == (5, 1, ""), final
    times = [parse_time(t) for _, _, t in m.log_entries()]
    assert len(times) == 6
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    delays = [0.1, 0.2, 0.4, 0.8, 1.6]
    for gap, delay in zip(gaps, delays, strict=True):
        assert delay - 0.01 <= gap < delay + 1.0, (gaps, delays)  # never shorter
    # what is left is delete/create/start time, about the same every time
    overheads = [gap - delay for gap, delay in zip(gaps, delays, strict=True)]
    assert max(overheads) - min(overheads) < 0.5, gaps
    assert gaps[4] > 3 * gaps[1]


def test_backoff_resets_after_ten_seconds(mon: Monitors, tmp_path: os.PathLike) -> None:
    data = os.path.join(str(tmp_path), "data")
    os.makedirs(data)
    script = ("n=$(cat /data/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/n; "
              'echo run$n; [ $n -eq 3 ] && sleep 10; echo end$n; exit 1')
    spec = mon.rt.spec(["sh", "-c", script])
    spec["mounts"].append({"destination": "/data", "type": "bind", "source": data,
                           "options": ["rbind", "rw"]})
    m = mon.launch([], ["--restart", "on-failure:3"], spec=spec)
    assert m.proc.returncode == 0, m.proc.stderr
    assert m.wait_done(60)["RestartCount"] == 3
    at = {json.loads(b'"' + raw + b'"').strip(): parse_time(t) for raw, _, t in m.log_entries()}
    gap1 = at["run2"] - at["end1"]  # 100 ms back-off + delete/create/start
    gap2 = at["run3"] - at["end2"]  # 200 ms + the same
    gap3 = at["run4"] - at["end3"]  # back to 100 ms after a run of 10 s (else 400 ms)
    assert gap1 >= 0.1 and gap2 >= 0.2, (gap1, gap2, gap3)
    overhead = min(gap1 - 0.1, gap2 - 0.2)
    assert 0.1 <= gap3 < 0.1 + overhead + 0.25, (gap1, gap2, gap3)  # 400 ms would not fit


# ---- OOM ----


def test_oom_killed(mon: Monitors) -> None:
    spec = mon.rt.spec(["dd", "if=/dev/zero", "of=/dev/null", "bs=67108864", "count=1"])
    spec["linux"].setdefault("resources", {})["memory"] = {"limit": 32 * 1024 * 1024}
    m = mon.launch([], spec=spec)  # a fixed 64 MiB buffer against a 32 MiB limit
    assert m.proc.returncode == 0, m.proc.stderr
    final = m.wait_done(60)
    assert final["OOMKilled"] is True and final["ExitCode"] == 137


def test_no_oom_without_one(mon: Monitors) -> None:
    # 137 without an OOM kill: OOMKilled comes from the cgroup, not from the exit code
    spec = mon.rt.spec(["sh", "-c", "exit 137"])
    spec["linux"].setdefault("resources", {})["memory"] = {"limit": 32 * 1024 * 1024}
    m = mon.launch([], spec=spec)
    assert m.proc.returncode == 0, m.proc.stderr
    final = m.wait_done()
    assert final["OOMKilled"] is False and final["ExitCode"] == 137


# ---- the monitor's own life ----


def test_monitor_survives_its_launcher(mon: Monitors) -> None:
    cmd, cid, directory, log_path, bundle = mon.command(mon.rt.spec(["sleep", "600"]), [])
    # A launcher in its own session: it runs the monitor, then lingers until killed.
    launcher = subprocess.Popen(["sh", "-c", '"$@"; echo launched; exec sleep 600', "sh",
                                 *cmd], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        assert launcher.stdout and launcher.stdout.readline() == b"launched\n"
        m = mon.adopt(cid, directory, log_path, bundle)
        m.pid = m.state["MonitorPid"]
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait(10)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait(10)
        if launcher.stdout:
            launcher.stdout.close()
    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGPIPE):
        os.kill(m.pid, sig)  # all ignored
    time.sleep(0.3)
    assert m.monitor_alive()
    state = m.state
    assert state["Status"] == "running" and os.path.exists(f"/proc/{state['Pid']}")
    assert ctl(m, "close-stdin") == "ok\n"  # still serving
    mon.rt.cmd("kill", cid, "KILL", check=True)
    final = m.wait_done()
    assert final["ExitCode"] == 137


def test_bad_arguments(monitor_bin: str) -> None:
    for args in (["--restart", "sometimes"], ["--id"], ["--log-max-files", "0"], []):
        proc = subprocess.run([monitor_bin, *args], capture_output=True, timeout=10)
        assert proc.returncode == 1 and proc.stdout == b""
        assert proc.stderr.startswith(b"barque-monitor: ") and proc.stderr.count(b"\n") == 1


def test_a_launch_whose_caller_died_does_not_go_on_alone(mon: Monitors) -> None:
    """The engine reports a start as failed when the monitor it waits for dies; the detached
    monitor must then not start the container anyway (nobody would know it runs)."""
    slow = os.path.join(mon.rt.tmp, "slow-runtime")
    with open(slow, "w") as f:
        f.write(f"#!/bin/sh\nsleep 1\nexec {mon.rt.binary} \"$@\"\n")
    os.chmod(slow, 0o755)
    cmd, cid, directory, log_path, bundle = mon.command(mon.rt.spec(["sleep", "100"]), [])
    cmd[cmd.index("--runtime") + 1] = slow
    launcher = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    m = mon.adopt(cid, directory, log_path, bundle)
    time.sleep(0.3)  # the detached monitor is in the runtime's `run` now
    launcher.kill()
    launcher.wait(timeout=10)
    state = m.wait_done(timeout=30)
    assert "the caller died" in state["Error"], state
    assert not os.path.exists(os.path.join(mon.rt.state_root, cid))  # no container left
