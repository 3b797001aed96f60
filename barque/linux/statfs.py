"""statfs(2)'s f_type: which filesystem a path is on (os.statvfs does not tell)."""

from __future__ import annotations

import sys

from barque.linux import cdata as ctypes
from barque.linux.libc import check, libc

PROC_SUPER_MAGIC = 0x9FA0
_STATFS_SIZE = 120  # struct statfs on LP64 (x86_64, aarch64); f_type is its first long


def fs_type(path: str) -> int:
    buf = ctypes.create_string_buffer(_STATFS_SIZE)
    check(libc.statfs(path.encode(), buf), f"statfs {path!r}")
    return int.from_bytes(buf.raw[:8], sys.byteorder, signed=True)
