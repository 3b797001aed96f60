"""Published ports on IPv6 host addresses through `barque serve`, as the real docker CLI shows
them (`port`, `ps`, the API's list), and refused where the kernel cannot forward them."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.api.conftest import Server
from tests.cli.conftest import ok, until
from tests.cli.test_ipv6_ports import WEB, _bindable, _free_port, _get
from tests.support.marks import needs_busybox

pytestmark = [pytest.mark.root, needs_busybox]


def test_docker_cli_publishes_on_ipv6(server: Server) -> None:
    subnet = f"fd{uuid.uuid4().hex[:2]}:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}::/64"
    ok(server.docker("network", "create", "--ipv6", "--subnet", subnet, "v6"))
    [net] = json.loads(ok(server.docker("network", "inspect", "v6")))
    gateway = next(c["Gateway"] for c in net["IPAM"]["Config"] if ":" in c.get("Gateway", ""))
    port = _free_port()
    ok(server.docker("run", "-d", "--name", "web", "--network", "v6", "-p", f"{port}:80",
                     "busybox", *WEB))
    until(lambda: _get(gateway, port).startswith("hello-from-"), timeout=15)
    assert ok(server.docker("port", "web")).splitlines() == [
        f"80/tcp -> 0.0.0.0:{port}", f"80/tcp -> [::]:{port}"]
    assert ok(server.docker("ps", "--format", "{{.Ports}}")).strip() == \
        f"0.0.0.0:{port}->80/tcp, [::]:{port}->80/tcp"
    status, _, body = server.request("GET", "/containers/json")
    assert status == 200
    [listed] = json.loads(body)
    assert sorted((p["IP"], p["PublicPort"]) for p in listed["Ports"]) == [
        ("0.0.0.0", port), ("::", port)]
    ok(server.docker("rm", "-f", "web"))
    assert _bindable("::", port)


def test_docker_cli_ipv6_host_address_of_an_ipv4_only_container(server: Server) -> None:
    port = _free_port()
    result = server.docker("run", "-d", "--name", "web", "-p", f"[::]:{port}:80", "busybox",
                           *WEB)
    assert result.returncode == 125
    assert "Cannot map from IPv6 to an IPv4-only container because the userland proxy is " \
           "disabled" in result.stderr
    assert _bindable("::", port)
