"""POST /containers/{id}/wait for runs the server did not start (the barque CLI's: one set of
containers, whoever starts them), with every condition."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.api.conftest import Server

pytestmark = pytest.mark.root


class Wait:
    """A /wait under way in a thread (its headers come at once, its body at the end)."""

    def __init__(self, server: Server, name: str, condition: str) -> None:
        self.condition = condition
        self.result: tuple[int, dict[str, str], bytes] | None = None
        self.thread = threading.Thread(target=self._run, args=(server, name), daemon=True)
        self.thread.start()
        time.sleep(0.5)  # the request is in before what it waits for happens

    def _run(self, server: Server, name: str) -> None:
        self.result = server.request(
            "POST", f"/v1.43/containers/{name}/wait?condition={self.condition}")

    def pending(self) -> None:
        assert self.result is None, f"answered early: {self.result}"

    def answer(self) -> dict[str, object]:
        self.thread.join(30)
        assert self.result is not None, f"/wait?condition={self.condition} did not return"
        status, _, body = self.result
        assert status == 200, body
        answer: dict[str, object] = json.loads(body)
        return answer


@contextmanager
def waiting(server: Server, name: str, condition: str) -> Iterator[Wait]:
    wait = Wait(server, name, condition)
    try:
        yield wait
    finally:
        wait.thread.join(30)


def test_next_exit_of_a_start_by_the_cli(server: Server) -> None:
    b = server.barque
    assert b.run("create", "--name", "later", "busybox", "sh", "-c", "exit 7").returncode == 0
    with waiting(server, "later", "next-exit") as wait:
        wait.pending()
        # a run so short that it has ended before the wait looks again
        assert b.run("start", "later").returncode == 0
        assert wait.answer() == {"StatusCode": 7}
    # and a second start of the same container: its next exit again, not the last one
    with waiting(server, "later", "next-exit") as wait:
        assert b.run("start", "later").returncode == 0
        assert wait.answer() == {"StatusCode": 7}


def test_next_exit_and_not_running_of_a_cli_run(server: Server) -> None:
    b = server.barque
    assert b.run("run", "-d", "--name", "cli-run", "busybox", "sleep", "60").returncode == 0
    with waiting(server, "cli-run", "next-exit") as next_exit, \
            waiting(server, "cli-run", "not-running") as not_running:
        next_exit.pending()
        assert b.run("kill", "cli-run").returncode == 0
        assert next_exit.answer() == {"StatusCode": 137}
        assert not_running.answer() == {"StatusCode": 137}


def test_removed(server: Server) -> None:
    b = server.barque
    assert b.run("create", "--name", "gone", "busybox", "true").returncode == 0
    with waiting(server, "gone", "removed") as wait:
        wait.pending()
        assert b.run("rm", "gone").returncode == 0
        assert wait.answer() == {"StatusCode": 0}
    # a CLI run --rm: its exit code, once its monitor's clean-up has removed it
    assert b.run("run", "-d", "--rm", "--name", "rm-run", "busybox", "sh", "-c",
                 "sleep 1; exit 4").returncode == 0
    with waiting(server, "rm-run", "removed") as wait:
        assert wait.answer() == {"StatusCode": 4}
    assert b.run("inspect", "rm-run").returncode == 1


def test_sdk_wait_conditions(server: Server) -> None:
    import docker

    b = server.barque
    assert b.run("create", "--name", "sdk-later", "busybox", "sh", "-c",
                 "exit 3").returncode == 0
    client = docker.DockerClient(base_url=server.host)
    try:
        container = client.containers.get("sdk-later")
        starter = threading.Timer(0.5, lambda: b.run("start", "sdk-later"))
        starter.start()
        assert container.wait(condition="next-exit", timeout=30)["StatusCode"] == 3
        starter.join()
        assert container.wait(timeout=30)["StatusCode"] == 3  # not-running: at once
    finally:
        client.close()


def _open_waits(server: Server, name: str, count: int) -> list[socket.socket]:
    """`count` waits whose headers have come (the server holds each), on raw sockets."""
    socks = []
    for _ in range(count):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(30)
        sock.connect(server.socket)
        sock.sendall(f"POST /v1.43/containers/{name}/wait?condition=next-exit HTTP/1.1\r\n"
                     "Host: x\r\nContent-Length: 0\r\n\r\n".encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        socks.append(sock)
    return socks


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_a_client_that_goes_away_lets_go_of_its_wait(server: Server) -> None:
    assert server.barque.run("create", "--name", "never", "busybox", "true").returncode == 0
    for sock in _open_waits(server, "never", 5):  # the engine pool's threads made once
        sock.close()
    time.sleep(2)
    before = _threads(server.proc.pid)
    socks = _open_waits(server, "never", 5)
    # A waiting thread each (started just after the headers went out: on a busy machine
    # it may take a moment).
    deadline = time.monotonic() + 10
    while _threads(server.proc.pid) < before + 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _threads(server.proc.pid) >= before + 5
    for sock in socks:
        sock.close()
    # gone within the server's look at its clients (0.5 s); one engine pool thread more
    # may have been made meanwhile
    deadline = time.monotonic() + 10
    while _threads(server.proc.pid) > before + 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _threads(server.proc.pid) <= before + 1
