"""`barque serve`'s system part: the socket, version negotiation, /version, /info, errors."""

from __future__ import annotations

import json
import os
import stat

import pytest

from tests.api.conftest import Server

pytestmark = pytest.mark.root


def test_socket_is_not_world_accessible(server: Server) -> None:
    mode = os.stat(server.socket).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o660
    assert stat.S_IMODE(os.stat(os.path.dirname(server.socket)).st_mode) == 0o711


def test_ping_headers(server: Server) -> None:
    for method in ("GET", "HEAD"):
        status, headers, body = server.request(method, "/_ping")
        assert status == 200
        assert body == (b"OK" if method == "GET" else b"")
        assert headers["API-Version"] == "1.43"
        assert headers["Ostype"] == "linux"
        assert headers["Docker-Experimental"] == "false"
        assert "no-cache" in headers["Cache-Control"]


def test_docker_version_negotiates(server: Server) -> None:
    out = server.docker("version", "--format", "{{.Server.APIVersion}} {{.Client.APIVersion}}")
    assert out.returncode == 0, out.stderr
    server_version, client_version = out.stdout.split()
    assert server_version == "1.43"
    # the client's own maximum when older (Debian's docker.io: 1.41), else the server's
    assert client_version in ("1.41", "1.43")
    status, _, body = server.request("GET", "/v1.24/version")
    assert status == 200
    assert json.loads(body)["MinAPIVersion"] == "1.24"


def test_version_outside_range(server: Server) -> None:
    status, headers, body = server.request("GET", "/v9.99/info")
    assert status == 400
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"message": "client version 9.99 is too new. Maximum "
                                           "supported API version is 1.43"}
    status, _, body = server.request("GET", "/v1.12/info")
    assert status == 400
    assert json.loads(body)["message"].startswith("client version 1.12 is too old. Minimum "
                                                  "supported API version is 1.24")


def test_docker_info(server: Server) -> None:
    out = server.docker("info", "--format", "{{.OSType}} {{.Swarm.LocalNodeState}} "
                        "{{.DockerRootDir}}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["linux", "inactive", server.barque.root]


def test_unknown_route_is_page_not_found(server: Server) -> None:
    status, _, body = server.request("GET", "/v1.43/nothing/here")
    assert status == 404
    assert json.loads(body) == {"message": "page not found"}


def test_sigterm_stops_the_server_only(server: Server) -> None:
    out = server.docker("run", "-d", "--name", "stays", "busybox", "sleep", "60")
    assert out.returncode == 0, out.stderr
    assert server.stop() == 0
    assert not os.path.exists(server.socket)
    listed = server.barque.run("ps", "--format", "{{.Names}} {{.State}}")
    assert listed.stdout.split() == ["stays", "running"]


def test_a_live_socket_is_not_taken_over(server: Server) -> None:
    out = server.barque.run("serve", "-H", server.host, timeout=30)
    assert out.returncode != 0
    assert "address already in use" in out.stderr
    assert server.request("GET", "/_ping")[0] == 200


def test_socket_activation(server: Server) -> None:
    """-H fd:// takes systemd's socket (LISTEN_FDS, fd 3), as dockerd does."""
    import socket
    import subprocess

    from tests.api.conftest import _UnixConnection

    path = os.path.join(os.path.dirname(server.socket), "activated.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    argv = server.barque.argv("serve", "-H", "fd://")
    proc = subprocess.Popen(
        ["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@" 3<&0 0</dev/null', "sh", *argv],
        stdin=listener.fileno())
    try:
        conn = _UnixConnection(path)
        conn.request("GET", "/_ping")
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"OK")
        conn.close()
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
        listener.close()
    assert os.path.exists(path)  # systemd's socket is not the server's to remove
