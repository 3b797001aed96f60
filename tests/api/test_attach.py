"""attach through `barque serve`: `docker attach` (piped and under a pty), `docker start -a`,
the SDK's attach (logs=True replayed first, stream selection) and attach_socket, and the
websocket attach."""

from __future__ import annotations

import asyncio
import os
import struct
import subprocess
import time

import pytest

from tests.api.conftest import Server
from tests.api.ptys import docker_in_pty

pytestmark = pytest.mark.root


def _logs_show(server: Server, name: str, text: str) -> None:
    deadline = time.monotonic() + 20
    while text not in server.docker("logs", name).stdout:
        assert time.monotonic() < deadline, f"{text!r} never logged"
        time.sleep(0.05)


def test_docker_attach_forwards_stdin_and_exits_with_the_container(server: Server) -> None:
    out = server.docker("run", "-d", "-i", "--name", "talk", "busybox", "sh", "-c",
                        "read line; echo got $line; echo bye >&2; exit 3")
    assert out.returncode == 0, out.stderr
    out = server.docker("attach", "talk", input="x\n")
    assert (out.returncode, out.stdout, out.stderr) == (3, "got x\n", "bye\n")


def test_docker_attach_no_stdin(server: Server) -> None:
    out = server.docker("run", "-d", "-i", "--name", "talk", "busybox", "sh", "-c",
                        "sleep 1; echo late; read line; echo got $line")
    assert out.returncode == 0, out.stderr
    proc = _docker_popen(server, "attach", "--no-stdin", "talk")
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline() == b"late\n"
        proc.stdin.write(b"x\n")  # never passed on: the container goes on waiting
        proc.stdin.close()
        time.sleep(0.5)
        assert server.docker("inspect", "-f", "{{.State.Running}}", "talk").stdout == \
            "true\n"
    finally:
        proc.kill()
        proc.wait()


def _docker_popen(server: Server, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DOCKER_HOST": server.host,
           "DOCKER_CONFIG": os.path.join(os.path.dirname(server.socket), "docker-config")}
    return subprocess.Popen(["docker", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def test_docker_attach_under_a_pty(server: Server) -> None:
    out = server.docker("run", "-dit", "--name", "shell", "busybox", "sh")
    assert out.returncode == 0, out.stderr
    output, code = docker_in_pty(server, ["attach", "shell"],
                                 [(b"", b"\r"), (b"#", b"echo h''i; exit 3\r")])
    assert b"hi" in output.replace(b"h''i", b""), output
    assert code == 3


def test_docker_start_a(server: Server) -> None:
    out = server.docker("create", "--name", "once", "busybox", "sh", "-c",
                        "echo hi; echo err >&2; exit 2")
    assert out.returncode == 0, out.stderr
    for _ in range(2):  # created, then exited: the stream is the next run's
        out = server.docker("start", "-a", "once")
        assert (out.returncode, out.stdout, out.stderr) == (2, "hi\n", "err\n")


def test_sdk_attach_logs_and_stream(server: Server) -> None:
    import docker

    client = docker.DockerClient(base_url=server.host)
    try:
        box = client.containers.run("busybox", ["sh", "-c",
                                                "echo first; echo err >&2; sleep 1; echo second"],
                                    detach=True)
        _logs_show(server, box.id, "first")
        streamed = b"".join(box.attach(stream=True, logs=True))  # ends with the container
        assert streamed == b"first\nerr\nsecond\n"
        box.wait()
        # Not streamed: the log alone, of the streams asked for.
        assert box.attach(logs=True, stdout=True, stderr=False) == b"first\nsecond\n"
        assert box.attach(logs=True, stdout=False, stderr=True) == b"err\n"
        assert client.api.attach(box.id, logs=True, demux=True) == \
            (b"first\nsecond\n", b"err\n")
    finally:
        client.close()


def test_sdk_attach_socket(server: Server) -> None:
    import docker

    client = docker.DockerClient(base_url=server.host)
    try:
        cat = client.containers.run("busybox", "cat", stdin_open=True, detach=True)
        sock = client.api.attach_socket(cat.id, params={"stdin": 1, "stdout": 1,
                                                         "stream": 1})
        raw = sock._sock  # the SDK's documented way to write to it
        raw.settimeout(20)
        raw.sendall(b"hello\n")
        header = _read_exactly(raw, 8)
        stream, size = struct.unpack(">BxxxI", header)
        assert (stream, _read_exactly(raw, size)) == (1, b"hello\n")
        raw.close()
        cat.kill()
    finally:
        client.close()


def _read_exactly(sock: object, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))  # type: ignore[attr-defined]
        assert chunk, "the stream ended"
        data += chunk
    return data


def test_websocket_attach(server: Server) -> None:
    import aiohttp

    out = server.docker("run", "-d", "-i", "--name", "cat", "busybox", "sh", "-c",
                        "echo ready; echo oops >&2; cat")
    assert out.returncode == 0, out.stderr
    _logs_show(server, "cat", "ready")

    async def talk(version: str, stdout: int,
                   until: str) -> list[tuple[aiohttp.WSMsgType, bytes | str]]:
        connector = aiohttp.UnixConnector(path=server.socket)
        async with aiohttp.ClientSession(connector=connector) as session:
            url = (f"http://localhost/v{version}/containers/cat/attach/ws?logs=1&stream=1"
                   f"&stdin=1&stdout={stdout}&stderr=1")
            async with session.ws_connect(url) as ws:
                got: list[tuple[aiohttp.WSMsgType, bytes | str]] = []
                text = ""
                await ws.send_bytes(b"hi\n")
                while until not in text:
                    message = await asyncio.wait_for(ws.receive(), 20)
                    assert message.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT)
                    got.append((message.type, message.data))
                    text += message.data if isinstance(message.data, str) else \
                        message.data.decode()
                return got

    got = asyncio.run(talk("1.43", 1, "hi\n"))
    assert {kind for kind, _ in got} == {aiohttp.WSMsgType.BINARY}  # raw, no frames
    assert b"".join(d for _, d in got if isinstance(d, bytes)) == b"ready\noops\nhi\n"
    got = asyncio.run(talk("1.27", 0, "oops\n"))  # text before 1.28; stderr only
    assert got == [(aiohttp.WSMsgType.TEXT, "oops\n")]


