"""barque.network.links: bridges and veth pairs on real kernel objects, checked with `ip -j`,
traffic only between the host and the test's own namespaces."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from barque.network import links, netns
from tests.support.netns import delete_links, free_subnets, ip, link_gone, netns_dir
from tests.support.tools import require

pytestmark = pytest.mark.root


@dataclass
class Net:
    bridge: str
    v4: ipaddress.IPv4Network
    v6: ipaddress.IPv6Network
    nsdir: str
    made: list[str]

    def gw(self, version: int = 4) -> str:
        return str((self.v4 if version == 4 else self.v6)[1])

    def addr(self, n: int, version: int = 4) -> str:
        return str((self.v4 if version == 4 else self.v6)[n])

    def cidr(self, n: int, version: int = 4) -> str:
        net = self.v4 if version == 4 else self.v6
        return f"{net[n]}/{net.prefixlen}"

    def veth(self, n: int) -> str:
        name = f"{self.bridge[:-1]}v{n}"
        self.made.append(name)
        return name

    def ns(self, name: str) -> str:
        path = os.path.join(self.nsdir, name)
        netns.create(path)
        return path


@pytest.fixture
def net(if_prefix: str, run_prefix: str) -> Iterator[Net]:
    require("ip", "nsenter")
    v4, v6 = free_subnets()
    bridge = f"{if_prefix}b"
    with netns_dir(run_prefix) as nsdir:
        n = Net(bridge, v4, v6, nsdir, [bridge])
        try:
            yield n
        finally:
            delete_links(*n.made)
    assert all(link_gone(name) for name in n.made)


def _bridge_up(net: Net, ipv6: bool = True) -> None:
    addrs = [net.cidr(1)] + ([net.cidr(1, 6)] if ipv6 else [])
    links.ensure_bridge(net.bridge, addrs)


def _addrs(info: dict, family: str) -> set[str]:
    return {f"{a['local']}/{a['prefixlen']}" for a in info["addr_info"]
            if a["family"] == family and a.get("scope") == "global"}


def test_ensure_bridge_makes_an_up_bridge_with_its_addresses(net: Net) -> None:
    _bridge_up(net)
    [info] = ip("-d", "addr", "show", "dev", net.bridge)
    assert info["linkinfo"]["info_kind"] == "bridge"
    assert "UP" in info["flags"]
    assert info["mtu"] == 1500
    assert _addrs(info, "inet") == {net.cidr(1)}
    assert _addrs(info, "inet6") == {net.cidr(1, 6)}
    assert not any("tentative" in a for a in info["addr_info"] if a.get("scope") == "global")
    mac = info["address"]
    # Again: nothing changes, nothing fails; a second address is added.
    links.ensure_bridge(net.bridge, [net.cidr(1), net.cidr(1, 6), "198.51.100.1/32"])
    [info] = ip("addr", "show", "dev", net.bridge)
    assert _addrs(info, "inet") == {net.cidr(1), "198.51.100.1/32"}
    assert info["address"] == mac
    # Brought back up if someone took it down.
    subprocess.run(["ip", "link", "set", net.bridge, "down"], check=True)
    links.ensure_bridge(net.bridge, [net.cidr(1)])
    assert "UP" in ip("link", "show", "dev", net.bridge)[0]["flags"]


def test_ensure_bridge_refuses_a_link_that_is_not_a_bridge(net: Net) -> None:
    peer = net.veth(1)
    subprocess.run(["ip", "link", "add", net.bridge, "type", "veth", "peer", "name", peer],
                   check=True)
    with pytest.raises(OSError, match="not a bridge"):
        links.ensure_bridge(net.bridge, [net.cidr(1)])
    assert ip("addr", "show", "dev", net.bridge)[0]["addr_info"] == []


def test_ensure_bridge_from_many_processes_at_once(net: Net) -> None:
    # pyroute2 imported first, then all released together by closing a pipe.
    code = ("import sys, pyroute2; from barque.network import links; sys.stdin.read(); "
            "links.ensure_bridge(sys.argv[1], sys.argv[2:])")
    read, write = os.pipe()
    procs = [subprocess.Popen([sys.executable, "-c", code, net.bridge, net.cidr(1),
                               net.cidr(1, 6)], stdin=read) for _ in range(6)]
    os.close(read)
    time.sleep(1.0)  # let them all import
    os.close(write)
    assert [p.wait(timeout=60) for p in procs] == [0] * 6
    [info] = ip("addr", "show", "dev", net.bridge)
    assert _addrs(info, "inet") == {net.cidr(1)}
    assert _addrs(info, "inet6") == {net.cidr(1, 6)}


def test_delete_bridge_and_link_missing_is_fine(net: Net) -> None:
    _bridge_up(net)
    assert links.link_exists(net.bridge)
    links.delete_bridge(net.bridge)
    assert not links.link_exists(net.bridge) and link_gone(net.bridge)
    links.delete_bridge(net.bridge)
    links.delete_link(net.bridge)


def _assert_container_end(net: Net, path: str, host: str, mac: str) -> None:
    """The pair as add_veth makes it: the host end on the bridge, up, MTU 1400; eth0 inside
    with `mac`, both stacks' addresses (no DAD) and default routes."""
    [h] = ip("-d", "link", "show", "dev", host)
    assert h["linkinfo"]["info_kind"] == "veth"
    assert h["master"] == net.bridge
    assert "UP" in h["flags"] and h["mtu"] == 1400
    inside = {link["ifname"]: link for link in ip("addr", "show", netns=path)}
    assert set(inside) == {"lo", "eth0"}
    eth0 = inside["eth0"]
    assert eth0["address"] == mac and eth0["mtu"] == 1400
    assert "UP" in eth0["flags"] and eth0["operstate"] == "UP"
    assert _addrs(eth0, "inet") == {net.cidr(2)}
    assert _addrs(eth0, "inet6") == {net.cidr(2, 6)}
    assert not any("tentative" in a for a in eth0["addr_info"])  # no DAD, link-local too
    [r4] = ip("-4", "route", "show", "default", netns=path)
    assert (r4["gateway"], r4["dev"]) == (net.gw(), "eth0")
    [r6] = ip("-6", "route", "show", "default", netns=path)
    assert (r6["gateway"], r6["dev"]) == (net.gw(6), "eth0")


