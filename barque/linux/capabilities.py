"""Linux capabilities: names, the five sets, capset(2) and the bounding/ambient prctls."""

from __future__ import annotations

from barque.linux import cdata as ctypes
from barque.linux.libc import syscall
from barque.linux.prctl import (
    PR_CAP_AMBIENT,
    PR_CAP_AMBIENT_CLEAR_ALL,
    PR_CAP_AMBIENT_RAISE,
    PR_CAPBSET_DROP,
    PR_CAPBSET_READ,
    prctl,
)

NAMES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
NUMBERS = {name: i for i, name in enumerate(NAMES)}

_VERSION_3 = 0x20080522


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


_last_cap: list[int] = []  # the kernel's answer, once read (the runtime's init asks 6 times)


def last_cap() -> int:
    if not _last_cap:
        try:
            with open("/proc/sys/kernel/cap_last_cap", "rb", buffering=0) as f:
                _last_cap.append(int(f.read()))
        except OSError:
            return len(NAMES) - 1  # no /proc here (yet): not remembered
    return _last_cap[0]


def known(names: list[str]) -> tuple[list[int], list[str]]:
    """Split capability names into numbers this kernel has and names it does not know."""
    top = last_cap()
    nums, unknown = [], []
    for name in names:
        num = NUMBERS.get(name.upper())
        if num is None or num > top:
            unknown.append(name)
        else:
            nums.append(num)
    return nums, unknown


def mask(nums: list[int]) -> int:
    bits = 0
    for n in nums:
        bits |= 1 << n
    return bits


def capget() -> tuple[int, int, int]:
    """The calling thread's (effective, permitted, inheritable) masks."""
    hdr = _Header(_VERSION_3, 0)
    data = (_Data * 2)()
    syscall("capget", ctypes.byref(hdr), data)
    def join(field: str) -> int:
        return getattr(data[0], field) | (getattr(data[1], field) << 32)
    return join("effective"), join("permitted"), join("inheritable")


def capset(effective: int, permitted: int, inheritable: int) -> None:
    hdr = _Header(_VERSION_3, 0)
    data = (_Data * 2)()
    for i in (0, 1):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    syscall("capset", ctypes.byref(hdr), data)


def bounding_has(num: int) -> bool:
    return prctl(PR_CAPBSET_READ, num) == 1


def drop_bounding(keep: int) -> None:
    for num in range(last_cap() + 1):
        if not keep & (1 << num) and bounding_has(num):
            prctl(PR_CAPBSET_DROP, num)


def set_ambient(nums: list[int]) -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    for num in nums:
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, num)
