"""Barque's nftables table with real traffic: bridges and namespaces made with `ip`, servers in
the namespaces, clients on the host (127.0.0.1, the bridge's address) or in other namespaces."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from barque.network.firewall import Firewall
from barque.network.ports import PortMap
from tests.network.topology import Topology, ask, free_subnets, host
from tests.support.tools import require

pytestmark = pytest.mark.root


@pytest.fixture
def topo(if_prefix: str, run_prefix: str) -> Iterator[Topology]:
    require("ip", "nft")
    t = Topology(if_prefix, run_prefix)
    yield t
    t.cleanup()


@pytest.fixture
def fw(if_prefix: str) -> Iterator[Firewall]:
    f = Firewall(if_prefix + "_fw")
    yield f
    f.delete_table()


@pytest.fixture
def forwarding() -> None:
    """Tests of forwarded traffic: another table's forward chain with policy drop (Docker's
    iptables FORWARD) drops it whatever our table says."""
    drops = Firewall.foreign_forward_drops()
    if drops:
        pytest.skip(f"forwarded traffic is dropped by {', '.join(drops)} (not ours to change)")


@pytest.fixture
def reserve() -> Iterator[Callable[[str], int]]:
    """Host ports held for the test, as the engine holds a published port's socket."""
    held: list[socket.socket] = []

    def take(proto: str = "tcp") -> int:
        s = socket.socket(socket.AF_INET,
                          socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        held.append(s)
        return int(s.getsockname()[1])

    yield take
    for s in held:
        s.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nft_json(family: str, table: str) -> str:
    out = subprocess.run(["nft", "-j", "list", "table", family, table], capture_output=True,
                         text=True)
    return out.stdout if out.returncode == 0 else ""


def chain_rules(table: str, chain: str) -> list[dict]:
    objs = json.loads(nft_json("inet", table))["nftables"]
    return [o["rule"] for o in objs if "rule" in o and o["rule"]["chain"] == chain]


def masquerades_out(table: str, bridge: str) -> bool:
    """The bridge's NAT chain masquerades what leaves through another interface."""
    return any(r["expr"][-1] == {"masquerade": None} and '"!="' in json.dumps(r)
               for r in chain_rules(table, "nat-" + bridge))


def tables() -> list[str]:
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines()]


# -- published ports ---------------------------------------------------------------------------

def test_published_port_reaches_container_from_host_localhost_and_bridge(
        topo: Topology, fw: Firewall, reserve: Callable[[str], int]) -> None:
    net, = free_subnets(1)
    br = topo.bridge("b1", net)
    a = topo.namespace("a", net, 2, br)
    b = topo.namespace("b", net, 3, br)
    topo.serve(a, "A", host(net, 2), 8000)
    port = reserve("tcp")
    assert ask("127.0.0.1", port) == ""  # nothing there before the rule

    fw.ensure_network(br, [str(net)], internal=False, icc=True, masquerade=True)
    fw.add_ports("c1", br, host(net, 2), [PortMap("tcp", "", port, 8000)])

    gateway = host(net, 1)
    # 127.0.0.1: route_localnet lets it out through the bridge, masquerade rewrites it
    assert ask("127.0.0.1", port) == f"A {gateway}"
    assert ask(gateway, port) == f"A {gateway}"
    with open(f"/proc/sys/net/ipv4/conf/{br}/route_localnet") as f:
        assert f.read().strip() == "1"
    # another container of the bridge through the host's address: hairpin NAT answers
    assert topo.ask_from(b, gateway, port) == f"A {gateway}"
    # and the container itself: with br_netfilter, DNAT back into the same bridge is bridged
    # out of the port the packet came in by, which takes hairpin mode on that port (as Docker)
    with open(f"/sys/class/net/{topo.if_prefix}va/brport/hairpin_mode", "w") as f:
        f.write("1")
    assert topo.ask_from(a, gateway, port) == f"A {gateway}"
    assert fw.port_owners() == ["c1"]


