"""Descriptors a process hands on at execve: only the ones it means to."""

from __future__ import annotations

import os

from barque.linux import cdata as ctypes
from barque.linux.libc import libc, syscall_number

CLOSE_RANGE_CLOEXEC = 1 << 2
_ALL = 0xFFFFFFFF  # ~0U: the last fd close_range accepts


def cloexec_from(lowest: int) -> None:
    """Mark every descriptor from `lowest` up close-on-exec. Not closed now: the caller's own
    pipes (to the runtime, the exec fifo) keep working until the execve drops them.
    close_range(2) where the kernel has it (5.11), else each fd of /proc/self/fd."""
    if libc.syscall(syscall_number("close_range"), ctypes.c_uint(lowest),
                    ctypes.c_uint(_ALL), ctypes.c_uint(CLOSE_RANGE_CLOEXEC)) == 0:
        return
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= lowest:
            try:
                os.set_inheritable(fd, False)
            except OSError:  # the listing's own fd, closed by now
                pass
