"""Advisory locks between Barque processes: flock(2) on an fd, a file or a directory.

The one place Barque takes flocks. A lock lives as long as its open file description: closing
the fd (or the process dying, even by kill -9) releases it, which is how Barque tells a dead
holder's leftovers from a live one's."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

_FILE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def lock(fd: int, shared: bool = False) -> None:
    """Wait for the lock on `fd`: exclusive, or `shared` with other shared holders."""
    fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)


def try_lock(fd: int, shared: bool = False) -> bool:
    """The lock on `fd` if it is free now; False (and nothing changed) if another holds it."""
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def unlock(fd: int) -> None:
    """Release the lock but keep the fd open (to lock again later)."""
    fcntl.flock(fd, fcntl.LOCK_UN)


def open_file(path: str, nofollow: bool = False) -> int:
    """A lock file's fd (created 0600 if missing), not yet locked."""
    return os.open(path, _FILE_FLAGS | (os.O_NOFOLLOW if nofollow else 0), 0o600)


def open_dir(directory: str, nofollow: bool = False) -> int:
    """An existing directory's fd to lock, not yet locked."""
    return os.open(directory, _DIR_FLAGS | (os.O_NOFOLLOW if nofollow else 0))


@contextmanager
def held(fd: int, shared: bool = False) -> Iterator[int]:
    """Hold the lock on `fd` for the block's duration, then close `fd` (which releases it)."""
    try:
        lock(fd, shared)
        yield fd
    finally:
        os.close(fd)


@contextmanager
def locked_file(path: str, shared: bool = False) -> Iterator[int]:
    """Hold a flock on the file `path` (created 0600 if missing) for the block's duration."""
    with held(open_file(path), shared) as fd:
        yield fd


@contextmanager
def locked_dir(directory: str, shared: bool = False) -> Iterator[int]:
    """Hold a flock on `directory` (created if missing) for the block's duration."""
    os.makedirs(directory, exist_ok=True)
    with held(open_dir(directory), shared) as fd:
        yield fd
