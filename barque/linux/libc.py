"""The one place Barque loads the C library through ctypes (its lean form, cdata).

Python 3.11 lacks unshare, setns, mount, pivot_root and friends; every wrapper in
barque/linux calls them through the handles defined here, so errno handling is uniform.
"""

from __future__ import annotations

import os

from barque.linux import cdata as ctypes

# Spelled out rather than imported: importing typing costs start-up time; mypy treats any
# name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

libc = ctypes.CDLL(None, use_errno=True)

# x86_64 and aarch64 syscall numbers for calls glibc does not wrap.
_SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": {"pivot_root": 155, "capget": 125, "capset": 126, "bpf": 321, "seccomp": 317,
               "keyctl": 250, "ioprio_set": 251, "sched_setattr": 314, "open_tree": 428,
               "mount_setattr": 442, "close_range": 436, "move_mount": 429},
    "aarch64": {"pivot_root": 41, "capget": 90, "capset": 91, "bpf": 280, "seccomp": 277,
                "keyctl": 219, "ioprio_set": 30, "sched_setattr": 274, "open_tree": 428,
                "mount_setattr": 442, "close_range": 436, "move_mount": 429},
}


# Read once: a LINUX32 personality set in the container init makes uname report i686.
_MACHINE = os.uname().machine


def syscall_number(name: str) -> int:
    return _SYSCALLS[_MACHINE][name]


def known_syscall_number(name: str) -> int | None:
    """The number of `name` on this machine if the table above has it."""
    return _SYSCALLS.get(_MACHINE, {}).get(name)


def check(result: int, *context: Any) -> int:
    """Raise OSError with the current errno when a libc call returned -1."""
    if result == -1:
        err = ctypes.get_errno()
        detail = " ".join(str(c) for c in context)
        raise OSError(err, f"{os.strerror(err)}: {detail}" if detail else os.strerror(err))
    return result


def syscall(name: str, *args: Any) -> int:
    return check(libc.syscall(syscall_number(name), *args), name)