def test_host_ip_limits_the_addresses(topo: Topology, fw: Firewall,
                                      reserve: Callable[[str], int]) -> None:
    net, = free_subnets(1)
    br = topo.bridge("b1", net)
    a = topo.namespace("a", net, 2, br)
    topo.serve(a, "A", host(net, 2), 8000)
    port = reserve("tcp")
    fw.ensure_network(br, [str(net)], internal=False, icc=True, masquerade=True)
    fw.add_ports("c1", br, host(net, 2), [PortMap("tcp", "127.0.0.1", port, 8000)])

    assert ask("127.0.0.1", port) == f"A {host(net, 1)}"
    assert ask(host(net, 1), port) == ""


def test_udp_port(topo: Topology, fw: Firewall, reserve: Callable[[str], int]) -> None:
    net, = free_subnets(1)
    br = topo.bridge("b1", net)
    a = topo.namespace("a", net, 2, br)
    topo.serve(a, "A", host(net, 2), 8001, "udp")
    port = reserve("udp")
    assert ask("127.0.0.1", port, "udp") == ""
    fw.ensure_network(br, [str(net)], internal=False, icc=True, masquerade=True)
    fw.add_ports("c1", br, host(net, 2), [PortMap("udp", "", port, 8001)])

    assert ask("127.0.0.1", port, "udp") == f"A {host(net, 1)}"
    assert ask(host(net, 1), port, "tcp") == ""  # the protocol is part of the mapping
    fw.add_ports("c2", br, host(net, 3), [PortMap("sctp", host(net, 1), 5000, 5001)])
    sctp = json.dumps(chain_rules(fw.table, "ports")[-1])
    assert '"sctp"' in sctp and '"c2"' in sctp and str(host(net, 1)) in sctp


@pytest.fixture
def ipv6_forwarding() -> Iterator[None]:
    """ensure_network turns IPv6 forwarding on for a network with an IPv6 subnet: a host-wide
    switch, given back as it was."""
    path = "/proc/sys/net/ipv6/conf/all/forwarding"
    with open(path) as f:
        before = f.read().strip()
    yield
    with open(path, "w") as f:
        f.write(before)


def _v6(topo: Topology, ns: str | None, link: str, address: str) -> None:
    """An IPv6 address on a link of the host (ns None) or of a namespace, usable at once."""
    where = ["-n", ns] if ns else []
    subprocess.run(["ip", *where, "addr", "add", address, "dev", link, "nodad"], check=True)


def test_ipv6_host_addresses_reach_the_containers_ipv6_address(
        topo: Topology, fw: Firewall, reserve: Callable[[str], int],
        ipv6_forwarding: None, forwarding: None) -> None:
    net, outer = free_subnets(2)
    # the compressed form ("fd38:7d4::", not "fd38:07d4::"): the servers answer with it
    net6, outer6 = (ipaddress.IPv6Address(b"\xfd" + os.urandom(5) + bytes(10)).compressed
                    for _ in range(2))
    br = topo.bridge("b1", net)
    o = topo.namespace("o", outer, 2)  # another host, on a link of its own
    _v6(topo, None, topo.if_prefix + "vo", f"{outer6}1/64")
    _v6(topo, o, "eth0", f"{outer6}2/64")
    subprocess.run(["ip", "-n", o, "-6", "route", "add", "default", "via", f"{outer6}1"],
                   check=True)
    a = topo.namespace("a", net, 2, br)
    b = topo.namespace("b", net, 3, br)
    _v6(topo, None, br, f"{net6}1/64")
    for ns, n in ((a, 2), (b, 3)):
        _v6(topo, ns, "eth0", f"{net6}{n}/64")
        subprocess.run(["ip", "-n", ns, "-6", "route", "add", "default", "via", f"{net6}1"],
                       check=True)
    topo.serve(a, "A4", host(net, 2), 8000)
    topo.serve(a, "A6", f"{net6}2", 8000)
    every, one = reserve("tcp"), reserve("tcp")
    gateway6 = f"{net6}1"
    assert ask(gateway6, every) == ""  # nothing there before the rules

    fw.ensure_network(br, [str(net), f"{net6}/64"], internal=False, icc=True, masquerade=True)
    fw.add_ports("c1", br, host(net, 2), [PortMap("tcp", "0.0.0.0", every, 8000),
                                          PortMap("tcp", "::", every, 8000),
                                          PortMap("tcp", gateway6, one, 8000)],
                 container_ipv6=f"{net6}2")

    # [::]: the host's own IPv6 addresses go to the container's IPv6 address; 0.0.0.0 and
    # 127.0.0.1 still to its IPv4 one
    assert ask(gateway6, every) == f"A6 {gateway6}"
    assert ask("127.0.0.1", every) == f"A4 {host(net, 1)}"
    # one IPv6 host address: that one only (the host has no other here but ::1, never DNAT'd)
    assert ask(gateway6, one) == f"A6 {gateway6}"
    assert ask("::1", one) == ""
    # another container of the bridge through the host's IPv6 address: hairpin NAT
    assert topo.ask_from(b, gateway6, every) == f"A6 {gateway6}"
    # another host, forwarded: the container sees its real address
    assert topo.ask_from(o, f"{outer6}1", every) == f"A6 {outer6}2"
    assert topo.ask_from(o, f"{outer6}1", one) == ""
    rules = chain_rules(fw.table, "ports")
    assert [r["expr"][-1]["dnat"]["family"] for r in rules] == ["ip", "ip6", "ip6"]

    fw.remove_ports("c1")
    assert ask(gateway6, every) == "" and ask(gateway6, one) == ""
    assert chain_rules(fw.table, "ports") == []


