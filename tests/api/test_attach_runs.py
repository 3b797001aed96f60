"""Attach streams and runs, as with dockerd. A client attaching each stream on a socket of its
own before the start (dockerpty's way: compose's `run` and `exec` through the SDK) gets all of
the output on each. A container with a restart policy: an attach stream and a wait are one
run's. `docker run --restart …` (through `barque serve`) and `barque run --restart …` print
the first run's output and exit with its code while the policy restarts the container;
`docker wait` answers at the end of the run under way (compose's `up` relies on both: it
re-attaches on each start event and prints each run's exit)."""

from __future__ import annotations

import json
import socket
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


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_streams_attached_apart_before_the_start_miss_nothing(server: Server) -> None:
    """stdin, stdout and stderr on three attach requests, then the start: the monitor starts
    at its first client, the others must not miss the output of a quick command."""
    import docker

    client = docker.APIClient(base_url=server.host)
    try:
        for _ in range(8):  # each lost the race more often than not
            made = client.create_container("busybox", ["sh", "-c", "echo out; echo err >&2"],
                                           stdin_open=True)
            socks = {key: client.attach_socket(made["Id"], {key: 1, "stream": 1})
                     for key in ("stdin", "stdout", "stderr")}
            client.start(made["Id"])
            raw = {key: getattr(s, "_sock", s) for key, s in socks.items()}
            for s in raw.values():
                s.settimeout(30)
            got = {key: _read_all(raw[key]) for key in ("stdout", "stderr")}
            # stdcopy frames: stream 1, then 2, each with its line
            assert got == {"stdout": b"\x01\0\0\0\0\0\0\x04out\n",
                           "stderr": b"\x02\0\0\0\0\0\0\x04err\n"}, got
            for s in socks.values():
                s.close()
            assert client.wait(made["Id"])["StatusCode"] == 0
            client.remove_container(made["Id"])
    finally:
        client.close()
