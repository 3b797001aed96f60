"""Subnet choice, address choice and the daemon's network settings (barque/network/ipam.py,
config.py): pure functions, the host's real route tables read where that is what they do."""

from __future__ import annotations

import ipaddress
import json
import os

import pytest

from barque.network import config, ipam
from barque.network.errors import NetworkError
from barque.network.ipam import Subnet

ROUTE4 = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0002A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
"""
ROUTE6 = (
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000400 00000001 00000000 00200200 lo\n"
    "fd00000000000000000000000000a000 40 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000001 00000000 00000001 br0\n"
    "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0\n"
)


def net(text: str) -> ipam.IPNetwork:
    return ipaddress.ip_network(text)


def addr(text: str) -> ipam.IPAddress:
    return ipaddress.ip_address(text)


def test_host_routes_from_proc_files(tmp_path: os.PathLike) -> None:
    r4, r6 = os.path.join(tmp_path, "route"), os.path.join(tmp_path, "ipv6_route")
    with open(r4, "w") as f:
        f.write(ROUTE4)
    with open(r6, "w") as f:
        f.write(ROUTE6)
    # Default routes and link-local ones are not destinations a subnet could clash with.
    assert ipam.host_routes(r4, r6) == [net("192.168.2.0/24"), net("172.17.0.0/16"),
                                         net("fd00::/64")]
    assert ipam.host_routes(os.path.join(tmp_path, "missing"), r6) == [net("fd00::/64")]


def test_host_routes_of_this_host_include_its_connected_subnets() -> None:
    routes = ipam.host_routes()
    assert all(r.prefixlen for r in routes)
    with open("/proc/net/route") as f:
        lines = f.read().splitlines()[1:]
    assert len([r for r in routes if r.version == 4]) == \
        len([line for line in lines if line.split()[7] != "00000000"])


def test_choose_subnet_skips_what_is_taken_in_pool_order() -> None:
    pools = [("172.17.0.0/16", 16), ("172.18.0.0/15", 16), ("192.168.0.0/16", 20)]
    assert ipam.choose_subnet(pools, 4, []) == net("172.17.0.0/16")
    taken = [net("172.17.5.0/24"), net("172.18.0.0/16")]
    assert ipam.choose_subnet(pools, 4, taken) == net("172.19.0.0/16")
    taken += [net("172.19.0.1/32"), net("192.168.0.0/20")]
    assert ipam.choose_subnet(pools, 4, taken) == net("192.168.16.0/20")
    # A route that covers a whole pool (a /8 of the host's) rules out every subnet of it.
    assert ipam.choose_subnet(pools, 4, [net("172.16.0.0/12")]) == net("192.168.0.0/20")


def test_choose_subnet_exhausted_and_by_version() -> None:
    pools = [("10.10.0.0/23", 24), ("fd12:3456:789a::/48", 64)]
    taken = [net("10.10.0.0/24"), net("10.10.1.0/24")]
    with pytest.raises(NetworkError) as e:
        ipam.choose_subnet(pools, 4, taken)
    assert str(e.value) == "all predefined address pools have been fully subnetted"
    assert ipam.choose_subnet(pools, 6, taken) == net("fd12:3456:789a::/64")
    assert ipam.choose_subnet(pools, 6, [net("fd12:3456:789a::/64")]) == \
        net("fd12:3456:789a:1::/64")


def test_lowest_free_skips_reserved_and_used() -> None:
    subnet = Subnet(net("10.0.0.0/29"), addr("10.0.0.1"))
    assert ipam.reserved(subnet) == {addr("10.0.0.0"), addr("10.0.0.7"), addr("10.0.0.1")}
    assert ipam.lowest_free(subnet, set()) == addr("10.0.0.2")
    used = {addr("10.0.0.2"), addr("10.0.0.4")}
    assert ipam.lowest_free(subnet, used) == addr("10.0.0.3")
    used |= {addr(f"10.0.0.{i}") for i in (3, 5, 6)}
    assert ipam.lowest_free(subnet, used) is None  # .7 is the broadcast address


def test_lowest_free_in_the_ip_range_and_a_gateway_inside_it() -> None:
    subnet = Subnet(net("10.0.0.0/16"), addr("10.0.5.0"), net("10.0.5.0/30"))
    assert ipam.lowest_free(subnet, set()) == addr("10.0.5.1")
    assert ipam.lowest_free(subnet, {addr("10.0.5.1"), addr("10.0.5.2")}) == addr("10.0.5.3")
    assert ipam.lowest_free(subnet, {addr(f"10.0.5.{i}") for i in (1, 2, 3)}) is None
    assert subnet.contains(addr("10.0.5.2")) and not subnet.contains(addr("10.0.6.2"))


def test_lowest_free_ipv6_has_no_broadcast() -> None:
    subnet = Subnet(net("fd00:1::/126"), addr("fd00:1::1"))
    assert ipam.lowest_free(subnet, set()) == addr("fd00:1::2")
    assert ipam.lowest_free(subnet, {addr("fd00:1::2")}) == addr("fd00:1::3")


def test_docker_mac_and_first_host() -> None:
    assert ipam.docker_mac("172.18.0.2") == "02:42:ac:12:00:02"
    assert ipam.first_host(net("172.18.0.0/16")) == addr("172.18.0.1")
    subnet = ipam.subnet_of({"Subnet": "10.1.0.0/24", "Gateway": "10.1.0.9",
                             "IPRange": "10.1.0.128/25"})
    assert subnet == Subnet(net("10.1.0.0/24"), addr("10.1.0.9"), net("10.1.0.128/25"))


def test_config_defaults_per_root(tmp_path: os.PathLike) -> None:
    default = config.load(config.DEFAULT_ROOT) if not os.path.exists(
        os.path.join(config.DEFAULT_ROOT, "daemon.json")) else None
    if default is not None:
        assert (default.bridge, default.nft_table) == ("barque0", "barque")
    root = os.path.join(tmp_path, "root")
    cfg = config.load(root)
    assert cfg.bridge.startswith("bq") and len(cfg.bridge) <= 15 and cfg.bridge != "barque0"
    assert cfg.nft_table.startswith("barque_") and cfg.bip is None and cfg.icc
    assert cfg.pools[:len(config.DEFAULT_POOLS)] == config.DEFAULT_POOLS
    v6 = [p for p in cfg.pools if ipaddress.ip_network(p[0]).version == 6]
    assert len(v6) == 1 and v6[0][1] == 64 and ipaddress.ip_network(v6[0][0]).prefixlen == 48
    assert config.load(root) == cfg  # stable
    assert config.load(os.path.join(tmp_path, "other")).bridge != cfg.bridge


def test_config_from_daemon_json(tmp_path: os.PathLike) -> None:
    root = str(tmp_path)
    with open(os.path.join(root, "daemon.json"), "w") as f:
        json.dump({"bridge": "qtest0", "bip": "10.55.0.1/24", "icc": False,
                   "default-address-pools": [{"base": "10.60.0.0/16", "size": 24}],
                   "nft-table": "qtest_t"}, f)
    cfg = config.load(root)
    assert (cfg.bridge, cfg.bip, cfg.icc, cfg.nft_table) == \
        ("qtest0", "10.55.0.1/24", False, "qtest_t")
    assert cfg.pools[0] == ("10.60.0.0/16", 24) and len(cfg.pools) == 2  # + the IPv6 one


@pytest.mark.parametrize("content", [
    "{not json", '["a list"]', '{"bridge": "a-name-far-too-long"}', '{"bridge": "a/b"}',
    '{"bip": "10.0.0.0/8"}', '{"bip": "nonsense"}', '{"icc": "yes"}',
    '{"default-address-pools": [{"base": "10.0.0.0/16", "size": 8}]}',
    '{"default-address-pools": [{"base": "10.0.0.0/16"}]}', '{"nft-table": "a b"}',
])
def test_config_refuses_a_bad_daemon_json(tmp_path: os.PathLike, content: str) -> None:
    with open(os.path.join(tmp_path, "daemon.json"), "w") as f:
        f.write(content)
    with pytest.raises(NetworkError) as e:
        config.load(str(tmp_path))
    assert "daemon.json" in str(e.value) and e.value.status == 500