def test_add_ports_again_replaces_and_remove_ports_takes_only_that_container(
        topo: Topology, fw: Firewall, reserve: Callable[[str], int]) -> None:
    net, = free_subnets(1)
    br = topo.bridge("b1", net)
    a = topo.namespace("a", net, 2, br)
    b = topo.namespace("b", net, 3, br)
    topo.serve(a, "A", host(net, 2), 8000)
    topo.serve(b, "B", host(net, 3), 8000)
    p1, p2 = reserve("tcp"), reserve("tcp")
    fw.ensure_network(br, [str(net)], internal=False, icc=True, masquerade=True)
    for _ in range(2):
        fw.add_ports("c1" * 32, br, host(net, 2), [PortMap("tcp", "", p1, 8000)])
    fw.add_ports("c2" * 32, br, host(net, 3), [PortMap("tcp", "", p2, 8000)])
    assert len(chain_rules(fw.table, "ports")) == 2
    assert fw.port_owners() == ["c1" * 32, "c2" * 32]

    fw.remove_ports("c1" * 32)
    fw.remove_ports("c1" * 32)  # again: nothing left to remove is fine
    assert ask("127.0.0.1", p1) == ""
    assert ask("127.0.0.1", p2) == f"B {host(net, 1)}"
    assert fw.port_owners() == ["c2" * 32]
    assert "c1" * 32 not in nft_json("inet", fw.table)


def test_container_cannot_reach_services_on_the_hosts_loopback(
        topo: Topology, fw: Firewall, reserve: Callable[[str], int]) -> None:
    """route_localnet=1 (for published ports at 127.0.0.1) also makes the host accept packets
    to 127.0.0.1 that arrive on the bridge: a container could talk to services that listen on
    the host's loopback only (CVE-2020-8558, kube-proxy's). The attack: the container routes
    127.0.0.1 to its gateway."""
    net, = free_subnets(1)
    br = topo.bridge("b1", net)
    a = topo.namespace("a", net, 2, br)
    port = free_port()
    topo.serve(None, "H", "127.0.0.1", port)  # a loopback-only service of the host
    fw.ensure_network(br, [str(net)], internal=False, icc=True, masquerade=True)
    for step in (["addr", "del", "127.0.0.1/8", "dev", "lo"],  # its own 127/8 is no more local
                 ["route", "add", "127.0.0.1/32", "via", host(net, 1), "dev", "eth0"]):
        subprocess.run(["ip", "-n", a, *step], check=True)
    subprocess.run(["ip", "netns", "exec", a, "sysctl", "-qw",
                    "net.ipv4.conf.eth0.route_localnet=1"], check=True)
    assert topo.ask_from(a, "127.0.0.1", port) == ""
    # while the published way to 127.0.0.1 keeps working
    topo.serve(a, "A", host(net, 2), 8000)
    published = reserve("tcp")
    fw.add_ports("c1", br, host(net, 2), [PortMap("tcp", "", published, 8000)])
    assert ask("127.0.0.1", published) == f"A {host(net, 1)}"


