"""Persistent network namespaces: a namespace kept alive by a bind mount on a file, as
`ip netns add` makes them, so that it outlives the processes that use it and can be joined by
path (the OCI spec's network namespace path)."""

from __future__ import annotations

import errno
import os

from barque.linux import mount as mnt
from barque.linux.namespaces import CLONE_NEWNET, setns, unshare

_SELF = "/proc/thread-self/ns/net"


def create(path: str) -> None:
    """A new network namespace bind-mounted at `path`, with `lo` up; all or nothing."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o755, exist_ok=True)
    _ensure_mount_point(directory)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)
    try:
        _bind_new(path)
    except BaseException:
        os.unlink(path)
        raise


def remove(path: str) -> None:
    """Unmount and delete the file; the namespace goes when its last user does."""
    try:
        mnt.umount(path, mnt.MNT_DETACH)
    except OSError as e:
        # EINVAL: not a mount point (a half-made or already unmounted file).
        if e.errno not in (errno.ENOENT, errno.EINVAL):
            raise
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class entered:
    """`with entered(path):` the calling thread is in that network namespace for the block,
    and back in its own afterwards (also when the block raises)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._own = -1

    def __enter__(self) -> entered:
        target = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._own = os.open(_SELF, os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(target, CLONE_NEWNET)
            except BaseException:
                os.close(self._own)
                raise
        finally:
            os.close(target)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            setns(self._own, CLONE_NEWNET)
        finally:
            os.close(self._own)


def _bind_new(path: str) -> None:
    """unshare a network namespace in this thread, bind it onto `path`, come back."""
    own = os.open(_SELF, os.O_RDONLY | os.O_CLOEXEC)
    try:
        unshare(CLONE_NEWNET)
        try:
            # lo first: from here on anyone may join the namespace through the file.
            from barque.linux.netdev import link_up

            link_up("lo")
            mnt.mount(_SELF, path, None, mnt.MS_BIND)
        finally:
            # Leaving it drops this thread's reference: the mount alone keeps it alive.
            setns(own, CLONE_NEWNET)
    finally:
        os.close(own)


def _ensure_mount_point(directory: str) -> None:
    """Make `directory` a mount of its own in a peer group of its own, once.

    Private first, so the namespace mounts made in it never propagate into the host's other
    mount namespaces through the parent's peer group; then shared, so that mount namespaces
    copied later (a service's private /tmp...) get them as slaves and see them unmounted
    with remove() instead of pinning the namespace (and its veths) for their lifetime."""
    if _is_mount_point(directory):
        return
    from barque.linux.locks import locked_dir

    # Two `barque` processes at once must not stack two bind mounts.
    with locked_dir(directory):
        if _is_mount_point(directory):
            return
        mnt.mount(directory, directory, None, mnt.MS_BIND)
        mnt.mount(None, directory, None, mnt.MS_PRIVATE)
        mnt.mount(None, directory, None, mnt.MS_SHARED)


def _is_mount_point(directory: str) -> bool:
    from barque.linux.mountinfo import unescape

    real = os.path.realpath(directory)
    with open("/proc/self/mountinfo") as f:
        return any(unescape(line.split(" ", 5)[4]) == real for line in f)
