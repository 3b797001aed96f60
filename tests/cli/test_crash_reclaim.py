"""A `barque` killed with SIGKILL in the middle of `load` or `commit` leaves temporaries in the
store; the next command that takes the store's lock reclaims them, and `image prune` /
`system prune` reclaim resumable downloads too."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tarfile
import time
from typing import Any

import pytest

from barque.image import default as default_image
from tests.cli.conftest import Barque, ok
from tests.support.marks import needs_busybox

pytestmark = [pytest.mark.root, needs_busybox]


def _ingest(barque: Barque) -> list[str]:
    """What the ingest dir holds but lock files (empty; a writer leaves its own, the next
    command that finds the store idle removes them)."""
    path = os.path.join(barque.root, "ingest")
    names = os.listdir(path) if os.path.isdir(path) else []
    return sorted(n for n in names if not n.endswith(".lock"))


def _ingest_bytes(barque: Barque) -> int:
    total = 0
    for dirpath, _, names in os.walk(os.path.join(barque.root, "ingest")):
        total += sum(os.lstat(os.path.join(dirpath, n)).st_size for n in names)
    return total


def _wait_for(predicate: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _layout_tar(tmp_path: Any) -> str:
    """The default busybox image as an OCI archive (a tar of its layout)."""
    layout = str(tmp_path / "layout")
    default_image.build_default_image(layout)
    path = str(tmp_path / "busybox.tar")
    with tarfile.open(path, "w") as tar:
        tar.add(layout, arcname=".")
    return path


def _killed_load(barque: Barque) -> None:
    """`barque load` from a pipe, killed once it has spooled 2 MiB of an 8 MiB member."""
    info = tarfile.TarInfo("junk")
    info.size = 8 << 20
    proc = subprocess.Popen(barque.argv("load"), stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdin is not None
        proc.stdin.write(info.tobuf(tarfile.PAX_FORMAT) + bytes(4 << 20))
        proc.stdin.flush()
        _wait_for(lambda: _ingest_bytes(barque) >= 2 << 20)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def test_killed_load_is_reclaimed_by_the_next_load(barque: Barque, tmp_path: Any) -> None:
    ok(barque.run("images"))  # makes the store
    _killed_load(barque)
    assert any(name.startswith(".load-") for name in _ingest(barque))  # the crash's leftover
    out = ok(barque.run("load", "-i", _layout_tar(tmp_path)))
    assert "Loaded image" in out
    assert _ingest(barque) == []


def test_killed_load_is_reclaimed_by_image_prune(barque: Barque) -> None:
    ok(barque.run("images"))
    _killed_load(barque)
    assert _ingest(barque)
    ok(barque.run("image", "prune", "-f"))
    assert _ingest(barque) == []


def test_killed_commit_is_reclaimed(barque: Barque) -> None:
    ok(barque.run("run", "--name", "big", "busybox", "dd", "if=/dev/zero", "of=/big",
                  "bs=1M", "count=48"))
    proc = subprocess.Popen(barque.argv("commit", "big", "big:img"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: _ingest_bytes(barque) >= 1 << 20 or proc.poll() is not None)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert any(name.startswith(".commit-") for name in _ingest(barque))
    assert barque.run("image", "inspect", "big:img").returncode != 0
    ok(barque.run("commit", "big", "big:img"))  # takes the lock: reclaims, then writes
    assert _ingest(barque) == []
    ok(barque.run("rm", "big"))


def test_prune_removes_resumable_downloads(barque: Barque, tmp_path: Any) -> None:
    ok(barque.run("images"))
    partial = os.path.join(barque.root, "ingest", "ab" * 32)
    with open(partial, "wb") as f:
        f.write(b"half a layer")
    open(partial + ".lock", "wb").close()
    ok(barque.run("load", "-i", _layout_tar(tmp_path)))
    assert os.path.exists(partial)  # kept for the next pull to resume
    ok(barque.run("system", "prune", "-f"))
    assert _ingest(barque) == []


def test_rm_killed_between_its_dir_and_its_record_is_finished(barque: Barque) -> None:
    # The state a `rm -f` killed after it removed the container's dir, before its record,
    # leaves (the crash harness found it): `ps -a` lists the container, `rm -f` must work.
    cid = ok(barque.run("create", "busybox", "true")).strip()
    shutil.rmtree(os.path.join(barque.root, "containers", cid))
    assert cid in ok(barque.run("ps", "-aq", "--no-trunc")).split()
    ok(barque.run("rm", "-f", cid))
    assert ok(barque.run("ps", "-aq", "--no-trunc")) == ""
    assert not os.path.exists(os.path.join(barque.root, "containers", cid))