# -- networks ----------------------------------------------------------------------------------

def test_internal_network_cannot_reach_the_host_or_out(
        topo: Topology, fw: Firewall, reserve: Callable[[str], int],
        forwarding: None) -> None:
    net, outside = free_subnets(2)
    br = topo.bridge("b1", net)
    a = topo.namespace("a", net, 2, br)
    c = topo.namespace("c", outside, 2)
    topo.serve(a, "A", host(net, 2), 8000)
    topo.serve(c, "C", host(outside, 2), 8000)
    port = free_port()
    topo.serve(None, "H", host(net, 1), port)
    # without the table both work: what follows is the rules' doing
    assert topo.ask_from(a, host(net, 1), port) == f"H {host(net, 2)}"
    assert topo.ask_from(a, host(outside, 2), 8000) == f"C {host(net, 2)}"

    fw.ensure_network(br, [str(net)], internal=True, icc=True, masquerade=True)
    assert topo.ask_from(a, host(net, 1), port) == ""
    assert topo.ask_from(a, host(outside, 2), 8000) == ""
    assert topo.ask_from(c, host(net, 2), 8000) == ""
    # the host may still open connections to the container (answers are let in)
    assert ask(host(net, 2), 8000) == f"A {host(net, 1)}"
    assert not masquerades_out(fw.table, br)


def test_bridges_are_isolated_and_masquerade_out(topo: Topology, fw: Firewall,
                                                 forwarding: None) -> None:
    n1, n2, outside = free_subnets(3)
    b1, b2 = topo.bridge("b1", n1), topo.bridge("b2", n2)
    a = topo.namespace("a", n1, 2, b1)
    b = topo.namespace("b", n2, 2, b2)
    c = topo.namespace("c", outside, 2)
    topo.serve(a, "A", host(n1, 2), 8000)
    topo.serve(b, "B", host(n2, 2), 8000)
    topo.serve(c, "C", host(outside, 2), 8000)
    assert topo.ask_from(a, host(n2, 2), 8000) == f"B {host(n1, 2)}"
    assert topo.ask_from(a, host(outside, 2), 8000) == f"C {host(n1, 2)}"

    fw.ensure_network(b1, [str(n1)], internal=False, icc=True, masquerade=True)
    fw.ensure_network(b2, [str(n2)], internal=False, icc=True, masquerade=False)
    assert topo.ask_from(a, host(n2, 2), 8000) == ""
    assert topo.ask_from(b, host(n1, 2), 8000) == ""
    # out: masqueraded to the host's address on the way out, unless masquerade is off
    assert topo.ask_from(a, host(outside, 2), 8000) == f"C {host(outside, 1)}"
    assert topo.ask_from(b, host(outside, 2), 8000) == f"C {host(n2, 2)}"
    # from outside, straight to a container's address (no published port): refused
    assert topo.ask_from(c, host(n1, 2), 8000) == ""
    assert fw.bridges() == sorted([b1, b2])
    assert masquerades_out(fw.table, b1) and not masquerades_out(fw.table, b2)
    nat4 = [o["map"] for o in json.loads(nft_json("inet", fw.table))["nftables"]
            if o.get("map", {}).get("name") == "nat4"][0]
    assert sorted(nat4["elem"], key=json.dumps) == sorted(
        [[{"prefix": {"addr": str(n.network_address), "len": 24}}, {"jump": {"target": c}}]
         for n, c in ((n1, "nat-" + b1), (n2, "nat-" + b2))], key=json.dumps)


