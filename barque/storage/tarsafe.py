"""File-system writes relative to directory fds that never follow a symlink.

Everything a layer writes goes through these: a name is always one path component looked up
in an already-open directory fd, directories are opened with O_NOFOLLOW, and metadata is set
through fds or with AT_SYMLINK_NOFOLLOW. A symlink (from the layer, or planted by a racing
writer) can make an operation fail, never make it land outside the tree.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Sequence
from typing import IO

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_COPY_CHUNK = 1 << 20

OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")
CAPABILITY_XATTR = "security.capability"


class XattrError(OSError):
    """A file capability could not be set: the file would silently lose its privileges."""


def open_root(path: str) -> int:
    return os.open(path, _DIR_FLAGS)


def open_dir(dir_fd: int, name: str) -> int:
    """The directory `name` in `dir_fd`; ELOOP/ENOTDIR when it is a symlink or not a dir."""
    return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


def open_parent(root_fd: int, parts: Sequence[str]) -> int:
    """The directory holding the entry `parts` (a path split in names) below `root_fd`,
    walked name by name without following a symlink."""
    fd = os.dup(root_fd)
    try:
        for name in parts[:-1]:
            sub = open_dir(fd, name)
            os.close(fd)
            fd = sub
    except BaseException:
        os.close(fd)
        raise
    return fd


def lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def proc_path(dir_fd: int, name: str | None = None) -> str:
    """A path that resolves `dir_fd` itself (a magic link), then `name` within it."""
    return f"/proc/self/fd/{dir_fd}" + (f"/{name}" if name is not None else "")


def remove(dir_fd: int, name: str) -> None:
    """Delete `name` (a whole tree if it is a directory); shutil.rmtree is fd-based."""
    st = lstat(dir_fd, name)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def clear_dir(dir_fd: int, keep: set[str] | None = None) -> None:
    """Delete every entry of the directory `dir_fd` whose name is not in `keep`."""
    for name in os.listdir(dir_fd):
        if keep is None or name not in keep:
            remove(dir_fd, name)


def is_whiteout(st: os.stat_result) -> bool:
    """An overlayfs whiteout: a character device 0:0."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def set_xattrs(target: int | str, xattrs: dict[str, bytes]) -> None:
    """Set xattrs on an fd, or on a path without following its last component.

    Overlay's own xattrs are never taken from a layer (they could redirect lookups into other
    layers). Filesystems or LSMs that refuse a class (user.* on symlinks, security.selinux
    without SELinux) are tolerated; a refused file capability is an error.
    """
    for key, value in sorted(xattrs.items()):
        if key.startswith(OVERLAY_XATTR_PREFIXES):
            continue
        try:
            if isinstance(target, int):
                os.setxattr(target, key, value)
            else:
                os.setxattr(target, key, value, follow_symlinks=False)
        except OSError as e:
            if key == CAPABILITY_XATTR:
                raise XattrError(e.errno, f"cannot set {key}: {e.strerror}") from None
            if e.errno not in (errno.ENOTSUP, errno.EPERM):
                raise


def read_xattrs(path: str) -> dict[str, bytes]:
    """A file's xattrs, overlay's own included (`path`'s last component is not followed)."""
    try:
        keys = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno == errno.ENOTSUP:
            return {}
        raise
    out = {}
    for key in keys:
        try:
            out[key] = os.getxattr(path, key, follow_symlinks=False)
        except OSError as e:
            if e.errno not in (errno.ENODATA, errno.ENOTSUP):
                raise
    return out


def _copy(src: IO[bytes] | int, fd: int) -> int:
    written = 0
    if isinstance(src, int):
        # A real file (a lower layer): copy in the kernel, as a reflink where supported.
        try:
            while n := os.copy_file_range(src, fd, _COPY_CHUNK):
                written += n
            return written
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
        os.lseek(src, 0, os.SEEK_SET)
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        written = 0
        while chunk := os.read(src, _COPY_CHUNK):
            written += _write_all(fd, chunk)
        return written
    while chunk := src.read(_COPY_CHUNK):
        written += _write_all(fd, chunk)
    return written


