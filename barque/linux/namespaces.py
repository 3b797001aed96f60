"""unshare(2) and setns(2), and the names the OCI spec gives namespaces."""

from __future__ import annotations

import os

# libc (ctypes) is imported inside the functions: the runtime reads the constants below in
# processes that never call into the kernel this way, and ctypes costs ~2.5 ms to import.

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# OCI namespace type → (clone flag, name under /proc/PID/ns).
NAMESPACES: dict[str, tuple[int, str]] = {
    "user": (CLONE_NEWUSER, "user"),
    "pid": (CLONE_NEWPID, "pid"),
    "network": (CLONE_NEWNET, "net"),
    "ipc": (CLONE_NEWIPC, "ipc"),
    "uts": (CLONE_NEWUTS, "uts"),
    "mount": (CLONE_NEWNS, "mnt"),
    "cgroup": (CLONE_NEWCGROUP, "cgroup"),
    "time": (CLONE_NEWTIME, "time"),
}

# The order runc joins namespaces in: user first (it grants rights over the rest), mount last
# but one so that paths to the others still resolve in the host's mount namespace.
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


def unshare(flags: int) -> None:
    from barque.linux.libc import check, libc

    check(libc.unshare(flags), f"unshare({flags:#x})")


def setns(fd: int, nstype: int = 0) -> None:
    from barque.linux.libc import check, libc

    check(libc.setns(fd, nstype), f"setns({fd}, {nstype:#x})")


def setns_path(path: str, nstype: int = 0) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd, nstype)
    finally:
        os.close(fd)


def sethostname(name: str) -> None:
    from barque.linux.libc import check, libc

    raw = name.encode()
    check(libc.sethostname(raw, len(raw)), f"sethostname {name!r}")


def setdomainname(name: str) -> None:
    from barque.linux.libc import check, libc

    raw = name.encode()
    check(libc.setdomainname(raw, len(raw)), f"setdomainname {name!r}")
