"""barque-monitor's `claim-exit` (monitor/README.md): an attached client that claims the exit
gets the final state and EOF before the runtime's delete, then `deleted`; its `done` means no
exit command runs, and a claimant that goes away without `done` leaves the exit command to
run as without a claim.

The exit command writes a marker file; every monitor and container is removed by the
fixtures."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest

from tests.monitor.test_hold_fd import can_bind, held_socket
from tests.monitor.test_monitor import Launched, Monitors, attach, demux, read_to_eof, read_until

pytestmark = pytest.mark.root


def exit_marker_flags(marker: str) -> list[str]:
    return ["--wait-attach", "--exit-command", "/bin/sh", "--exit-command-arg", "-c",
            "--exit-command-arg", f"echo ran > {marker}"]


def claim(m: Launched) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(m.path("ctl.sock"))
    sock.sendall(b"claim-exit\n")
    assert read_until(sock, b"\n", 10) == b"ok\n"
    return sock


def appears(path: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.02)
    return os.path.exists(path)


def test_claim_done_no_exit_command(mon: Monitors, tmp_path: os.PathLike) -> None:
    marker = os.path.join(str(tmp_path), "exit-command-ran")
    held, port, _ = held_socket()
    spec = mon.rt.spec(["sh", "-c", "echo hello; exit 3"])
    cmd, cid, directory, log_path, bundle = mon.command(
        spec, exit_marker_flags(marker) + ["--hold-fd", str(held.fileno())])
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=60, pass_fds=[held.fileno()])
    finally:
        held.close()
    m = Launched(cid, directory, log_path, bundle, proc)
    mon.launched.append(m)
    assert proc.returncode == 0, proc.stderr
    sock = claim(m)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:  # a second claimant
        other.settimeout(10)
        other.connect(m.path("ctl.sock"))
        other.sendall(b"claim-exit\n")
        assert read_until(other, b"\n", 10).startswith(b"error ")
    client = attach(m)
    out, _ = demux(read_to_eof(client))
    client.close()
    assert out == b"hello\n"
    # at EOF the final state is there; the sockets' names are gone
    state = m.state
    assert state["Status"] == "exited" and state["ExitCode"] == 3
    assert not os.path.exists(m.path("attach.sock")) and not os.path.exists(m.path("ctl.sock"))
    assert read_until(sock, b"\n", 30) == b"deleted\n"
    # at `deleted` the runtime's container is gone and the held port free
    assert not os.path.exists(os.path.join(mon.rt.state_root, m.id))
    assert can_bind(port)
    assert m.monitor_alive()  # it waits for the claimant's word
    sock.sendall(b"done\n")
    assert read_to_eof(sock, 10) == b""
    sock.close()
    m.wait_done()
    assert not appears(marker, 1.0), "the exit command ran although the claimant was done"


def test_claimant_closes_without_done(mon: Monitors, tmp_path: os.PathLike) -> None:
    marker = os.path.join(str(tmp_path), "exit-command-ran")
    m = mon.launch(["true"], exit_marker_flags(marker))
    assert m.proc.returncode == 0, m.proc.stderr
    sock = claim(m)
    sock.sendall(b"done\n")  # too early: refused, and the claim stays
    assert read_until(sock, b"\n", 10).startswith(b"error ")
    client = attach(m)
    read_to_eof(client)
    client.close()
    assert read_until(sock, b"\n", 30) == b"deleted\n"
    assert not os.path.exists(marker)
    sock.close()  # its clean-up failed: the exit command does it
    assert appears(marker, 10), "no exit command after the claimant went away"
    m.wait_done()


def test_claim_lapses_when_the_claimant_goes_early(mon: Monitors,
                                                   tmp_path: os.PathLike) -> None:
    marker = os.path.join(str(tmp_path), "exit-command-ran")
    m = mon.launch(["sleep", "600"], exit_marker_flags(marker))
    assert m.proc.returncode == 0, m.proc.stderr
    claim(m).close()  # a CLI killed while the container runs
    client = attach(m)
    m.wait(lambda s: s["Status"] == "running", 10, "running")
    claim(m).close()  # the claim lapsed: another may claim, and may go too
    mon.rt.cmd("kill", m.id, "KILL", check=True)
    read_to_eof(client)
    client.close()
    # no claimant: as before, the runtime's container is gone before the final state
    assert not os.path.exists(os.path.join(mon.rt.state_root, m.id))
    assert appears(marker, 10)
    assert m.wait_done()["ExitCode"] == 137


def test_claim_held_across_restarts(mon: Monitors, tmp_path: os.PathLike) -> None:
    marker = os.path.join(str(tmp_path), "exit-command-ran")
    m = mon.launch(["sh", "-c", "exit 5"],
                   exit_marker_flags(marker) + ["--restart", "on-failure:2"])
    assert m.proc.returncode == 0, m.proc.stderr
    sock = claim(m)
    client = attach(m)
    read_to_eof(client)  # the first run's end (an attach stream is one run's, as dockerd's)
    client.close()
    state = m.state  # written before that EOF: the restart is under way, the code kept
    assert state["RestartCount"] >= 1 and state["LastExitCode"] == 5, state
    state = m.wait(lambda s: s["Status"] == "exited", 30, "the end for good")
    assert (state["Status"], state["ExitCode"], state["RestartCount"]) == ("exited", 5, 2)
    assert read_until(sock, b"\n", 30) == b"deleted\n"
    assert not os.path.exists(os.path.join(mon.rt.state_root, m.id))
    sock.sendall(b"done\n")
    sock.close()
    m.wait_done()
    assert not appears(marker, 1.0)
