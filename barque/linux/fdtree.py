"""Copying a directory tree through file descriptors: every entry is opened O_NOFOLLOW relative
to the fd of its directory, so a container that swaps a directory for a symlink while the copy
runs (CVE-2018-15664 class) gets the symlink copied, never the host's files behind it."""

from __future__ import annotations

import os
import stat

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_dir(fd: int) -> int:
    """A readable fd of the directory `fd` refers to (which may be O_PATH)."""
    return os.open(".", _DIR, dir_fd=fd)


def copy_tree(src: int, dst: int) -> None:
    """Copy the contents of directory `src` into the directory `dst` (both readable fds),
    owners, modes and times kept; sockets are skipped. Entries in `dst` are created with
    O_EXCL: an entry already there is an error, not something to write through."""
    for name in os.listdir(src):
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            _copy_dir(src, dst, name)
        elif stat.S_ISREG(st.st_mode):
            _copy_file(src, dst, name)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst,
                     follow_symlinks=False)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            os.mknod(name, st.st_mode, st.st_rdev, dir_fd=dst)
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dst)
            try:
                _same_attrs(fd, st, by_path=True)
            finally:
                os.close(fd)


def _copy_dir(src: int, dst: int, name: str) -> None:
    sfd = os.open(name, _DIR, dir_fd=src)  # a symlink swapped in meanwhile: ELOOP, not followed
    try:
        os.mkdir(name, 0o700, dir_fd=dst)
        dfd = os.open(name, _DIR, dir_fd=dst)
        try:
            copy_tree(sfd, dfd)
            _same_attrs(dfd, os.fstat(sfd))
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)


def _copy_file(src: int, dst: int, name: str) -> None:
    sfd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=src)
    try:
        st = os.fstat(sfd)
        if not stat.S_ISREG(st.st_mode):  # swapped for a fifo or device meanwhile: skip it
            return
        dfd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                      0o600, dir_fd=dst)
        try:
            while os.sendfile(dfd, sfd, None, 1 << 30):
                pass
            _same_attrs(dfd, st)
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)


def _same_attrs(fd: int, st: os.stat_result, by_path: bool = False) -> None:
    # Owner first: chown clears the set-id bits that the mode then sets again.
    target: int | str = f"/proc/self/fd/{fd}" if by_path else fd
    os.chown(target, st.st_uid, st.st_gid)
    os.chmod(target, stat.S_IMODE(st.st_mode))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