def _write_all(fd: int, data: bytes) -> int:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    return len(data)


class Meta:
    """Owner, permission bits (incl. set-id and sticky), mtime and xattrs of a new entry."""

    __slots__ = ("uid", "gid", "mode", "mtime_ns", "xattrs")

    def __init__(self, uid: int = 0, gid: int = 0, mode: int = 0o755, mtime_ns: int | None = None,
                 xattrs: dict[str, bytes] | None = None) -> None:
        self.uid, self.gid, self.mode, self.mtime_ns = uid, gid, mode & 0o7777, mtime_ns
        self.xattrs = xattrs or {}


def _apply_fd(fd: int, meta: Meta, times: bool) -> None:
    # Owner first: chown clears set-id bits and file capabilities, which come after.
    os.fchown(fd, meta.uid, meta.gid)
    os.fchmod(fd, meta.mode)
    set_xattrs(fd, meta.xattrs)
    if times and meta.mtime_ns is not None:
        os.utime(fd, ns=(meta.mtime_ns, meta.mtime_ns))


def write_file(dir_fd: int, name: str, src: IO[bytes] | int, meta: Meta) -> int:
    """A new regular file (O_EXCL: never an existing one, nor through a symlink).

    `src` is a stream, or the fd of a regular file to copy from its start.
    """
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600, dir_fd=dir_fd)
    try:
        size = _copy(src, fd)
        _apply_fd(fd, meta, times=True)
        return size
    finally:
        os.close(fd)


def make_dir(dir_fd: int, name: str, meta: Meta | None, *, exist_ok: bool) -> None:
    """A directory (or the existing one) with `meta` but not its mtime, set after its contents."""
    try:
        os.mkdir(name, 0o700 if meta is not None else 0o755, dir_fd=dir_fd)
    except FileExistsError:
        if not exist_ok:
            raise
    if meta is None:
        return
    fd = open_dir(dir_fd, name)
    try:
        _apply_fd(fd, meta, times=False)
    finally:
        os.close(fd)


def set_dir_mtime(dir_fd: int, mtime_ns: int) -> None:
    os.utime(dir_fd, ns=(mtime_ns, mtime_ns))


def _apply_nofollow(dir_fd: int, name: str, meta: Meta, chmod: bool) -> None:
    os.chown(name, meta.uid, meta.gid, dir_fd=dir_fd, follow_symlinks=False)
    if chmod:
        # No fchmodat(AT_SYMLINK_NOFOLLOW) in the kernel: chmod the inode an O_PATH fd holds.
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                raise OSError(errno.ELOOP, f"{name!r} became a symlink")
            os.chmod(proc_path(fd), meta.mode)
        finally:
            os.close(fd)
    set_xattrs(proc_path(dir_fd, name), meta.xattrs)
    if meta.mtime_ns is not None:
        os.utime(name, ns=(meta.mtime_ns, meta.mtime_ns), dir_fd=dir_fd, follow_symlinks=False)


def make_symlink(dir_fd: int, name: str, target: str, meta: Meta) -> None:
    os.symlink(target, name, dir_fd=dir_fd)
    _apply_nofollow(dir_fd, name, meta, chmod=False)


def make_node(dir_fd: int, name: str, kind: int, rdev: int, meta: Meta) -> None:
    """A device node (kind S_IFCHR/S_IFBLK) or a fifo (S_IFIFO)."""
    os.mknod(name, kind | 0o600, rdev, dir_fd=dir_fd)
    _apply_nofollow(dir_fd, name, meta, chmod=True)


def make_whiteout(dir_fd: int, name: str, meta: Meta) -> None:
    """An overlayfs whiteout, mode 0 as the kernel makes them."""
    os.mknod(name, stat.S_IFCHR, 0, dir_fd=dir_fd)
    meta.mode = 0
    _apply_nofollow(dir_fd, name, meta, chmod=True)


def make_link(src_dir_fd: int, src_name: str, dir_fd: int, name: str) -> None:
    """A hard link to `src_name` itself (a symlink is linked, not followed)."""
    os.link(src_name, name, src_dir_fd=src_dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)


# --- whole directories --------------------------------------------------------------------

def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
