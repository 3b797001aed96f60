"""Turn OCI linux.cgroupsPath into a cgroup path, the way runc's cgroupfs driver does."""

from __future__ import annotations

import posixpath

from barque.cgroups.base import CgroupError


def clean(path: str) -> str:
    """An absolute, normalised path that cannot climb above the hierarchy root."""
    # normpath keeps a leading "//" (POSIX allows it to mean something else): avoid it.
    return posixpath.normpath("/" + path.lstrip("/"))


def parse(cgroups_path: str | None, container_id: str) -> tuple[str, bool]:
    """(path, relative): relative paths are resolved later, per hierarchy, by the driver."""
    if not cgroups_path:
        if not container_id:
            raise CgroupError("no cgroupsPath and no container id to derive one from")
        return clean(container_id), False
    if cgroups_path.startswith("/"):
        return clean(cgroups_path), False
    if cgroups_path.count(":") == 2:
        # "slice:prefix:name" only means something to the systemd driver.
        raise CgroupError(f"cgroupsPath {cgroups_path!r}: systemd cgroup driver is not supported")
    return cgroups_path, True


def join(own: str, relative: str) -> str:
    """`relative` resolved against the caller's own cgroup `own`."""
    return clean(f"{own}/{relative}")


def check_not_root(path: str) -> str:
    # destroy() removes the cgroup and everything below it: never let that be the root.
    if path == "/":
        raise CgroupError("cgroupsPath must not name the root cgroup")
    return path
