"""/networks through `barque serve`: the real docker CLI, the Docker SDK, and bad requests
(dockerd's statuses and words, nothing changed)."""

from __future__ import annotations

import json
import subprocess
import urllib.parse

import pytest

from tests.api.conftest import Server
from tests.cli.conftest import ok

pytestmark = pytest.mark.root

PREDEFINED = ["bridge", "host", "none"]


def _names(server: Server) -> list[str]:
    return sorted(ok(server.docker("network", "ls", "--format", "{{.Name}}")).split())


def _link_gone(network_id: str) -> bool:
    return subprocess.run(["ip", "link", "show", "br-" + network_id[:12]],
                          capture_output=True).returncode != 0


def test_docker_network_commands(server: Server) -> None:
    net_id = ok(server.docker("network", "create", "--subnet", "10.231.7.0/24",
                              "--label", "team=a", "n1")).strip()
    assert len(net_id) == 64
    out = server.docker("network", "create", "n1")
    assert out.returncode == 1
    assert "Error response from daemon: network with name n1 already exists" in out.stderr
    assert _names(server) == ["bridge", "host", "n1", "none"]
    assert ok(server.docker("network", "ls", "-q", "--no-trunc", "-f", "label=team=a")) == \
        net_id + "\n"
    [data] = json.loads(ok(server.docker("network", "inspect", "n1")))
    assert (data["Id"], data["Driver"], data["Labels"], data["IPAM"]["Config"]) == \
        (net_id, "bridge", {"team": "a"}, [{"Subnet": "10.231.7.0/24", "Gateway": "10.231.7.1"}])
    # connect with an alias and a static address: the container (started by the CLI of
    # barque, the same set) gets the interface now, and is found by the alias
    ok(server.barque.run("run", "-d", "--name", "c1", "busybox", "sleep", "60"))
    ok(server.docker("network", "connect", "--alias", "svc", "--ip", "10.231.7.9", "n1", "c1"))
    attached = json.loads(ok(server.docker("network", "inspect", "n1",
                                           "--format", "{{json .Containers}}")))
    [endpoint] = attached.values()
    assert (endpoint["Name"], endpoint["IPv4Address"]) == ("c1", "10.231.7.9/24")
    addrs = ok(server.barque.run("exec", "c1", "ip", "-4", "-o", "addr"))
    assert "10.231.7.9/24" in addrs
    assert ok(server.barque.run("exec", "c1", "nslookup", "svc", "127.0.0.11")).count(
        "10.231.7.9") == 1
    out = server.docker("network", "rm", "n1")
    assert out.returncode == 1 and "has active endpoints" in out.stderr
    out = server.docker("network", "prune", "-f")
    assert "n1" not in out.stdout
    ok(server.docker("network", "disconnect", "n1", "c1"))
    assert "10.231.7.9" not in ok(server.barque.run("exec", "c1", "ip", "-4", "-o", "addr"))
    out = server.docker("network", "disconnect", "n1", "c1")
    assert out.returncode == 1 and "is not connected to network n1" in out.stderr
    for name in PREDEFINED:
        out = server.docker("network", "rm", name)
        assert f"{name} is a pre-defined network and cannot be removed" in out.stderr
    out = server.docker("network", "rm", "nosuch")
    assert "Error response from daemon: network nosuch not found" in out.stderr
    assert ok(server.docker("network", "prune", "-f")) == "Deleted Networks:\nn1\n\n"
    assert _names(server) == PREDEFINED
    assert _link_gone(net_id)


def test_sdk_networks(server: Server) -> None:
    import docker

    client = docker.DockerClient(base_url=server.host)
    try:
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
            subnet="10.232.9.0/24", iprange="10.232.9.128/25", gateway="10.232.9.1")])
        network = client.networks.create("sdknet", driver="bridge", ipam=ipam,
                                         internal=True, labels={"k": "v"},
                                         options={"com.docker.network.bridge.name":
                                                  "bqsdk" + network_suffix(server)})
        assert (network.attrs["Internal"], network.attrs["Labels"]) == (True, {"k": "v"})
        assert network.attrs["IPAM"]["Config"] == [
            {"Subnet": "10.232.9.0/24", "IPRange": "10.232.9.128/25", "Gateway": "10.232.9.1"}]
        assert [n.name for n in client.networks.list(filters={"label": "k=v"})] == ["sdknet"]
        assert {n.name for n in client.networks.list()} == {"sdknet", *PREDEFINED}
        assert client.networks.list(names=["nomatch"]) == []
        container = client.containers.run("busybox", ["sleep", "60"], detach=True)
        network.connect(container, aliases=["alias1"])
        network.reload()
        assert [c.id for c in network.containers] == [container.id]
        settings = client.api.inspect_container(container.id)["NetworkSettings"]["Networks"]
        assert settings["sdknet"]["IPAddress"].startswith("10.232.9.")
        assert "alias1" in settings["sdknet"]["Aliases"]
        network.disconnect(container, force=True)
        network.reload()
        assert network.containers == []
        with pytest.raises(docker.errors.NotFound, match="network nosuch not found"):
            client.networks.get("nosuch")
        container.remove(force=True)
        assert client.networks.prune(filters={"label": "k=other"}) == {"NetworksDeleted": None}
        assert client.networks.prune() == {"NetworksDeleted": ["sdknet"]}
        assert _link_gone(network.id)
    finally:
        client.close()


