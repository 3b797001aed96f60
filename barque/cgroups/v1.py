"""The cgroup v1 driver: one directory per mounted hierarchy (hybrid hosts included).

Every hierarchy gets the container's directory and pids, not only those that limit
something, as runc does: tools find a container's processes through name=systemd, freezer...
On hybrid hosts the cgroup2 mount (e.g. /sys/fs/cgroup/unified) is one more hierarchy.
"""

from __future__ import annotations

import os
import time

from barque.cgroups import files, mountinfo, paths
from barque.cgroups.base import CgroupError, CgroupMount, Manager
from barque.cgroups.mountinfo import UNIFIED_KEY, Hierarchy

# Where to list pids and check existence: hierarchies runc's tools join first.
_PRIMARY = ("freezer", "pids", "memory", "devices", "cpu", "name=systemd")


class CgroupV1Manager(Manager):
    version = 1

    def __init__(self, path: str, relative: bool) -> None:
        own = mountinfo.own_cgroups()
        self.hierarchies = [
            h for h in mountinfo.hierarchies(own) if h.controllers or h.fstype == "cgroup2"
        ]
        if not self.hierarchies:
            raise CgroupError("no cgroup hierarchy is mounted")
        # A relative path hangs below this process's own cgroup, which v1 can set per hierarchy.
        self.paths = {
            h.key: paths.check_not_root(paths.join(own.get(h.key, "/"), path) if relative else path)
            for h in self.hierarchies
        }
        self.dirs: dict[str, str] = {}  # controller (or "" for cgroup2) -> the host directory
        for h in self.hierarchies:
            for controller in h.controllers or [UNIFIED_KEY]:
                self.dirs[controller] = h.host_dir(self.paths[h.key])
        self.path = self.paths.get("name=systemd") or self.paths[self.hierarchies[0].key]

    def resolved_paths(self) -> dict[str, str]:
        return dict(self.paths)

    def reopen(self, resolved: dict[str, str]) -> None:
        """Point at the per-hierarchy paths an earlier resolved_paths() returned."""
        for h in self.hierarchies:
            if h.key in resolved:
                self.paths[h.key] = paths.check_not_root(resolved[h.key])
                for controller in h.controllers or [UNIFIED_KEY]:
                    self.dirs[controller] = h.host_dir(self.paths[h.key])
        self.path = self.paths.get("name=systemd") or self.paths[self.hierarchies[0].key]

    def _primary_dir(self) -> str:
        for controller in _PRIMARY:
            if controller in self.dirs:
                return self.dirs[controller]
        return next(iter(self.dirs.values()))

    def unified(self) -> tuple[Hierarchy, str] | None:
        """A hybrid host's cgroup2 hierarchy and the container's path in it, if any."""
        for h in self.hierarchies:
            if h.fstype == "cgroup2":
                return h, self.paths[h.key]
        return None

    def create(self) -> None:
        for h in self.hierarchies:
            if "cpuset" in h.controllers:
                _make_cpuset_path(h, self.paths[h.key])
            else:
                files.mkdir(h.host_dir(self.paths[h.key]))

    def add_pid(self, pid: int) -> None:
        for h in self.hierarchies:
            files.write(h.host_dir(self.paths[h.key]), "cgroup.procs", pid)

    def set_resources(self, resources: dict) -> None:
        from barque.cgroups import v1_resources

        v1_resources.apply(self.dirs, self.unified(), resources)

    def prepare_resources(self, resources: dict) -> None:
        from barque.cgroups import v1_resources

        v1_resources.check(resources, self.dirs)

    def freeze(self) -> None:
        if "freezer" in self.dirs:
            _freeze(self.dirs["freezer"])
        else:
            from barque.cgroups import v2

            v2.set_frozen(self._unified_freezer(), True)

    def thaw(self) -> None:
        if "freezer" in self.dirs:
            files.write(self.dirs["freezer"], "freezer.state", "THAWED")
        else:
            from barque.cgroups import v2

            v2.set_frozen(self._unified_freezer(), False)

    def is_frozen(self) -> bool:
        if "freezer" in self.dirs:
            return files.read(self.dirs["freezer"], "freezer.state") == "FROZEN"
        from barque.cgroups import v2

        return v2.is_frozen(self._unified_freezer())

    def _unified_freezer(self) -> str:
        # A hybrid host without a v1 freezer can still freeze through its cgroup2 mount.
        directory = self.dirs.get(UNIFIED_KEY)
        if directory is None or not files.has(directory, "cgroup.freeze"):
            raise CgroupError("cannot freeze: no freezer cgroup is mounted")
        return directory

    def pids(self) -> list[int]:
        return files.tree_pids(self._primary_dir())

    def kill_all(self, sig: int) -> None:
        unified = self.dirs.get(UNIFIED_KEY)
        if "freezer" in self.dirs or (unified and files.has(unified, "cgroup.freeze")):
            files.kill_frozen(self, sig)
        else:
            files.signal_pids(self.pids(), sig)

    def stats(self) -> dict:
        from barque.cgroups import v1_stats

        if not self.exists():
            raise CgroupError(f"no stats: cgroup {self.path} does not exist")
        return v1_stats.collect(self.dirs)

    def oom_kill_count(self) -> int:
        if "memory" not in self.dirs:
            return 0
        return files.read_keyed(self.dirs["memory"], "memory.oom_control").get("oom_kill", 0)

    def oom_event_fd(self) -> int | None:
        """An eventfd the kernel signals on each OOM in the cgroup (and when it is removed)."""
        if "memory" not in self.dirs:
            return None
        return _oom_eventfd(self.dirs["memory"])

    def exists(self) -> bool:
        return os.path.isdir(self._primary_dir())

    def destroy(self) -> None:
        failures = []
        for h in self.hierarchies:
            try:
                files.remove_tree(h.host_dir(self.paths[h.key]))
            except CgroupError as e:
                failures.append(e)  # try every hierarchy before failing
        if failures:
            raise failures[0]

    def mounts(self) -> list[CgroupMount]:
        return [_mount(h, h.host_dir(self.paths[h.key])) for h in self.hierarchies]