def test_add_veth_configures_both_ends(net: Net) -> None:
    _bridge_up(net)
    path, host = net.ns("c1"), net.veth(1)
    mac = "02:42:c6:12:00:02"
    links.add_veth(path, net.bridge, host, "eth0", [net.cidr(2), net.cidr(2, 6)],
                   [net.gw(), net.gw(6)], mac, mtu=1400)
    _assert_container_end(net, path, host, mac)


def test_add_veth_without_gateways_or_mac(net: Net) -> None:
    # --internal: no route out; the kernel picks the MAC.
    _bridge_up(net, ipv6=False)
    path, host = net.ns("c1"), net.veth(1)
    links.add_veth(path, net.bridge, host, "eth1", [f"{net.addr(3)}/255.255.255.0"], [], None)
    assert ip("route", "show", "default", netns=path) == []
    [eth1] = ip("addr", "show", "dev", "eth1", netns=path)
    assert _addrs(eth1, "inet") == {net.cidr(3)}  # a netmask is a prefix length


def _serve_inside(path: str, family: int, address: str) -> tuple[socket.socket, threading.Thread,
                                                                  list[bytes]]:
    """A listener created inside the namespace (by this thread, while it is in there), and a
    thread that answers one connection."""
    with netns.entered(path):
        server = socket.socket(family, socket.SOCK_STREAM)
    server.bind((address, 0))
    server.listen(1)
    server.settimeout(10)
    got: list[bytes] = []

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            got.append(conn.recv(100))
            conn.sendall(b"pong")

    t = threading.Thread(target=answer)
    t.start()
    return server, t, got


