"""`barque serve -H tcp://…`: only with TLS client certificates (dockerd's --tlsverify flags),
beside a unix socket (several -H at once); the real docker CLI and SDK over TLS, and the
clients without a good certificate refused."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.api.conftest import Server, start_server
from tests.cli.conftest import Barque, new_barque, remove_everything
from tests.support import certs, tools

pytestmark = pytest.mark.root


@dataclass
class TLSServer:
    server: Server
    port: int
    ca: certs.Pair
    client: certs.Pair
    work: str

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def docker(self, *args: str, tls: tuple[str, ...] | None = None,
               input: str | None = None) -> subprocess.CompletedProcess[str]:
        """The docker CLI over TCP, with the client certificate unless `tls` says else."""
        tools.require("docker")
        if tls is None:
            tls = ("--tlsverify", "--tlscacert", self.ca.cert, "--tlscert", self.client.cert,
                   "--tlskey", self.client.key)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_CONFIG"] = os.path.join(self.work, "docker-config")
        env["DOCKER_CERT_PATH"] = os.path.join(self.work, "no-certs")  # not ~/.docker's
        return subprocess.run(["docker", "-H", self.url, *tls, *args], capture_output=True,
                              text=True, env=env, timeout=60, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_certs(directory: str) -> tuple[certs.Pair, certs.Pair, certs.Pair]:
    """The CA, the server's certificate and a client's."""
    ca = certs.make_ca(directory)
    return (ca, certs.sign(ca, directory, "server", "serverAuth"),
            certs.sign(ca, directory, "client", "clientAuth"))


def tls_flags(ca: certs.Pair, server: certs.Pair) -> tuple[str, ...]:
    return ("--tlsverify", "--tlscacert", ca.cert, "--tlscert", server.cert,
            "--tlskey", server.key)


@pytest.fixture
def work(run_prefix: str) -> Iterator[str]:
    path = tempfile.mkdtemp(prefix=f"{run_prefix}-tls-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def tls_server(work: str, if_prefix: str) -> Iterator[TLSServer]:
    ca, server_pair, client = make_certs(os.path.join(work, "certs"))
    b = new_barque(os.path.join(work, "root"), os.path.join(work, "run"), if_prefix)
    sock = os.path.join(work, "sock", "barque.sock")
    port = free_port()
    proc = start_server(b, sock, "-H", f"tcp://127.0.0.1:{port}", *tls_flags(ca, server_pair))
    s = Server(b, sock, proc)
    try:
        yield TLSServer(s, port, ca, client, work)
    finally:
        try:
            s.stop()
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        remove_everything(b, work)


def test_docker_cli_over_tls_and_unix_at_once(tls_server: TLSServer) -> None:
    out = tls_server.docker("version", "--format", "{{.Server.APIVersion}}")
    assert (out.returncode, out.stdout) == (0, "1.43\n"), out.stderr
    # The attach stream: the CLI half-closes it at once (no -i), over TLS a close_notify;
    # the output must still come back.
    out = tls_server.docker("run", "--rm", "busybox", "sh", "-c", "echo hi; exit 3")
    assert (out.returncode, out.stdout) == (3, "hi\n"), out.stderr
    out = tls_server.docker("run", "--rm", "-i", "busybox", "cat", input="over tls\n")
    assert (out.returncode, out.stdout) == (0, "over tls\n"), out.stderr
    out = tls_server.docker("run", "-d", "--name", "both", "busybox", "sleep", "60")
    assert out.returncode == 0, out.stderr
    # the same engine on the unix socket given beside the TCP one
    ps = tls_server.server.docker("ps", "--format", "{{.Names}}")
    assert (ps.returncode, ps.stdout) == (0, "both\n"), ps.stderr
    assert tls_server.docker("rm", "-f", "both").returncode == 0


def test_refused_without_a_good_client_certificate(tls_server: TLSServer,
                                                    work: str) -> None:
    ca = tls_server.ca.cert
    # no client certificate
    out = tls_server.docker("version", tls=("--tlsverify", "--tlscacert", ca))
    assert out.returncode == 1
    assert "certificate required" in out.stderr, out.stderr
    # a certificate signed by another CA
    other = certs.make_ca(os.path.join(work, "other"), "other-ca")
    stranger = certs.sign(other, os.path.join(work, "other"), "stranger", "clientAuth")
    out = tls_server.docker("version", tls=("--tlsverify", "--tlscacert", ca, "--tlscert",
                                            stranger.cert, "--tlskey", stranger.key))
    assert out.returncode == 1
    assert "unknown certificate authority" in out.stderr or "bad certificate" in out.stderr, \
        out.stderr
    # plain HTTP
    out = tls_server.docker("version", tls=())
    assert out.returncode == 1
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=10) as conn:
        conn.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"OK" not in conn.recv(4096)
    # and the good client is still served
    assert tls_server.docker("info", "--format", "{{.OSType}}").stdout == "linux\n"


def test_docker_sdk_over_tls(tls_server: TLSServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import docker
    from docker.tls import TLSConfig

    # requests lets these override the SDK's CA (its per-request environment settings)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)

    client = docker.DockerClient(base_url=tls_server.url, tls=TLSConfig(
        client_cert=(tls_server.client.cert, tls_server.client.key),
        ca_cert=tls_server.ca.cert, verify=True))
    try:
        assert client.ping()
        assert client.containers.run("busybox", ["echo", "sdk"], remove=True) == b"sdk\n"
    finally:
        client.close()
    with pytest.raises(docker.errors.DockerException, match="certificate required"):
        docker.DockerClient(base_url=tls_server.url, tls=TLSConfig(
            ca_cert=tls_server.ca.cert, verify=True))  # asks /version at once


def _serve_fails(b: Barque, *args: str) -> str:
    proc = subprocess.run(b.argv("serve", *args), capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1, proc
    return proc.stderr


def test_bad_flags_refused_and_nothing_bound(work: str, if_prefix: str) -> None:
    ca, server_pair, _ = make_certs(os.path.join(work, "certs"))
    b = new_barque(os.path.join(work, "root"), os.path.join(work, "run"), if_prefix)
    sock = os.path.join(work, "sock", "barque.sock")
    port = free_port()
    tcp = f"tcp://127.0.0.1:{port}"
    message = _serve_fails(b, "-H", f"unix://{sock}", "-H", tcp)
    assert f"refusing to listen on {tcp} without --tlsverify" in message
    # --tls alone would take any client: refused too
    message = _serve_fails(b, "-H", tcp, "--tls", "--tlscacert", ca.cert, "--tlscert",
                           server_pair.cert, "--tlskey", server_pair.key)
    assert "without --tlsverify" in message
    message = _serve_fails(b, "-H", f"unix://{sock}", "-H", tcp, "--tlsverify",
                           "--tlscacert", ca.cert, "--tlscert", server_pair.cert,
                           "--tlskey", os.path.join(work, "nosuch.pem"))
    assert "Could not load X509 key pair" in message
    message = _serve_fails(b, "-H", f"unix://{sock}", "-H", tcp, "--tlsverify",
                           "--tlscacert", os.path.join(work, "nosuch.pem"), "--tlscert",
                           server_pair.cert, "--tlskey", server_pair.key)
    assert "Could not read CA certificate" in message
    assert "Invalid bind address format" in _serve_fails(b, "-H", "http://127.0.0.1:1")
    assert "given more than once" in _serve_fails(b, "-H", f"unix://{sock}", "-H",
                                                  f"unix://{sock}")
    # nothing was bound: no socket file, the port free
    assert not os.path.exists(sock)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
    # a port taken: the unix socket bound before it is removed again
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        message = _serve_fails(b, "-H", f"unix://{sock}", "-H", tcp,
                               *tls_flags(ca, server_pair))
        assert "address already in use" in message
    assert not os.path.exists(sock)


def test_sigterm_closes_the_tcp_port(tls_server: TLSServer) -> None:
    proc = tls_server.server.proc
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", tls_server.port), timeout=10).close()
