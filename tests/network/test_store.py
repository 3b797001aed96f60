"""The network tables (barque/network/store.py) on a real state database: Docker's rules and
words, and addresses that concurrent `barque` processes never hand out twice."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from barque.network.config import DaemonNetConfig
from barque.network.errors import NetworkError
from barque.network.store import NetworkStore, veth_name
from barque.storage import db

POOLS = [("10.213.0.0/16", 24)]  # far from this host's routes, and from Docker's pools


@pytest.fixture
def root(tmp_path: os.PathLike) -> str:
    return str(tmp_path)


@pytest.fixture
def conn(root: str) -> Iterator[sqlite3.Connection]:
    c = db.connect(root)
    yield c
    c.close()


@pytest.fixture
def store(conn: sqlite3.Connection) -> NetworkStore:
    return NetworkStore(conn)


def cid(n: int) -> str:
    return f"{n:064x}"


def add_container(conn: sqlite3.Connection, n: int, name: str) -> str:
    with db.transaction(conn):
        conn.execute("INSERT INTO containers (id, name, created, image, image_id, config, "
                     "host_config, mounts, state) VALUES (?, ?, '', '', '', '{}', '{}', '[]', "
                     "'{}')", (cid(n), name))
    return cid(n)


@contextmanager
def refused(words: str, status: int | None = None) -> Iterator[None]:
    """The block raises a NetworkError whose message is exactly `words`."""
    with pytest.raises(NetworkError) as info:
        yield
    assert str(info.value) == words
    if status is not None:
        assert info.value.status == status


def test_create_chooses_subnets_in_order(store: NetworkStore) -> None:
    a = store.create("a", pools=POOLS)
    b = store.create("b", pools=POOLS, labels={"k": "v"}, options={"x": "y"})
    assert a.ipam["Config"] == [{"Subnet": "10.213.0.0/24", "Gateway": "10.213.0.1"}]
    assert b.ipam["Config"] == [{"Subnet": "10.213.1.0/24", "Gateway": "10.213.1.1"}]
    assert len(a.id) == 64 and a.bridge == "br-" + a.id[:12] and a.driver == "bridge"
    assert a.auto_subnets() == ["10.213.0.0/24"]
    assert store.get("b") == b and store.get(b.id) == b and store.get(b.id[:5]) == b
    assert (b.labels, b.options) == ({"k": "v"}, {"x": "y"})
    assert [n.name for n in store.all()] == ["a", "b"]
    assert a.icc and a.masquerade and not a.internal


def test_create_as_given(store: NetworkStore) -> None:
    n = store.create("given", subnets=[{"Subnet": "10.214.0.0/16", "IPRange": "10.214.7.0/24"},
                                       {"Subnet": "fd99:1::/64", "Gateway": "fd99:1::fe"}],
                     internal=True, options={"com.docker.network.bridge.enable_icc": "false"})
    assert n.ipv6 and n.internal and not n.icc and not n.masquerade and n.auto_subnets() == []
    assert n.ipam["Config"] == [
        {"Subnet": "10.214.0.0/16", "IPRange": "10.214.7.0/24", "Gateway": "10.214.7.0"},
        {"Subnet": "fd99:1::/64", "Gateway": "fd99:1::fe"}]
    [v4, v6] = n.subnets()
    assert str(v4.ip_range) == "10.214.7.0/24" and str(v6.gateway) == "fd99:1::fe"


def test_ipv6_network_gets_both_subnets_chosen(store: NetworkStore) -> None:
    n = store.create("six", ipv6=True, pools=[*POOLS, ("fd42:4242:4242::/48", 64)])
    assert [c["Subnet"] for c in n.ipam["Config"]] == ["10.213.0.0/24", "fd42:4242:4242::/64"]
    ep = store.add_endpoint(cid(1), n.id)
    ep = store.allocate(cid(1), n.id)
    assert (ep.ipv4, ep.ipv6) == ("10.213.0.2", "fd42:4242:4242::2")


def test_bad_requests_change_nothing(store: NetworkStore) -> None:
    taken = store.create("taken", subnets=[{"Subnet": "10.215.0.0/16"}])
    overlap = "invalid pool request: Pool overlaps with other one on this address space"
    with refused(overlap, 403):
        store.create("x", subnets=[{"Subnet": "10.215.3.0/24"}])
    with refused(overlap, 403):
        store.create("x", subnets=[{"Subnet": "10.0.0.0/8"}])
    with refused("network with name taken already exists", 409):
        store.create("taken", pools=POOLS)
    with refused("invalid network config:\n* invalid gateway 10.1.0.1: parent subnet "
                 "10.216.0.0/16 doesn't contain this address", 400):
        store.create("x", subnets=[{"Subnet": "10.216.0.0/16", "Gateway": "10.1.0.1"}])
    with refused("invalid network config:\n* invalid subnet 10.216.0.1/16: it should be "
                 "10.216.0.0/16\n* invalid ip-range 10.9.0.0/24: parent subnet 10.216.0.0/16 "
                 "doesn't contain ip-range"):
        store.create("x", subnets=[{"Subnet": "10.216.0.1/16", "IPRange": "10.9.0.0/24"}])
    with refused("invalid network config:\n* invalid subnet nonsense: invalid CIDR block "
                 "notation"):
        store.create("x", subnets=[{"Subnet": "nonsense"}])
    with refused("invalid network config:\n* invalid gateway fd00::1: parent subnet is an "
                 "IPv4 block"):
        store.create("x", subnets=[{"Subnet": "10.216.0.0/16", "Gateway": "fd00::1"}])
    with pytest.raises(NetworkError, match=f"conflicts with network {taken.id} "
                       rf"\({taken.bridge}\): networks have same bridge name"):
        store.create("x", pools=POOLS, options={"com.docker.network.bridge.name": taken.bridge})
    with pytest.raises(NetworkError, match="already in use on the host"):
        store.create("x", pools=POOLS, options={"com.docker.network.bridge.name": "lo"})
    with pytest.raises(NetworkError, match="invalid bridge name"):
        store.create("x", pools=POOLS, options={"com.docker.network.bridge.name": "a" * 16})
    assert [n.name for n in store.all()] == ["taken"]
    with refused("network nope not found", 404):
        store.get("nope")


def test_default_bridge_made_once(store: NetworkStore) -> None:
    cfg = DaemonNetConfig(bridge="qtestb0", bip="10.217.3.1/24", pools=POOLS, icc=False,
                          nft_table="qtest")
    bridge = store.default_bridge(cfg)
    assert bridge.name == "bridge" and bridge.bridge == "qtestb0" and not bridge.icc
    assert bridge.ipam["Config"] == [{"Subnet": "10.217.3.0/24", "Gateway": "10.217.3.1"}]
    assert bridge.options["com.docker.network.bridge.name"] == "qtestb0"
    assert store.default_bridge(cfg) == bridge and len(store.all()) == 1
    other = store.create("after", pools=POOLS)
    assert other.ipam["Config"][0]["Subnet"] == "10.213.0.0/24"
    cfg.bip = None
    assert store.default_bridge(cfg) == bridge


def test_endpoints_and_allocation(conn: sqlite3.Connection, store: NetworkStore) -> None:
    n = store.create("n", subnets=[{"Subnet": "10.218.0.0/24"}])
    a, b, c = (add_container(conn, i, f"c{i}") for i in (1, 2, 3))
    ea = store.add_endpoint(a, n.id, ["web"], {}, None, [])
    assert (ea.position, ea.aliases, ea.endpoint_id, ea.ipv4) == (0, ["web"], None, None)
    store.add_endpoint(b, n.id, [], {"IPv4Address": "10.218.0.2"})
    store.add_endpoint(c, n.id, [], {}, "02:00:00:00:00:07")
    with refused("endpoint with name c1 already exists in network n", 403):
        store.add_endpoint(a, n.id)
    got_b = store.allocate(b, n.id)  # the static one first
    got_a = store.allocate(a, n.id)
    assert (got_b.ipv4, got_a.ipv4) == ("10.218.0.2", "10.218.0.3")
    assert got_a.mac == "02:42:0a:da:00:03" and len(got_a.endpoint_id or "") == 64
    assert got_a.veth == veth_name(a, n.id) and len(got_a.veth) == 11
    assert store.allocate(a, n.id) == got_a  # already allocated: kept
    got_c = store.allocate(c, n.id)
    assert (got_c.ipv4, got_c.mac) == ("10.218.0.4", "02:00:00:00:00:07")
    store.release(a)
    assert store.endpoints_of(a)[0].ipv4 is None
    assert store.allocate(a, n.id).ipv4 == "10.218.0.3"  # the lowest free again
    store.release(a, n.id)
    store.release(b)
    assert [e.ipv4 for e in store.endpoints_on(n.id)] == [None, None, "10.218.0.4"]
    store.remove_endpoint(a)
    assert store.endpoints_of(a) == [] and len(store.endpoints_on(n.id)) == 2


def test_positions_follow_connect_order(store: NetworkStore) -> None:
    nets = [store.create(f"n{i}", pools=POOLS) for i in range(3)]
    for net in nets:
        store.add_endpoint(cid(9), net.id)
    store.remove_endpoint(cid(9), nets[1].id)
    store.add_endpoint(cid(9), nets[1].id)
    assert [(e.network_id, e.position) for e in store.endpoints_of(cid(9))] == \
        [(nets[0].id, 0), (nets[2].id, 2), (nets[1].id, 3)]


def test_static_addresses_refused_as_docker(store: NetworkStore) -> None:
    n = store.create("n", subnets=[{"Subnet": "10.219.0.0/24", "IPRange": "10.219.0.64/26"}])
    auto = store.create("auto", pools=POOLS)
    cfg = DaemonNetConfig(bridge="qtestb1", bip=None, pools=POOLS)
    bridge = store.default_bridge(cfg)
    with refused("invalid endpoint settings:\n* no configured subnet or ip-range contain the "
                 "IP address 10.219.0.5", 400):
        store.add_endpoint(cid(1), n.id, [], {"IPv4Address": "10.219.0.5"})
    with refused("invalid endpoint settings:\n* user specified IP address is supported only "
                 "when connecting to networks with user configured subnets"):
        store.add_endpoint(cid(1), auto.id, [], {"IPv4Address": "10.213.0.9"})
    with refused("invalid endpoint settings:\n* user specified IP address is supported on "
                 "user defined networks only\n* network-scoped alias is supported only for "
                 "containers in user defined networks"):
        store.add_endpoint(cid(1), bridge.id, ["x"], {"IPv4Address": "10.213.1.9"})
    with refused("invalid endpoint settings:\n* invalid IPv4 address: 300.1.1.1"):
        store.add_endpoint(cid(1), n.id, [], {"IPv4Address": "300.1.1.1"})
    with refused("invalid MAC address 02:42"):
        store.add_endpoint(cid(1), n.id, [], {}, "02:42")
    assert store.endpoints_of(cid(1)) == []
    store.add_endpoint(cid(1), n.id, [], {"IPv4Address": "10.219.0.65"})
    store.add_endpoint(cid(2), n.id, [], {"IPv4Address": "10.219.0.65"})
    store.add_endpoint(cid(3), n.id)
    assert store.allocate(cid(1), n.id).ipv4 == "10.219.0.65"
    with refused("Address already in use", 403):
        store.allocate(cid(2), n.id)
    assert store.endpoint(cid(2), n.id).ipv4 is None
    assert store.allocate(cid(3), n.id).ipv4 == "10.219.0.66"  # .64 is the gateway


def test_exhaustion(store: NetworkStore) -> None:
    n = store.create("tiny", subnets=[{"Subnet": "10.220.0.0/29"}])
    for i in range(6):
        store.add_endpoint(cid(i), n.id)
    got = [store.allocate(cid(i), n.id).ipv4 for i in range(5)]
    assert got == [f"10.220.0.{i}" for i in range(2, 7)]
    with refused(f"no available IPv4 addresses on this network's address pools: tiny ({n.id})"):
        store.allocate(cid(5), n.id)
    store.release(cid(2))
    assert store.allocate(cid(5), n.id).ipv4 == "10.220.0.4"


def test_remove(conn: sqlite3.Connection, store: NetworkStore) -> None:
    n = store.create("busy", pools=POOLS)
    running, stopped = add_container(conn, 1, "web"), add_container(conn, 2, "idle")
    store.add_endpoint(running, n.id)
    store.add_endpoint(stopped, n.id)
    ep = store.allocate(running, n.id)
    assert ep.endpoint_id
    with refused(f'error while removing network: network busy has active endpoints '
                 f'(name:"web" id:"{ep.endpoint_id[:12]}")', 403):
        store.remove(n.id)
    assert store.get("busy") == n and len(store.endpoints_on(n.id)) == 2
    store.release(running)
    assert store.remove(n.id) == n
    assert store.find("busy") is None and store.endpoints_of(stopped) == []


def test_published_ports(store: NetworkStore) -> None:
    from barque.network.ports import PortMap

    store.publish(cid(1), [PortMap("tcp", "", 8080, 80), PortMap("udp", "127.0.0.1", 53, 53)])
    assert store.published(cid(1)) == [PortMap("udp", "127.0.0.1", 53, 53),
                                        PortMap("tcp", "", 8080, 80)]
    with refused("Bind for 0.0.0.0:8080 failed: port is already allocated", 409):
        store.publish(cid(2), [PortMap("tcp", "", 9090, 90), PortMap("tcp", "", 8080, 80)])
    assert store.published(cid(2)) == [] and len(store.published()) == 2
    store.unpublish(cid(1))
    assert store.published() == []


ALLOCATOR = textwrap.dedent("""
    import json, os, sys, time
    from barque.network.errors import NetworkError
    from barque.network.store import NetworkStore
    from barque.storage import db
    root, network, go, ids = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    store = NetworkStore(db.connect(root))
    while not os.path.exists(go):
        time.sleep(0.001)
    got = {}
    for container in ids:
        try:
            got[container] = store.allocate(container, network).ipv4
        except NetworkError as e:
            got[container] = "error: " + str(e)
    print(json.dumps(got))
