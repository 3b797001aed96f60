"""prctl(2) options the runtime needs."""

from __future__ import annotations

from barque.linux import cdata as ctypes
from barque.linux.libc import check, libc

PR_SET_PDEATHSIG = 1
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

_UL = ctypes.c_ulong


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return check(libc.prctl(option, _UL(arg2), _UL(arg3), _UL(arg4), _UL(arg5)), f"prctl({option})")


def set_no_new_privs() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def set_dumpable(on: bool) -> None:
    """Off: /proc/<pid> of this process (exe, fd, mem, ...) belongs to the host's root and
    needs CAP_SYS_PTRACE there, so another process with our uid cannot open it; fork keeps
    it, execve resets it."""
    prctl(PR_SET_DUMPABLE, int(on))


def dumpable() -> bool:
    return prctl(PR_GET_DUMPABLE) != 0


def set_keepcaps(on: bool) -> None:
    prctl(PR_SET_KEEPCAPS, int(on))


def set_child_subreaper() -> None:
    prctl(PR_SET_CHILD_SUBREAPER, 1)


def set_pdeathsig(sig: int) -> None:
    prctl(PR_SET_PDEATHSIG, sig)


def set_name(name: str) -> None:
    buf = ctypes.create_string_buffer(name.encode()[:15])
    check(libc.prctl(PR_SET_NAME, buf, 0, 0, 0), "prctl(PR_SET_NAME)")


PER_LINUX = 0x0000
PER_LINUX32 = 0x0008


def set_personality(domain: str) -> None:
    persona = PER_LINUX32 if domain == "LINUX32" else PER_LINUX
    check(libc.personality(ctypes.c_ulong(persona)), f"personality({domain})")
