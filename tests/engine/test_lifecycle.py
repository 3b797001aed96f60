"""Engine lifecycle corner cases that the CLI cannot reach on purpose."""

from __future__ import annotations

import pytest

from barque.engine import lifecycle, monitor
from barque.engine.context import Engine, Paths
from barque.engine.create import create
from tests.cli.conftest import Barque
from tests.support.marks import needs_busybox

pytestmark = [
    pytest.mark.root,
    needs_busybox,
]


def test_rm_ends_a_monitor_whose_attach_client_never_came(barque: Barque) -> None:
    # `run` or `start -a` killed between starting the monitor and attaching: the monitor waits
    # for a client that never comes; removing the container must not leave it behind.
    with Engine(Paths(barque.root, barque.runroot)) as engine:
        record = create(engine, "busybox", {"Cmd": ["true"]}, {})
        lifecycle.start(engine, record.id, attach=True)
        live = monitor.read_state(engine.paths.monitor_dir(record.id))
        assert live is not None and live["Status"] == "created"
        pid = int(live["MonitorPid"])
        assert monitor.alive(pid)
        lifecycle.remove(engine, record.id)
        assert not monitor.alive(pid)
        assert engine.records.get(record.id) is None


def _monitor_pid(b: Barque, container_id: str) -> int:
    live = monitor.read_state(Paths(b.root, b.runroot).monitor_dir(container_id))
    assert live is not None
    return int(live["MonitorPid"])


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("command", ["stop", "kill", "restart", "rm"])
def test_a_container_whose_monitor_was_killed_is_still_stopped(barque: Barque,
                                                                command: str) -> None:
    import os
    import signal

    from tests.cli.conftest import inspect_container, ok, until

    b = barque
    cid = ok(b.run("run", "-d", "--name", "orphan", "busybox", "sleep", "300")).strip()
    pid = int(inspect_container(b, "orphan")["State"]["Pid"])
    assert pid > 0
    mon = _monitor_pid(b, cid)
    os.kill(mon, signal.SIGKILL)  # the monitor the engine recorded, by its own pid
    until(lambda: _gone(mon))
    assert not _gone(pid)  # the container runs on without it
    if command == "stop":
        ok(b.run("stop", "-t", "1", "orphan"))
    elif command == "kill":
        ok(b.run("kill", "orphan"))
    elif command == "restart":
        ok(b.run("restart", "-t", "1", "orphan"))
    else:
        ok(b.run("rm", "-f", "orphan"))
    until(lambda: _gone(pid), timeout=10)
    if command == "rm":
        assert ok(b.run("ps", "-aq")) == ""
        return
    state = inspect_container(b, "orphan")["State"]
    if command == "restart":
        assert state["Status"] == "running" and state["Pid"] not in (0, pid)
    else:
        assert state["Status"] == "exited" and not state["Running"]
        assert "Exited (" in ok(b.run("ps", "-a", "--format", "{{.Status}}"))
    ok(b.run("rm", "-f", "orphan"))
    assert ok(b.run("ps", "-aq")) == ""


@pytest.mark.slow
def test_kill_9_during_run_leaves_nothing_rm_cannot_remove(barque: Barque) -> None:
    # `run -d` killed at points from its start to its end: whatever it left (a record
    # without its dir, a created container with its overlay mounted, a running one) is
    # listed by `ps -a`, and `container prune` and `rm -f` remove it, mounts included.
    import os
    import signal
    import subprocess
    import time

    from tests.cli.conftest import ok, until

    b = barque
    ok(b.run("run", "--rm", "busybox", "true"))  # the image is built before the clock runs
    for delay in (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.8):
        proc = subprocess.Popen(b.argv("run", "-d", "busybox", "sleep", "300"),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)  # the CLI we started, by its pid
        proc.wait(timeout=30)
    listed = set(ok(b.run("ps", "-aq", "--no-trunc")).split())
    assert set(b.containers()) <= listed
    ok(b.run("container", "prune", "-f"))  # the created and dead ones
    listed = set(ok(b.run("ps", "-aq", "--no-trunc")).split())
    if listed:
        ok(b.run("rm", "-f", *sorted(listed), timeout=120))
    left = ok(b.run("ps", "-a", "--format", "{{.ID}} {{.Status}}"))
    assert left == "" and b.containers() == [], (left, [
        (c, os.listdir(os.path.join(b.root, "containers", c))) for c in b.containers()],
        [(base, files) for base, _, files in os.walk(b.runroot)])
    work = os.path.dirname(b.root)
    with open("/proc/self/mountinfo") as f:  # (the run dir's netns/ is a mount kept for good)
        assert [line for line in f if work in line and
                not line.split()[4].endswith("/run/netns")] == []
    # No monitor nor container left running (a monitor's last `container cleanup` may still
    # be finishing: it finds nothing to do).
    until(lambda: _processes_naming(work) == [], timeout=15)


