"""Detach keys through `barque serve`, as dockerd watches for them: a raw client's hijacked
attach (`detachKeys`) or exec start (exec create's `DetachKeys`) on a TTY ends when the
client sends the sequence, the container (the exec's process) running on; and the docker
CLI under a pty against the server."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.api.conftest import Server
from tests.api.ptys import docker_in_pty

pytestmark = pytest.mark.root

# Reads one line, shows its bytes in hex, then stays: what a partial sequence let through.
SHOW_LINE = "read -r l; printf %s \"$l\" | od -An -tx1; echo shown; sleep 300"


def _hijack(server: Server, path: str, body: bytes = b"") -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(server.socket)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n"
                 f"Upgrade: tcp\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    sock.settimeout(20)
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(1)
        assert data, head
        head += data
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def _read_until(sock: socket.socket, text: bytes) -> bytes:
    seen = b""
    while text not in seen:
        data = sock.recv(4096)
        assert data, seen
        seen += data
    return seen


def _ends(sock: socket.socket, timeout: float = 10) -> bytes:
    """What is left of the stream once the server ends it (a timeout fails the test)."""
    sock.settimeout(timeout)
    rest = b""
    while data := sock.recv(4096):
        rest += data
    return rest


def _running(server: Server, name: str) -> bool:
    return server.docker("inspect", "-f", "{{.State.Running}}", name).stdout == "true\n"


def test_raw_attach_detaches_on_ctrl_p_ctrl_q(server: Server) -> None:
    assert server.docker("run", "-dit", "--name", "shell", "busybox", "sh").returncode == 0
    with _hijack(server, "/v1.43/containers/shell/attach?stream=1&stdin=1&stdout=1"
                         "&stderr=1") as sock:
        sock.sendall(b"echo h''i\r")
        _read_until(sock, b"hi\r\n")
        sock.sendall(b"\x10")
        time.sleep(0.2)
        sock.sendall(b"\x11")
        _ends(sock)
    assert _running(server, "shell")
    assert server.docker("exec", "shell", "echo", "still").stdout == "still\n"
    events = server.docker("events", "--since", "0", "--until", str(int(time.time()) + 1),
                           "--filter", "event=detach", "--format", "{{.Actor.Attributes.name}}")
    assert events.stdout == "shell\n", events


def test_raw_attach_custom_keys_and_a_partial_sequence(server: Server) -> None:
    out = server.docker("run", "-dit", "--name", "show", "busybox", "sh", "-c", SHOW_LINE)
    assert out.returncode == 0, out.stderr
    with _hijack(server, "/v1.43/containers/show/attach?stream=1&stdin=1&stdout=1"
                         "&detachKeys=ctrl-a,x") as sock:
        sock.sendall(b"\x10q\x01y\r")  # the default keys are plain ones now; ctrl-a y passes
        seen = _read_until(sock, b"shown")
        assert b"10 71 01 79" in seen, seen
        sock.sendall(b"\x01x")
        _ends(sock)
    assert _running(server, "show")


def test_bad_detach_keys_in_dockerd_words(server: Server) -> None:
    assert server.docker("run", "-dit", "--name", "shell", "busybox", "sh").returncode == 0
    status, _, body = server.request(
        "POST", "/v1.43/containers/shell/attach?stream=1&stdin=1&detachKeys=ctrl-1")
    assert (status, json.loads(body)) == (
        400, {"message": "Invalid detach keys (ctrl-1) provided"})
    status, _, body = server.request(
        "POST", "/v1.43/containers/shell/exec", json.dumps(
            {"Cmd": ["true"], "DetachKeys": "meta-q"}).encode(),
        {"Content-Type": "application/json"})
    assert (status, json.loads(body)) == (
        500, {"message": "Invalid escape keys (meta-q) provided"})


def test_raw_exec_start_detaches_and_the_process_runs_on(server: Server) -> None:
    assert server.docker("run", "-d", "--name", "box", "busybox", "sleep", "300").returncode == 0
    status, _, body = server.request(
        "POST", "/v1.43/containers/box/exec", json.dumps(
            {"Cmd": ["sh", "-c", SHOW_LINE], "Tty": True, "AttachStdin": True,
             "AttachStdout": True, "DetachKeys": "ctrl-a,x"}).encode(),
        {"Content-Type": "application/json"})
    assert status == 201, body
    exec_id = json.loads(body)["Id"]
    with _hijack(server, f"/v1.43/exec/{exec_id}/start",
                 json.dumps({"Tty": True}).encode()) as sock:
        sock.sendall(b"\x01y\r")
        assert b"01 79" in _read_until(sock, b"shown")
        sock.sendall(b"\x01x")
        _ends(sock)
    status, _, body = server.request("GET", f"/v1.43/exec/{exec_id}/json")
    assert (status, json.loads(body)["Running"]) == (200, True)
    top = server.docker("top", "box")
    assert top.stdout.count("sleep 300") == 2, top.stdout  # the exec's and the container's


def test_docker_cli_through_the_server(server: Server) -> None:
    assert server.docker("run", "-dit", "--name", "shell", "busybox", "sh").returncode == 0
    output, code = docker_in_pty(server, ["attach", "--detach-keys", "ctrl-a,x", "shell"],
                                 [(b"", b"\r"), (b"#", b"\x01x")], timeout=20)
    assert (code, output.endswith(b"read escape sequence\r\n")) == (1, True), output
    output, code = docker_in_pty(server, ["run", "-it", "--name", "two", "busybox", "sh"],
                                 [(b"#", b"\x10\x11")], timeout=30)
    assert code == 0, output
    output, code = docker_in_pty(server, ["exec", "-it", "shell", "sh"],
                                 [(b"#", b"\x10\x11")], timeout=20)
    assert (code, output.endswith(b"read escape sequence\r\n")) == (1, True), output
    assert _running(server, "shell") and _running(server, "two")
    # a detached --rm run is still removed once it ends
    output, code = docker_in_pty(server, ["run", "-it", "--rm", "--name", "three", "busybox",
                                          "sh"], [(b"#", b"\x10\x11")], timeout=30)
    assert code == 0 and _running(server, "three"), output
    assert server.docker("kill", "three").returncode == 0
    deadline = time.monotonic() + 20
    while "three" in server.docker("ps", "-a", "--format", "{{.Names}}").stdout.split():
        assert time.monotonic() < deadline, "the --rm container was never removed"
        time.sleep(0.2)


def test_websocket_attach_detaches(server: Server) -> None:
    import asyncio

    import aiohttp

    out = server.docker("run", "-dit", "--name", "show", "busybox", "sh", "-c", SHOW_LINE)
    assert out.returncode == 0, out.stderr

    async def talk() -> tuple[bytes, aiohttp.WSMsgType]:
        connector = aiohttp.UnixConnector(path=server.socket)
        async with aiohttp.ClientSession(connector=connector) as session:
            url = ("http://localhost/v1.43/containers/show/attach/ws?stream=1&stdin=1"
                   "&stdout=1&detachKeys=ctrl-a,x")
            async with session.ws_connect(url) as ws:
                await ws.send_bytes(b"\x01")
                await ws.send_bytes(b"y\r")
                seen = b""
                while b"shown" not in seen:
                    message = await asyncio.wait_for(ws.receive(), 20)
                    assert message.type == aiohttp.WSMsgType.BINARY, message
                    seen += message.data
                await ws.send_bytes(b"\x01")
                await ws.send_bytes(b"x")
                while (message := await asyncio.wait_for(ws.receive(), 10)).type == \
                        aiohttp.WSMsgType.BINARY:
                    pass
                return seen, message.type

    seen, end = asyncio.run(talk())
    assert b"01 79" in seen, seen
    assert end in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), end
    assert _running(server, "show")
