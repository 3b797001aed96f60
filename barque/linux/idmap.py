"""Idmapped mounts: a user namespace that only carries id maps, and detached clones of a
directory whose files appear through those maps (open_tree(2) + mount_setattr(2) with
MOUNT_ATTR_IDMAP, Linux 5.12+; overlayfs accepts them as lower layers from 5.19).

A file owned by uid 0 on disk shows as the uid that 0 maps to (e.g. 100000) through such a
mount, so a user-namespaced container whose root is mapped the same way sees it as its own
root's — without a chowned copy of the image.
"""

from __future__ import annotations

import os

from barque.linux import mount as mnt
from barque.linux import namespaces as ns

IdMap = list[tuple[int, int, int]]  # (inside, outside, count) lines of /proc/PID/uid_map


def _map_text(mapping: IdMap) -> str:
    return "".join(f"{inside} {outside} {count}\n" for inside, outside, count in mapping)


def userns_fd(uid_map: IdMap, gid_map: IdMap) -> int:
    """An fd of a new user namespace with these maps (held by nothing but the fd): a child
    unshares it and waits while we write its maps and open its /proc/PID/ns/user."""
    ready_r, ready_w = os.pipe()
    hold_r, hold_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only raw calls, then _exit
        code = 1
        try:
            os.close(ready_r)
            os.close(hold_w)
            ns.unshare(ns.CLONE_NEWUSER)
            os.write(ready_w, b"1")
            os.read(hold_r, 1)  # until the parent has what it needs
            code = 0
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(hold_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise OSError(f"a child could not make a user namespace for {uid_map}")
        for name, mapping in (("uid_map", uid_map), ("gid_map", gid_map)):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(_map_text(mapping))
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(hold_w)
        os.close(ready_r)
        os.waitpid(pid, 0)


def idmapped_clone(path: str, users_fd: int) -> int:
    """A detached idmapped bind of the directory `path` (an fd that holds it, to be named as
    /proc/self/fd/N or attached with move_mount); its files seen through `users_fd`'s maps."""
    fd = mnt.open_tree(path, mnt.OPEN_TREE_CLONE | mnt.OPEN_TREE_CLOEXEC)
    try:
        mnt.mount_setattr(fd, mnt.MOUNT_ATTR_IDMAP, userns_fd=users_fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def shift(ident: int, mapping: IdMap) -> int | None:
    """The outside id that `ident` inside is under `mapping`; None when unmapped."""
    for inside, outside, count in mapping:
        if inside <= ident < inside + count:
            return outside + ident - inside
    return None
