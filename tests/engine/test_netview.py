"""barque.engine.netview from constructed rows (the design's Endpoint/Network/PortMap shapes):
inspect's NetworkSettings, ps's PORTS (expected strings produced by the docker 28.2 CLI from
the same port lists), `port`'s lines and errors, ps's network/publish/expose filters."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import pytest

from barque.engine import netview
from barque.engine.networks import builtin_networks
from barque.network.ports import PortMap

CID = "0123456789ab" + "c" * 52
BRIDGE_ID = "b" * 64
USER_ID = "u" * 64


@dataclass
class Subnet:
    network: Any
    gateway: Any
    ip_range: Any = None


@dataclass
class Network:
    id: str
    name: str
    cidrs: list[tuple[str, str]]

    def subnets(self) -> list[Subnet]:
        return [Subnet(ipaddress.ip_network(c), ipaddress.ip_address(g)) for c, g in self.cidrs]


@dataclass
class Endpoint:
    container_id: str
    network_id: str
    position: int
    aliases: list[str] = field(default_factory=list)
    ipam_config: dict = field(default_factory=dict)
    mac_config: str | None = None
    links: list[str] = field(default_factory=list)
    endpoint_id: str | None = None
    ipv4: str | None = None
    ipv6: str | None = None
    mac: str | None = None
    veth: str | None = None


@dataclass
class Record:
    host_config: dict
    config: dict = field(default_factory=dict)
    id: str = CID
    name: str = "web"


NETWORKS = {BRIDGE_ID: Network(BRIDGE_ID, "bridge", [("172.17.0.0/16", "172.17.0.1")]),
            USER_ID: Network(USER_ID, "mynet", [("10.9.0.0/24", "10.9.0.1"),
                                                ("fd00:9::/64", "fd00:9::1")])}


def running(network_id: str, position: int = 0, **kw: Any) -> Endpoint:
    addresses = {BRIDGE_ID: ("172.17.0.2", None), USER_ID: ("10.9.0.5", "fd00:9::5")}
    v4, v6 = addresses[network_id]
    return Endpoint(CID, network_id, position, endpoint_id="e" * 64, ipv4=v4, ipv6=v6,
                    mac="02:42:ac:11:00:02", veth="veth1234567", **kw)


DOCKER_KEYS = ["Bridge", "SandboxID", "SandboxKey", "Ports", "HairpinMode",
               "LinkLocalIPv6Address", "LinkLocalIPv6PrefixLen", "SecondaryIPAddresses",
               "SecondaryIPv6Addresses", "EndpointID", "Gateway", "GlobalIPv6Address",
               "GlobalIPv6PrefixLen", "IPAddress", "IPPrefixLen", "IPv6Gateway", "MacAddress",
               "Networks"]
ENDPOINT_KEYS = ["IPAMConfig", "Links", "Aliases", "MacAddress", "DriverOpts", "GwPriority",
                 "NetworkID", "EndpointID", "Gateway", "IPAddress", "IPPrefixLen",
                 "IPv6Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "DNSNames"]


def test_default_bridge_running_with_published_ports() -> None:
    record = Record({"NetworkMode": "bridge",
                     "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}},
                    {"ExposedPorts": {"80/tcp": {}, "443/tcp": {}}})
    published = [PortMap("tcp", "", 8080, 80)]
    settings = netview.network_settings(record, True, [running(BRIDGE_ID)], NETWORKS,
                                        published, "/run/barque/netns/" + CID)
    assert list(settings) == DOCKER_KEYS
    assert settings["Ports"] == {
        "443/tcp": None,
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"},
                   {"HostIp": "::", "HostPort": "8080"}]}
    assert (settings["IPAddress"], settings["IPPrefixLen"], settings["Gateway"]) == (
        "172.17.0.2", 16, "172.17.0.1")
    assert settings["MacAddress"] == "02:42:ac:11:00:02" and settings["EndpointID"] == "e" * 64
    assert settings["SandboxKey"] == "/run/barque/netns/" + CID
    assert len(settings["SandboxID"]) == 64 and settings["SandboxID"] != CID
    bridge = settings["Networks"]["bridge"]
    assert list(bridge) == ENDPOINT_KEYS
    assert bridge["NetworkID"] == BRIDGE_ID and bridge["DNSNames"] is None
    assert bridge["Aliases"] is None and bridge["IPAMConfig"] is None
    assert bridge["GlobalIPv6Address"] == "" and bridge["IPv6Gateway"] == ""
    # without IPv6 on the host, "" is 0.0.0.0 only
    v4_only = netview.ports_map(record.config, record.host_config, published, True, ipv6=False)
    assert v4_only["80/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": "8080"}]


def test_user_network_fields_and_empty_top_level() -> None:
    record = Record({"NetworkMode": "mynet"}, {"Hostname": "box"})
    endpoint = running(USER_ID, aliases=["db", "web"], ipam_config={"IPv4Address": "10.9.0.5"})
    settings = netview.network_settings(record, True, [endpoint], NETWORKS, [])
    assert settings["IPAddress"] == "" and settings["Gateway"] == "" and \
        settings["IPPrefixLen"] == 0 and settings["MacAddress"] == ""
    mynet = settings["Networks"]["mynet"]
    assert mynet["IPAMConfig"] == {"IPv4Address": "10.9.0.5"}
    assert mynet["Aliases"] == ["db", "web"]
    assert mynet["DNSNames"] == ["web", "db", CID[:12], "box"]  # name, aliases, id, hostname
    assert (mynet["IPAddress"], mynet["IPPrefixLen"], mynet["Gateway"]) == (
        "10.9.0.5", 24, "10.9.0.1")
    assert (mynet["GlobalIPv6Address"], mynet["GlobalIPv6PrefixLen"], mynet["IPv6Gateway"]) == (
        "fd00:9::5", 64, "fd00:9::1")
    assert settings["Ports"] == {}


def test_stopped_container_keeps_its_networks_without_addresses() -> None:
    record = Record({"NetworkMode": "bridge"}, {"ExposedPorts": {"80/tcp": {}}})
    endpoints = [Endpoint(CID, USER_ID, 1, mac_config="02:42:0a:09:00:09"),
                 Endpoint(CID, BRIDGE_ID, 0)]
    settings = netview.network_settings(record, False, endpoints, NETWORKS,
                                        [PortMap("tcp", "", 8080, 80)], "/x")
    assert settings["Ports"] == {} and settings["SandboxID"] == "" and \
        settings["SandboxKey"] == ""
    assert list(settings["Networks"]) == ["bridge", "mynet"]  # connect order
    mynet = settings["Networks"]["mynet"]
    assert mynet["EndpointID"] == "" and mynet["IPAddress"] == "" and mynet["Gateway"] == ""
    assert mynet["MacAddress"] == "02:42:0a:09:00:09" and mynet["NetworkID"] == USER_ID
    assert settings["IPAddress"] == "" and settings["EndpointID"] == ""


def test_host_none_and_container_modes() -> None:
    ids = {n["Name"]: n["Id"] for n in builtin_networks()}
    for mode in ("host", "none"):
        settings = netview.network_settings(Record({"NetworkMode": mode}), True, [], {}, [])
        assert list(settings["Networks"]) == [mode]
        assert settings["Networks"][mode]["NetworkID"] == ids[mode]
        assert settings["Ports"] == {}
    joined = netview.network_settings(Record({"NetworkMode": "container:x",
                                              "PortBindings": {"80/tcp": []}}), True, [], {}, [])
    assert joined["Networks"] == {} and joined["Ports"] == {} and joined["SandboxKey"] == ""
    names = netview.network_names(Record({"NetworkMode": "mynet"}),
                                  [Endpoint(CID, USER_ID, 0), Endpoint(CID, BRIDGE_ID, 1)],
                                  NETWORKS)
    assert names == ["bridge", "mynet"]


def _p(private: int, kind: str = "tcp", ip: str = "", public: int = 0) -> dict[str, Any]:
    port: dict[str, Any] = {"PrivatePort": private, "Type": kind}
    if ip:
        port.update(IP=ip, PublicPort=public)
    return port


# Port lists and what `docker ps --format '{{.Ports}}'` (docker 28.2.2) printed for them.
DISPLAY = [
    ([_p(80, ip="0.0.0.0", public=8080), _p(80, ip="::", public=8080), _p(443), _p(444),
      _p(445), _p(53, "udp"), _p(9000, ip="0.0.0.0", public=9000),
      _p(9001, ip="0.0.0.0", public=9001), _p(22, ip="127.0.0.1", public=2222)],
     "53/udp, 443-445/tcp, 0.0.0.0:9000-9001->9000-9001/tcp, 127.0.0.1:2222->22/tcp, "
     "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"),
    ([_p(443), _p(445), _p(446), _p(444, "udp"), _p(9000, ip="::", public=9000),
      _p(9000, ip="0.0.0.0", public=9000), _p(9001, ip="0.0.0.0", public=9001),
      _p(9001, ip="::", public=9001), _p(80, "udp", "0.0.0.0", 32768),
      _p(80, "tcp", "0.0.0.0", 32769)],
     "443/tcp, 445-446/tcp, 444/udp, 0.0.0.0:9000-9001->9000-9001/tcp, "
     "[::]:9000-9001->9000-9001/tcp, 0.0.0.0:32768->80/udp, 0.0.0.0:32769->80/tcp"),
    ([], ""),
]


@pytest.mark.parametrize("port_list,text", DISPLAY)
def test_ps_ports_column(port_list: list[dict[str, Any]], text: str) -> None:
    assert netview.display_ports(port_list) == text


def test_ps_ports_from_the_map() -> None:
    ports = {"443/tcp": None, "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"},
                                         {"HostIp": "::", "HostPort": "8080"}]}
    assert netview.display_ports(netview.port_list(ports)) == \
        "443/tcp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"


# What `docker port c1 [ARG]` (docker 28.2.2) printed, or its error, for this map.
PORTS = {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort":
                                                                 "8080"}],
         "443/tcp": None, "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}]}


def test_port_lines() -> None:
    assert netview.port_lines(PORTS, None, "c1") == [
        "53/udp -> 127.0.0.1:5353", "80/tcp -> 0.0.0.0:8080", "80/tcp -> [::]:8080"]
    assert netview.port_lines(PORTS, "80", "c1") == ["0.0.0.0:8080", "[::]:8080"]
    assert netview.port_lines(PORTS, "80/tcp", "c1") == ["0.0.0.0:8080", "[::]:8080"]
    assert netview.port_lines(PORTS, "53/udp", "c1") == ["127.0.0.1:5353"]
    assert netview.port_lines({}, None, "c1") == []


@pytest.mark.parametrize("arg,words", [
    ("443", "Error: No public port '443/tcp' published for c1"),
    ("81", "Error: No public port '81/tcp' published for c1"),
    ("80/xyz", "Error: No public port '80/xyz' published for c1"),
    ("abc/tcp", 'Error: invalid port (abc): strconv.ParseUint: parsing "abc": invalid syntax'),
    ("70000", 'Error: invalid port (70000): strconv.ParseUint: parsing "70000": value out of '
              "range"),
])
def test_port_errors(arg: str, words: str) -> None:
    with pytest.raises(netview.ViewError) as e:
        netview.port_lines(PORTS, arg, "c1")
    assert str(e.value) == words


def test_ps_filters() -> None:
    port_list = netview.port_list(PORTS)
    assert netview.port_filter("publish", ["8080", "9000-9001/udp"]) == {
        "8080/tcp", "9000/udp", "9001/udp"}
    assert netview.matches_ports(port_list, {"8080/tcp"}, set())
    assert not netview.matches_ports(port_list, {"80/tcp"}, set())  # publish is the host side
    assert netview.matches_ports(port_list, set(), {"443/tcp"})  # expose: the container side
    assert not netview.matches_ports(port_list, set(), {"443/udp"})
    with pytest.raises(netview.ViewError) as e:
        netview.port_filter("publish", ["80:80"])
    assert str(e.value) == "filter for 'publish' should not contain ':': 80:80"
    with pytest.raises(netview.ViewError) as e:
        netview.port_filter("expose", ["x"])
    assert str(e.value) == ('error while looking up for expose x: strconv.ParseUint: parsing '
                            '"x": invalid syntax')
    nets = netview.networks_view(Record({"NetworkMode": "mynet"}), False,
                                 [Endpoint(CID, USER_ID, 0)], NETWORKS)
    assert netview.matches_network(["mynet"], nets)
    assert netview.matches_network(["uuuu"], nets)  # an ID prefix
    assert not netview.matches_network(["bridge", "other"], nets)
