"""`barque update --restart` of a running container: as dockerd's, the new policy decides at
this run's end (not only from the next start), and RestartCount goes on against a new
on-failure limit.

Each container runs until the test lets it exit: it waits for a file in a bind-mounted
directory of the test's own, removes it and exits 1. Every wait has a deadline (`until`)."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.cli.conftest import Barque, inspect_container, ok, until
from tests.support.marks import needs_busybox

pytestmark = [pytest.mark.root, needs_busybox]

# `run` once per run, then wait for /ctl/go; exit CODE once it is there
SCRIPT = "echo run; while [ ! -e /ctl/go ]; do sleep 0.1; done; rm -f /ctl/go; exit {code}"


def _gated(b: Barque, name: str, ctl: str, *flags: str, code: int = 1) -> list[str]:
    return ["--name", name, "-v", f"{ctl}:/ctl", *flags, "busybox", "sh", "-c",
            SCRIPT.format(code=code)]


def _runs(b: Barque, name: str) -> int:
    """How many runs the container began (0 while an attached `run` has not made it yet)."""
    result = b.run("logs", name)
    return result.stdout.count("run\n") if result.returncode == 0 else 0


def _let_exit(b: Barque, name: str, ctl: str) -> None:
    """The present run (already logged its `run`) exits."""
    with open(os.path.join(ctl, "go"), "w"):
        pass


def _running_run(b: Barque, name: str, runs: int) -> None:
    """Until run number `runs` of the container is under way."""
    until(lambda: _runs(b, name) == runs and
          inspect_container(b, name)["State"]["Status"] == "running", timeout=30)


def _exited(b: Barque, name: str) -> dict:
    """The container's inspect once it has stopped for good (not `restarting`)."""
    until(lambda: inspect_container(b, name)["State"]["Status"] == "exited", timeout=30)
    return inspect_container(b, name)


def test_on_failure_updated_to_no_stops_restarting_at_once(cleanup: Barque,
                                                           tmp_path: object) -> None:
    b, ctl = cleanup, str(tmp_path)
    ok(b.run("run", "-d", *_gated(b, "flaky", ctl, "--restart", "on-failure")))
    _running_run(b, "flaky", 1)
    _let_exit(b, "flaky", ctl)
    _running_run(b, "flaky", 2)  # on-failure: back
    assert ok(b.run("update", "--restart", "no", "flaky")) == "flaky\n"
    _let_exit(b, "flaky", ctl)
    final = _exited(b, "flaky")
    assert (final["State"]["ExitCode"], final["RestartCount"]) == (1, 1)
    assert final["HostConfig"]["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert _runs(b, "flaky") == 2


def test_no_updated_to_on_failure_restarts_this_run(cleanup: Barque, tmp_path: object) -> None:
    b, ctl = cleanup, str(tmp_path)
    since = f"{time.time():.9f}"
    ok(b.run("run", "-d", *_gated(b, "late", ctl)))
    _running_run(b, "late", 1)
    assert ok(b.run("update", "--restart", "on-failure:2", "late")) == "late\n"
    for runs in (2, 3):
        _let_exit(b, "late", ctl)
        _running_run(b, "late", runs)
    _let_exit(b, "late", ctl)  # the third failure: the limit of 2 restarts is reached
    final = _exited(b, "late")
    assert (final["State"]["ExitCode"], final["RestartCount"]) == (1, 2)
    assert final["HostConfig"]["RestartPolicy"] == {"Name": "on-failure",
                                                    "MaximumRetryCount": 2}
    # the monitor logs the restarts' events, as for a policy given at `run`
    actions = ok(b.run("events", "--since", since, "--until", f"{time.time():.9f}",
                       "--filter", "container=late", "--format", "{{.Action}}")).split()
    assert [a for a in actions if a in ("start", "die")] == ["start", "die"] * 3, actions


def test_a_lower_retry_limit_counts_the_restarts_done(cleanup: Barque,
                                                      tmp_path: object) -> None:
    """dockerd's restart manager keeps its count when the policy changes: 2 restarts done
    and a new limit of 2 means no third one."""
    b, ctl = cleanup, str(tmp_path)
    ok(b.run("run", "-d", *_gated(b, "counted", ctl, "--restart", "always")))
    for runs in (2, 3):
        _let_exit(b, "counted", ctl)
        _running_run(b, "counted", runs)
    ok(b.run("update", "--restart", "on-failure:2", "counted"))
    _let_exit(b, "counted", ctl)
    final = _exited(b, "counted")
    assert (final["State"]["ExitCode"], final["RestartCount"]) == (1, 2)


def test_attached_run_ends_with_its_run_when_a_policy_is_set(cleanup: Barque,
                                                             tmp_path: object) -> None:
    """An attached `run` (no policy when it began) returns at its run's end with its exit
    code, as the docker CLI's does, when an update made the container restart."""
    b, ctl = cleanup, str(tmp_path)
    proc = subprocess.Popen(b.argv("run", *_gated(b, "fg", ctl, code=3)),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _running_run(b, "fg", 1)
        ok(b.run("update", "--restart", "always", "fg"))
        _let_exit(b, "fg", ctl)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, out) == (3, "run\n"), err
    _running_run(b, "fg", 2)  # and it runs again
    ok(b.run("stop", "-t", "1", "fg"))


def test_restart_policy_update_refused(cleanup: Barque) -> None:
    b = cleanup
    ok(b.run("run", "-d", "--rm", "--name", "gone", "busybox", "sleep", "60"))
    full_id = inspect_container(b, "gone")["Id"]
    result = b.run("update", "--restart", "always", "gone")
    assert result.returncode == 1
    assert result.stderr == (f"Error response from daemon: Cannot update container {full_id}: "
                             "Restart policy cannot be updated because AutoRemove is enabled "
                             "for the container\n")
    ok(b.run("update", "--restart", "no", "gone"))  # as dockerd: `no` is no conflict
    result = b.run("update", "--restart", "sometimes", "gone")
    assert (result.returncode, result.stderr) == (
        1, "Error response from daemon: invalid restart policy 'sometimes'\n")
    result = b.run("update", "--restart", "always:3", "gone")
    assert (result.returncode, result.stderr) == (
        1, "Error response from daemon: maximum retry count cannot be used with restart "
           "policy 'always'\n")
    assert inspect_container(b, "gone")["HostConfig"]["RestartPolicy"]["Name"] == "no"
    ok(b.run("stop", "-t", "0", "gone"))


@pytest.mark.slow
def test_limits_of_a_restarting_container_are_kept_for_its_restart(cleanup: Barque) -> None:
    """dockerd updates a `restarting` container's record only (no task to update): so does
    Barque, rather than fail on the runtime's missing container."""
    b = cleanup
    ok(b.run("run", "-d", "--name", "bouncy", "--restart", "always", "busybox", "false"))
    # after six restarts the back-off is 6.4 s: the update falls inside one
    until(lambda: inspect_container(b, "bouncy")["RestartCount"] >= 6 and
          inspect_container(b, "bouncy")["State"]["Status"] == "restarting", timeout=60)
    assert ok(b.run("update", "-m", "64m", "--restart", "no", "bouncy")) == "bouncy\n"
    final = _exited(b, "bouncy")
    assert final["HostConfig"]["Memory"] == 64 * 1024 * 1024
    assert final["HostConfig"]["RestartPolicy"]["Name"] == "no"
