"""A helper process of one runroot (the network agent, the DNS resolver): its files, its
start, its control socket, its end — the parts both share.

Files in the helper's directory (0700): `sock`, the control socket (0600; one JSON request
line, one JSON reply line per connection), and `pid`, its pid, on which it holds a flock for
its whole life. Whoever starts a helper takes that flock first and hands it to the helper
(an inherited descriptor), so from the start on the lock is held: two `barque` processes
never start two helpers. A helper leaving unlinks `sock` and `pid` before it lets the lock go.

A helper is started detached (double fork: own session, stdio on /dev/null, cwd /, no
descriptor but the handed ones), so whoever starts it never has to reap it."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping
    from typing import Any

SOCKET = "sock"
PIDFILE = "pid"
REPLY_LIMIT = 1 << 20


class NotRunning(OSError):
    """No helper listens (no socket, a stale one, or one leaving): the request was not
    served."""


class NoReply(OSError):
    """The helper took the request but gave no reply in time (hung, or killed meanwhile):
    whether it was served is unknown."""


class HelperError(Exception):
    """A helper could not be started."""


# -- the client's side ------------------------------------------------------------------------

def call(directory: str, request: Mapping[str, object], timeout: float) -> dict[str, Any]:
    """Send `request` to the helper listening in `directory`; its reply (a JSON object)."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotRunning(f"no helper in {directory}") from None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect(f"/proc/self/fd/{dir_fd}/{SOCKET}")  # short, however long the path
                sock.sendall(json.dumps(request).encode() + b"\n")
            except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError,
                    BrokenPipeError) as e:
                raise NotRunning(e.errno, f"no helper in {directory}") from None
            except TimeoutError:  # its backlog is full: it does not accept
                raise NotRunning(f"the helper in {directory} does not answer") from None
            data = _read_line(sock)
    finally:
        os.close(dir_fd)
    try:
        reply = json.loads(data)
    except ValueError:
        raise NoReply(f"the helper in {directory} closed the connection") from None
    if not isinstance(reply, dict):
        raise NoReply(f"the helper in {directory} gave a bad reply")
    return reply


def _read_line(sock: socket.socket) -> bytes:
    data = b""
    try:
        while not data.endswith(b"\n") and len(data) < REPLY_LIMIT:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        raise NoReply("the helper gave no reply in time") from None
    except ConnectionResetError:
        # Closed before it was accepted (a helper leaving): not served.
        if not data:
            raise NotRunning("the helper left") from None
    return data


def start(directory: str, argv: list[str], wait: float | None = None) -> bool:
    """Start the helper `argv` (its pid-file lock handed over: `--pid-fd N` is appended) unless
    one runs or is starting; False then. `wait`: seconds to wait until it listens (it is
    given `--ready-fd N` and writes "ok" there, or the reason it failed); None: do not wait.
    HelperError if it cannot be started, or (with `wait`) failed or was not ready in time."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    pid_fd = lock_pidfile(directory, 2.0 if wait else 0.0)
    if pid_fd is None:
        return False
    os.ftruncate(pid_fd, 0)  # a dead helper's pid is nobody's business now
    read_end = write_end = -1
    try:
        if wait:
            read_end, write_end = os.pipe()
        args = [*argv, "--pid-fd", str(pid_fd)]
        if wait:
            args += ["--ready-fd", str(write_end)]
        _spawn(args, [pid_fd] + ([write_end] if wait else []), pid_fd)
    finally:
        os.close(pid_fd)  # the helper's copy holds the lock from here on
        if write_end >= 0:
            os.close(write_end)
    if wait:
        try:
            _wait_ready(read_end, wait)
        finally:
            os.close(read_end)
    return True


def lock_pidfile(directory: str, wait: float = 0.0) -> int | None:
    """The pid file, opened and flocked (a helper's own start or its starter's); None when
    another process holds it (a helper runs or is starting) after `wait` seconds."""
    from barque.linux import locks  # here: only a helper's start takes it

    path = os.path.join(directory, PIDFILE)
    deadline = time.monotonic() + wait
    while True:
        fd = locks.open_file(path, nofollow=True)
        if not locks.try_lock(fd):
            os.close(fd)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)  # an old helper may be in its last moments
            continue
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # a leaving helper unlinked the file we locked: lock the new one


def _spawn(argv: list[str], keep: list[int], pid_fd: int) -> None:
    """Start argv detached (double fork) with only stdio (on /dev/null) and `keep` open; its
    pid written to `pid_fd` before it execs (so it can be stopped from the start on)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - a child that execs or exits
        try:
            os.setsid()
            if os.fork() > 0:
                os._exit(0)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.chdir("/")
            _close_all_but(keep)
            for fd in keep:
                os.set_inheritable(fd, True)
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            os.pwrite(pid_fd, f"{os.getpid()}\n".encode(), 0)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    os.waitpid(pid, 0)


