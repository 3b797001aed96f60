"""Pseudo-terminals: making one the controlling terminal and passing its master over a socket."""

from __future__ import annotations

import fcntl
import os
import struct
import termios

TIOCSCTTY = 0x540E  # make a tty the controlling terminal (not in termios)


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def make_raw(fd: int) -> list:
    """Put a terminal in raw mode and return its old settings. TCSANOW, as docker's
    SetRawTerminal: tty.setraw's default, TCSAFLUSH, throws away what the user typed before
    the container was ready."""
    import tty

    saved = termios.tcgetattr(fd)
    tty.setraw(fd, termios.TCSANOW)
    return saved


def restore(fd: int, saved: list) -> None:
    """Back to `saved` once the output written so far has gone out (TCSADRAIN: nothing typed
    is dropped here either)."""
    termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def get_size(fd: int) -> tuple[int, int]:
    rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    return rows, cols


def send_fd(sock_fd: int, fd: int, name: str) -> None:
    """Send fd with SCM_RIGHTS, as runc does to a --console-socket (the name rides as data)."""
    import array
    import socket

    sock = socket.socket(fileno=os.dup(sock_fd))
    try:
        sock.sendmsg(
            [name.encode()],
            [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]).tobytes())],
        )
    finally:
        sock.close()


def recv_fd(sock_fd: int) -> int:
    import array
    import socket

    sock = socket.socket(fileno=os.dup(sock_fd))
    try:
        fds = array.array("i")
        _msg, ancdata, _flags, _addr = sock.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
        if not fds:
            raise OSError("no file descriptor received on the console socket")
        return fds[0]
    finally:
        sock.close()
