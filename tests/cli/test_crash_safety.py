"""Crash safety: `barque` killed with SIGKILL at random points of `commit`, `load`, `rm -f`,
`run -d` and `pull` (from a registry on 127.0.0.1), then the store and the containers checked:
`ps -a` shows every container, `rm -f` removes each, no mount or cgroup is left, no temporary
outlives the next command, `image prune` leaves no unreferenced layer or blob, every image left
is whole, and the state DB passes `PRAGMA integrity_check`. And disk-full: `pull` and `commit`
on a root on a 24 MiB tmpfs fail with ENOSPC's words and leave nothing half-written.

Bounded: 6 kills of each of the 5 commands (30), with delays from a seeded RNG (the seed is in
the output; BARQUE_CRASH_SEED replays one run).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cli.conftest import Barque, ok
from tests.support.marks import needs_busybox
from tests.support.registry import Registry, run_registry, skopeo_copy
from tests.support.tools import require

pytestmark = [pytest.mark.root, pytest.mark.slow, needs_busybox]

ROUNDS = 6  # kills per command
FAT_MIB = 20  # the random (incompressible) file in the "fat" image


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(str(tmp_path_factory.mktemp("registry"))) as reg:
        yield reg


@pytest.fixture(scope="module")
def fat(registry: Registry, run_prefix: str) -> Iterator[dict[str, str]]:
    """An image of busybox plus FAT_MIB MiB of random data: as a docker-archive and in the
    registry (pushed by skopeo)."""
    require("skopeo")
    work = tempfile.mkdtemp(prefix=f"{run_prefix}-fat-")
    b = Barque(os.path.join(work, "root"), os.path.join(work, "run"))
    try:
        ok(b.run("run", "--name", "maker", "busybox", "dd", "if=/dev/urandom", "of=/fat",
                 "bs=1M", f"count={FAT_MIB}", timeout=120))
        ok(b.run("commit", "maker", "fat:1", timeout=120))
        archive = os.path.join(work, "fat.tar")
        ok(b.run("save", "-o", archive, "fat:1", timeout=120))
        ref = f"{registry.host}/crash/fat:1"
        skopeo_copy(f"docker-archive:{archive}", f"docker://{ref}")
        ok(b.run("rm", "-f", "maker"))
        yield {"archive": archive, "ref": ref}
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(autouse=True)
def docker_config(tmp_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", os.path.join(str(tmp_path), "docker-config"))


# --- killing ---------------------------------------------------------------------------------

def _kill_after(barque: Barque, delay: float, *args: str) -> bool:
    """Start `barque ARGS`, SIGKILL it (the CLI process only) after `delay` seconds; whether
    it was still running (a kill, not a finished command)."""
    proc = subprocess.Popen(barque.argv(*args), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)
        return True


def _ids(barque: Barque) -> list[str]:
    return ok(barque.run("ps", "-aq", "--no-trunc")).split()


# --- checks ----------------------------------------------------------------------------------

def _integrity(barque: Barque) -> str:
    conn = sqlite3.connect(os.path.join(barque.root, "barque.db"), timeout=30)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def _db_rows(barque: Barque, sql: str) -> set[str]:
    conn = sqlite3.connect(os.path.join(barque.root, "barque.db"), timeout=30)
    try:
        return {str(r[0]) for r in conn.execute(sql)}
    finally:
        conn.close()


def _mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if path in line]


def _cgroups_of(ids: set[str]) -> list[str]:
    found = []
    for cid in ids:
        found += glob.glob(f"/sys/fs/cgroup/barque/{cid}") + \
            glob.glob(f"/sys/fs/cgroup/*/barque/{cid}")
    return found


def _store_is_whole(barque: Barque) -> int:
    """Every recorded image has its blobs (each matching its digest) and its layer dirs;
    nothing in blobs/ or layers/ is unreferenced. Returns the number of images."""
    blob_dir = os.path.join(barque.root, "blobs", "sha256")
    layer_dir = os.path.join(barque.root, "layers")
    used_blobs = _db_rows(barque, "SELECT id FROM images UNION SELECT manifest_digest FROM "
                                  "images UNION SELECT blob_digest FROM image_layers UNION "
                                  "SELECT digest FROM image_blobs")
    used_chains = _db_rows(barque, "SELECT chain_id FROM image_layers")
    stored = {"sha256:" + n for n in os.listdir(blob_dir)}
    assert stored == used_blobs, (stored ^ used_blobs)
    for name in os.listdir(blob_dir):
        with open(os.path.join(blob_dir, name), "rb") as f:
            assert hashlib.file_digest(f, "sha256").hexdigest() == name
    layers = {"sha256:" + n for n in os.listdir(layer_dir)}
    assert layers == used_chains, (layers ^ used_chains)
    return len(_db_rows(barque, "SELECT id FROM images"))


def _temporaries(barque: Barque) -> list[str]:
    ingest = os.path.join(barque.root, "ingest")
    return sorted(os.listdir(ingest)) + [
        n for n in os.listdir(os.path.join(barque.root, "layers")) if n.startswith(".")] + [
        n for n in os.listdir(barque.root) if n.startswith(".")]


# --- the harness -----------------------------------------------------------------------------

def test_kill9_at_random_points(barque: Barque, fat: dict[str, str]) -> None:
    seed = int(os.environ.get("BARQUE_CRASH_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    print(f"crash harness seed {seed}")
    started = time.monotonic()
    ok(barque.run("run", "--name", "big", "busybox", "dd", "if=/dev/urandom", "of=/big",
                  "bs=1M", "count=16"))
    ok(barque.run("run", "-d", "--name", "spare", "busybox", "sleep", "100"))

    def running(n: int) -> None:
        ok(barque.run("run", "-d", "--name", f"rm{n}", "busybox", "sleep", "100"))

    # (name, what to do before, the command): each runs once whole, to time it, then is
    # killed ROUNDS times at a random point of that time.
    ops: list[tuple[str, Any, Any]] = [
        ("commit", None, lambda n: ["commit", "big", f"crash:{n}"]),
        ("load", lambda n: barque.run("rmi", "-f", "fat:1"),
         lambda n: ["load", "-i", fat["archive"]]),
        ("rm -f", running, lambda n: ["rm", "-f", f"rm{n}"]),
        ("run -d", None,
         lambda n: ["run", "-d", "--name", f"run{n}", "busybox", "sleep", "100"]),
        ("pull", lambda n: barque.run("rmi", "-f", fat["ref"]), lambda n: ["pull", fat["ref"]]),
    ]
    durations: dict[str, float] = {}
    for name, before, argv in ops:
        if before:
            before(100)
        t0 = time.monotonic()
        ok(barque.run(*argv(100), timeout=120))
        durations[name] = time.monotonic() - t0
    kills = {name: 0 for name, _, _ in ops}
    seen: set[str] = set()
    for n in range(2 * ROUNDS):  # a command that finishes first is tried again, bounded
        for name, before, argv in ops:
            if kills[name] >= ROUNDS:
                continue
            if before:
                before(n)
            if _kill_after(barque, rng.uniform(0.02, 0.9) * durations[name], *argv(n)):
                kills[name] += 1
            else:  # it ran faster than the timed run (a warm cache): aim earlier
                durations[name] *= 0.7
        seen.update(_ids(barque))  # ps -a still answers
        assert _integrity(barque) == "ok"
    # Every container on disk is one `ps -a` shows.
    ids = _ids(barque)
    seen.update(ids)
    on_disk = set(os.listdir(os.path.join(barque.root, "containers")))
    seen |= on_disk
    assert on_disk <= set(ids), on_disk - set(ids)
    # ... and `rm -f` removes each: no record, mount or cgroup left.
    listing = ok(barque.run("ps", "-a", "--no-trunc"))
    for cid in ids:
        removed = barque.run("rm", "-f", "-v", cid, timeout=120)
        assert removed.returncode == 0, (removed.stderr, listing)
    assert _ids(barque) == []
    assert os.listdir(os.path.join(barque.root, "containers")) == []
    assert _mounts_under(os.path.dirname(barque.root)) == []
    assert _cgroups_of(seen) == []
    # The images that were recorded are whole; after prune nothing unreferenced is left.
    ok(barque.run("image", "prune", "-f"))
    assert _temporaries(barque) == []
    images = _store_is_whole(barque)
    # What a killed command did not finish can be done again.
    ok(barque.run("pull", fat["ref"], timeout=120))
    barque.run("rmi", "-f", "fat:1")  # (the last load may not have registered it)
    ok(barque.run("load", "-i", fat["archive"], timeout=120))
    assert ok(barque.run("run", "--rm", "fat:1", "test", "-s", "/fat")) == ""
    ok(barque.run("system", "prune", "-a", "-f"))
    assert _temporaries(barque) == []
    _store_is_whole(barque)
    assert _integrity(barque) == "ok"
    summary = {"seed": seed, "kills": kills, "total_kills": sum(kills.values()),
               "containers_seen": len(seen), "images_checked_whole": images,
               "durations": {k: round(v, 2) for k, v in durations.items()},
               "seconds": round(time.monotonic() - started, 1)}
    print("crash harness:", json.dumps(summary))
    assert sum(kills.values()) >= len(ops) * ROUNDS * 2 // 3  # killed, not finished


# --- disk full -------------------------------------------------------------------------------

@pytest.fixture
def small_root(run_prefix: str) -> Iterator[Barque]:
    """A barque whose root is on a 24 MiB tmpfs (unmounted after)."""
    work = tempfile.mkdtemp(prefix=f"{run_prefix}-enospc-")
    mnt = os.path.join(work, "disk")
    os.mkdir(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", mnt],
                   check=True)
    b = Barque(os.path.join(mnt, "root"), os.path.join(work, "run"))
    try:
        yield b
    finally:
        if os.path.exists(os.path.join(b.root, "barque.db")):
            ids = b.run("ps", "-aq", "--no-trunc").stdout.split()
            if ids:
                b.run("rm", "-f", "-v", *ids, timeout=120)
        subprocess.run(["umount", mnt], check=False)
        if os.path.ismount(mnt):
            subprocess.run(["umount", "-l", mnt], check=False)
        shutil.rmtree(work, ignore_errors=True)


def _no_half_writes(b: Barque) -> None:
    ok(b.run("image", "prune", "-f"))  # a lock-taking command: reclaims temporaries
    assert _temporaries(b) == []
    _store_is_whole(b)
    assert _integrity(b) == "ok"


def test_pull_onto_a_full_disk_fails_cleanly(small_root: Barque, fat: dict[str, str]) -> None:
    result = small_root.run("pull", fat["ref"], timeout=120)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "no space left on device" in result.stderr.lower(), result.stderr
    assert "Traceback" not in result.stderr
    assert small_root.run("image", "inspect", fat["ref"]).returncode != 0
    _no_half_writes(small_root)


def test_commit_onto_a_full_disk_fails_cleanly(small_root: Barque) -> None:
    ok(small_root.run("run", "--name", "writer", "busybox", "dd", "if=/dev/urandom", "of=/big",
                      "bs=1M", "count=9"))
    result = small_root.run("commit", "writer", "full:1", timeout=120)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "no space left on device" in result.stderr.lower(), result.stderr
    assert "Traceback" not in result.stderr
    assert small_root.run("image", "inspect", "full:1").returncode != 0
    ok(small_root.run("rm", "writer"))
    _no_half_writes(small_root)