""")


def _allocate_in_parallel(root: str, network: str, ids: list[str], processes: int
                          ) -> dict[str, str]:
    go = os.path.join(root, "go")
    chunks = [ids[i::processes] for i in range(processes)]
    procs = [subprocess.Popen([sys.executable, "-c", ALLOCATOR, root, network, go, *chunk],
                              stdout=subprocess.PIPE, text=True) for chunk in chunks]
    time.sleep(0.3)  # every process started and waiting
    open(go, "w").close()
    results: dict[str, str] = {}
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        results.update(json.loads(out))
    return results


def test_parallel_processes_never_share_an_address(root: str, store: NetworkStore) -> None:
    n = store.create("shared", subnets=[{"Subnet": "10.221.0.0/24"}])
    ids = [cid(i) for i in range(48)]
    for container in ids:
        store.add_endpoint(container, n.id)
    results = _allocate_in_parallel(root, n.id, ids, 8)
    addresses = list(results.values())
    assert len(set(addresses)) == len(ids), addresses
    assert set(addresses) == {f"10.221.0.{i}" for i in range(2, 50)}
    assert {e.ipv4 for e in store.endpoints_on(n.id)} == set(addresses)


def test_parallel_processes_exhaust_a_network_cleanly(root: str, store: NetworkStore) -> None:
    n = store.create("small", subnets=[{"Subnet": "10.222.0.0/27"}])  # 29 addresses to give
    ids = [cid(i) for i in range(40)]
    for container in ids:
        store.add_endpoint(container, n.id)
    results = _allocate_in_parallel(root, n.id, ids, 8)
    given = [a for a in results.values() if not a.startswith("error")]
    errors = [a for a in results.values() if a.startswith("error")]
    assert len(given) == len(set(given)) == 29
    assert errors == [f"error: no available IPv4 addresses on this network's address pools: "
                      f"small ({n.id})"] * 11
    assert len([e for e in store.endpoints_on(n.id) if e.ipv4]) == 29