def _mount(h: Hierarchy, host_dir: str) -> CgroupMount:
    subdir = os.path.basename(h.mountpoint)
    if h.fstype == "cgroup2":
        return CgroupMount(subdir, "cgroup2", "", host_dir, [])
    # Co-mounted controllers ("cpu,cpuacct") get a symlink per controller, as on the host.
    links = [c for c in h.controllers if c != subdir and "=" not in c]
    return CgroupMount(subdir, "cgroup", h.key, host_dir, links if len(h.controllers) > 1 else [])


def _make_cpuset_path(h: Hierarchy, path: str) -> None:
    """mkdir each level, copying cpus and mems down: an empty cpuset refuses tasks."""
    parent = h.mountpoint
    for part in path.strip("/").split("/"):
        current = f"{parent}/{part}"
        files.mkdir(current)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if not files.read(current, name):
                files.write(current, name, files.read(parent, name))
        parent = current


def _freeze(directory: str) -> None:
    # runc's loop: v1 can stay FREEZING while tasks fork; re-writing FROZEN and an
    # occasional thaw-and-retry get it there (runc libcontainer/cgroups/fs/freezer.go).
    for i in range(1000):
        if i % 50 == 49:
            files.write(directory, "freezer.state", "THAWED")
            time.sleep(0.01)
        files.write(directory, "freezer.state", "FROZEN")
        if i % 25 == 24:
            time.sleep(0.00001)
        state = files.read(directory, "freezer.state")
        if state == "FROZEN":
            return
        if state != "FREEZING":
            raise CgroupError(f"unexpected freezer state {state!r} in {directory}")
    files.write(directory, "freezer.state", "THAWED")  # never leave it half frozen
    raise CgroupError(f"unable to freeze {directory}: tasks keep it FREEZING")


def _oom_eventfd(directory: str) -> int:
    efd = os.eventfd(0, os.EFD_CLOEXEC)
    try:
        ofd = os.open(f"{directory}/memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        os.close(efd)
        raise CgroupError(
            f"cannot open {directory}/memory.oom_control: {e.strerror}", e.errno
        ) from e
    try:
        # The registration holds its own reference to oom_control: our fd can go.
        files.write(directory, "cgroup.event_control", f"{efd} {ofd}")
    except CgroupError:
        os.close(efd)
        raise
    finally:
        os.close(ofd)
    return efd