def test_attach_refusals(server: Server) -> None:
    import json

    status, _, body = server.request("POST", "/v1.43/containers/nosuch/attach?stream=1")
    assert (status, json.loads(body)) == (404, {"message": "No such container: nosuch"})
    out = server.docker("run", "-d", "--name", "paused", "busybox", "sleep", "300")
    assert out.returncode == 0, out.stderr
    assert server.docker("pause", "paused").returncode == 0
    status, _, body = server.request("POST", "/v1.43/containers/paused/attach?stream=1")
    assert status == 409
    assert "paused" in json.loads(body)["message"]
    out = server.docker("attach", "paused")
    assert out.returncode == 1 and "paused" in out.stderr
    assert server.docker("unpause", "paused").returncode == 0


def test_detach_keys_leave_the_container_running(server: Server) -> None:
    out = server.docker("run", "-dit", "--name", "shell", "busybox", "sh")
    assert out.returncode == 0, out.stderr
    output, code = docker_in_pty(server, ["attach", "shell"],
                                 [(b"", b"\r"), (b"#", b"\x10\x11")], timeout=20)
    # dockerd's CLI too: the words and exit status 1 (nerdctl issue 3571 quotes them)
    assert (code, output.endswith(b"read escape sequence\r\n")) == (1, True), output
    assert server.docker("inspect", "-f", "{{.State.Running}}", "shell").stdout == "true\n"
    out = server.docker("exec", "shell", "echo", "still")
    assert out.stdout == "still\n"


def test_run_a_selects_the_streams(server: Server) -> None:
    script = "echo out; echo err >&2"
    out = server.docker("run", "--rm", "-a", "stderr", "busybox", "sh", "-c", script)
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "err\n")
    out = server.docker("run", "--rm", "-a", "stdout", "busybox", "sh", "-c", script)
    assert (out.returncode, out.stdout, out.stderr) == (0, "out\n", "")


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


@pytest.mark.slow  # ~15 s: the client's send must time out
def test_stdin_nobody_reads_is_not_buffered_without_bound(server: Server) -> None:
    """A client that writes more stdin than the container reads is slowed down (TCP's
    back-pressure through the server), not buffered whole in the server's memory."""
    import socket

    out = server.docker("run", "-d", "-i", "--name", "deaf", "busybox", "sleep", "300")
    assert out.returncode == 0, out.stderr
    before = _rss_kib(server.proc.pid)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(server.socket)
        sock.sendall(b"POST /v1.43/containers/deaf/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\n"
                     b"Host: localhost\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                     b"Content-Length: 0\r\n\r\n")
        sock.settimeout(10)
        assert sock.recv(12) == b"HTTP/1.1 101"
        chunk, sent = b"x" * (1 << 20), 0
        try:
            while sent < 256 << 20:  # bounded: at most 256 MiB
                sock.sendall(chunk)
                sent += len(chunk)
        except TimeoutError:
            pass  # the server stopped reading: what the test wants
        grown = _rss_kib(server.proc.pid) - before
    assert sent < 64 << 20, f"{sent >> 20} MiB taken in, the server grew {grown >> 10} MiB"
    assert grown < 64 << 10
