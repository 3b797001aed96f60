"""barque.linux.locks: flock between processes (a child holds, we try), on files and dirs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from barque.linux import locks

_HOLD = """
import sys, time
from barque.linux import locks
fd = (locks.open_dir if sys.argv[2] == "dir" else locks.open_file)(sys.argv[1])
locks.lock(fd, shared=sys.argv[3] == "shared")
print("held", flush=True)
sys.stdin.read()  # until the test closes our stdin
"""


@pytest.fixture
def holder():
    """A child process holding a lock on a path until the test ends (its lock dies with it)."""
    procs = []

    def start(path: str, kind: str = "file", mode: str = "exclusive") -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", _HOLD, path, kind, mode],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"
        return proc

    yield start
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)


def test_try_lock_sees_another_process(tmp_path, holder) -> None:
    path = str(tmp_path / "l")
    proc = holder(path)
    fd = locks.open_file(path)
    try:
        assert not locks.try_lock(fd)
        assert not locks.try_lock(fd, shared=True)
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)
        assert locks.try_lock(fd)  # released when its holder exited
    finally:
        os.close(fd)


def test_shared_holders_exclude_only_exclusive(tmp_path, holder) -> None:
    path = str(tmp_path / "l")
    holder(path, mode="shared")
    fd = locks.open_file(path)
    try:
        assert locks.try_lock(fd, shared=True)
        locks.unlock(fd)
        assert not locks.try_lock(fd)
    finally:
        os.close(fd)


def test_locked_file_creates_0600_and_releases(tmp_path) -> None:
    path = str(tmp_path / "l")
    with locks.locked_file(path) as fd:
        assert os.stat(path).st_mode & 0o777 == 0o600
        other = locks.open_file(path)  # another open file description: excluded
        try:
            assert not locks.try_lock(other)
        finally:
            os.close(other)
    with pytest.raises(OSError):
        os.fstat(fd)  # closed on leaving
    with locks.locked_file(path, shared=True):
        pass


def test_locked_dir_makes_and_locks_a_directory(tmp_path, holder) -> None:
    directory = str(tmp_path / "d" / "e")
    with locks.locked_dir(directory) as fd:
        assert os.path.isdir(directory)
        other = locks.open_dir(directory)
        try:
            assert not locks.try_lock(other)
        finally:
            os.close(other)
    holder(directory, kind="dir")
    fd = locks.open_dir(directory)
    try:
        assert not locks.try_lock(fd)
    finally:
        os.close(fd)


def test_open_file_nofollow_refuses_a_symlink(tmp_path) -> None:
    (tmp_path / "target").write_text("")
    os.symlink(tmp_path / "target", tmp_path / "link")
    with pytest.raises(OSError):
        locks.open_file(str(tmp_path / "link"), nofollow=True)


def test_held_closes_even_on_error(tmp_path) -> None:
    fd = locks.open_file(str(tmp_path / "l"))
    with pytest.raises(RuntimeError), locks.held(fd):
        raise RuntimeError
    with pytest.raises(OSError):
        os.fstat(fd)
