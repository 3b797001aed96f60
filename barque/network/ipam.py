"""Address management: which subnet a new network gets, which address an endpoint gets.

Subnets come from Docker's default address pools, skipping those that overlap the host's
routes (a subnet already reachable some other way would cut the host off from it) and this
root's other networks. Addresses: the lowest free one of the IP range (or the subnet), never
the subnet's own address, its broadcast address or the gateway.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterable, Iterator

from barque.network.errors import NetworkError
from barque.structs import dataclass

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NO_MORE_SUBNETS = "all predefined address pools have been fully subnetted"


@dataclass(frozen=True)
class Subnet:
    network: IPNetwork
    gateway: IPAddress | None
    ip_range: IPNetwork | None = None

    @property
    def version(self) -> int:
        return self.network.version

    def contains(self, address: IPAddress) -> bool:
        """Docker's IpamConf.Contains: a static address must lie in the range if there is one."""
        return address in (self.ip_range or self.network)


def subnet_of(config: dict[str, Any]) -> Subnet:
    """A Subnet from one of Docker's IPAM Config entries (already validated)."""
    gateway = config.get("Gateway")
    ip_range = config.get("IPRange")
    return Subnet(ipaddress.ip_network(config["Subnet"]),
                  ipaddress.ip_address(gateway) if gateway else None,
                  ipaddress.ip_network(ip_range) if ip_range else None)


# --- the host's routes -----------------------------------------------------------------------

def host_routes(route4: str = "/proc/net/route",
                route6: str = "/proc/net/ipv6_route") -> list[IPNetwork]:
    """The destinations the host routes somewhere, default routes left out (as Docker)."""
    return [*_routes4(route4), *_routes6(route6)]


def _routes4(path: str) -> Iterator[IPNetwork]:
    try:
        with open(path, encoding="ascii") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            dest = socket.inet_ntoa(struct.pack("<I", int(fields[1], 16)))
            mask = socket.inet_ntoa(struct.pack("<I", int(fields[7], 16)))
            route = ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)
        except (ValueError, struct.error):
            continue
        if route.prefixlen:
            yield route


def _routes6(path: str) -> Iterator[IPNetwork]:
    try:
        with open(path, encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return
    for line in lines:
        fields = line.split()
        if len(fields) < 2 or len(fields[0]) != 32:
            continue
        try:
            dest = ipaddress.IPv6Address(bytes.fromhex(fields[0]))
            route = ipaddress.IPv6Network(f"{dest}/{int(fields[1], 16)}", strict=False)
        except ValueError:
            continue
        if route.prefixlen and not route.is_multicast and not route.is_link_local:
            yield route


# --- subnets ---------------------------------------------------------------------------------

def overlaps(subnet: IPNetwork, others: Iterable[IPNetwork]) -> bool:
    return any(other.version == subnet.version and subnet.overlaps(other)
               for other in others)


def choose_subnet(pools: list[tuple[str, int]], version: int,
                  taken: list[IPNetwork]) -> IPNetwork:
    """The first subnet of the pools (in order) of that IP version overlapping nothing taken."""
    for base, size in pools:
        pool = ipaddress.ip_network(base)
        if pool.version != version:
            continue
        for candidate in pool.subnets(new_prefix=size):
            if not overlaps(candidate, taken):
                return candidate
    raise NetworkError(NO_MORE_SUBNETS, 500)


def first_host(subnet: IPNetwork) -> IPAddress:
    """Docker's default gateway: the subnet's first address after its own."""
    if subnet.num_addresses < 2:
        return subnet.network_address
    return subnet.network_address + 1


# --- addresses -------------------------------------------------------------------------------

def reserved(subnet: Subnet) -> set[IPAddress]:
    """Never handed to a container: the subnet's own address, its broadcast (IPv4) and the
    gateway."""
    found: set[IPAddress] = {subnet.network.network_address}
    if subnet.version == 4 and subnet.network.prefixlen < 31:
        found.add(subnet.network.broadcast_address)
    if subnet.gateway is not None:
        found.add(subnet.gateway)
    return found


def lowest_free(subnet: Subnet, used: set[IPAddress]) -> IPAddress | None:
    """The lowest address of the range (else the subnet) that is neither used nor reserved."""
    pool = subnet.ip_range or subnet.network
    skip = used | reserved(subnet)
    start, end = int(pool.network_address), int(pool.broadcast_address)
    value = start
    # At most len(skip) + 1 steps: every step past the first lands on a skipped address.
    while value <= end:
        address = ipaddress.ip_address(value) if subnet.version == 4 else \
            ipaddress.IPv6Address(value)
        if address not in skip:
            return address
        value += 1
    return None


def docker_mac(ipv4: str) -> str:
    """Docker's MAC for an address: 02:42 then the IPv4 address's four bytes."""
    packed = ipaddress.IPv4Address(ipv4).packed
    return "02:42:" + ":".join(f"{b:02x}" for b in packed)
