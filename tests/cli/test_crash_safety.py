"""Crash safety: `barque` killed with SIGKILL at random points of `commit`, `load`, `rm -f`,
`run -d` and `pull` (from a registry on 127.0.0.1), then the store and the containers checked:
`ps -a` shows every container, `rm -f` removes each, no mount or cgroup is left, no temporary
outlives the next command, `image prune` leaves no unreferenced layer or blob, every image left
is whole, and the state DB passes `PRAGMA integrity_check`. And disk-full: `pull` and `commit`
on a root on a 24 MiB tmpfs fail with ENOSPC's words and leave nothing half-written.

Bounded: 6 kills of each of the 5 commands (30), with delays from a seeded RNG (the seed is in
the output; BARQUE_CRASH_SEED replays one run). And barque-monitor killed the same way (5 times
in each of: `run -d` starting it, a running container, `stop`, `rm -f`, a `--rm` container's
end and its clean-up): the same checks, plus no process of the run left.
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

from tests.cli.conftest import Barque, new_barque, ok, remove_everything
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
def fat(registry: Registry, run_prefix: str, if_prefix: str) -> Iterator[dict[str, str]]:
    """An image of busybox plus FAT_MIB MiB of random data: as a docker-archive and in the
    registry (pushed by skopeo)."""
    require("skopeo")
    work = tempfile.mkdtemp(prefix=f"{run_prefix}-fat-")
    b = new_barque(os.path.join(work, "root"), os.path.join(work, "run"), if_prefix)
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
        remove_everything(b, work)
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
    """Mounts a container left. Not the run dir's netns/: a mount of itself that holds the
    containers' network namespaces, made once and kept, as `ip netns` keeps /run/netns."""
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if path in line and
                not line.split()[4].endswith("/run/netns")]


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
def small_root(run_prefix: str, if_prefix: str) -> Iterator[Barque]:
    """A barque whose root is on a 24 MiB tmpfs (unmounted after)."""
    work = tempfile.mkdtemp(prefix=f"{run_prefix}-enospc-")
    mnt = os.path.join(work, "disk")
    os.mkdir(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", mnt],
                   check=True)
    b = new_barque(os.path.join(mnt, "root"), os.path.join(work, "run"), if_prefix)
    try:
        yield b
    finally:
        remove_everything(b, work)
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


# --- killing the monitor -----------------------------------------------------------------------
# barque-monitor SIGKILLed (by the pid the engine records in the monitor's state.json, or as a
# descendant of the CLI the test started) at random points: while `run -d` starts it, while it
# watches a running container, while `stop`/`rm -f` end the container (its exit command
# running), and while a `--rm` container is cleaned up. The container's processes outlive their
# monitor: `rm -f` must end them.

MONITOR_ROUNDS = 5  # kills per scenario


class _Tracker:
    """The processes of the run: a pidfd of each monitor and container init seen (so a reused
    number cannot fool the final check), and the containers' ids."""

    def __init__(self, barque: Barque) -> None:
        self.barque = barque
        self.monitor_bin = os.path.realpath(
            os.path.join(os.path.dirname(_cli_path(barque)), "barque-monitor"))
        self.pidfds: dict[int, int] = {}
        self.ids: set[str] = set()
        self.auto_ids: set[str] = set()  # --rm containers
        self.during_launch = 0  # `run -d` kills while the CLI still waited for its monitor

    def monitor_dirs(self) -> dict[str, str]:
        top = os.path.join(self.barque.runroot, "containers")
        names = os.listdir(top) if os.path.isdir(top) else []
        return {n: os.path.join(top, n) for n in names}

    def hold(self, pid: int) -> None:
        if pid > 0 and pid not in self.pidfds:
            try:
                self.pidfds[pid] = os.pidfd_open(pid)
            except OSError:
                pass

    def recorded(self, cid: str) -> tuple[int, int]:
        """(MonitorPid, Pid) as the monitor's state.json records them; held."""
        try:
            with open(os.path.join(self.barque.runroot, "containers", cid, "state.json")) as f:
                live = json.load(f)
        except (OSError, ValueError):
            return 0, 0
        self.ids.add(cid)
        mpid, pid = int(live.get("MonitorPid") or 0), int(live.get("Pid") or 0)
        self.hold(mpid)
        self.hold(pid)
        return mpid, pid

    def is_monitor(self, pid: int) -> bool:
        try:
            return os.path.realpath(f"/proc/{pid}/exe") == self.monitor_bin
        except OSError:
            return False

    def kill_monitors(self, pids: list[int]) -> int:
        """SIGKILL those of `pids` that are (still) our barque-monitor; how many."""
        killed = 0
        for pid in dict.fromkeys(pids):
            if pid <= 0 or not self.is_monitor(pid):
                continue
            self.hold(pid)
            fd = self.pidfds.get(pid)
            try:
                if fd is not None:
                    signal_pidfd(fd)
                else:
                    os.kill(pid, 9)
                killed += 1
            except ProcessLookupError:
                pass
        return killed

    def left(self) -> list[int]:
        """The held processes still alive (after a grace period for the last exits)."""
        import select

        deadline = time.monotonic() + 15
        alive = list(self.pidfds.items())
        while alive and time.monotonic() < deadline:
            select.select([fd for _, fd in alive], [], [], 0.2)
            alive = [(p, fd) for p, fd in alive if not select.select([fd], [], [], 0)[0]]
        return [p for p, _ in alive]

    def close(self) -> None:
        for fd in self.pidfds.values():
            os.close(fd)


