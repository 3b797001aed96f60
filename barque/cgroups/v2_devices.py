"""Device access on cgroup v2: an eBPF filter attached to the container's cgroup directory.

Like runc (libcontainer/cgroups/ebpf), the new program goes in before the old ones come out,
so there is no moment without a filter; with exactly one old program it is swapped
atomically (BPF_F_REPLACE).
"""

from __future__ import annotations

import errno
import os

from barque.cgroups import devicefilter
from barque.cgroups.base import CgroupError
from barque.cgroups.devices import parse_rules
from barque.linux import bpf


def check(entries: list[dict]) -> None:
    """Parse and compile the rules: errors now, and the compiler loaded for apply()."""
    devicefilter.compile_rules(parse_rules(entries))


def apply(directory: str, entries: list[dict]) -> None:
    program = devicefilter.compile_rules(parse_rules(entries))
    try:
        dirfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise CgroupError(f"cannot open cgroup {directory}: {e.strerror}", e.errno) from e
    try:
        _install(dirfd, program)
    except OSError as e:
        raise CgroupError(f"cannot install the device filter on {directory}: {e}", e.errno) from e
    finally:
        os.close(dirfd)


def _install(dirfd: int, program: bytes) -> None:
    old = _attached(dirfd)
    new = -1
    try:
        new = bpf.prog_load(
            bpf.BPF_PROG_TYPE_CGROUP_DEVICE, program, devicefilter.LICENSE, "barque_devices"
        )
        if len(old) == 1 and _replace(dirfd, new, old[0]):
            return
        bpf.prog_attach(dirfd, new, bpf.BPF_CGROUP_DEVICE, bpf.BPF_F_ALLOW_MULTI)
        for fd in old:
            bpf.prog_detach(dirfd, fd, bpf.BPF_CGROUP_DEVICE)
    finally:
        for fd in [*old, new]:
            if fd >= 0:
                os.close(fd)  # the attachment keeps the program alive


def _replace(dirfd: int, new: int, old: int) -> bool:
    flags = bpf.BPF_F_ALLOW_MULTI | bpf.BPF_F_REPLACE
    try:
        bpf.prog_attach(dirfd, new, bpf.BPF_CGROUP_DEVICE, flags, old)
    except OSError as e:
        if e.errno == errno.EINVAL:
            return False  # kernel before 5.6: attach, then detach
        raise
    return True


def _attached(dirfd: int) -> list[int]:
    """fds of the device programs on the cgroup now (ours from an earlier set_resources)."""
    fds = []
    for prog_id in bpf.prog_query(dirfd, bpf.BPF_CGROUP_DEVICE):
        try:
            fds.append(bpf.prog_get_fd_by_id(prog_id))
        except OSError as e:
            # Gone meanwhile, or hidden by an LSM: another filter only adds restrictions.
            if e.errno not in (errno.ENOENT, errno.EPERM, errno.EACCES):
                raise
    return fds