def network_suffix(server: Server) -> str:
    """A bridge name of this test's own (several runs share the host): its root's mark."""
    with open(server.barque.root + "/daemon.json") as f:
        return json.load(f)["bridge"][-6:]


def _post(server: Server, path: str, body: object) -> tuple[int, str]:
    status, _, reply = server.request("POST", "/v1.43" + path, json.dumps(body).encode(),
                                      {"Content-Type": "application/json"})
    return status, json.loads(reply)["message"] if reply.strip() else ""


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"Name": "n", "Driver": "nope"}, 404, 'plugin "nope" not found'),
    ({"Name": "n", "IPAM": {"Driver": "other"}}, 404, 'plugin "other" not found'),
    ({"Name": "n", "IPAM": {"Config": [{"Subnet": "bad"}]}}, 400, "invalid subnet bad"),
    ({"Name": "n", "Labels": {"a": 1}}, 400, "json: cannot unmarshal number into Go struct "
     "field NetworkCreateRequest.Labels of type string"),
    ({"Name": "n", "Internal": "yes"}, 400, "json: cannot unmarshal string into Go struct "
     "field NetworkCreateRequest.Internal of type bool"),
    ({"Name": "n", "Ingress": True}, 403, "swarm"),
    ({"Name": "n", "ConfigOnly": True}, 400, "not supported"),
    ({"Name": "n", "IPAM": {"Config": [{"Subnet": "10.233.0.0/24",
                                        "AuxiliaryAddresses": {"x": "10.233.0.5"}}]}},
     400, "AuxiliaryAddresses are not supported"),
    ({"Name": "bridge"}, 403, "operation is not permitted on predefined bridge network"),
    ({"Name": "host", "Driver": "host"}, 403, "operation is not permitted on predefined host"),
    ({"Name": "", "Driver": "bridge"}, 400, "invalid network name"),
])
def test_bad_create_changes_nothing(server: Server, body: dict[str, object], status: int,
                                    message: str) -> None:
    got, text = _post(server, "/networks/create", body)
    assert got == status and message in text, text
    assert _names(server) == PREDEFINED


def test_bad_connect_and_unknown_networks(server: Server) -> None:
    ok(server.docker("network", "create", "n2"))
    ok(server.docker("create", "--name", "c2", "busybox", "true"))
    for path, body, status, message in [
        ("/networks/n2/connect", {}, 400, 'invalid name or ID supplied: ""'),
        ("/networks/n2/connect", {"Container": "nosuch"}, 404, "No such container: nosuch"),
        ("/networks/nosuch/connect", {"Container": "c2"}, 404, "network nosuch not found"),
        ("/networks/n2/connect", {"Container": "c2", "EndpointConfig": {"Aliases": "a"}}, 400,
         "json: cannot unmarshal string into Go struct field EndpointSettings.Aliases"),
        ("/networks/n2/connect", {"Container": "c2", "EndpointConfig": {
            "IPAMConfig": {"IPv4Address": "10.1.2.3"}}}, 400, ""),
        ("/networks/n2/connect", {"Container": "c2", "EndpointConfig": {
            "MacAddress": "02:42:ac:11:00:09"}}, 400, "MacAddress is not supported"),
        ("/networks/n2/disconnect", {"Container": "c2"}, 400,
         "is not connected to the network n2"),
        ("/networks/host/connect", {"Container": "c2"}, 400,
         "cannot connect container to host network"),
    ]:
        got, text = _post(server, path, body)
        assert got == status and message in text, (path, body, text)
    [data] = json.loads(ok(server.docker("inspect", "c2")))
    assert list(data["NetworkSettings"]["Networks"]) == ["bridge"]  # nothing changed
    filters = urllib.parse.quote(json.dumps({"size": ["1"]}))
    for method, path, status, message in [
        ("GET", "/v1.43/networks/nosuch", 404, "network nosuch not found"),
        ("GET", "/v1.43/networks/n2?scope=swarm", 404, "network n2 not found"),
        ("DELETE", "/v1.43/networks/nosuch", 404, "network nosuch not found"),
        ("GET", f"/v1.43/networks?filters={filters}", 400, "Invalid filter 'size'"),
        ("POST", f"/v1.43/networks/prune?filters={filters}", 400, "Invalid filter 'size'"),
    ]:
        got, headers, reply = server.request(method, path)
        assert (got, json.loads(reply)) == (status, {"message": message}), path
    assert _names(server) == ["bridge", "host", "n2", "none"]