@pytest.mark.parametrize("version", [4, 6])
def test_traffic_flows_from_the_host_to_the_namespace(net: Net, version: int) -> None:
    _bridge_up(net)
    path, host = net.ns("c1"), net.veth(1)
    links.add_veth(path, net.bridge, host, "eth0", [net.cidr(2), net.cidr(2, 6)],
                   [net.gw(), net.gw(6)], None)
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    server, thread, got = _serve_inside(path, family, net.addr(2, version))
    try:
        with socket.create_connection((net.addr(2, version), server.getsockname()[1]),
                                      timeout=10) as client:
            client.sendall(b"ping")
            assert client.recv(100) == b"pong"
    finally:
        thread.join(10)
        server.close()
    assert got == [b"ping"]


def test_two_namespaces_on_one_bridge_reach_each_other(net: Net) -> None:
    _bridge_up(net, ipv6=False)
    a, b = net.ns("a"), net.ns("b")
    links.add_veth(a, net.bridge, net.veth(1), "eth0", [net.cidr(2)], [net.gw()], None)
    links.add_veth(b, net.bridge, net.veth(2), "eth0", [net.cidr(3)], [net.gw()], None)
    server, thread, got = _serve_inside(b, socket.AF_INET, net.addr(3))
    try:
        with netns.entered(a):
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with client:
            client.settimeout(10)
            client.connect((net.addr(3), server.getsockname()[1]))
            client.sendall(b"ping")
            assert client.recv(100) == b"pong"
    finally:
        thread.join(10)
        server.close()


def _assert_nothing_left(net: Net, path: str, host: str) -> None:
    assert link_gone(host)
    assert [link["ifname"] for link in ip("link", "show", netns=path)] == ["lo"]


def test_add_veth_failing_late_leaves_nothing(net: Net) -> None:
    # The route fails (gateway outside every subnet of the link) after the pair and its
    # addresses exist.
    _bridge_up(net, ipv6=False)
    path, host = net.ns("c1"), net.veth(1)
    with pytest.raises(OSError, match="default route via 203.0.113.1"):
        links.add_veth(path, net.bridge, host, "eth0", [net.cidr(2)], ["203.0.113.1"], None)
    _assert_nothing_left(net, path, host)


def test_add_veth_failing_early_leaves_nothing(net: Net) -> None:
    _bridge_up(net, ipv6=False)
    path, host = net.ns("c1"), net.veth(1)
    # A multicast MAC: the kernel refuses the pair.
    with pytest.raises(OSError):
        links.add_veth(path, net.bridge, host, "eth0", [net.cidr(2)], [], "01:00:5e:00:00:01")
    _assert_nothing_left(net, path, host)
    # Bad input: refused before anything is made.
    for addresses, gateways, mac in (([f"{net.addr(2)}/40"], [], None),
                                     ([net.cidr(2)], ["gw"], None),
                                     ([net.cidr(2)], [], "02:42:zz:00:00:01")):
        with pytest.raises(ValueError):
            links.add_veth(path, net.bridge, host, "eth0", addresses, gateways, mac)
        _assert_nothing_left(net, path, host)
    for bad in ("", "x" * 16, "..", "a/b", "a:b", "a b", "a\0"):
        with pytest.raises(ValueError, match="invalid interface name"):
            links.add_veth(path, net.bridge, host, bad, [net.cidr(2)], [], None)
        with pytest.raises(ValueError, match="invalid interface name"):
            links.ensure_bridge(bad, [])
    _assert_nothing_left(net, path, host)
    # An address the kernel refuses (the netns has IPv6 off) after the pair exists.
    with netns.entered(path):
        with open("/proc/sys/net/ipv6/conf/default/disable_ipv6", "w") as f:
            f.write("1")
    with pytest.raises(OSError, match="add address"):
        links.add_veth(path, net.bridge, host, "eth0", [net.cidr(2), net.cidr(2, 6)], [], None)
    _assert_nothing_left(net, path, host)
    with netns.entered(path):
        with open("/proc/sys/net/ipv6/conf/default/disable_ipv6", "w") as f:
            f.write("0")
    # The name is taken inside the namespace.
    links.add_veth(path, net.bridge, host, "eth0", [net.cidr(2)], [], None)
    other = net.veth(2)
    with pytest.raises(OSError):
        links.add_veth(path, net.bridge, other, "eth0", [net.cidr(3)], [], None)
    assert link_gone(other)
    # The host name is taken: the existing pair is not ours to delete.
    other_path = net.ns("c2")
    with pytest.raises(OSError):
        links.add_veth(other_path, net.bridge, host, "eth0", [net.cidr(3)], [], None)
    assert not link_gone(host)
    _assert_nothing_left(net, other_path, "no-such-link")
    # No such bridge.
    with pytest.raises(OSError, match="not found"):
        links.add_veth(other_path, net.bridge + "x", other, "eth0", [net.cidr(3)], [], None)
    _assert_nothing_left(net, other_path, other)


