"""Container cgroups: one Manager interface, a cgroup v1 (and hybrid) driver and a v2 driver.

The driver is chosen at run time from what the host mounts at /sys/fs/cgroup, and imported
only then, so that a short-lived runtime command loads one driver and nothing else.
"""

from __future__ import annotations

from barque.cgroups.base import CgroupError, CgroupMount, Manager
from barque.cgroups.mountinfo import is_pure_v2

__all__ = ["CgroupError", "CgroupMount", "Manager", "open_manager"]


def open_manager(
    cgroups_path: str | None, container_id: str, resolved: dict[str, str] | None = None
) -> Manager:
    """The Manager of a container's cgroup (nothing is created until Manager.create()).

    `cgroups_path` is OCI linux.cgroupsPath: absolute paths are taken from each hierarchy's
    root, relative ones from the calling process's own cgroup, and None or "" means
    "/<container_id>". The systemd form "slice:prefix:name" raises CgroupError.
    `resolved` is a Manager's resolved_paths() from an earlier call: it reopens exactly that
    cgroup, whatever the caller's own cgroup is now (relative paths depend on it).
    """
    from barque.cgroups import paths

    path, relative = paths.parse(cgroups_path, container_id)
    if is_pure_v2():
        from barque.cgroups.v2 import CgroupV2Manager

        if resolved and "" in resolved:
            return CgroupV2Manager(resolved[""], False)
        return CgroupV2Manager(path, relative)
    from barque.cgroups.v1 import CgroupV1Manager

    manager = CgroupV1Manager(path, relative)
    if resolved:
        manager.reopen(resolved)
    return manager
