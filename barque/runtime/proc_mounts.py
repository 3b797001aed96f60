"""Mounts on or inside the container's /proc, refused as runc's checkProcMount refuses them.

A bind (or any mount but proc, sysfs, tmpfs, mqueue and cgroup) that lands on /proc — by its
destination or through a symlink in the rootfs, such as an image's /data -> /proc under a
volume at /data — would hide the real procfs behind files the container controls: the masked
and read-only paths would then apply to the fake, and the runtime's own later uses of /proc
would read it. Only procfs may cover /proc, and only the few files lxcfs emulates may be
bound inside it.
"""

from __future__ import annotations

import os

from barque.runtime.errors import RuntimeFailure

UNCHECKED_TYPES = ("proc", "sysfs", "tmpfs", "mqueue", "cgroup", "cgroup2")
LXCFS_FILES = (
    "cpuinfo", "diskstats", "meminfo", "stat", "swaps", "uptime", "loadavg", "slabinfo",
    "net/dev", "sys/kernel/ns_last_pid",
)  # fmt: skip


def check(rootfs: str, dest: str, mnt: dict, bind: bool) -> None:
    """Refuse `mnt`, whose destination resolved to `dest` in `rootfs`, if it covers /proc.
    The destination as written counts too: resolving it through /proc's magic links
    (/proc/1/root, /proc/self/cwd) reads the runtime's own view, not the container's."""
    if not bind and (mnt.get("type") or "") in UNCHECKED_TYPES:
        return
    proc = os.path.join(rootfs, "proc")
    written = os.path.join(rootfs, os.path.normpath("/" + mnt["destination"]).lstrip("/"))
    places = {rel for rel in (_inside(dest, proc), _inside(written, proc)) if rel is not None}
    if not places:
        return
    source = mnt.get("source") or ""
    where = f"error mounting {source!r} to rootfs at {mnt['destination']!r}"
    if places == {"."}:
        if not source or _is_procfs(source):
            return
        raise RuntimeFailure(f'{where}: "{dest}" cannot be mounted because it is not of type '
                             "proc")
    if bind and places <= set(LXCFS_FILES):
        return
    raise RuntimeFailure(f'{where}: "{dest}" cannot be mounted because it is inside /proc')


def _inside(path: str, proc: str) -> str | None:
    """path relative to proc ("." for proc itself), None when outside it."""
    rel = os.path.relpath(path, proc)
    return None if rel == ".." or rel.startswith("../") else rel


def _is_procfs(path: str) -> bool:
    from barque.linux import statfs

    try:
        return statfs.fs_type(path) == statfs.PROC_SUPER_MAGIC
    except OSError:
        return False