def test_removing_the_namespace_removes_the_pair(net: Net) -> None:
    _bridge_up(net, ipv6=False)
    path, host = net.ns("c1"), net.veth(1)
    links.add_veth(path, net.bridge, host, "eth0", [net.cidr(2)], [net.gw()], None)
    netns.remove(path)
    deadline = time.monotonic() + 10  # the kernel frees a namespace asynchronously
    while not link_gone(host) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert link_gone(host)


def test_delete_link_takes_the_peer_along(net: Net) -> None:
    _bridge_up(net, ipv6=False)
    path, host = net.ns("c1"), net.veth(1)
    links.add_veth(path, net.bridge, host, "eth0", [net.cidr(2)], [], None)
    links.delete_link(host)
    _assert_nothing_left(net, path, host)
    links.delete_link(host)  # missing: fine


def test_importing_links_does_not_import_pyroute2() -> None:
    code = ("import sys; from barque.network import links, netns; "
            "links.link_exists('lo'); assert 'pyroute2' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- attach: a start's bridge and veth in one call (one agent round trip) ----------------------

def test_attach_makes_the_bridge_and_configures_both_ends(net: Net) -> None:
    path, host = net.ns("c1"), net.veth(1)
    mac = "02:42:c6:12:00:02"
    links.attach(path, net.bridge, [net.cidr(1), net.cidr(1, 6)], host, "eth0",
                 [net.cidr(2), net.cidr(2, 6)], [net.gw(), net.gw(6)], mac, mtu=1400)
    [b] = ip("-d", "addr", "show", "dev", net.bridge)
    assert b["linkinfo"]["info_kind"] == "bridge" and "UP" in b["flags"]
    assert _addrs(b, "inet") == {net.cidr(1)} and _addrs(b, "inet6") == {net.cidr(1, 6)}
    _assert_container_end(net, path, host, mac)
    with open(f"/sys/class/net/{host}/brport/hairpin_mode") as f:
        assert f.read().strip() == "1"
    [eth0] = ip("addr", "show", "dev", "eth0", netns=path)
    assert any(a.get("broadcast") == str(net.v4.broadcast_address) for a in eth0["addr_info"])
    # Once more into a new namespace, the bridge down meanwhile: it comes back up, and the
    # previous run's veth of that name goes (its namespace still there).
    subprocess.run(["ip", "link", "set", net.bridge, "down"], check=True)
    again = net.ns("c2")
    links.attach(again, net.bridge, [net.cidr(1)], host, "eth0", [net.cidr(3)], [net.gw()],
                 None)
    assert "UP" in ip("link", "show", "dev", net.bridge)[0]["flags"]
    assert [link["ifname"] for link in ip("link", "show", netns=path)] == ["lo"]
    assert [link["ifname"] for link in ip("link", "show", netns=again)] == ["lo", "eth0"]


def test_attach_failing_late_leaves_nothing_and_keeps_links_words(net: Net) -> None:
    _bridge_up(net, ipv6=False)
    path, host = net.ns("c1"), net.veth(1)
    with pytest.raises(OSError, match="default route via 203.0.113.1: Network is unreachable"):
        links.attach(path, net.bridge, [net.cidr(1)], host, "eth0", [net.cidr(2)],
                     ["203.0.113.1"], None)
    _assert_nothing_left(net, path, host)
    with pytest.raises(FileExistsError, match="exists and is not a bridge"):
        links.attach(path, "lo", [], host, "eth0", [net.cidr(2)], [], None)
    with pytest.raises(ValueError):
        links.attach(path, net.bridge, [], host, "eth0", ["not-an-address"], [], None)
    _assert_nothing_left(net, path, host)
