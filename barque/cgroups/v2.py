"""The cgroup v2 driver: one unified hierarchy at /sys/fs/cgroup.

The module-level helpers also serve the v1 driver on hybrid hosts, whose cgroup2 mount
(e.g. /sys/fs/cgroup/unified) works the same way.
"""

from __future__ import annotations

import os
import posixpath
import time

from barque.cgroups import files, mountinfo, paths
from barque.cgroups.base import CgroupError, CgroupMount, Manager

MOUNTPOINT = "/sys/fs/cgroup"


def enable_controllers(directory: str, wanted: set[str] | None = None) -> None:
    """Enable in `directory`'s children the controllers it has (all, or those in `wanted`)."""
    available = files.read(directory, "cgroup.controllers").split()
    enabled = set(files.read(directory, "cgroup.subtree_control").split())
    missing = [c for c in available if c not in enabled and (wanted is None or c in wanted)]
    if not missing:
        return
    try:
        files.write(directory, "cgroup.subtree_control", " ".join("+" + c for c in missing))
    except CgroupError:
        # One refusal fails the whole write (e.g. EBUSY for a domain controller while the
        # cgroup has processes): enable what can be; a limit that needs the rest fails
        # later, naming its file.
        for c in missing:
            try:
                files.write(directory, "cgroup.subtree_control", "+" + c)
            except CgroupError:
                pass


def make_path(mountpoint: str, path: str, wanted: set[str] | None = None) -> str:
    """mkdir -p the cgroup, enabling controllers on the way down as runc does; its dir."""
    current = mountpoint
    for part in path.strip("/").split("/"):
        enable_controllers(current, wanted)
        current = f"{current}/{part}"
        files.mkdir(current)
    return current


def is_frozen(directory: str) -> bool:
    # The requested state, as runc reads it: cgroup.events drops to "frozen 0" while a
    # killed task leaves, yet the container stays paused.
    return files.read(directory, "cgroup.freeze") == "1"


def _all_frozen(directory: str) -> bool:
    return files.read_keyed(directory, "cgroup.events").get("frozen") == 1


def set_frozen(directory: str, frozen: bool, timeout: float = 5.0) -> None:
    """Write cgroup.freeze; when freezing, wait until the kernel reports every task frozen."""
    files.write(directory, "cgroup.freeze", "1" if frozen else "0")
    if not frozen:
        return
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not _all_frozen(directory):
        if time.monotonic() > deadline:
            files.write(directory, "cgroup.freeze", "0")  # never leave it half frozen
            raise CgroupError(f"timed out freezing {directory}")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


class CgroupV2Manager(Manager):
    version = 2

    def __init__(self, path: str, relative: bool, mountpoint: str = MOUNTPOINT) -> None:
        if relative:
            # Below the parent of our own cgroup, as runc's fs2: ours has processes (this
            # one), and v2 enables no controllers for the children of such a cgroup.
            own = mountinfo.own_cgroups().get(mountinfo.UNIFIED_KEY, "/")
            path = paths.join(posixpath.dirname(paths.clean(own)), path)
        self.path = paths.check_not_root(path)
        self.mountpoint = mountpoint
        self.dir = mountpoint + path

    def resolved_paths(self) -> dict[str, str]:
        return {"": self.path}

    def create(self) -> None:
        make_path(self.mountpoint, self.path)

    def add_pid(self, pid: int) -> None:
        files.write(self.dir, "cgroup.procs", pid)

    def set_resources(self, resources: dict) -> None:
        from barque.cgroups import v2_resources

        v2_resources.apply(self.dir, resources)

    def prepare_resources(self, resources: dict) -> None:
        from barque.cgroups import v2_resources

        v2_resources.check(resources)

    def freeze(self) -> None:
        set_frozen(self.dir, True)

    def thaw(self) -> None:
        set_frozen(self.dir, False)

    def is_frozen(self) -> bool:
        return is_frozen(self.dir)

    def pids(self) -> list[int]:
        return files.tree_pids(self.dir)

    def kill_all(self, sig: int) -> None:
        if sig == files.SIGKILL and files.has(self.dir, "cgroup.kill"):
            files.write(self.dir, "cgroup.kill", "1")  # atomic, and reaches forking tasks
            return
        files.kill_frozen(self, sig)

    def stats(self) -> dict:
        from barque.cgroups import v2_stats

        return v2_stats.collect(self.dir)

    def oom_kill_count(self) -> int:
        return files.read_keyed(self.dir, "memory.events").get("oom_kill", 0)

    def oom_event_fd(self) -> int | None:
        return None  # v2 has no eventfd: the caller polls memory.events

    def exists(self) -> bool:
        return os.path.isdir(self.dir)

    def destroy(self) -> None:
        files.remove_tree(self.dir)

    def mounts(self) -> list[CgroupMount]:
        return [CgroupMount("", "cgroup2", "", self.dir, [])]
