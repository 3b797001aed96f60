"""Reading a root filesystem's own account files (/etc/passwd, /etc/group) from the host,
resolved inside that root: the engine's USER/--user and the builder's --chown share it."""

from __future__ import annotations

import os
import stat

from barque.linux import paths


class RootfsError(Exception):
    """A container file could not be resolved or read (Docker reports these as 125)."""


_MAX_FILE = 16 << 20  # an /etc/passwd or /etc/group bigger than this is not read whole


def read_rootfs_file(rootfs: str, path: str) -> list[list[str]]:
    """The colon-separated records of a container file like /etc/passwd; [] if absent.
    Opened inside the root (a symlink to a host file reads the container's, not the host's),
    and only if it is a regular file (a fifo there must not hang the engine)."""
    try:
        with paths.rooted(rootfs) as root_fd:
            fd = paths.open_in_root(root_fd, path)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return []
            with open(paths.proc_path(fd), "rb") as f:
                data = f.read(_MAX_FILE)
        finally:
            os.close(fd)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as e:
        raise RootfsError(f"reading {path!r}: {e.strerror}") from None
    lines = data.decode("utf-8", errors="replace").splitlines()
    return [line.split(":") for line in lines if line and not line.startswith("#")]
