"""Attaching to a container through its monitor's attach socket (monitor/README.md): output
demultiplexed to our stdout/stderr (or raw, with a tty), our stdin forwarded, terminal size
passed on through the control socket."""

from __future__ import annotations

import os
import select
import socket
import struct
import time

_HEADER = struct.Struct(">BxxxI")


class AttachError(Exception):
    pass


class MonitorGone(AttachError):
    """No monitor listens on the control socket: the container is not running (or its run
    is ending for good, the sockets' names gone)."""


def _connect_in(sock: socket.socket, directory: str, name: str) -> None:
    """connect() to directory/name even past sun_path's 108 bytes: through /proc/self/fd."""
    path = os.path.join(directory, name)
    if len(path.encode()) < 100:
        sock.connect(path)
        return
    fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        sock.connect(f"/proc/self/fd/{fd}/{name}")
    finally:
        os.close(fd)


def connect(monitor_dir: str, timeout: float = 10.0) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            _connect_in(sock, monitor_dir, "attach.sock")
            return sock
        except (FileNotFoundError, ConnectionRefusedError) as e:
            sock.close()
            if time.monotonic() > deadline:
                raise AttachError(f"cannot attach: {e.strerror}") from None
            time.sleep(0.02)


def control(monitor_dir: str, line: str, timeout: float | None = None) -> None:
    """One control request (e.g. "resize 24 80"); errors are the monitor's words
    (MonitorGone: no monitor to ask)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            _connect_in(sock, monitor_dir, "ctl.sock")
        except (FileNotFoundError, ConnectionRefusedError) as e:
            raise MonitorGone(f"cannot reach the container's monitor: {e.strerror}") from None
        except OSError as e:
            raise AttachError(f"cannot reach the container's monitor: {e.strerror or e}"
                              ) from None
        try:
            sock.sendall(line.encode() + b"\n")
            answer = sock.recv(512).decode(errors="replace").strip()
        except (ConnectionResetError, BrokenPipeError):
            answer = ""
        except OSError as e:
            raise AttachError(f"cannot reach the container's monitor: {e.strerror or e}"
                              ) from None
    if not answer:  # it closed the connection unanswered: it is ending for good
        raise MonitorGone("no answer from the monitor")
    if answer != "ok":
        raise AttachError(answer.removeprefix("error ").strip() or "no answer from the monitor")


class ExitClaim:
    """The monitor's exit claimed on its control socket (monitor/README.md, `claim-exit`):
    the claimant cleans up after the container itself, so the monitor's exit command (a whole
    `barque container cleanup`) need not run. The claim lasts while the socket is open: a
    claimant that dies gives it up, and the exit command runs as without one."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.run_id: str | None = None  # the start whose exit this is (the engine's run-id)

    def wait_deleted(self) -> bool:
        """Until the monitor says the runtime's container is deleted (after the final state
        and the attach stream's EOF); False if it ended without saying so (it died)."""
        self.sock.settimeout(None)
        while b"\n" not in self.buf:
            try:
                data = self.sock.recv(64)
            except OSError:
                return False
            if not data:
                return False
            self.buf += data
        return self.buf.split(b"\n", 1)[0] == b"deleted"

    def done(self) -> None:
        """The clean-up is done: the monitor exits without running its exit command."""
        try:
            self.sock.sendall(b"done\n")
        except OSError:
            pass
        self.close()

    def close(self) -> None:
        """Without done(): the monitor runs its exit command (which does what is left)."""
        self.sock.close()


def claim_exit(monitor_dir: str) -> ExitClaim | None:
    """Claim the monitor's exit; None if it cannot be (another claimant has it, or the
    monitor is gone): its exit command then cleans up, as without a claim."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # not inherited by children
    try:
        sock.settimeout(10)
        _connect_in(sock, monitor_dir, "ctl.sock")
        sock.sendall(b"claim-exit\n")
        answer = b""
        while b"\n" not in answer:
            data = sock.recv(64)
            if not data:
                break
            answer += data
    except OSError:
        sock.close()
        return None
    line, _, rest = answer.partition(b"\n")
    if line != b"ok":
        sock.close()
        return None
    claim = ExitClaim(sock)
    claim.buf = rest  # `deleted` may follow at once (a container that ended meanwhile)
    return claim


class Demux:
    """Docker's stdcopy stream: 8-byte headers, stream 1 stdout, 2 stderr."""

    def __init__(self, out: int, err: int) -> None:
        self.fds = {1: out, 2: err, 0: out}
        self.buf = b""

    def feed(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= _HEADER.size:
            stream, size = _HEADER.unpack_from(self.buf)
            if len(self.buf) < _HEADER.size + size:
                return
            payload = self.buf[_HEADER.size:_HEADER.size + size]
            self.buf = self.buf[_HEADER.size + size:]
            write_all(self.fds.get(stream, self.fds[1]), payload)


def frame(stream: int, data: bytes) -> bytes:
    """One stdcopy frame (1 stdout, 2 stderr), as the monitor writes them: for the Engine
    API's log stream."""
    return _HEADER.pack(stream, len(data)) + data


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        view = view[n:]


def pump(sock: socket.socket, tty: bool, stdin: int | None, stdout: int = 1,
         stderr: int = 2, detach_keys: bytes | None = None) -> bool:
    """Copy until the container's output ends (the monitor closes the socket), or until
    `detach_keys` come on stdin (True: detached, the container left running)."""
    from barque.engine.detach_keys import Watch

    watch = Watch(detach_keys) if detach_keys and stdin is not None else None
    demux = None if tty else Demux(stdout, stderr)
    readers = [sock.fileno()] + ([stdin] if stdin is not None else [])
    while True:
        ready, _, _ = select.select(readers, [], [])
        if sock.fileno() in ready:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                return False
            if demux is None:
                write_all(stdout, data)
            else:
                demux.feed(data)
        if stdin is not None and stdin in ready:
            try:
                data = os.read(stdin, 65536)
            except OSError:
                data = b""
            if data:
                if watch is not None:
                    data = watch.feed(data)
                try:
                    sock.sendall(data)
                except (BrokenPipeError, ConnectionResetError):
                    readers.remove(stdin)
                if watch is not None and watch.detached:
                    return True
            else:
                readers.remove(stdin)
                try:
                    sock.shutdown(socket.SHUT_WR)  # the container's stdin reaches EOF
                except OSError:
                    pass
