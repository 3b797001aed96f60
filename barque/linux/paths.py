"""Paths inside a root directory, resolved as if that root were '/': for image, config and
container paths used on the host (working dirs, volume targets, mount destinations, /etc files).

Everything works on file descriptors, never on joined strings: a path is resolved by the kernel
with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from an fd of the root, so `..` and
symlinks (absolute or relative) stay inside it even while the container swaps components. What
is missing is created one component at a time with *at calls relative to the fd of its parent,
each component opened O_NOFOLLOW and a symlink met on the way followed inside the root by
hand, as runc (filepath-securejoin's MkdirAllInRoot) does. The result is an O_PATH fd of what
was checked: the caller acts on that fd (fchdir, fstat, mount onto `proc_path(fd)`), not on a
path that could be changed under it.
"""

from __future__ import annotations

import errno
import os
import stat

from barque.linux import cdata as ctypes
from barque.linux.libc import check, libc

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from collections.abc import Callable

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

_IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
_OPENAT2 = 437  # the same number on every architecture (asm-generic)
_MAX_HOPS = 255  # symlinks followed in one resolution, as the kernel's MAXSYMLINKS (40) and more


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
    how = _OpenHow()
    how.flags, how.mode, how.resolve = flags | os.O_CLOEXEC, mode, resolve
    return check(libc.syscall(_OPENAT2, ctypes.c_int(dirfd), path.encode(), ctypes.byref(how),
                              ctypes.c_ulong(ctypes.sizeof(how))), f"openat2 {path!r}")


def open_root(root: str) -> int:
    """An O_PATH fd of the directory `root` (trusted: the caller's own path)."""
    return os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


class rooted:
    """`with rooted(rootfs) as root_fd:` — an fd of `rootfs`, closed on exit."""

    def __init__(self, root: str) -> None:
        self.fd = open_root(root)

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def proc_path(fd: int) -> str:
    """A path naming exactly what `fd` refers to, for calls that take paths (mount)."""
    return f"/proc/self/fd/{fd}"


def fd_path(fd: int) -> str:
    """Where `fd` is now, as the kernel names it (for checks and messages)."""
    return os.readlink(proc_path(fd))


def _kernel_resolve(root_fd: int, path: str, flags: int) -> int | None:
    """openat2 in the root; None where the kernel lacks it or keeps reporting a rename race."""
    for _ in range(16):
        try:
            return openat2(root_fd, path or "/", flags, 0, _IN_ROOT)
        except OSError as e:
            if e.errno in (errno.ENOSYS, errno.EPERM):  # an old kernel, or a seccomp filter
                return None
            if e.errno != errno.EAGAIN:  # EAGAIN: a rename raced with `..`; try again
                raise
    return None


def open_in_root(root_fd: int, path: str, flags: int = os.O_PATH) -> int:
    """Open the existing `path` inside the root (symlinks followed inside it, the last one
    too unless `flags` has O_NOFOLLOW). FileNotFoundError if something is missing."""
    fd = _kernel_resolve(root_fd, path, flags)
    if fd is not None:
        return fd
    found = _walk(root_fd, path, None, 0)
    if flags == os.O_PATH:
        return found
    try:
        return os.open(proc_path(found), flags | os.O_CLOEXEC)
    finally:
        os.close(found)