def test_icc_off_drops_traffic_between_containers_of_the_bridge(
        topo: Topology, fw: Firewall, reserve: Callable[[str], int]) -> None:
    net, = free_subnets(1)
    br = topo.bridge("b1", net)
    a = topo.namespace("a", net, 2, br)
    b = topo.namespace("b", net, 3, br)
    topo.serve(b, "B", host(net, 3), 8000)
    port = free_port()
    topo.serve(None, "H", host(net, 1), port)

    fw.ensure_network(br, [str(net)], internal=False, icc=True, masquerade=True)
    assert topo.ask_from(a, host(net, 3), 8000) == f"B {host(net, 2)}"
    fw.ensure_network(br, [str(net)], internal=False, icc=False, masquerade=True)
    assert topo.ask_from(a, host(net, 3), 8000) == ""
    assert topo.ask_from(a, host(net, 1), port) == f"H {host(net, 2)}"  # the host still is
    fw.ensure_network(br, [str(net)], internal=False, icc=True, masquerade=True)
    assert topo.ask_from(a, host(net, 3), 8000) == f"B {host(net, 2)}"
    assert str(net.network_address) not in nft_json("bridge", fw.table)


def test_ipv6_subnet_is_masqueraded_and_forwarded(topo: Topology, fw: Firewall) -> None:
    net, = free_subnets(1)
    br = topo.bridge("b1", net)
    with open("/proc/sys/net/ipv6/conf/all/forwarding") as f:
        before = f.read().strip()
    try:
        fw.ensure_network(br, [str(net), "fd00:b0a7:1::/64"], internal=False, icc=False,
                          masquerade=True)
        with open("/proc/sys/net/ipv6/conf/all/forwarding") as f:
            assert f.read().strip() == "1"
    finally:  # a host-wide switch: give the machine back as it was
        with open("/proc/sys/net/ipv6/conf/all/forwarding", "w") as f:
            f.write(before)
    assert masquerades_out(fw.table, br)
    assert '"fd00:b0a7:1::"' in nft_json("inet", fw.table)  # in nat6, to nat-BRIDGE
    assert "fd00:b0a7:1::" in nft_json("bridge", fw.table)


def test_remove_network_and_delete_table_leave_nothing(
        topo: Topology, fw: Firewall, reserve: Callable[[str], int]) -> None:
    n1, n2 = free_subnets(2)
    b1, b2 = topo.bridge("b1", n1), topo.bridge("b2", n2)
    fw.ensure_network(b1, [str(n1)], internal=False, icc=False, masquerade=True)
    fw.ensure_network(b2, [str(n2)], internal=True, icc=False, masquerade=True)
    fw.add_ports("c1", b1, host(n1, 2), [PortMap("tcp", "", reserve("tcp"), 80)])

    fw.remove_network(b1)
    fw.remove_network(b1)
    assert fw.bridges() == [b2]
    for family in ("inet", "bridge"):
        text = nft_json(family, fw.table)
        assert b1 not in text and str(n1.network_address) not in text
        assert b2 in text
    fw.remove_ports("c1")
    fw.remove_network(b2)
    assert fw.bridges() == [] and fw.port_owners() == []
    objs = json.loads(nft_json("inet", fw.table))["nftables"]
    assert {o["rule"]["chain"] for o in objs if "rule" in o} <= {
        "loopback", "forward", "input", "prerouting", "output", "postrouting"}
    fw.delete_table()
    fw.delete_table()
    assert not [t for t in tables() if t.endswith(" " + fw.table)]


def subnet_map(table: str, family: str, name: str) -> dict[str, str]:
    """subnet -> chain of a subnet map."""
    objs = json.loads(nft_json(family, table))["nftables"]
    m = [o["map"] for o in objs if o.get("map", {}).get("name") == name][0]
    return {f"{k['prefix']['addr']}/{k['prefix']['len']}": v["jump"]["target"]
            for k, v in m.get("elem", [])}


def test_changed_subnets_and_leftovers_of_a_crash_are_replaced(fw: Firewall,
                                                               if_prefix: str) -> None:
    n1, n2 = free_subnets(2)
    b1, b2 = if_prefix + "b1", if_prefix + "b2"  # rules only: no traffic, no links needed
    fw.ensure_network(b1, [str(n1)], internal=False, icc=False, masquerade=True)
    fw.ensure_network(b1, [str(n2)], internal=False, icc=False, masquerade=True)
    assert subnet_map(fw.table, "inet", "nat4") == {str(n2): "nat-" + b1}
    assert subnet_map(fw.table, "bridge", "icc4") == {str(n2): "icc-" + b1}
    # b1 is a crashed run's network: its subnet went to a new network on b2
    fw.ensure_network(b2, [str(n2)], internal=False, icc=False, masquerade=True)
    assert subnet_map(fw.table, "inet", "nat4") == {str(n2): "nat-" + b2}
    assert subnet_map(fw.table, "bridge", "icc4") == {str(n2): "icc-" + b2}
    fw.remove_network(b1)
    assert fw.bridges() == [b2]
    assert subnet_map(fw.table, "inet", "nat4") == {str(n2): "nat-" + b2}


