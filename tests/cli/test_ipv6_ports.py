"""Published ports on IPv6 host addresses, end to end: kernel DNAT to the container's IPv6
address on an `--ipv6` network, Docker's rules without its userland proxy elsewhere. Traffic
stays on ::1, 127.0.0.1 and the addresses of the tests' own bridges."""

from __future__ import annotations

import json
import socket
import subprocess
import uuid

import pytest

from tests.cli.conftest import Barque, inspect_container, ok, until
from tests.support.marks import needs_busybox

pytestmark = [pytest.mark.root, needs_busybox]

WEB = ("sh", "-c", "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html && "
       "exec httpd -f -p 80 -h /www")


def _free_port() -> int:
    """A port free on both 0.0.0.0 and ::."""
    while True:
        with socket.socket() as s4:
            s4.bind(("0.0.0.0", 0))
            port = int(s4.getsockname()[1])
            try:
                with socket.socket(socket.AF_INET6) as s6:
                    s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    s6.bind(("::", port))
                return port
            except OSError:
                continue


def _get(host: str, port: int, timeout: float = 3.0) -> str:
    """An HTTP GET by a plain socket: the body, or "" when nothing answers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family) as s:
            s.settimeout(timeout)
            s.connect((host, port))
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
    except OSError:
        return ""
    return data.decode().partition("\r\n\r\n")[2]


def _refused(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.settimeout(3)
        try:
            s.connect((host, port))
        except ConnectionRefusedError:
            return True
    return False


def _bindable(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def _v6_network(barque: Barque) -> tuple[str, str]:
    """An --ipv6 user network: (name, its IPv6 gateway, an address of the host)."""
    name = f"v6{uuid.uuid4().hex[:6]}"
    subnet = f"fd{uuid.uuid4().hex[:2]}:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}::/64"
    ok(barque.run("network", "create", "--ipv6", "--subnet", subnet, name))
    [obj] = json.loads(ok(barque.run("network", "inspect", name)))
    gateway = next(c["Gateway"] for c in obj["IPAM"]["Config"] if ":" in c.get("Gateway", ""))
    return name, gateway


def _port_rules(barque: Barque) -> str:
    from barque.network import config

    table = config.load(barque.root).nft_table
    out = subprocess.run(["nft", "list", "chain", "inet", table, "ports"], capture_output=True,
                         text=True)
    return out.stdout


def test_every_address_publishes_on_ipv6_for_an_ipv6_container(barque: Barque) -> None:
    network, gateway = _v6_network(barque)
    port = _free_port()
    ok(barque.run("run", "-d", "--name", "web", "--network", network, "-p", f"{port}:80",
                  "busybox", *WEB))
    until(lambda: _get("127.0.0.1", port).startswith("hello-from-"), timeout=15)
    # the host's IPv6 address on the bridge, DNAT'd to the container's IPv6 address
    assert _get(gateway, port).startswith("hello-from-")
    assert not _bindable("::", port) and not _bindable("0.0.0.0", port)  # both held

    assert ok(barque.run("port", "web")).split("\n")[:2] == [
        f"80/tcp -> 0.0.0.0:{port}", f"80/tcp -> [::]:{port}"]
    assert ok(barque.run("port", "web", "80")).split() == [f"0.0.0.0:{port}", f"[::]:{port}"]
    assert ok(barque.run("ps", "--format", "{{.Ports}}")).strip() == \
        f"0.0.0.0:{port}->80/tcp, [::]:{port}->80/tcp"
    assert inspect_container(barque, "web")["NetworkSettings"]["Ports"] == {"80/tcp": [
        {"HostIp": "0.0.0.0", "HostPort": str(port)}, {"HostIp": "::", "HostPort": str(port)}]}
    assert "ip6 to" in _port_rules(barque)

    ok(barque.run("stop", "-t", "0", "web"))
    assert _bindable("::", port) and _bindable("0.0.0.0", port)  # given back at stop
    assert _get(gateway, port, timeout=1) == ""
    assert "dnat" not in _port_rules(barque)


def test_one_ipv6_host_address(barque: Barque) -> None:
    network, gateway = _v6_network(barque)
    port = _free_port()
    ok(barque.run("run", "-d", "--name", "web", "--network", network, "-p",
                  f"[{gateway}]:{port}:80", "busybox", *WEB))
    until(lambda: _get(gateway, port).startswith("hello-from-"), timeout=15)
    assert _get("127.0.0.1", port, timeout=1) == ""
    assert ok(barque.run("port", "web")).strip() == f"80/tcp -> [{gateway}]:{port}"
    assert ok(barque.run("ps", "--format", "{{.Ports}}")).strip() == \
        f"[{gateway}]:{port}->80/tcp"
    ok(barque.run("rm", "-f", "web"))
    assert _bindable(gateway, port)


def test_an_ipv4_only_container_publishes_on_ipv4_only(barque: Barque) -> None:
    """As Docker without its userland proxy: no [::]:PORT that would accept connections no
    one answers; ::1 is refused at once."""
    port = _free_port()
    ok(barque.run("run", "-d", "--name", "web", "-p", f"{port}:80", "busybox", *WEB))
    until(lambda: _get("127.0.0.1", port).startswith("hello-from-"), timeout=15)
    assert _refused("::1", port)
    assert ok(barque.run("port", "web")).strip() == f"80/tcp -> 0.0.0.0:{port}"
    assert ok(barque.run("ps", "--format", "{{.Ports}}")).strip() == f"0.0.0.0:{port}->80/tcp"


@pytest.mark.parametrize("spec, words", [
    ("[::1]:x:80", "Invalid hostPort: x"),
    ("[::1:8080:80", "missing ']' in address"),
    ("[::]:{port}:80", "Cannot map from IPv6 to an IPv4-only container because the userland "
                       "proxy is disabled"),
    ("[::1]:{port}:80", "Cannot map from IPv6 to an IPv4-only container"),
])
def test_bad_ipv6_publish_gets_words_and_changes_nothing(barque: Barque, spec: str,
                                                         words: str) -> None:
    port = _free_port()
    result = barque.run("run", "-d", "--name", "bad", "-p", f"127.0.0.1:{port}:81",
                        "-p", spec.format(port=port), "busybox", *WEB)
    assert result.returncode == 125, result
    assert words in result.stderr
    containers = barque.containers()
    if containers:
        assert inspect_container(barque, "bad")["State"]["Running"] is False
    assert _bindable("127.0.0.1", port) and _bindable("::", port)
    assert "dnat" not in _port_rules(barque)


def test_ipv6_loopback_is_refused_on_an_ipv6_network(barque: Barque) -> None:
    """The kernel does not forward IPv6 loopback traffic out of `lo` (no route_localnet for
    IPv6): Barque says so rather than hold a port no connection gets through."""
    network, _ = _v6_network(barque)
    port = _free_port()
    result = barque.run("run", "-d", "--name", "web", "--network", network, "-p",
                        f"[::1]:{port}:80", "busybox", *WEB)
    assert result.returncode == 125
    assert "Cannot map from the IPv6 loopback address to a container" in result.stderr
    assert _bindable("::1", port)
