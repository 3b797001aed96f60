"""mount(2), umount2(2), pivot_root(2), open_tree(2), mount_setattr(2) and the parsing of OCI
mount options into flags."""

from __future__ import annotations

import sys

from barque.linux import cdata as ctypes
from barque.linux.libc import check, libc, syscall

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000
MS_LAZYTIME = 0x2000000

MNT_DETACH = 0x2

# The new mount API (open_tree(2), mount_setattr(2)).
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 0x1
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR_IDMAP = 0x100000
OPEN_TREE_CLOEXEC = 0o2000000  # O_CLOEXEC

# option → (clear?, flag), as runc's libcontainer/specconv parses them.
_FLAGS: dict[str, tuple[bool, int]] = {
    "acl": (False, 0),
    "async": (True, MS_SYNCHRONOUS),
    "atime": (True, MS_NOATIME),
    "bind": (False, MS_BIND),
    "defaults": (False, 0),
    "dev": (True, MS_NODEV),
    "diratime": (True, MS_NODIRATIME),
    "dirsync": (False, MS_DIRSYNC),
    "exec": (True, MS_NOEXEC),
    "iversion": (False, 0),
    "lazytime": (False, MS_LAZYTIME),
    "loud": (True, MS_SILENT),
    "mand": (False, MS_MANDLOCK),
    "noatime": (False, MS_NOATIME),
    "nodev": (False, MS_NODEV),
    "nodiratime": (False, MS_NODIRATIME),
    "noexec": (False, MS_NOEXEC),
    "nomand": (True, MS_MANDLOCK),
    "norelatime": (True, MS_RELATIME),
    "nostrictatime": (True, MS_STRICTATIME),
    "nosuid": (False, MS_NOSUID),
    "nosymfollow": (False, MS_NOSYMFOLLOW),
    "rbind": (False, MS_BIND | MS_REC),
    "relatime": (False, MS_RELATIME),
    "remount": (False, MS_REMOUNT),
    "ro": (False, MS_RDONLY),
    "rw": (True, MS_RDONLY),
    "silent": (False, MS_SILENT),
    "strictatime": (False, MS_STRICTATIME),
    "suid": (True, MS_NOSUID),
    "sync": (False, MS_SYNCHRONOUS),
}

PROPAGATION: dict[str, int] = {
    "private": MS_PRIVATE,
    "shared": MS_SHARED,
    "slave": MS_SLAVE,
    "unbindable": MS_UNBINDABLE,
    "rprivate": MS_PRIVATE | MS_REC,
    "rshared": MS_SHARED | MS_REC,
    "rslave": MS_SLAVE | MS_REC,
    "runbindable": MS_UNBINDABLE | MS_REC,
}

# Options Barque understands but that are not mount(2) flags or data.
EXTENSIONS = frozenset({"tmpcopyup", "idmap", "ridmap"})


class MountOptions:
    __slots__ = ("flags", "propagation", "data", "extensions")

    def __init__(self) -> None:
        self.flags = 0
        self.propagation: list[int] = []
        self.data: list[str] = []
        self.extensions: set[str] = set()


def parse_options(options: list[str]) -> MountOptions:
    parsed = MountOptions()
    for opt in options:
        if opt in _FLAGS:
            clear, flag = _FLAGS[opt]
            parsed.flags = parsed.flags & ~flag if clear else parsed.flags | flag
        elif opt in PROPAGATION:
            parsed.propagation.append(PROPAGATION[opt])
        elif opt in EXTENSIONS:
            parsed.extensions.add(opt)
        else:
            parsed.data.append(opt)
    return parsed


def _enc(value: str | None) -> bytes | None:
    return None if value is None else value.encode()


def mount(
    source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None
) -> None:
    res = libc.mount(
        _enc(source), _enc(target), _enc(fstype), ctypes.c_ulong(flags), _enc(data)
    )
    check(res, f"mount {source!r} on {target!r} (type {fstype}, flags {flags:#x}, data {data!r})")


def umount(target: str, flags: int = 0) -> None:
    check(libc.umount2(target.encode(), flags), f"umount {target!r}")


def pivot_root(new_root: str, put_old: str) -> None:
    syscall("pivot_root", new_root.encode(), put_old.encode())


def open_tree(path: str, flags: int) -> int:
    """open_tree(AT_FDCWD, path, flags): with OPEN_TREE_CLONE, a detached copy of the mount
    at path (a bind mount of it, the file alone if path is a file) that no mount table
    shows and that goes away with its last user."""
    return syscall("open_tree", AT_FDCWD, path.encode(), flags)


def move_mount(from_fd: int, to_fd: int) -> None:
    """Attach the detached tree from_fd (open_tree's) onto the file or dir to_fd names: the
    kernel lets it cross into another mount namespace, where a bind by path could not."""
    syscall("move_mount", from_fd, b"", to_fd, b"",
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)


def mount_setattr(fd: int, attr_set: int, flags: int = AT_EMPTY_PATH,
                  userns_fd: int = 0) -> None:
    """Set MOUNT_ATTR_* flags on the mount fd refers to (a struct mount_attr: set, clear,
    propagation, userns fd; all 64-bit). With MOUNT_ATTR_IDMAP, `userns_fd`'s id maps
    become the mount's (a detached mount not yet attached, as the kernel requires)."""
    attr = (attr_set.to_bytes(8, sys.byteorder) + bytes(16)
            + userns_fd.to_bytes(8, sys.byteorder))
    syscall("mount_setattr", fd, b"", flags, ctypes.create_string_buffer(attr, 32), 32)
