"""engine.events: the log file (one whole line per event from concurrent processes, rotation
under a follower), moby's filters, and the lifecycle's events (one `die` per run)."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time

import pytest

from barque.engine import event_filters, events, lifecycle
from barque.engine.context import Engine, Paths
from barque.engine.create import create
from tests.cli.conftest import Barque
from tests.support.marks import needs_busybox


def _writer(runroot: str, n: int, count: int) -> None:
    for i in range(count):
        events.emit(runroot, "volume", "create", f"w{n}-{i}-" + "x" * 300, {"driver": "local"})


def test_concurrent_writers_never_interleave(tmp_path: object) -> None:
    runroot = str(tmp_path)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(runroot, n, 200)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with open(events.log_path(runroot), "rb") as f:
        lines = f.read().splitlines()
    ids = {json.loads(line)["Actor"]["ID"] for line in lines}  # every line whole JSON
    assert len(lines) == len(ids) == 800
    assert os.stat(events.log_path(runroot)).st_mode & 0o777 == 0o600


def test_rotation_under_a_follower(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    runroot = str(tmp_path)
    monkeypatch.setattr(events, "MAX_SIZE", 4096)
    events.emit(runroot, "volume", "create", "before", {})
    seen: list[str] = []
    done = threading.Event()
    reader = events.read(runroot, follow=True, stopped=done.is_set)  # from now on

    def follow() -> None:
        for msg in reader:
            seen.append(msg["Actor"]["ID"])
            if len(seen) == 100:
                done.set()

    thread = threading.Thread(target=follow)
    thread.start()
    for i in range(100):  # ~250 bytes each: several rotations
        events.emit(runroot, "volume", "create", f"v{i}", {"driver": "local"})
        if i % 10 == 0:
            time.sleep(0.06)  # let the follower see some rotations one by one
    thread.join(30)
    done.set()
    assert seen == [f"v{i}" for i in range(100)]
    assert os.path.exists(events.log_path(runroot) + ".1")
    assert os.path.getsize(events.log_path(runroot)) <= 4096 + 300
    # A window reads the rotated file first: the newest ones are there, in order, once each.
    past = [m["Actor"]["ID"] for m in events.read(runroot, since_ns=1)]
    assert past == sorted(set(past), key=past.index) and past[-1] == "v99"


def test_window_and_unwritable_runroot(tmp_path: object) -> None:
    runroot = str(tmp_path)
    for i, ns in enumerate((10, 20, 30)):
        line = json.dumps(events.message("volume", "create", f"v{i}", {}, time_ns=ns))
        with open(events.log_path(runroot) if i else _made(events.log_path(runroot)), "a") as f:
            f.write(line + "\n")
    with open(events.log_path(runroot), "a") as f:
        f.write('{"Type": "volume", "Act')  # a line cut short by a crash: skipped
    ids = [m["Actor"]["ID"] for m in events.read(runroot, since_ns=20, until_ns=30)]
    assert ids == ["v1", "v2"]
    assert [m["Actor"]["ID"] for m in events.read(runroot, until_ns=15)] == ["v0"]
    not_a_dir = os.path.join(runroot, "file")
    open(not_a_dir, "w").close()
    events.emit(not_a_dir, "volume", "create", "x", {})  # the operation goes on: no raise


def _made(path: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def _msg(type_: str, action: str, actor: str, **attrs: str) -> dict[str, object]:
    return events.message(type_, action, actor, attrs)


def test_filters_as_moby() -> None:
    c = _msg("container", "start", "abc123", name="web", image="nginx:1.25", tier="front")
    i = _msg("image", "tag", "sha256:ff", name="nginx:1.25")
    n = _msg("network", "connect", "net99", name="backend", container="abc123")
    e = _msg("container", "exec_start: sh -c true", "abc123", name="web", image="nginx")

    def m(msg: dict[str, object], **f: list[str]) -> bool:
        return event_filters.matches(msg, f)

    assert m(c, container=["abc"]) and m(c, container=["we"]) and not m(c, container=["x"])
    assert not m(n, container=["abc"])  # the Actor is the network, not the container
    assert m(n, network=["back"]) and m(n, network=["net9"]) and not m(c, type=["network"])
    assert m(c, image=["nginx"]) and m(c, image=["nginx:1.25"]) and not m(c, image=["ngin"])
    assert m(i, image=["nginx"]) and m(i, image=["sha256:ff"])
    assert m(c, label=["tier"]) and m(c, label=["tier=front"]) and not m(c, label=["tier=x"])
    assert m(c, event=["start", "die"]) and not m(c, event=["sta"])
    assert m(e, event=["exec_start"]) and not m(c, event=["exec_start"])  # moby #25798
    assert m(c, type=["container"], event=["start"]) and not m(c, type=["image"])
    assert m(c, scope=["local"]) and not m(c, scope=["swarm"])
    assert not m(c, node=["x"]) and m(c, nosuch=["x"])  # keys dockerd ignores match all




@pytest.mark.root
@needs_busybox
def test_one_die_per_run_and_rm_f(barque: Barque) -> None:
    paths = Paths(barque.root, barque.runroot)
    since = time.time_ns()
    with Engine(paths) as engine:
        record = create(engine, "busybox", {"Cmd": ["sleep", "30"], "Labels": {"k": "v"}},
                        {"NetworkMode": "none"}, name="dies")
        lifecycle.start(engine, record.id)
        lifecycle.kill(engine, record.id, "KILL")  # kill waits, then the exit command runs
        lifecycle.start(engine, record.id)
        lifecycle.remove(engine, record.id, force=True)
    # the first run's exit command may still be on its way: give it time to (not) say die
    time.sleep(1)
    got = [(m["Action"], m["Actor"]["Attributes"].get("exitCode", ""),
            m["Actor"]["Attributes"].get("signal", ""))
           for m in events.read(barque.runroot, since_ns=since,
                                filters={"container": ["dies"]})]
    assert got == [("create", "", ""), ("start", "", ""), ("kill", "", "9"), ("die", "137", ""),
                   ("start", "", ""), ("kill", "", "9"), ("die", "137", ""),
                   ("destroy", "", "")]
    first = next(events.read(barque.runroot, since_ns=since))
    assert first["Actor"]["Attributes"] == {"k": "v", "image": "busybox", "name": "dies"}
    assert (first["status"], first["id"], first["from"]) == ("create", record.id, "busybox")
