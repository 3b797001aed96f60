"""Bringing the loopback interface up in a new network namespace, as runc does."""

from __future__ import annotations

import os

from barque.linux import cdata as ctypes
from barque.linux.libc import check, libc

AF_INET = 2
SOCK_DGRAM = 2
SOCK_CLOEXEC = 0o2000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


class _IfReq(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char * 16),
        ("flags", ctypes.c_short),
        ("pad", ctypes.c_char * 22),
    ]


def link_up(name: str) -> None:
    # A raw ioctl through libc: importing the socket module costs more than this whole call.
    sock = check(libc.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), "socket")
    try:
        req = _IfReq(name.encode(), 0)
        check(libc.ioctl(sock, SIOCGIFFLAGS, ctypes.byref(req)), f"SIOCGIFFLAGS {name}")
        req.flags |= IFF_UP
        check(libc.ioctl(sock, SIOCSIFFLAGS, ctypes.byref(req)), f"SIOCSIFFLAGS {name}")
    finally:
        os.close(sock)