def test_foreign_forward_drop_is_named(topo: Topology, if_prefix: str,
                                       run_prefix: str) -> None:
    """Docker's iptables FORWARD policy DROP, made in a namespace of the test's own."""
    ns = run_prefix + "d"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    topo.namespaces.append(ns)
    code = ("from barque.network.firewall import Firewall\n"
            "print(Firewall.foreign_forward_drops())")
    run = ["ip", "netns", "exec", ns]
    out = subprocess.run([*run, sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr
    subprocess.run([*run, "nft", f"add table ip {if_prefix}dk; add chain ip {if_prefix}dk "
                    "FORWARD { type filter hook forward priority 0; policy drop; }"], check=True)
    out = subprocess.run([*run, sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == str([f"ip {if_prefix}dk FORWARD"]), out.stderr


CONCURRENT = r"""
import os, sys, time
from barque.network.firewall import Firewall
from barque.network.ports import PortMap
table, bridge, subnet, go, me, port = sys.argv[1:7]
while not os.path.exists(go):
    time.sleep(0.001)
fw = Firewall(table)
for _ in range(10):
    fw.ensure_network(bridge, [subnet], internal=False, icc=False, masquerade=True)
    fw.add_ports(me, bridge, "10.0.0.2", [PortMap("tcp", "", int(port), 80)])
"""


def test_processes_ensuring_the_same_network_at_once(
        topo: Topology, fw: Firewall, tmp_path: os.PathLike,
        reserve: Callable[[str], int]) -> None:
    net, = free_subnets(1)
    br = topo.bridge("b1", net)
    go = os.path.join(str(tmp_path), "go")
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT, fw.table, br, str(net), go,
                               f"c{i}", str(reserve("tcp"))],
                              stderr=subprocess.PIPE, text=True) for i in range(3)]
    time.sleep(0.3)  # all of them importing and waiting: then release them together
    open(go, "w").close()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err

    alone = Firewall(fw.table + "1")
    try:
        alone.ensure_network(br, [str(net)], internal=False, icc=False, masquerade=True)
        for chain in ("forward", "postrouting", "fwd-in-" + br, "fwd-out-" + br, "nat-" + br):
            assert len(chain_rules(fw.table, chain)) == len(chain_rules(alone.table, chain))
    finally:
        alone.delete_table()
    assert len(chain_rules(fw.table, "ports")) == 3
    assert fw.port_owners() == ["c0", "c1", "c2"]


# -- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bridge", ["@bridges", "br*", "a b", "x" * 16, "", "a/b", ".."])
def test_bad_bridge_name_changes_nothing(fw: Firewall, bridge: str) -> None:
    with pytest.raises(ValueError, match="invalid bridge name"):
        fw.ensure_network(bridge, ["10.1.2.0/24"], internal=False, icc=True, masquerade=True)
    assert not [t for t in tables() if t.endswith(" " + fw.table)]


@pytest.mark.parametrize("port, words", [
    (PortMap("icmp", "", 80, 80), "invalid protocol"),
    (PortMap("tcp", "", 0, 80), "invalid host port"),
    (PortMap("tcp", "", 80, 70000), "invalid port"),
    (PortMap("tcp", "::1", 80, 80), "cannot forward"),
    (PortMap("tcp", "::ffff:10.1.2.3", 80, 80), "cannot forward"),
    (PortMap("tcp", "::", 80, 80), "no IPv6 address"),
    (PortMap("tcp", "fd00::1", 80, 80), "no IPv6 address"),
    (PortMap("tcp", "fd00::zz", 80, 80), "invalid host address"),
    (PortMap("tcp", "1.2.3", 80, 80), "invalid host address"),
])
def test_bad_port_changes_nothing(fw: Firewall, port: PortMap, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        fw.add_ports("c1", "lo", "10.1.2.3", [port])
    assert not [t for t in tables() if t.endswith(" " + fw.table)]


def test_bad_table_name() -> None:
    with pytest.raises(ValueError, match="invalid nftables table name"):
        Firewall('x"; flush ruleset')


def test_binding_is_loaded_from_the_system_package() -> None:
    """Our interpreter cannot import Debian's binding; nft loads that one package by path."""
    code = ("import sys\n"
            "try:\n import nftables\nexcept ImportError:\n print('not importable')\n"
            "from barque.network import nft\n"
            "print(nft.list_chains() is not None, sys.modules['nftables'].__file__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[-1].startswith("True /")
    if lines[0] == "not importable":
        assert "/nftables/__init__.py" in lines[-1]


# -- ensure_network on every start: nothing committed when the rules are there ----------------

def _without_handles(text: str) -> list[dict]:
    def strip(value: object) -> object:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "handle"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    objs = json.loads(text)["nftables"] if text else []
    return [strip(o) for o in objs if "metainfo" not in o]  # type: ignore[misc]


@pytest.mark.parametrize("remembered", [False, True])
def test_ensure_network_again_commits_nothing_and_repairs_any_change(
        if_prefix: str, tmp_path: object, remembered: bool) -> None:
    """The rules found complete are left alone (their handles stay: no flush, no re-add), with
    or without the runroot's memory of them; whatever was taken away or added by hand since,
    even a deleted table (`nft flush ruleset`, a reboot), is put back as it was."""
    table = if_prefix + "_fe"
    f = Firewall(table, str(tmp_path) if remembered else None)
    net, = free_subnets(1)
    br = f"{if_prefix}e0"
    args = (br, [str(net), "fd00:5e::/64"], False, False, True)
    try:
        f.ensure_network(*args)
        made = {fam: nft_json(fam, table) for fam in ("inet", "bridge")}
        f.ensure_network(*args)
        f.ensure_network(*args)
        assert {fam: nft_json(fam, table) for fam in ("inet", "bridge")} == made
        assert os.path.exists(os.path.join(str(tmp_path), f"firewall-{table}.json")) \
            is remembered
        for change in (f"delete table inet {table}", f"delete table bridge {table}",
                       f"flush table inet {table}", f"flush chain inet {table} fwd-in-{br}",
                       f"delete element inet {table} nat4 {{ {net} }}",
                       f"delete element inet {table} fwd_out {{ {br} }}",
                       f"flush chain bridge {table} icc-{br}",
                       f"add rule inet {table} fwd-out-{br} accept",
                       f"add rule inet {table} forward accept"):
            subprocess.run(["nft", change], check=True)
            f.ensure_network(*args)
            for fam in ("inet", "bridge"):
                assert _without_handles(nft_json(fam, table)) == \
                    _without_handles(made[fam]), change
    finally:
        f.delete_table()


def test_a_published_port_does_not_make_the_rules_checked_again(
        if_prefix: str, tmp_path: object) -> None:
    """Port rules are not part of what is remembered: another container's -p does not cost
    the next start a listing (the fingerprint ignores the ports chain's rules)."""
    from barque.network import nft

    table = if_prefix + "_fp"
    f = Firewall(table, str(tmp_path))
    net, = free_subnets(1)
    br = f"{if_prefix}p0"
    try:
        f.ensure_network(br, [str(net)], False, True, True)
        before = nft.fingerprint([("inet", table), ("bridge", table)], ("ports",))
        f.add_ports("c1", "lo", host(net, 2), [PortMap("tcp", "", free_port(), 80)])
        assert nft.fingerprint([("inet", table), ("bridge", table)], ("ports",)) == before
        subprocess.run(["nft", "add", "rule", "inet", table, f"in-{br}", "accept"], check=True)
        assert nft.fingerprint([("inet", table), ("bridge", table)], ("ports",)) != before
    finally:
        f.delete_table()
