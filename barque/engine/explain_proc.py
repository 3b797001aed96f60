"""The kernel's own view of one process, read from /proc: its namespaces, status lines, id
maps and mount table (for `barque explain`). Nothing here trusts the container: every path
is under /proc/PID, read by the host, never resolved inside the container's root."""

from __future__ import annotations

import os

from barque.linux.mountinfo import unescape
from barque.structs import dataclass

NAMESPACES = ("pid", "mnt", "uts", "ipc", "net", "user", "cgroup", "time")


def ns_inode(pid: int | str, kind: str) -> int | None:
    """The inode of /proc/PID/ns/KIND ("net:[4026532463]"), None where the kernel has none."""
    try:
        link = os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None
    return int(link[link.index("[") + 1:-1])


def namespaces(pid: int | str) -> dict[str, int | None]:
    return {kind: ns_inode(pid, kind) for kind in NAMESPACES}


def status(pid: int) -> dict[str, str]:
    """/proc/PID/status as {field: value} (values stripped, tabs kept between numbers)."""
    found = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            found[key] = value.strip()
    return found


def id_map(pid: int, which: str) -> list[list[int]]:
    """/proc/PID/uid_map or gid_map: [[inside, outside, count], ...] (outside as this process's
    user namespace sees it)."""
    with open(f"/proc/{pid}/{which}") as f:
        return [[int(n) for n in line.split()] for line in f if line.strip()]


def map_to_inside(outside: int, mapping: list[list[int]]) -> int | None:
    """The id inside the namespace that `outside` is; None when it is unmapped there."""
    for inside, start, count in mapping:
        if start <= outside < start + count:
            return inside + outside - start
    return None


def read_text(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def interfaces(pid: int) -> list[str]:
    """The interface names in the network namespace of `pid` (/proc/PID/net/dev)."""
    text = read_text(f"/proc/{pid}/net/dev") or ""
    return [line.partition(":")[0].strip() for line in text.splitlines()[2:] if ":" in line]


def cmdline(pid: int) -> list[str]:
    raw = read_text(f"/proc/{pid}/cmdline") or ""
    return [arg for arg in raw.split("\0") if arg]


def rss_bytes(pid: int) -> int | None:
    """VmRSS of a process, None when it is gone."""
    try:
        value = status(pid).get("VmRSS", "")
    except OSError:
        return None
    number, _, unit = value.partition(" ")
    return int(number) * 1024 if number.isdigit() and unit.strip() == "kB" else None


@dataclass
class Mount:
    """One line of /proc/PID/mountinfo; paths are as the process sees them (its root)."""
    mount_id: int
    parent_id: int
    device: str
    root: str  # the path inside the mounted filesystem
    point: str
    options: list[str]  # per-mount: ro, nosuid, ...
    fstype: str
    source: str
    super_options: list[str]

    @property
    def read_only(self) -> bool:
        return "ro" in self.options


def mountinfo(pid: int | str) -> list[Mount]:
    mounts = []
    for line in (read_text(f"/proc/{pid}/mountinfo") or "").splitlines():
        fields = line.split()
        sep = fields.index("-")
        mounts.append(Mount(int(fields[0]), int(fields[1]), fields[2], unescape(fields[3]),
                            unescape(fields[4]), fields[5].split(","), fields[sep + 1],
                            unescape(fields[sep + 2]), fields[sep + 3].split(",")))
    return mounts


def visible(mounts: list[Mount]) -> dict[str, Mount]:
    """The mount each mount point shows: the last one mounted there (mountinfo's order)."""
    return {m.point: m for m in mounts}


def overlay_options(mount: Mount) -> dict[str, str]:
    """An overlay mount's lowerdir/upperdir/workdir. The super options are split on commas
    already, and overlayfs escapes a comma in a path, so each option is whole."""
    found = {}
    for option in mount.super_options:
        key, sep, value = option.partition("=")
        if sep and key in ("lowerdir", "upperdir", "workdir"):
            found[key] = value
    return found


def split_lowerdir(value: str) -> list[str]:
    """lowerdir=a:b:c (top-most first); overlayfs escapes a ':' inside a path as '\\:'."""
    parts, current, i = [], [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            current.append(value[i + 1])
            i += 2
            continue
        if value[i] == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(value[i])
        i += 1
    parts.append("".join(current))
    return [p for p in parts if p]