def _close_all_but(keep: list[int]) -> None:
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def _wait_ready(read_end: int, timeout: float) -> None:
    word = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([read_end], [], [], left)[0]:
            raise HelperError("it did not start in time")
        chunk = os.read(read_end, 4096)
        if not chunk:
            break
        word += chunk
        if word.endswith(b"\n"):
            break
    if word.startswith(b"ok"):
        return
    reason = word.decode(errors="replace").strip().removeprefix("error: ")
    raise HelperError(reason or "it died starting")


def python_argv(module: str, *args: str) -> list[str]:
    """The command line of a helper written as a Python module of Barque."""
    return [sys.executable, "-P", "-m", module, *args]


def read_pid(directory: str) -> int | None:
    try:
        with open(os.path.join(directory, PIDFILE)) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _running_pid(directory: str) -> int | None:
    """The pid of the helper of `directory`, if one runs: it holds its pid file's lock (a
    stale pid may be someone else's now)."""
    fd = lock_pidfile(directory) if os.path.isdir(directory) else None
    if fd is not None:  # nobody holds it: no helper runs
        os.close(fd)
        return None
    pid = read_pid(directory)
    return pid if pid is not None and pid > 1 else None


def stop(directory: str, timeout: float = 5.0) -> None:
    """SIGTERM the helper of `directory` (by its pid file, only while it holds the file's
    lock: a stale pid may be someone else's now), then SIGKILL after `timeout`."""
    pid = _running_pid(directory)
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
        time.sleep(0.02)


def kill(directory: str, module: str) -> None:
    """SIGKILL a hung helper (by its pid file, while it holds the file's lock and its command
    line names `module`), without waiting: its clients do without it meanwhile."""
    pid = _running_pid(directory)
    if pid is None:
        return
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if module.encode() not in f.read().split(b"\0"):
                return
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[-1][:1] not in ("Z", "X", "")
    except OSError:
        return False


# -- the helper's side ------------------------------------------------------------------------

def parse_args(module: str, argv: list[str] | None) -> argparse.Namespace:
    """A helper's command line: what `start` hands it (`--pid-fd`, `--ready-fd`) after the
    `--root` and `--runroot` its starter names."""
    import argparse  # here: every client imports this module, only helpers parse

    parser = argparse.ArgumentParser(prog=f"python -m {module}")
    parser.add_argument("--root", required=True)
    parser.add_argument("--runroot", required=True)
    parser.add_argument("--pid-fd", type=int, help="the pid file, locked by the starter")
    parser.add_argument("--ready-fd", type=int, help="told 'ok' once it listens")
    return parser.parse_args(argv)


def own_pidfile(directory: str, pid_fd: int | None, wait: float = 2.0) -> int:
    """The helper's pid file, locked: the handed descriptor, or (started by hand) one it locks
    itself. Writes its pid there. HelperError if another helper holds it."""
    if pid_fd is None:
        pid_fd = lock_pidfile(directory, wait)
        if pid_fd is None:
            raise HelperError(f"another helper runs for {directory}")
    else:
        os.set_inheritable(pid_fd, False)
    os.ftruncate(pid_fd, 0)
    os.pwrite(pid_fd, f"{os.getpid()}\n".encode(), 0)
    return pid_fd


def listen(dir_fd: int, backlog: int = 64) -> socket.socket:
    """The control socket (0600), a dead helper's socket file replaced."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path = f"/proc/self/fd/{dir_fd}/{SOCKET}"  # short, whatever the runroot's length
    try:
        os.unlink(path)  # a dead helper's: we hold the pid lock, so no live one has it
    except FileNotFoundError:
        pass
    old = os.umask(0o177)  # 0600: connecting needs write permission only
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    sock.listen(backlog)
    return sock


def remove_files(directory: str, pid_fd: int) -> None:
    """A helper's last step before it lets its lock go: no client reaches it from here on."""
    for name in (SOCKET, PIDFILE):
        try:
            os.unlink(os.path.join(directory, name))
        except FileNotFoundError:
            pass
    if pid_fd >= 0:
        os.close(pid_fd)


def tell_ready(ready_fd: int | None, error: BaseException | None = None) -> None:
    if ready_fd is None:
        return
    try:
        os.write(ready_fd, b"ok\n" if error is None else f"error: {error}\n".encode())
    finally:
        os.close(ready_fd)


def peer_uid(sock: socket.socket) -> int:
    import struct

    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])
