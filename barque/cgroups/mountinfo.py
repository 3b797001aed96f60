"""Find the cgroup hierarchies the host mounts, and this process's place in each.

Read from /proc/self/mountinfo and /proc/self/cgroup rather than assumed: hosts differ
(cpu and cpuacct co-mounted or not, a hybrid cgroup2 at /sys/fs/cgroup/unified or not).
"""

from __future__ import annotations

import os

from barque.linux.mountinfo import unescape

UNIFIED_KEY = ""  # how /proc/self/cgroup names the cgroup2 hierarchy ("0::/path")


class Hierarchy:
    """One mounted cgroup hierarchy (the first mount seen of each superblock)."""

    __slots__ = ("mountpoint", "root", "fstype", "controllers")

    def __init__(self, mountpoint: str, root: str, fstype: str, controllers: list[str]) -> None:
        self.mountpoint = mountpoint
        self.root = root  # the hierarchy's directory that is visible at the mountpoint
        self.fstype = fstype
        # v1: ["cpu", "cpuacct"] or ["name=systemd"]; cgroup2: [] (its controllers are files).
        self.controllers = controllers

    @property
    def key(self) -> str:
        """The name the hierarchy is known by in /proc/self/cgroup."""
        return ",".join(self.controllers)

    def host_dir(self, cgroup_path: str) -> str:
        """The directory of `cgroup_path` (a path within the hierarchy) on this host."""
        rel = cgroup_path
        if self.root != "/" and (rel == self.root or rel.startswith(self.root + "/")):
            rel = rel[len(self.root) :]  # mounted from a sub-tree (e.g. inside a container)
        return self.mountpoint + rel.rstrip("/") if rel != "/" else self.mountpoint

    def __repr__(self) -> str:
        return f"Hierarchy({self.mountpoint!r}, {self.fstype!r}, {self.controllers!r})"


def parse_mountinfo(text: str, known_controllers: set[str]) -> list[Hierarchy]:
    """cgroup and cgroup2 mounts, one per hierarchy, in mount order.

    `known_controllers` (from /proc/self/cgroup) tells controllers apart from mount options.
    """
    seen: set[str] = set()
    found: list[Hierarchy] = []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fstype, _source, superopts = (right.split(" ") + ["", ""])[:3]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        fields = left.split(" ")
        if fields[2] in seen:
            continue  # a bind mount of a hierarchy already found
        seen.add(fields[2])
        opts = superopts.split(",")
        controllers = [o for o in opts if o in known_controllers] if fstype == "cgroup" else []
        found.append(Hierarchy(unescape(fields[4]), unescape(fields[3]), fstype, controllers))
    return found


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/PID/cgroup as {hierarchy key: cgroup path}; the key of cgroup2 is ""."""
    result: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            result[parts[1]] = parts[2]
    return result


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def own_cgroups() -> dict[str, str]:
    return parse_proc_cgroup(_read("/proc/self/cgroup"))


def hierarchies(own: dict[str, str] | None = None) -> list[Hierarchy]:
    """The host's cgroup hierarchies as this process sees them."""
    own = own_cgroups() if own is None else own
    known = {c for key in own for c in key.split(",") if c}
    return parse_mountinfo(_read("/proc/self/mountinfo"), known)


def is_pure_v2(mountpoint: str = "/sys/fs/cgroup") -> bool:
    # Only a cgroup2 root has cgroup.controllers; the hybrid/v1 tmpfs there does not.
    return os.path.exists(mountpoint + "/cgroup.controllers")