def _processes_naming(text: str) -> list[str]:
    import os

    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace").replace("\0", " ")
        except OSError:
            continue
        if text in cmdline and int(pid) != os.getpid():
            found.append(f"{pid}: {cmdline}")
    return found


def test_rm_removes_a_record_whose_create_was_killed_before_its_dir(barque: Barque) -> None:
    # What a kill between `create`'s first step (the record) and its second (the dir)
    # leaves, made directly: the window is too narrow to hit by timing alone every run.
    from barque.engine import naming
    from barque.engine import state as st
    from barque.engine.records import ContainerRecord
    from tests.cli.conftest import ok

    b = barque
    ok(b.run("create", "--name", "whole", "busybox", "true"))
    with Engine(Paths(b.root, b.runroot)) as engine:
        image_id = engine.find("whole").image_id
        engine.records.insert(ContainerRecord(
            id=naming.new_id(), name="halfmade", created=st.now(), image="busybox",
            image_id=image_id, config={"Cmd": ["true"]}, host_config={},
            state=st.initial()))
    assert "halfmade" in ok(b.run("ps", "-a", "--format", "{{.Names}}"))
    ok(b.run("rm", "-f", "halfmade"))
    ok(b.run("container", "prune", "-f"))
    assert ok(b.run("ps", "-aq")) == "" and b.containers() == []


def test_rm_unmounts_what_a_killed_command_left_in_the_container_dir(barque: Barque) -> None:
    # A kill during the snapshot's overlay probe leaves a mount in a temporary dir of the
    # container's dir; made directly here (a tmpfs where the probe mounts its overlay).
    import os
    import subprocess

    from tests.cli.conftest import ok

    b = barque
    cid = ok(b.run("create", "--name", "probed", "busybox", "true")).strip()
    merged = os.path.join(b.root, "containers", cid, ".overlay-probe-x", "merged")
    os.makedirs(merged)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", merged], check=True)
    try:
        ok(b.run("rm", "-f", "probed"))
        assert b.containers() == []
    finally:
        subprocess.run(["umount", merged], capture_output=True)


def test_a_start_while_a_claimed_monitor_lingers(barque: Barque) -> None:
    # An attached run's CLI holds the monitor's exit (claim-exit) and has not said `done`:
    # the container has exited; the monitor deletes the runtime's container after its final
    # state and waits for the claimant. A start meanwhile must not race that delete, and the
    # exit command that runs once the claimant goes must leave the new run alone.
    import os
    import time

    from barque.engine import attach

    with Engine(Paths(barque.root, barque.runroot)) as engine:
        script = "if [ -e /again ]; then sleep 30; else touch /again; sleep 0.2; fi"
        record = create(engine, "busybox", {"Cmd": ["sh", "-c", script]}, {})
        lifecycle.start(engine, record.id, attach=True)
        claim = lifecycle.claim_exit(engine, record)
        assert claim is not None and claim.run_id
        sock = attach.connect(engine.paths.monitor_dir(record.id))
        attach.pump(sock, False, None, os.open(os.devnull, os.O_WRONLY),
                    os.open(os.devnull, os.O_WRONLY))
        sock.close()
        old = int((monitor.read_state(engine.paths.monitor_dir(record.id)) or {})["MonitorPid"])
        assert engine.state(record)["Status"] == "exited" and monitor.alive(old)
        lifecycle.start(engine, record.id)  # at once: the old delete may be under way
        state = engine.state(record)
        assert state["Running"], state
        assert claim.wait_deleted() and monitor.alive(old)
        claim.close()  # no `done`: the old run's exit command runs, and finds nothing of its own
        deadline = time.monotonic() + 10
        while monitor.alive(old) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not monitor.alive(old)
        time.sleep(0.5)
        assert engine.state(record)["Running"]
        merged = os.path.join(engine.paths.snapshot_dir(record.id), "merged")
        assert os.path.ismount(merged), "the old run's exit command unmounted the new run"
        lifecycle.remove(engine, record.id, force=True)
        assert engine.records.get(record.id) is None
