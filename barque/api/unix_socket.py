"""The unix socket `barque serve` listens on: made safely (never world-accessible, a live
server's never taken over), or systemd's (fd://)."""

from __future__ import annotations

import contextlib
import grp
import os
import socket
import stat

from barque.engine.errors import EngineError


def _remove_stale(path: str) -> None:
    """The socket of a server that died goes; a live server's, or any other file, stays."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise EngineError(f"{path} exists and is not a socket", status=400)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)
            return
    raise EngineError(f"listen unix {path}: bind: address already in use", status=400)


def bind(path: str) -> socket.socket:
    """The socket: its dir made 0711 if missing, 0660 owned by group `barque` (root if none),
    never world-accessible, not even between bind and chmod. It appears at `path` only once
    it listens (bound under a temporary name, then linked there): a client that finds the file
    can connect."""
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        os.makedirs(parent, mode=0o711, exist_ok=True)
        os.chmod(parent, 0o711)
    _remove_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    pending = os.path.join(parent, f".{os.path.basename(path)}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(pending)  # a crashed server's of the same pid
    old = os.umask(0o177)
    try:
        sock.bind(pending)
    finally:
        os.umask(old)
    try:
        try:
            gid = grp.getgrnam("barque").gr_gid
        except KeyError:
            gid = 0
        os.chown(pending, 0, gid)
        os.chmod(pending, 0o660)
        sock.listen(1024)
        try:
            os.link(pending, path)  # never replaces: a server started meanwhile keeps its own
        except FileExistsError:
            raise EngineError(f"listen unix {path}: bind: address already in use",
                              status=400) from None
    except BaseException:
        sock.close()
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(pending)
    return sock


def activated() -> socket.socket:
    """fd:// as dockerd takes it: the first socket systemd passed (barque.socket)."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or \
            int(os.environ.get("LISTEN_FDS") or 0) < 1:
        raise EngineError("no sockets found via socket activation: make sure the service "
                          "was started by systemd", status=400)
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)  # not for the monitors and runtimes it starts
    return socket.socket(fileno=3)
