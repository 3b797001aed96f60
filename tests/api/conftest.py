"""A `barque serve` of each test's own: its own --root/--runroot, on a temporary socket."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.cli.conftest import Barque, new_barque, remove_everything
from tests.support import tools


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.path)


@dataclass
class Server:
    barque: Barque
    socket: str
    proc: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def docker(self, *args: str, timeout: float = 60,
               input: str | None = None) -> subprocess.CompletedProcess[str]:
        tools.require("docker")
        env = {**os.environ, "DOCKER_HOST": self.host,
               "DOCKER_CONFIG": os.path.join(os.path.dirname(self.socket), "docker-config")}
        return subprocess.run(["docker", *args], capture_output=True, text=True, env=env,
                              timeout=timeout, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = _UnixConnection(self.socket)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


def start_server(b: Barque, sock: str, *more: str) -> subprocess.Popen[bytes]:
    """`more`: other flags of serve's (more -H, TLS), bound before the socket appears."""
    proc = subprocess.Popen(b.argv("serve", *more, "-H", f"unix://{sock}"),
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not os.path.exists(sock):  # it appears only once the server listens
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(f"barque serve did not listen on {sock}")
        time.sleep(0.05)
    return proc


@pytest.fixture
def server(run_prefix: str, if_prefix: str) -> Iterator[Server]:
    work = tempfile.mkdtemp(prefix=f"{run_prefix}-api-")
    b = new_barque(os.path.join(work, "root"), os.path.join(work, "run"), if_prefix)
    sock = os.path.join(work, "sock", "barque.sock")  # its dir made by the server
    proc = start_server(b, sock)
    s = Server(b, sock, proc)
    try:
        yield s
    finally:
        try:
            s.stop()
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        remove_everything(b, work)
        shutil.rmtree(work, ignore_errors=True)
