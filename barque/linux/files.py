"""File-system calls Python's os module lacks: renameat2(RENAME_NOREPLACE, RENAME_EXCHANGE)
and syncfs(2)."""

from __future__ import annotations

import os

from barque.linux import cdata as ctypes
from barque.linux.libc import libc

AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2


def rename_noreplace(src: str, dst: str, src_dir_fd: int = AT_FDCWD,
                     dst_dir_fd: int = AT_FDCWD) -> None:
    """rename(2) that fails with EEXIST instead of replacing `dst` (even an empty dir)."""
    res = libc.renameat2(ctypes.c_int(src_dir_fd), os.fsencode(src), ctypes.c_int(dst_dir_fd),
                         os.fsencode(dst), ctypes.c_uint(RENAME_NOREPLACE))
    if res != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"rename {src!r} to {dst!r}: {os.strerror(err)}")


def rename_exchange(a: str, b: str) -> None:
    """Swap the paths `a` and `b` (both must exist) in one step: a reader sees one or the
    other, never neither."""
    res = libc.renameat2(ctypes.c_int(AT_FDCWD), os.fsencode(a), ctypes.c_int(AT_FDCWD),
                         os.fsencode(b), ctypes.c_uint(RENAME_EXCHANGE))
    if res != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"exchange {a!r} and {b!r}: {os.strerror(err)}")


def syncfs(fd: int) -> None:
    """Flush the file system holding `fd`: what was written survives a crash."""
    if libc.syncfs(ctypes.c_int(fd)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"syncfs: {os.strerror(err)}")