def signal_pidfd(fd: int) -> None:
    import signal as sigmod

    sigmod.pidfd_send_signal(fd, sigmod.SIGKILL)


def _cli_path(barque: Barque) -> str:
    first = barque.argv()[0]
    return first if os.path.isabs(first) else shutil.which(first) or first


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        tree.setdefault(ppid, []).append(int(name))
    return tree


def _descendants(pid: int) -> list[int]:
    tree, found, todo = _children(), [], [pid]
    while todo:
        kids = tree.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _processes_naming(path: str) -> list[str]:
    needle, found = path.encode(), []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if needle in cmd:
            found.append(name + ": " + cmd.replace(b"\0", b" ").decode(errors="replace"))
    return found


def _processes_in_cgroups_of(ids: set[str]) -> list[str]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cgroup") as f:
                groups = f.read()
            with open(f"/proc/{name}/stat") as f:
                stat = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if any(cid in groups for cid in ids) and stat[0] != "Z":  # a zombie is not left
            found.append(f"{name} ({stat[0]}, parent {stat[1]})")
    return found


def _container_id(barque: Barque, name: str) -> str | None:
    found = barque.run("inspect", "-f", "{{.Id}}", name)
    return found.stdout.strip() if found.returncode == 0 else None


def test_kill9_monitors_at_random_points(barque: Barque) -> None:
    seed = int(os.environ.get("BARQUE_CRASH_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    print(f"monitor crash harness seed {seed}")
    started = time.monotonic()
    track = _Tracker(barque)
    kills = {"run -d": 0, "running": 0, "stop": 0, "rm -f": 0, "--rm clean-up": 0}
    outcomes: dict[str, list[int]] = {k: [] for k in kills}  # the CLI's exit statuses
    try:
        t0 = time.monotonic()
        ok(barque.run("run", "-d", "--name", "timed", "busybox", "sleep", "100"))
        run_time = time.monotonic() - t0
        track.recorded(ok(barque.run("inspect", "-f", "{{.Id}}", "timed")).strip())
        for n in range(2 * MONITOR_ROUNDS):
            if kills["run -d"] < MONITOR_ROUNDS:
                hit, status = _kill_monitor_during_run(barque, track, rng, run_time, n)
                kills["run -d"] += hit
                outcomes["run -d"].append(status)
            if kills["running"] < MONITOR_ROUNDS:
                kills["running"] += _kill_monitor_of_running(barque, track, rng, n)
            for verb in ("stop", "rm -f"):
                if kills[verb] < MONITOR_ROUNDS:
                    hit, status = _kill_monitor_during_end(barque, track, rng, verb, n)
                    kills[verb] += hit
                    outcomes[verb].append(status)
            if kills["--rm clean-up"] < MONITOR_ROUNDS:
                kills["--rm clean-up"] += _kill_monitor_during_autoremove(barque, track, rng,
                                                                          n)
            track.ids.update(_ids(barque))  # ps -a still answers
            assert _integrity(barque) == "ok"
        # Every container on disk is one `ps -a` shows; `rm -f` removes each, and with it
        # every process of the run (a container whose monitor was killed runs on until then).
        ids = _ids(barque)
        on_disk = set(os.listdir(os.path.join(barque.root, "containers")))
        assert on_disk <= set(ids), on_disk - set(ids)
        track.ids |= on_disk | set(ids)
        listing = ok(barque.run("ps", "-a", "--no-trunc"))
        for cid in ids:
            removed = barque.run("rm", "-f", "-v", cid, timeout=120)
            # (a --rm container's own clean-up may remove it first)
            gone = cid in track.auto_ids and "No such container" in removed.stderr
            assert removed.returncode == 0 or gone, (removed.stderr, listing)
        assert _ids(barque) == []
        assert os.listdir(os.path.join(barque.root, "containers")) == []
        work = os.path.dirname(barque.root)
        assert track.left() == [], listing
        assert _processes_in_cgroups_of(track.ids) == []
        _wait_gone(lambda: _processes_naming(work))
        assert _processes_naming(work) == []
        assert _mounts_under(work) == []
        assert _cgroups_of(track.ids) == []
        ok(barque.run("image", "prune", "-f"))
        assert _temporaries(barque) == []
        assert [n for n in os.listdir(os.path.join(barque.runroot, "containers"))] == []
        assert _integrity(barque) == "ok"
        # ... and the engine works on: a container runs, its monitor records its end.
        assert ok(barque.run("run", "--rm", "busybox", "echo", "after")) == "after\n"
    finally:
        track.close()
    summary = {"seed": seed, "monitor_kills": kills, "total_kills": sum(kills.values()),
               "run_-d_kills_while_launching": track.during_launch,
               "cli_statuses": {k: v for k, v in outcomes.items() if v},
               "containers_seen": len(track.ids), "processes_held": len(track.pidfds),
               "seconds": round(time.monotonic() - started, 1)}
    print("monitor crash harness:", json.dumps(summary))
    assert sum(kills.values()) >= len(kills) * MONITOR_ROUNDS * 2 // 3


def _wait_gone(what: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while what() and time.monotonic() < deadline:
        time.sleep(0.05)


def _kill_monitor_during_run(barque: Barque, track: _Tracker, rng: random.Random,
                             run_time: float, n: int) -> tuple[int, int]:
    """`run -d` started; at a random point the monitors it started (the launching one, a
    child of the CLI, and the detached one, by its recorded pid) are SIGKILLed; in odd
    rounds only the launching one (the detached one then starts the container alone)."""
    before = set(track.monitor_dirs())
    proc = subprocess.Popen(barque.argv("run", "-d", "--name", f"mrun{n}", "busybox", "sleep",
                                        "100"), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + rng.uniform(0.05, 1.0) * run_time
    killed = 0
    while time.monotonic() < deadline or not killed and proc.poll() is None:
        pids = _descendants(proc.pid)
        for cid in set(track.monitor_dirs()) - before:
            mpid, _ = track.recorded(cid)
            pids.append(mpid)
        pids += [d for p in list(pids) if track.is_monitor(p) for d in _descendants(p)
                 if track.is_monitor(d)]
        if time.monotonic() >= deadline:
            if n % 2:
                pids = [p for p in _children().get(proc.pid, [])] or pids
            killed = track.kill_monitors(pids)
            if killed and proc.poll() is None:
                track.during_launch += 1
            if killed or proc.poll() is not None:
                break
        else:
            for p in pids:
                if track.is_monitor(p):
                    track.hold(p)
        time.sleep(0.005)
    if not killed:  # it had finished: its detached monitor, by the recorded pid
        for cid in set(track.monitor_dirs()) - before:
            killed = track.kill_monitors([track.recorded(cid)[0]])
    status = proc.wait(timeout=120)
    for cid in set(track.monitor_dirs()) - before:
        track.recorded(cid)
        if status != 0:  # a failed run leaves nothing running
            state = json.loads(ok(barque.run("inspect", "-f", "{{json .State}}", cid)))
            assert not state["Running"], state
    return int(killed > 0), status


def _kill_monitor_of_running(barque: Barque, track: _Tracker, rng: random.Random,
                             n: int) -> int:
    ok(barque.run("run", "-d", "--name", f"mlive{n}", "busybox", "sleep", "100"))
    cid = ok(barque.run("inspect", "-f", "{{.Id}}", f"mlive{n}")).strip()
    time.sleep(rng.uniform(0, 0.3))
    mpid, _ = track.recorded(cid)
    killed = track.kill_monitors([mpid])
    state = json.loads(ok(barque.run("inspect", "-f", "{{json .State}}", cid)))
    assert state["Status"] == "dead" and not state["Running"], state  # never shown running
    return int(killed > 0)


def _kill_near_the_end(track: _Tracker, mpid: int, pid: int, rng: random.Random,
                       limit: float) -> int:
    """SIGKILL the monitor `mpid` at a random point up to `limit` seconds, or, if the
    container's init `pid` ends first, a random few milliseconds after that (the monitor is
    then writing the final state and starting its exit command)."""
    import select

    fd = track.pidfds.get(pid)
    wait = rng.uniform(0, limit)
    if fd is not None and select.select([fd], [], [], wait)[0]:
        time.sleep(rng.uniform(0, 0.03))
    elif fd is None:
        time.sleep(wait)
    return track.kill_monitors([mpid])


def _kill_monitor_during_end(barque: Barque, track: _Tracker, rng: random.Random, verb: str,
                             n: int) -> tuple[int, int]:
    """`stop -t 1` or `rm -f` of a running container (sleep as PID 1 ignores SIGTERM: stop
    waits its second, then SIGKILLs); its monitor SIGKILLed at a random point of that."""
    name = f"mend{verb[:2]}{n}"
    ok(barque.run("run", "-d", "--name", name, "busybox", "sleep", "100"))
    cid = ok(barque.run("inspect", "-f", "{{.Id}}", name)).strip()
    mpid, pid = track.recorded(cid)
    argv = ["stop", "-t", "1", name] if verb == "stop" else ["rm", "-f", name]
    proc = subprocess.Popen(barque.argv(*argv), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed = _kill_near_the_end(track, mpid, pid, rng, 1.3 if verb == "stop" else 0.15)
    status = proc.wait(timeout=120)
    if status == 0 and verb == "stop":  # stopped means stopped: not shown running, no process
        state = json.loads(ok(barque.run("inspect", "-f", "{{json .State}}", cid)))
        assert not state["Running"], state
        assert _processes_in_cgroups_of({cid}) == [], (state, killed)
    if status == 0 and verb == "rm -f":
        assert _container_id(barque, name) is None
        assert _processes_in_cgroups_of({cid}) == [], killed
    return int(killed > 0), status


def _kill_monitor_during_autoremove(barque: Barque, track: _Tracker, rng: random.Random,
                                    n: int) -> int:
    """A `--rm` container that exits soon. Even rounds: its monitor SIGKILLed at a random
    point around the container's end (before it, the exit command never runs). Odd rounds:
    the monitor's exit command (`barque container cleanup`, its child) SIGKILLed at a random
    point of the clean-up."""
    name = f"mauto{n}"
    ok(barque.run("run", "-d", "--rm", "--name", name, "busybox", "sleep", "1"))
    cid = _container_id(barque, name)
    mpid, pid = track.recorded(cid) if cid else (0, 0)
    track.auto_ids.add(cid or "")
    if n % 2 == 0:
        time.sleep(rng.uniform(0.3, 1.0))
        return int(track.kill_monitors([mpid]) > 0)
    cleanups = _exit_commands_of(track, cid or "")
    time.sleep(rng.uniform(0, 0.4))
    killed = 0
    for fd in cleanups:
        try:
            signal_pidfd(fd)
            killed += 1
        except ProcessLookupError:
            pass
    return int(killed > 0)


def _exit_commands_of(track: _Tracker, cid: str) -> list[int]:
    """pidfds (held by the tracker) of the exit command the container's monitor starts at
    its end (`barque ... container cleanup CID`: it outlives the monitor, so it is known by
    the container id in its command line, not as the monitor's child)."""
    needle = f"\0container\0cleanup\0{cid}\0".encode()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    if needle not in f.read():
                        continue
            except OSError:
                continue
            track.hold(int(name))
            if int(name) in track.pidfds:
                return [track.pidfds[int(name)]]
        time.sleep(0.005)
    return []
