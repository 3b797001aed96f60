"""The few bpf(2) commands Barque needs: load a program, attach/detach/query it on a cgroup.

union bpf_attr is built with struct.pack (x86_64 and aarch64 are both little endian with the
same layout); pointers inside it are addresses of ctypes buffers kept alive across the call.
Errors are OSError with errno set, from libc.check.
"""

from __future__ import annotations

import errno
import struct

from barque.linux import cdata as ctypes
from barque.linux.libc import syscall

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16

BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6  # enum bpf_attach_type

BPF_F_ALLOW_MULTI = 1 << 1
BPF_F_REPLACE = 1 << 2

_LOG_SIZE = 1 << 16


def _bpf(cmd: int, attr: ctypes.Array) -> int:
    return syscall("bpf", ctypes.c_int(cmd), attr, ctypes.c_uint(ctypes.sizeof(attr)))


def _attr(data: bytes) -> ctypes.Array:
    return ctypes.create_string_buffer(data, len(data))


def _addr(buf: ctypes.Array | None) -> int:
    return ctypes.addressof(buf) if buf is not None else 0


def _load(
    prog_type: int,
    code: ctypes.Array,
    license_: ctypes.Array,
    name: bytes,
    log: ctypes.Array | None,
) -> int:
    attr = struct.pack(
        "<IIQQIIQII16s",
        prog_type,
        ctypes.sizeof(code) // 8,
        _addr(code),
        _addr(license_),
        1 if log is not None else 0,  # log_level
        ctypes.sizeof(log) if log is not None else 0,
        _addr(log),
        0,  # kern_version
        0,  # prog_flags
        name[:15],
    )
    return _bpf(BPF_PROG_LOAD, _attr(attr))


def prog_load(prog_type: int, insns: bytes, license_: str, name: str = "") -> int:
    """Load a program; its fd. A verifier rejection is retried once to quote the log."""
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license_.encode())
    try:
        return _load(prog_type, code, lic, name.encode(), None)
    except OSError as e:
        if e.errno == errno.EPERM and _raise_memlock():
            return _load(prog_type, code, lic, name.encode(), None)
        if e.errno != errno.EACCES and e.errno != errno.EINVAL:
            raise
    log = ctypes.create_string_buffer(_LOG_SIZE)
    try:
        return _load(prog_type, code, lic, name.encode(), log)
    except OSError as e:
        text = log.value.decode(errors="replace").strip()
        raise OSError(e.errno, f"{e.strerror}; verifier log: {text}") from e


def _raise_memlock() -> bool:
    """Kernels before 5.11 charge programs to RLIMIT_MEMLOCK: lift the soft limit (as runc)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if soft == hard:
        return False
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (hard, hard))
    return True


def prog_attach(
    target_fd: int, prog_fd: int, attach_type: int, flags: int = 0, replace_fd: int = 0
) -> None:
    _bpf(
        BPF_PROG_ATTACH,
        _attr(struct.pack("<5I", target_fd, prog_fd, attach_type, flags, replace_fd)),
    )


def prog_detach(target_fd: int, prog_fd: int, attach_type: int) -> None:
    _bpf(BPF_PROG_DETACH, _attr(struct.pack("<5I", target_fd, prog_fd, attach_type, 0, 0)))


def prog_query(target_fd: int, attach_type: int) -> list[int]:
    """Ids of the programs attached to `target_fd` (a cgroup dir) for `attach_type`."""
    count = 64  # a cgroup holds at most 64 programs per attach type
    for _attempt in range(5):
        ids = (ctypes.c_uint32 * count)()
        attr = _attr(struct.pack("<IIIIQI4x", target_fd, attach_type, 0, 0, _addr(ids), count))
        try:
            _bpf(BPF_PROG_QUERY, attr)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            count = struct.unpack_from("<I", attr, 24)[0]  # the kernel wrote the real count
            continue
        return list(ids[: struct.unpack_from("<I", attr, 24)[0]])
    raise OSError(errno.ENOSPC, "BPF_PROG_QUERY: the program list keeps growing")


def prog_get_fd_by_id(prog_id: int) -> int:
    return _bpf(BPF_PROG_GET_FD_BY_ID, _attr(struct.pack("<III", prog_id, 0, 0)))
