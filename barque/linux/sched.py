"""Scheduling attributes: sched_setattr(2) policies and flags, ioprio_set(2) classes."""

from __future__ import annotations

from barque.linux import cdata as ctypes

POLICIES = {
    "SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3, "SCHED_ISO": 4,
    "SCHED_IDLE": 5, "SCHED_DEADLINE": 6,
}
FLAGS = {
    "SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02, "SCHED_FLAG_DL_OVERRUN": 0x04,
    "SCHED_FLAG_KEEP_POLICY": 0x08, "SCHED_FLAG_KEEP_PARAMS": 0x10,
    "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20, "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40,
}
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
IOPRIO_WHO_PROCESS = 1
IOPRIO_CLASS_SHIFT = 13


class _SchedAttr(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("sched_policy", ctypes.c_uint32),
        ("sched_flags", ctypes.c_uint64),
        ("sched_nice", ctypes.c_int32),
        ("sched_priority", ctypes.c_uint32),
        ("sched_runtime", ctypes.c_uint64),
        ("sched_deadline", ctypes.c_uint64),
        ("sched_period", ctypes.c_uint64),
    ]


def set_scheduler(scheduler: dict) -> None:
    """Apply an OCI process.scheduler object to the calling thread."""
    attr = _SchedAttr()
    attr.size = ctypes.sizeof(_SchedAttr)
    attr.sched_policy = POLICIES[scheduler["policy"]]
    for flag in scheduler.get("flags") or []:
        attr.sched_flags |= FLAGS[flag]
    attr.sched_nice = int(scheduler.get("nice", 0))
    attr.sched_priority = int(scheduler.get("priority", 0))
    attr.sched_runtime = int(scheduler.get("runtime", 0))
    attr.sched_deadline = int(scheduler.get("deadline", 0))
    attr.sched_period = int(scheduler.get("period", 0))
    from barque.linux.libc import syscall

    syscall("sched_setattr", 0, ctypes.byref(attr), 0)


def parse_cpus(spec: str) -> set[int]:
    """A CPU list such as "0-3,7"."""
    cpus: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def set_io_priority(io_priority: dict) -> None:
    """Apply an OCI process.ioPriority object to the calling process."""
    value = (IOPRIO_CLASSES[io_priority["class"]] << IOPRIO_CLASS_SHIFT) | int(
        io_priority.get("priority", 0)
    )
    from barque.linux.libc import syscall

    syscall("ioprio_set", IOPRIO_WHO_PROCESS, 0, value)
