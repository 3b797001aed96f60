"""`exec --cgroup [CONTROLLERS:]PATH`: put the exec'd process in an existing sub-cgroup of the
container's cgroup, with runc 1.1's parsing, semantics and words."""

from __future__ import annotations

import os

from barque.runtime.errors import RuntimeFailure

TYPE_CHECKING = False  # not typing's: see barque/linux/libc.py
if TYPE_CHECKING:
    from barque.cgroups.base import Manager


def parse(args: list[str]) -> dict[str, str]:
    """controller -> sub-path; "" for a path given without controllers (alone only)."""
    paths: dict[str, str] = {}
    for arg in args:
        parts = arg.split(":")
        if len(parts) > 2:
            raise RuntimeFailure(f"invalid --cgroup argument: {arg}")
        if len(parts) == 1:
            if len(args) != 1:
                raise RuntimeFailure(f"invalid --cgroup argument: {arg} "
                                     "(missing <controller>: prefix)")
            paths[""] = arg
            continue
        for controller in parts[0].split(","):
            paths[controller] = parts[1]  # as runc 1.1.5: a repeated controller, the last
    return paths


def targets(cgroup: Manager, subs: dict[str, str]) -> list[str]:
    """The directories the process joins: one per hierarchy, the container's own or its
    sub-cgroup there."""
    if not subs:
        return []
    if cgroup.version == 2:
        from barque.cgroups.v2 import CgroupV2Manager

        assert isinstance(cgroup, CgroupV2Manager)
        # One hierarchy: the controllers named (if any) all live in it.
        return [_below(cgroup.dir, next(iter(subs.values())))]
    from barque.cgroups.v1 import CgroupV1Manager

    assert isinstance(cgroup, CgroupV1Manager)
    dirs = cgroup.dirs
    for controller in subs:
        if controller and controller not in dirs:
            raise RuntimeFailure(f"unable to create new parent process: unknown controller "
                                 f"{controller} in SubCgroupPaths")
    out = []
    for directory in dict.fromkeys(dirs.values()):  # a co-mounted hierarchy once
        names = [c for c, d in dirs.items() if d == directory]
        sub = next((subs[c] for c in names if c in subs), subs.get("") if len(subs) == 1
                   else None)
        out.append(_below(directory, sub) if sub else directory)
    return out


def _below(directory: str, sub: str) -> str:
    # Kept inside the container's cgroup: runc's filepath.Join would follow "..".
    path = os.path.normpath(os.path.join(directory, sub.lstrip("/")))
    if path != directory and not path.startswith(directory + "/"):
        raise RuntimeFailure(f"invalid --cgroup argument: {sub} (outside the container's "
                             "cgroup)")
    return path


def join(directories: list[str], pid: int) -> None:
    for directory in directories:
        procs = os.path.join(directory, "cgroup.procs")
        try:
            fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, str(pid).encode())
            finally:
                os.close(fd)
        except OSError as e:
            raise RuntimeFailure(
                f"unable to start container process: error adding pid {pid} to cgroups: "
                f"failed to write {pid}: openat2 {procs}: {(e.strerror or '').lower()}"
            ) from None
