"""A pull that fails says what docker says (Go's dial errors, never the HTTP library's
`HTTPSConnectionPool(...)`), and `--pull never` never contacts a registry."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from tests.cli.conftest import Barque, ok
from tests.support.marks import needs_busybox
from tests.support.tools import require

pytestmark = [pytest.mark.root]


class _Listener:
    """A TCP port on 127.0.0.1 that counts the connections made to it (and drops them)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


@pytest.fixture
def listener() -> Iterator[_Listener]:
    served = _Listener()
    yield served
    served.sock.close()


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port bound but not listening: connecting to it is refused, for sure."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def test_failed_pull_says_what_docker_says(barque: Barque, refused_port: int) -> None:
    for name, shown in ((f"127.0.0.1:{refused_port}/missing", f"127.0.0.1:{refused_port}"),
                        (f"localhost:{refused_port}/missing:v1", f"127.0.0.1:{refused_port}")):
        result = barque.run("pull", name)
        host = name.split("/")[0]
        assert (result.returncode, result.stdout, result.stderr) == (
            1, "" if ":v1" in name else "Using default tag: latest\n",
            f'Error response from daemon: Get "http://{host}/v2/": dial tcp {shown}: '
            "connect: connection refused\n")
    quiet = barque.run("pull", "-q", f"127.0.0.1:{refused_port}/missing")
    assert quiet.stdout == "" and "connection refused" in quiet.stderr


@needs_busybox
def test_pull_never_contacts_no_registry(barque: Barque, listener: _Listener) -> None:
    b, host = barque, f"127.0.0.1:{listener.port}"
    # docker create: the daemon's errors exit 1, unprefixed
    # (docker run: its reportError's full stop and help line)
    for argv, code, prefix, suffix in (
            (["run", "--rm", "--pull", "never"], 125, "barque: ",
             ".\nSee 'barque run --help'."),
            (["create", "--pull=never"], 1, "", "")):
        result = b.run(*argv, f"{host}/nothere", "true")
        assert (result.returncode, result.stdout, result.stderr) == (
            code, "", f"{prefix}Error response from daemon: No such image: "
                      f"{host}/nothere:latest{suffix}\n")
    assert listener.connections == 0
    assert b.run("ps", "-aq").stdout == ""  # nothing made
    # A local image runs as ever; `--pull always` asks the registry even then.
    ok(b.run("image", "build-default"))
    ok(b.run("tag", "busybox", f"{host}/local"))
    assert ok(b.run("run", "--rm", "--pull", "never", f"{host}/local", "echo", "hi")) == "hi\n"
    assert listener.connections == 0
    always = b.run("run", "--rm", "--pull", "always", f"{host}/local", "true")
    assert always.returncode == 125 and listener.connections > 0, always.stderr
    assert "Traceback" not in always.stderr


_NXDOMAIN_RESOLVER = r'''
import os, socket, subprocess, sys, threading
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
conf = sys.argv[1]
with open(conf, "w") as f:
    f.write("nameserver 127.0.0.1\n")
subprocess.run(["mount", "--bind", conf, "/etc/resolv.conf"], check=True)
server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind(("127.0.0.1", 53))

def answer():  # every name: NXDOMAIN (the question echoed, no records)
    while True:
        query, peer = server.recvfrom(512)
        flags = (0x8180 | 3).to_bytes(2, "big")
        server.sendto(query[:2] + flags + query[4:6] + b"\0" * 6 + query[12:], peer)

threading.Thread(target=answer, daemon=True).start()
result = subprocess.run(sys.argv[2:], capture_output=True, text=True, timeout=60)
sys.stdout.write(f"{result.returncode}\n{result.stderr}")
'''


def test_unknown_host_says_no_such_host(barque: Barque, tmp_path: str) -> None:
    """In a network and mount namespace of the test's own, where 127.0.0.1:53 answers
    NXDOMAIN to everything: no query leaves the host."""
    require("unshare")
    conf = os.path.join(str(tmp_path), "resolv.conf")
    result = subprocess.run(["unshare", "--net", "--mount", sys.executable, "-c",
                             _NXDOMAIN_RESOLVER, conf,
                             *barque.argv("pull", "nonexist.invalid/foo:v1")],
                            capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        '1\nError response from daemon: Get "https://nonexist.invalid/v2/": dial tcp: '
        "lookup nonexist.invalid on 127.0.0.1:53: no such host\n")
