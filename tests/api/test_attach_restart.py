"""A container with a restart policy: as with dockerd, an attach stream and a wait are one
run's. `docker run --restart …` (through `barque serve`) and `barque run --restart …` print
the first run's output and exit with its code while the policy restarts the container;
`docker wait` answers at the end of the run under way (compose's `up` relies on both: it
re-attaches on each start event and prints each run's exit)."""

from __future__ import annotations

import json
import time

import pytest

from tests.api.conftest import Server
from tests.cli.conftest import until

pytestmark = [pytest.mark.root]

CRASHING = ["busybox", "sh", "-c", "echo hi; sleep 0.3; exit 3"]


def _ended_for_good(server: Server, name: str) -> dict[str, object]:
    """The container's State (and RestartCount) once its policy gave up."""
    def state() -> dict[str, object]:
        found = json.loads(server.docker("inspect", name).stdout)[0]
        return {**found["State"], "RestartCount": found["RestartCount"]}
    until(lambda: state()["Status"] == "exited", timeout=30)
    return state()


@pytest.mark.parametrize("front", ["docker", "barque"])
def test_attached_run_ends_with_its_first_run(server: Server, front: str) -> None:
    args = ["run", "--name", "crashy", "--restart", "on-failure:2", *CRASHING]
    ran = server.docker(*args) if front == "docker" else server.barque.run(*args)
    assert ran.returncode == 3, ran.stderr
    assert ran.stdout == "hi\n"  # one run's output, not the restarts'
    state = _ended_for_good(server, "crashy")  # the policy went on without the client
    assert state["RestartCount"] == 2 and state["ExitCode"] == 3, state
    assert server.docker("logs", "crashy").stdout == "hi\n" * 3


def test_wait_answers_at_the_end_of_the_run(server: Server) -> None:
    made = server.docker("run", "-d", "--name", "slowcrash", "--restart", "on-failure:3",
                         "busybox", "sh", "-c", "sleep 1; exit 4")
    assert made.returncode == 0, made.stderr
    start = time.monotonic()
    waited = server.docker("wait", "slowcrash")
    # the first run's end (~1 s), not the last of four runs and their back-offs (~5 s)
    assert waited.returncode == 0 and waited.stdout == "4\n", waited
    assert time.monotonic() - start < 3
    state = _ended_for_good(server, "slowcrash")
    assert state["RestartCount"] == 3 and state["ExitCode"] == 4, state
    assert server.docker("wait", "slowcrash").stdout == "4\n"  # stopped: at once
