"""storage/claimed: a live process's claim is never reclaimed; a killed one's always is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from barque.storage import claimed
from barque.storage.claimed import ClaimedDir

_CLAIM_AND_DIE = """
import os, sys
from barque.storage.claimed import ClaimedDir
c = ClaimedDir(sys.argv[1], sys.argv[2])
open(os.path.join(c.path, "work"), "w").write("x")
print("claimed", flush=True)
if sys.argv[3] == "die":
    os.kill(os.getpid(), 9)
sys.stdin.read()  # holds the claim until the test closes stdin
"""


def _claimer(parent: str, name: str, mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", _CLAIM_AND_DIE, parent, name, mode],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=os.getcwd())
    assert proc.stdout is not None and proc.stdout.readline() == "claimed\n"
    return proc


def test_a_live_claim_stays_and_a_killed_ones_goes(tmp_path: str) -> None:
    parent = str(tmp_path)
    live = _claimer(parent, "w-live", "hold")
    dead = _claimer(parent, "w-dead", "die")
    assert dead.wait(10) == -signal.SIGKILL
    removed: list[str] = []
    try:
        assert claimed.reclaim(parent, removed.append, prefix="w-") == 1
        assert removed == [os.path.join(parent, "w-dead")]
        assert sorted(os.listdir(parent)) == ["w-dead", "w-live", "w-live.lock"]
    finally:
        live.communicate("", timeout=10)
    # The live one's process has ended without releasing: now it is a leftover too.
    import shutil

    assert claimed.reclaim(parent, shutil.rmtree, prefix="w-") == 1
    assert os.listdir(parent) == ["w-dead"]  # the remover above only recorded it


def test_release_removes_the_lock_and_a_failing_remover_keeps_the_claim(tmp_path: str) -> None:
    parent = os.path.join(str(tmp_path), "made")
    claim = ClaimedDir(parent, "x-1")
    assert os.stat(parent).st_mode & 0o777 == 0o700
    assert os.stat(claim.path).st_mode & 0o777 == 0o700
    assert claimed.reclaim(parent, lambda p: None) == 0  # held by this process
    claim.release(keep_lock=True)  # as a remove that failed: the next reclaim retries

    def fail(path: str) -> None:
        raise OSError("still mounted")

    assert claimed.reclaim(parent, fail) == 0
    assert sorted(os.listdir(parent)) == ["x-1", "x-1.lock"]
    assert claimed.reclaim(parent, os.rmdir) == 1
    assert os.listdir(parent) == []
    again = ClaimedDir(parent, "x-2")
    os.rmdir(again.path)
    again.release()
    assert os.listdir(parent) == []


def test_a_claim_is_never_taken_twice_and_other_names_are_left(tmp_path: str) -> None:
    parent = str(tmp_path)
    claim = ClaimedDir(parent, "y-1")
    with pytest.raises(FileExistsError):
        ClaimedDir(parent, "y-1")
    assert sorted(os.listdir(parent)) == ["y-1", "y-1.lock"]  # the first claim untouched
    open(os.path.join(parent, "other.lock"), "w").close()
    open(os.path.join(parent, ".pending-y-2"), "w").close()  # its maker died mid-claim
    assert claimed.reclaim(parent, os.rmdir, prefix="y-") == 0
    assert sorted(os.listdir(parent)) == ["other.lock", "y-1", "y-1.lock"]
    os.rmdir(claim.path)
    claim.release()
    assert claimed.reclaim(os.path.join(parent, "missing"), os.rmdir) == 0


def test_a_released_and_reclaimed_name_is_not_removed_by_a_late_reclaimer(
        tmp_path: str) -> None:
    """A reclaimer that opened a lock file just before its claim was released (and the name
    claimed anew) must not take the new claim's dir: it checks the name still is its file."""
    parent = str(tmp_path)
    first = ClaimedDir(parent, "z-1")
    stale_fd = os.open(os.path.join(parent, "z-1.lock"), os.O_RDWR)
    try:
        os.rmdir(first.path)
        first.release()
        second = ClaimedDir(parent, "z-1")
        second.release(keep_lock=True)  # free now, but a different file under the name
        assert not claimed._still_named(stale_fd, os.path.join(parent, "z-1.lock"))
        assert claimed.reclaim(parent, os.rmdir) == 1  # the second one's, by its own file
    finally:
        os.close(stale_fd)
