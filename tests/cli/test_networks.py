"""`barque network create|ls|inspect|rm|prune|connect|disconnect` as a Docker user runs them:
Docker's output, filters and words, and bad input that changes nothing."""

from __future__ import annotations

import ipaddress
import json
import sqlite3

import pytest

from barque.network import ipam
from tests.cli.conftest import Barque, ok
from tests.support.marks import needs_busybox

pytestmark = [pytest.mark.root]


def fails(result, words: str, code: int = 1) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == code, (result.args, result.stdout, result.stderr)
    assert result.stderr == words + "\n", result.stderr


def names(b: Barque) -> list[str]:
    return ok(b.run("network", "ls", "--format", "{{.Name}}")).split()


def inspect_network(b: Barque, name: str) -> dict:
    [obj] = json.loads(ok(b.run("network", "inspect", name)))
    return obj


def endpoint_rows(b: Barque) -> list[tuple]:
    with sqlite3.connect(f"{b.root}/barque.db") as conn:
        return conn.execute("SELECT network_id, aliases, ipam_config, ipv4 FROM endpoints "
                            "ORDER BY position").fetchall()


def test_ls_shows_the_builtin_networks(barque: Barque) -> None:
    b = barque
    table = ok(b.run("network", "ls")).splitlines()
    assert table[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert [line.split()[1:] for line in table[1:]] == [["bridge", "bridge", "local"],
                                                         ["host", "host", "local"],
                                                         ["none", "null", "local"]]
    assert ok(b.run("network", "ls", "--filter", "driver=null", "--format", "{{.Name}}")) == \
        "none\n"
    ids = ok(b.run("network", "ls", "-q", "--no-trunc")).split()
    assert len(ids) == 3 and all(len(i) == 64 for i in ids)
    assert [len(i) for i in ok(b.run("network", "ls", "-q")).split()] == [12, 12, 12]
    first = json.loads(ok(b.run("network", "ls", "--format", "json")).splitlines()[0])
    assert sorted(first) == ["CreatedAt", "Driver", "ID", "IPv6", "Internal", "Labels", "Name",
                             "Scope"]
    assert (first["Name"], first["IPv6"], first["Internal"]) == ("bridge", "false", "false")
    assert ok(b.run("network", "ls", "-f", "type=custom", "-q")) == ""
    fails(b.run("network", "ls", "-f", "foo=bar"),
          "Error response from daemon: Invalid filter 'foo'")
    fails(b.run("network", "ls", "-f", "type=odd"),
          "Error response from daemon: invalid filter: 'type'='odd'")
    fails(b.run("network", "ls", "-f", "dangling=maybe"),
          'Error response from daemon: invalid value for filter \'dangling\', must be "true" '
          '(or "1"), or "false" (or "0")')


def test_the_default_bridge_follows_daemon_json(barque: Barque, if_prefix: str) -> None:
    routes = ipam.host_routes()
    bridge = inspect_network(barque, "bridge")
    with open(f"{barque.root}/daemon.json") as f:
        wanted = json.load(f)["bridge"]
    assert if_prefix in wanted
    assert bridge["Options"]["com.docker.network.bridge.name"] == wanted
    assert bridge["Options"]["com.docker.network.bridge.default_bridge"] == "true"
    [config] = bridge["IPAM"]["Config"]
    subnet = ipaddress.ip_network(config["Subnet"])
    assert ipaddress.ip_address(config["Gateway"]) == subnet.network_address + 1
    assert not any(r.overlaps(subnet) for r in routes if r.version == 4)
    assert bridge["Id"] == inspect_network(barque, bridge["Id"][:12])["Id"]
    host = inspect_network(barque, "host")
    assert (host["Driver"], host["IPAM"]["Config"], host["Containers"]) == ("host", None, {})


def test_create_inspect_ls_rm(barque: Barque) -> None:
    b = barque
    net_id = ok(b.run("network", "create", "--subnet", "10.241.0.0/16", "--ip-range",
                      "10.241.8.0/24", "--gateway", "10.241.0.254", "--internal", "--label",
                      "tier=front", "--label", "bare", "-o", "com.docker.network.mtu=1400",
                      "--attachable", "front1")).strip()
    assert len(net_id) == 64
    obj = inspect_network(b, "front1")
    assert obj["Id"] == net_id and obj["Driver"] == "bridge" and obj["Scope"] == "local"
    assert obj["IPAM"] == {"Driver": "default", "Options": {}, "Config": [
        {"Subnet": "10.241.0.0/16", "IPRange": "10.241.8.0/24", "Gateway": "10.241.0.254"}]}
    assert (obj["Internal"], obj["Attachable"], obj["EnableIPv6"]) == (True, True, False)
    assert obj["Labels"] == {"tier": "front", "bare": ""} and obj["Containers"] == {}
    assert obj["Options"] == {"com.docker.network.mtu": "1400"}
    auto_id = ok(b.run("network", "create", "back2")).strip()
    auto = inspect_network(b, auto_id[:10])
    [config] = auto["IPAM"]["Config"]
    subnet = ipaddress.ip_network(config["Subnet"])
    bridge = ipaddress.ip_network(inspect_network(b, "bridge")["IPAM"]["Config"][0]["Subnet"])
    assert not subnet.overlaps(bridge) and config["Gateway"] == str(subnet.network_address + 1)
    six = inspect_network(b, ok(b.run("network", "create", "--ipv6", "six3")).strip())
    assert six["EnableIPv6"] and [ipaddress.ip_network(c["Subnet"]).version
                                  for c in six["IPAM"]["Config"]] == [4, 6]

    assert names(b) == ["back2", "bridge", "front1", "host", "none", "six3"]
    custom = ok(b.run("network", "ls", "-f", "type=custom", "--format",
                      "{{.Name}} {{.Internal}} {{.IPv6}} {{.Label \"tier\"}}")).splitlines()
    assert custom == ["back2 false false ", "front1 true false front", "six3 false true "]
    assert ok(b.run("network", "ls", "-f", "label=tier=front", "-q", "--no-trunc")) == \
        net_id + "\n"
    assert ok(b.run("network", "ls", "-f", "label=bare", "-f", "name=front", "--format",
                    "{{.Name}}")) == "front1\n"
    assert ok(b.run("network", "ls", "-f", f"id={net_id[:6]}", "--format", "{{.Name}}")) == \
        "front1\n"
    assert ok(b.run("network", "ls", "-f", "name=^b", "--format", "{{.Name}}")).split() == \
        ["back2", "bridge"]
    assert ok(b.run("network", "ls", "-f", "dangling=true", "--format", "{{.Name}}")).split() \
        == ["back2", "front1", "six3"]
    assert ok(b.run("network", "ls", "-f", "dangling=false", "--format",
                    "{{.Name}}")).split() == ["bridge", "host", "none"]
    assert ok(b.run("network", "inspect", "-f", "{{.Name}}:{{.Internal}}", "front1",
                    "back2")) == "front1:true\nback2:false\n"
    assert ok(b.run("inspect", "-f", "{{.Name}} {{.Driver}}", "front1", "none")) == \
        "front1 bridge\nnone null\n"  # docker inspect finds networks too

    assert ok(b.run("network", "rm", "front1", auto_id[:12])) == f"front1\n{auto_id[:12]}\n"
    assert names(b) == ["bridge", "host", "none", "six3"]
    fails(b.run("network", "rm", "front1"), "Error: No such network: front1")  # the client's words
    result = b.run("network", "rm", "-f", "front1", "six3")
    assert result.returncode == 0 and result.stdout == "six3\n" and result.stderr == ""


def test_bad_input_gets_dockers_words_and_changes_nothing(barque: Barque) -> None:
    b = barque
    ok(b.run("network", "create", "--subnet", "10.242.0.0/16", "first"))
    before = ok(b.run("network", "ls", "--no-trunc"))
    rows = json.dumps([inspect_network(b, n) for n in names(b)])
    daemon = "Error response from daemon: "
    cases = [
        (["--subnet", "10.242.3.0/24", "x"],
         daemon + "invalid pool request: Pool overlaps with other one on this address space"),
        (["--subnet", "10.243.0.0/16", "--gateway", "10.1.0.1", "x"],
         "no matching subnet for gateway 10.1.0.1"),
        (["--subnet", "10.243.0.0/16", "--ip-range", "10.1.0.0/24", "x"],
         "no matching subnet for range 10.1.0.0/24"),
        (["--gateway", "10.243.0.1", "x"],
         "every ip-range or gateway must have a corresponding subnet"),
        (["--subnet", "10.243.0.0/16", "--subnet", "10.243.1.0/24", "x"],
         "multiple overlapping subnet configuration is not supported"),
        (["--subnet", "10.243.0.1/16", "x"],
         daemon + "invalid network config:\n* invalid subnet 10.243.0.1/16: it should be "
         "10.243.0.0/16"),
        (["--subnet", "banana", "x"],
         daemon + "invalid network config:\n* invalid subnet banana: invalid CIDR block "
         "notation"),
        (["--subnet", "banana", "--gateway", "10.0.0.1", "x"],
         "invalid subnet: invalid CIDR address: banana"),
        (["first"], daemon + "network with name first already exists"),
        (["-d", "overlay2", "x"], daemon + 'plugin "overlay2" not found'),
        (["-d", "host", "x"], daemon + 'only one instance of "host" network is allowed'),
        (["bridge"], daemon + "operation is not permitted on predefined bridge network "),
        (["-o", "com.docker.network.bridge.name=lo", "x"],
         daemon + "bridge name lo is already in use on the host"),
    ]
    for args, words in cases:
        fails(b.run("network", "create", *args), words)
    for name in ("bridge", "host", "none"):
        fails(b.run("network", "rm", name),
              f"{daemon}{name} is a pre-defined network and cannot be removed")
    result = b.run("network", "inspect", "first", "nope")
    assert result.returncode == 1 and result.stderr == "Error: No such network: nope\n"
    assert [o["Name"] for o in json.loads(result.stdout)] == ["first"]
    result = b.run("network", "inspect", "nope")
    assert (result.returncode, result.stdout) == (1, "[]\n")
    fails(b.run("network", "connect", "nope", "whoever"), f"{daemon}network nope not found")
    fails(b.run("network", "connect", "first", "whoever"), f"{daemon}No such container: whoever")
    fails(b.run("network", "prune", "-f", "--filter", "dangling=true"),
          f"{daemon}Invalid filter 'dangling'")
    assert ok(b.run("network", "ls", "--no-trunc")) == before
    assert json.dumps([inspect_network(b, n) for n in names(b)]) == rows


def test_prune(barque: Barque) -> None:
    b = barque
    for name, label in (("keep1", "keep=yes"), ("drop1", "keep=no"), ("drop2", "other")):
        ok(b.run("network", "create", "--label", label, name))
    assert ok(b.run("network", "prune", "-f", "--filter", "until=2000-01-01T00:00:00")) == ""
    assert ok(b.run("network", "prune", "-f", "--filter", "label=keep=no")) == \
        "Deleted Networks:\ndrop1\n\n"
    assert ok(b.run("network", "prune", "-f", "--filter", "label!=keep")) == \
        "Deleted Networks:\ndrop2\n\n"
    assert names(b) == ["bridge", "host", "keep1", "none"]
    result = b.run("network", "prune", input="n\n")
    assert "This will remove all custom networks not used by at least one container." in \
        result.stdout and names(b) == ["bridge", "host", "keep1", "none"]
    assert ok(b.run("network", "prune", "-f", "--filter", "until=1h")) == ""  # too new
    assert ok(b.run("network", "prune", "-f", "--filter", "until=2100-01-01T00:00:00")) == \
        "Deleted Networks:\nkeep1\n\n"
    assert names(b) == ["bridge", "host", "none"]


@needs_busybox
def test_connect_and_disconnect_a_stopped_container(barque: Barque) -> None:
    b = barque
    net_id = ok(b.run("network", "create", "--subnet", "10.244.0.0/24", "net1")).strip()
    cid = ok(b.run("create", "--name", "idle", "busybox", "true")).strip()
    daemon = "Error response from daemon: "
    fails(b.run("network", "connect", "--ip", "10.9.9.9", "net1", "idle"),
          f"{daemon}invalid endpoint settings:\n* no configured subnet or ip-range contain the "
          "IP address 10.9.9.9")
    fails(b.run("network", "connect", "--alias", "x", "bridge", "idle"),
          f"{daemon}invalid endpoint settings:\n* network-scoped alias is supported only for "
          "containers in user defined networks")
    fails(b.run("network", "connect", "host", "idle"),
          f"{daemon}cannot connect container to host network - container must be created in "
          "host network mode")
    fails(b.run("network", "connect", "none", "idle"),
          f"{daemon}container cannot be connected to multiple networks with one of the "
          "networks in private (none) mode")
    assert [r for r in endpoint_rows(b) if r[0] == net_id] == []
    result = b.run("network", "connect", "--ip", "10.244.0.9", "--alias", "db", "--alias",
                   "store", "net1", "idle")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    mine = [r for r in endpoint_rows(b) if r[0] == net_id]
    assert mine == [(net_id, '["db", "store"]', '{"IPv4Address": "10.244.0.9"}', None)]
    assert inspect_network(b, "net1")["Containers"] == {}  # no address until it runs
    ok(b.run("network", "connect", "net1", "idle"))  # again: Docker says nothing
    assert [r for r in endpoint_rows(b) if r[0] == net_id] == mine
    ok(b.run("network", "disconnect", "net1", cid[:12]))
    assert [r for r in endpoint_rows(b) if r[0] == net_id] == []
    fails(b.run("network", "disconnect", "net1", "idle"),
          f"{daemon}container {cid} is not connected to the network net1")

    ok(b.run("create", "--name", "alone", "--network", "none", "busybox", "true"))
    fails(b.run("network", "connect", "net1", "alone"),
          f"{daemon}container cannot be connected to multiple networks with one of the "
          "networks in private (none) mode")
    ok(b.run("create", "--name", "hosted", "--network", "host", "busybox", "true"))
    fails(b.run("network", "connect", "net1", "hosted"),
          f"{daemon}container sharing network namespace with another container or host "
          "cannot be connected to any other network")
    fails(b.run("network", "disconnect", "host", "hosted"),
          f"{daemon}cannot disconnect container from host network - container was created in "
          "host network mode")
    ok(b.run("rm", "idle", "alone", "hosted"))


@needs_busybox
def test_a_network_in_use_is_kept(barque: Barque) -> None:
    b = barque
    ok(b.run("network", "create", "--subnet", "10.245.0.0/24", "busy1"))
    cid = ok(b.run("run", "-d", "--name", "web", "busybox", "sleep", "60")).strip()
    ok(b.run("network", "connect", "--ip", "10.245.0.7", "busy1", "web"))
    fails(b.run("network", "connect", "busy1", "web"),
          "Error response from daemon: endpoint with name web already exists in network busy1")
    [(key, attached)] = inspect_network(b, "busy1")["Containers"].items()
    assert key == cid and attached["Name"] == "web" and len(attached["EndpointID"]) == 64
    assert attached["IPv4Address"] == "10.245.0.7/24" and attached["IPv6Address"] == ""
    assert attached["MacAddress"] == "02:42:0a:f5:00:07"
    result = b.run("network", "rm", "busy1")
    fails(result, f'Error response from daemon: error while removing network: network busy1 '
          f'has active endpoints (name:"web" id:"{attached["EndpointID"][:12]}")')
    assert ok(b.run("network", "prune", "-f")) == ""
    assert "busy1" in names(b)
    assert ok(b.run("network", "ls", "-f", "dangling=true", "-q")) == ""
    ok(b.run("network", "disconnect", "busy1", "web"))
    assert inspect_network(b, "busy1")["Containers"] == {}
    assert ok(b.run("network", "rm", "busy1")) == "busy1\n"
    ok(b.run("rm", "-f", "web"))