def mkdir_all(root_fd: int, path: str, mode: int = 0o755,
              on_make: Callable[[int, str], None] | None = None) -> int:
    """`mkdir -p` of `path` inside the root; an O_PATH fd of the directory.
    NotADirectoryError if something other than a directory is in the way. `on_make`: as
    ensure's."""
    fd = ensure(root_fd, path, is_dir=True, mode=mode, on_make=on_make)
    if not stat.S_ISDIR(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotADirectoryError(errno.ENOTDIR, f"{path}: not a directory")
    return fd


def ensure(root_fd: int, path: str, is_dir: bool, mode: int = 0o755,
           on_make: Callable[[int, str], None] | None = None) -> int:
    """An O_PATH fd of `path` inside the root; made if missing (its parents as directories,
    itself as an empty directory or file), as runc makes mount points. An existing one is
    returned whatever its type: the caller checks what it needs. `on_make(dir_fd, name)` is
    called before each entry is made."""
    try:
        fd = _kernel_resolve(root_fd, path, os.O_PATH)
    except FileNotFoundError:
        fd = None
    if fd is not None:
        return fd
    return _walk(root_fd, path, "dir" if is_dir else "file", mode, on_make)


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def _walk(root_fd: int, path: str, create: str | None, mode: int,
          on_make: Callable[[int, str], None] | None = None) -> int:
    """Resolve `path` in the root component by component, each opened O_NOFOLLOW relative to
    the fd of its parent; `..` goes back along the fds walked (never above the root), and a
    symlink's target is pushed onto the components still to walk (from the root if absolute).
    `create` ("dir" or "file"): make what is missing, the last component as that."""
    todo = _parts(path)[::-1]  # a stack: the next component at the end
    walked: list[int] = []  # the fds below the root, deepest last
    hops = 0
    try:
        while todo:
            part = todo.pop()
            here = walked[-1] if walked else root_fd
            if part == "..":
                if walked:
                    os.close(walked.pop())
                continue
            try:
                fd = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=here)
            except FileNotFoundError:
                if create is None:
                    raise
                if on_make is not None:
                    on_make(here, part)
                _make(here, part, "file" if create == "file" and not todo else "dir", mode)
                todo.append(part)  # open what is there now, checked as any other
                continue
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink("", dir_fd=fd)  # the link opened, not a name looked up again
                os.close(fd)
                hops += 1
                if hops > _MAX_HOPS:
                    raise OSError(errno.ELOOP, f"too many levels of symbolic links in {path!r}")
                if target.startswith("/"):
                    while walked:
                        os.close(walked.pop())
                todo.extend(reversed(_parts(target)))
                continue
            if todo and not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise NotADirectoryError(errno.ENOTDIR, f"{path}: {part} is not a directory")
            walked.append(fd)
        return walked.pop() if walked else os.dup(root_fd)
    finally:
        for fd in walked:
            os.close(fd)


def _make(dir_fd: int, name: str, kind: str, mode: int) -> None:
    try:
        if kind == "dir":
            os.mkdir(name, mode, dir_fd=dir_fd)
        else:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY |
                             os.O_CLOEXEC, mode, dir_fd=dir_fd))
    except FileExistsError:  # made meanwhile (or a dangling symlink): the next open decides
        pass


def walk_parent(root_fd: int, path: str, mode: int = 0o755) -> tuple[int, str]:
    """(an O_PATH fd of the directory that is to hold `path`, made inside the root if missing;
    the last component's name) — to create or replace that entry with *at calls."""
    parts = _parts(path)
    if not parts or parts[-1] == "..":
        raise OSError(errno.EINVAL, f"{path!r}: no name to create")
    return mkdir_all(root_fd, "/".join(parts[:-1]), mode), parts[-1]


def secure_join(root: str, unsafe: str) -> str:
    """Resolve `unsafe` inside `root`: symlinks (absolute or relative) and `..` can never lead
    outside it. Missing components are kept as named. Raises OSError(ELOOP) on symlink loops.

    A string, so racy: only for reading what the container cannot change meanwhile. Anything
    that creates, mounts or copies uses the fd functions above."""
    parts = [p for p in unsafe.split("/") if p not in ("", ".")]
    parts.reverse()  # a stack: the next component is at the end
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop()
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if not stat.S_ISLNK(st.st_mode):
            resolved.append(part)
            continue
        hops += 1
        if hops > 255:
            raise OSError(errno.ELOOP, f"too many levels of symbolic links in {unsafe!r}")
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        parts.extend(reversed([p for p in target.split("/") if p not in ("", ".")]))
    return os.path.join(root, *resolved)
