"""Network test helpers: a directory for a test's network namespaces (cleaned up with
everything mounted in it), subnets that clash with none of the host's routes, `ip -j`."""

from __future__ import annotations

import ipaddress
import json
import os
import random
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from barque.linux import mount as mnt


@contextmanager
def netns_dir(run_prefix: str) -> Iterator[str]:
    """A temporary directory (its name carries the run prefix) for netns files; afterwards
    every namespace in it is unmounted and the directory's own mount with it."""
    path = tempfile.mkdtemp(prefix=f"{run_prefix}-netns-")
    try:
        yield path
    finally:
        from barque.network import netns

        for name in os.listdir(path):
            netns.remove(os.path.join(path, name))
        while _is_mount_point(path):
            mnt.umount(path, mnt.MNT_DETACH)
        shutil.rmtree(path, ignore_errors=True)


def _is_mount_point(path: str) -> bool:
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == real for line in f)


def mounts_at(path: str) -> int:
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return sum(line.split()[4] == real for line in f)


def free_subnets() -> tuple[ipaddress.IPv4Network, ipaddress.IPv6Network]:
    """A /24 in 198.18.0.0/15 (the benchmarking range) and a ULA /64 that overlap no route
    of the host's."""
    routes = [ipaddress.ip_network(r["dst"]) for fam in ("-4", "-6")
              for r in ip(fam, "route", "show", "table", "all")
              if r.get("dst") not in (None, "default") and "/" in r["dst"]]
    for _ in range(100):
        v4 = ipaddress.IPv4Network(f"198.{random.randint(18, 19)}.{random.randint(0, 255)}.0/24")
        v6 = ipaddress.IPv6Network(
            f"fd{random.randint(0, 255):02x}:{random.randint(0, 65535):x}:"
            f"{random.randint(0, 65535):x}:{random.randint(0, 65535):x}::/64")
        if not any(r.version == 4 and r.overlaps(v4) for r in routes) and \
                not any(r.version == 6 and r.overlaps(v6) for r in routes):
            return v4, v6
    raise AssertionError("no free test subnet")


def ip(*args: str, netns: str | None = None) -> Any:
    """`ip -j ARGS` (in the namespace at path `netns`), parsed."""
    cmd = ["ip", "-j", *args]
    if netns:
        cmd = ["nsenter", f"--net={netns}", *cmd]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out) if out.strip() else []


def link_gone(name: str) -> bool:
    return not os.path.exists(f"/sys/class/net/{name}")


def delete_links(*names: str) -> None:
    for name in names:
        if not link_gone(name):
            subprocess.run(["ip", "link", "del", name], capture_output=True)
