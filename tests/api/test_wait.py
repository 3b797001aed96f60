"""POST /containers/{id}/wait for runs the server did not start (the barque CLI's: one set of
containers, whoever starts them), with every condition."""

from __future__ import annotations

import json
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
