"""Networks, endpoints and published ports in the state database (the `networks`,
`endpoints` and `published_ports` tables), with Docker's rules and words.

Several `barque` processes may use one root at once: whatever reads a table to decide what to
write (a free subnet, a free address, a free name) does both in one BEGIN IMMEDIATE
transaction, so SQLite's write lock orders them; the UNIQUE indexes are the backstop.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sqlite3
import time

from barque import sha256
from barque.network import ipam
from barque.network.errors import NetworkError
from barque.network.ipam import Subnet
from barque.storage import db
from barque.structs import dataclass

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

    from barque.network.config import DaemonNetConfig
    from barque.network.ports import PortMap

__all__ = ["Endpoint", "Network", "NetworkStore", "Subnet"]

DEFAULT_BRIDGE_NAME = "bridge"
OPT_BRIDGE_NAME = "com.docker.network.bridge.name"
OPT_ICC = "com.docker.network.bridge.enable_icc"
OPT_MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade"
AUTO_KEY = "BarqueAuto"  # in the ipam JSON: the subnets Barque chose (not the user)
RETRIES = 5


def _now() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + \
        f".{ns % 1_000_000_000:09d}Z"


def _false(value: str | None) -> bool:
    return str(value).lower() in ("false", "0", "no", "off")


@dataclass
class Network:
    id: str
    name: str
    driver: str
    created: str
    internal: bool
    ipv6: bool
    attachable: bool
    labels: dict[str, str]
    options: dict[str, str]
    ipam: dict[str, Any]
    bridge: str

    def subnets(self) -> list[Subnet]:
        return [ipam.subnet_of(c) for c in self.ipam.get("Config") or []]

    def auto_subnets(self) -> list[str]:
        """The subnets Barque chose, rather than the user."""
        return list(self.ipam.get(AUTO_KEY) or [])

    @property
    def icc(self) -> bool:
        return not _false(self.options.get(OPT_ICC))

    @property
    def masquerade(self) -> bool:
        return not _false(self.options.get(OPT_MASQUERADE)) and not self.internal

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_BRIDGE_NAME


@dataclass
class Endpoint:
    container_id: str
    network_id: str
    position: int
    aliases: list[str]
    ipam_config: dict[str, str]
    mac_config: str | None
    links: list[str]
    endpoint_id: str | None = None
    ipv4: str | None = None
    ipv6: str | None = None
    mac: str | None = None
    veth: str | None = None


def veth_name(container_id: str, network_id: str) -> str:
    """The host end of a container's veth: stable, so a crashed run's is found by name."""
    return "veth" + sha256.hexdigest(f"{container_id}:{network_id}".encode())[:7]


def _network(row: sqlite3.Row) -> Network:
    return Network(row["id"], row["name"], row["driver"], row["created"], bool(row["internal"]),
                   bool(row["ipv6"]), bool(row["attachable"]), json.loads(row["labels"]),
                   json.loads(row["options"]), json.loads(row["ipam"]), row["bridge"])


def _endpoint(row: sqlite3.Row) -> Endpoint:
    return Endpoint(row["container_id"], row["network_id"], row["position"],
                    json.loads(row["aliases"]), json.loads(row["ipam_config"]),
                    row["mac_config"], json.loads(row["links"]), row["endpoint_id"],
                    row["ipv4"], row["ipv6"], row["mac"], row["veth"])


def validate_ipam(configs: list[dict[str, str]]) -> None:
    """Docker's ValidateIPAM: every problem of the IPAM configs, in Docker's words."""
    errors = []
    for config in configs:
        text = config.get("Subnet") or ""
        try:
            subnet = ipaddress.ip_interface(text).network if "/" in text else None
        except ValueError:
            subnet = None
        if subnet is None:
            errors.append(f"invalid subnet {text}: invalid CIDR block notation")
            continue
        if str(ipaddress.ip_interface(text)) != str(subnet):
            errors.append(f"invalid subnet {text}: it should be {subnet}")
        errors += _range_errors(config.get("IPRange") or "", subnet)
        gateway = config.get("Gateway") or ""
        problem = _address_problem(gateway, subnet)
        if problem:
            errors.append(f"invalid gateway {gateway}: {problem}")
    if errors:
        raise NetworkError("invalid network config:\n" +
                           "\n".join("* " + e for e in errors), 400)


def _family(version: int) -> str:
    return f"IPv{version}"


def _range_errors(text: str, subnet: ipam.IPNetwork) -> list[str]:
    if not text:
        return []
    try:
        iface = ipaddress.ip_interface(text) if "/" in text else None
    except ValueError:
        iface = None
    if iface is None:
        return [f"invalid ip-range {text}: invalid CIDR block notation"]
    if iface.version != subnet.version:
        return [f"invalid ip-range {text}: parent subnet is an {_family(subnet.version)} block"]
    errors = []
    if iface.network.prefixlen < subnet.prefixlen:
        errors.append(f"invalid ip-range {text}: CIDR block is bigger than its parent subnet "
                      f"{subnet}")
    if str(iface) != str(iface.network):
        errors.append(f"invalid ip-range {text}: it should be {iface.network}")
    if not iface.network.overlaps(subnet):
        errors.append(f"invalid ip-range {text}: parent subnet {subnet} doesn't contain "
                      "ip-range")
    return errors


def _address_problem(text: str, subnet: ipam.IPNetwork) -> str | None:
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return "invalid address"
    if address.version != subnet.version:
        return f"parent subnet is an {_family(subnet.version)} block"
    if address not in subnet:
        return f"parent subnet {subnet} doesn't contain this address"
    return None


def check_bridge_name(name: str) -> None:
    from barque.network.config import IFNAME_RE

    if not IFNAME_RE.match(name) or name in (".", ".."):
        raise NetworkError(f"invalid bridge name {name!r}: at most 15 letters, digits, "
                           "'.', '-' or '_'", 400)


class NetworkStore:
    """The network tables of one state database connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # --- networks -----------------------------------------------------------------------------

    def all(self) -> list[Network]:
        rows = self.conn.execute("SELECT * FROM networks ORDER BY created, name").fetchall()
        return [_network(r) for r in rows]

    def find(self, ref: str) -> Network | None:
        """By full ID, then name, then unique ID prefix (Docker's FindNetwork); None if none."""
        row = self.conn.execute("SELECT * FROM networks WHERE id = ?", (ref,)).fetchone() or \
            self.conn.execute("SELECT * FROM networks WHERE name = ?", (ref,)).fetchone()
        if row is None and ref and all(c in "0123456789abcdef" for c in ref):
            rows = self.conn.execute("SELECT * FROM networks WHERE substr(id, 1, ?) = ?",
                                     (len(ref), ref)).fetchall()
            if len(rows) > 1:
                raise NetworkError(f"network {ref} is ambiguous ({len(rows)} matches found "
                                   "based on ID prefix)", 400)
            row = rows[0] if rows else None
        return _network(row) if row is not None else None

    def get(self, ref: str) -> Network:
        network = self.find(ref)
        if network is None:
            raise NetworkError(f"network {ref} not found", 404)
        return network

    def create(self, name: str, driver: str = "bridge", subnets: list[dict[str, str]] | None = None,
               internal: bool = False, ipv6: bool = False, attachable: bool = False,
               labels: dict[str, str] | None = None, options: dict[str, str] | None = None,
               pools: list[tuple[str, int]] | None = None) -> Network:
        """A new network. `subnets`: Docker's IPAM Config entries as given ({"Subnet",
        "Gateway"?, "IPRange"?}); an IPv4 subnet (and an IPv6 one with `ipv6`) not given is
        chosen from `pools` (Docker's default address pools when None)."""
        from barque.network.config import DEFAULT_POOLS, DEFAULT_ROOT, ula_pool

        configs = [{k: str(v) for k, v in c.items() if v} for c in subnets or []]
        validate_ipam(configs)
        if any(ipaddress.ip_network(c["Subnet"], strict=False).version == 6 for c in configs):
            ipv6 = True  # an IPv6 subnet given is an IPv6 network
        options = dict(options or {})
        network_id = os.urandom(32).hex()
        bridge = options.get(OPT_BRIDGE_NAME) or "br-" + network_id[:12]
        check_bridge_name(bridge)
        if OPT_BRIDGE_NAME in options and os.path.exists(f"/sys/class/net/{bridge}"):
            # Not ours: `network rm` would delete it with the network.
            raise NetworkError(f"bridge name {bridge} is already in use on the host", 403)
        return self._insert(Network(
            network_id, name, driver, _now(), internal, ipv6, attachable, dict(labels or {}),
            options, {"Driver": "default", "Options": {}, "Config": configs}, bridge),
            pools if pools is not None else [*DEFAULT_POOLS, ula_pool(DEFAULT_ROOT)])

    def _insert(self, network: Network, pools: list[tuple[str, int]]) -> Network:
        """Subnets chosen, overlaps and names checked and the row written, all under the write
        lock: two processes never pick the same subnet or name."""
        with db.transaction(self.conn):
            if self.conn.execute("SELECT 1 FROM networks WHERE name = ?",
                                 (network.name,)).fetchone():
                raise NetworkError(f"network with name {network.name} already exists", 409)
            other = self.conn.execute("SELECT id, bridge FROM networks WHERE bridge = ?",
                                      (network.bridge,)).fetchone()
            if other is not None:
                raise NetworkError(
                    f"cannot create network {network.id} ({network.bridge}): conflicts with "
                    f"network {other['id']} ({other['bridge']}): networks have same bridge "
                    "name", 403)
            self._place_subnets(network, pools)
            self.conn.execute(
                "INSERT INTO networks (id, name, driver, created, internal, ipv6, attachable, "
                "labels, options, ipam, bridge) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (network.id, network.name, network.driver, network.created, network.internal,
                 network.ipv6, network.attachable, json.dumps(network.labels),
                 json.dumps(network.options), json.dumps(network.ipam), network.bridge))
        return network

    def _place_subnets(self, network: Network, pools: list[tuple[str, int]]) -> None:
        taken = [s.network for n in self.all() for s in n.subnets()]
        configs: list[dict[str, str]] = network.ipam["Config"]
        given = [ipaddress.ip_network(c["Subnet"], strict=False) for c in configs]
        for i, subnet in enumerate(given):
            if ipam.overlaps(subnet, taken + given[:i]):
                raise NetworkError("invalid pool request: Pool overlaps with other one on this "
                                   "address space", 403)
        auto = []
        for version in (4, 6) if network.ipv6 else (4,):
            if any(s.version == version for s in given):
                continue
            routes = ipam.host_routes()
            subnet = ipam.choose_subnet(pools, version, taken + given + routes)
            configs.append({"Subnet": str(subnet)})
            auto.append(str(subnet))
        for config in configs:
            config["Subnet"] = str(ipaddress.ip_network(config["Subnet"], strict=False))
            if not config.get("Gateway"):
                config["Gateway"] = str(_default_gateway(config))
        network.ipam["Config"] = [{k: c[k] for k in ("Subnet", "IPRange", "Gateway") if k in c}
                                  for c in sorted(configs, key=_version_of)]
        if auto:
            network.ipam[AUTO_KEY] = auto

    def default_bridge(self, config: DaemonNetConfig) -> Network:
        """The built-in `bridge` network, made from the daemon's settings on first use."""
        found = self.find(DEFAULT_BRIDGE_NAME)
        if found is not None:
            return found
        options = {"com.docker.network.bridge.default_bridge": "true",
                   OPT_ICC: "true" if config.icc else "false", OPT_MASQUERADE: "true",
                   "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                   OPT_BRIDGE_NAME: config.bridge, "com.docker.network.driver.mtu": "1500"}
        configs = []
        if config.bip:
            bip = ipaddress.ip_interface(config.bip)
            configs.append({"Subnet": str(bip.network), "Gateway": str(bip.ip)})
        network = Network(os.urandom(32).hex(), DEFAULT_BRIDGE_NAME, "bridge", _now(), False,
                          False, False, {}, options,
                          {"Driver": "default", "Options": None, "Config": configs},
                          config.bridge)
        try:
            return self._insert(network, config.pools)
        except NetworkError as e:
            if e.status == 409:  # another process made it meanwhile
                return self.get(DEFAULT_BRIDGE_NAME)
            raise

    def remove(self, network_id: str) -> Network:
        """Delete a network no running container is on (the endpoints of stopped ones go with
        it, as Docker's do). The removed network."""
        with db.transaction(self.conn):
            network = self.get(network_id)
            active = self.conn.execute(
                "SELECT e.container_id, e.endpoint_id, c.name FROM endpoints e LEFT JOIN "
                "containers c ON c.id = e.container_id WHERE e.network_id = ? AND "
                "e.endpoint_id IS NOT NULL ORDER BY e.position, c.name", (network.id,)
            ).fetchall()
            if active:
                listed = ", ".join(f'name:"{r["name"] or r["container_id"][:12]}" '
                                   f'id:"{r["endpoint_id"][:12]}"' for r in active)
                raise NetworkError(f"error while removing network: network {network.name} has "
                                   f"active endpoints ({listed})", 403)
            self.conn.execute("DELETE FROM endpoints WHERE network_id = ?", (network.id,))
            self.conn.execute("DELETE FROM networks WHERE id = ?", (network.id,))
        return network

    # --- endpoints ----------------------------------------------------------------------------

    def add_endpoint(self, container_id: str, network_id: str, aliases: list[str] | None = None,
                     ipam_config: dict[str, str] | None = None, mac_config: str | None = None,
                     links: list[str] | None = None) -> Endpoint:
        """The container joins the network (at create or connect): its settings as given,
        checked as Docker checks them; it gets the next position (eth<position>)."""
        network = self.get(network_id)
        ipam_config = {k: v for k, v in (ipam_config or {}).items() if v}
        check_endpoint(network, ipam_config, mac_config, aliases)
        with db.transaction(self.conn):
            if self.conn.execute("SELECT 1 FROM endpoints WHERE container_id = ? AND "
                                 "network_id = ?", (container_id, network.id)).fetchone():
                row = self.conn.execute("SELECT name FROM containers WHERE id = ?",
                                        (container_id,)).fetchone()
                who = row["name"] if row else container_id
                raise NetworkError(f"endpoint with name {who} already exists in network "
                                   f"{network.name}", 403)
            (position,) = self.conn.execute(
                "SELECT COALESCE(MAX(position) + 1, 0) FROM endpoints WHERE container_id = ?",
                (container_id,)).fetchone()
            self.conn.execute(
                "INSERT INTO endpoints (container_id, network_id, position, aliases, "
                "ipam_config, mac_config, links) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (container_id, network.id, position, json.dumps(list(aliases or [])),
                 json.dumps(ipam_config), mac_config or None, json.dumps(list(links or []))))
        return self.endpoint(container_id, network.id)

    def endpoint(self, container_id: str, network_id: str) -> Endpoint:
        row = self.conn.execute("SELECT * FROM endpoints WHERE container_id = ? AND "
                                "network_id = ?", (container_id, network_id)).fetchone()
        if row is None:
            raise NetworkError(f"container {container_id} is not connected to the network "
                               f"{network_id}", 404)
        return _endpoint(row)

    def endpoints_of(self, container_id: str) -> list[Endpoint]:
        rows = self.conn.execute("SELECT * FROM endpoints WHERE container_id = ? "
                                 "ORDER BY position", (container_id,)).fetchall()
        return [_endpoint(r) for r in rows]

    def endpoints_all(self) -> list[Endpoint]:
        """Every container's endpoints, by container then position (one query for a list)."""
        rows = self.conn.execute("SELECT * FROM endpoints ORDER BY container_id, position"
                                 ).fetchall()
        return [_endpoint(r) for r in rows]

    def endpoints_on(self, network_id: str) -> list[Endpoint]:
        rows = self.conn.execute("SELECT * FROM endpoints WHERE network_id = ? "
                                 "ORDER BY container_id", (network_id,)).fetchall()
        return [_endpoint(r) for r in rows]

    def allocate(self, container_id: str, network_id: str) -> Endpoint:
        """The endpoint's addresses (IPv4, and IPv6 on an IPv6 network: the requested ones,
        else the lowest free), MAC, endpoint ID and veth name, in one write transaction (an
        endpoint that has them already keeps them)."""
        for attempt in range(RETRIES):
            try:
                with db.transaction(self.conn):
                    return self._allocate_locked(container_id, network_id)
            except sqlite3.IntegrityError:
                # Only a writer that bypassed the lock can get here; the index kept the
                # address unique, so try again with what is free now.
                if attempt == RETRIES - 1:
                    raise NetworkError("Address already in use", 403) from None
        raise AssertionError("unreachable")

    def _allocate_locked(self, container_id: str, network_id: str) -> Endpoint:
        network = self.get(network_id)
        endpoint = self.endpoint(container_id, network.id)
        if endpoint.endpoint_id is not None:
            return endpoint
        addresses: dict[int, str] = {}
        for version in (4, 6) if network.ipv6 else (4,):
            found = self._address(network, endpoint, version)
            if found is not None:
                addresses[version] = found
        ipv4, ipv6 = addresses.get(4), addresses.get(6)
        mac = endpoint.mac_config or (ipam.docker_mac(ipv4) if ipv4 else _random_mac())
        self.conn.execute(
            "UPDATE endpoints SET endpoint_id = ?, ipv4 = ?, ipv6 = ?, mac = ?, veth = ? "
            "WHERE container_id = ? AND network_id = ?",
            (os.urandom(32).hex(), ipv4, ipv6, mac, veth_name(container_id, network.id),
             container_id, network.id))
        return self.endpoint(container_id, network.id)

    def _address(self, network: Network, endpoint: Endpoint, version: int) -> str | None:
        """The endpoint's address of one IP version: the requested one if free, else the
        lowest free of the first subnet of that version (None: the network has none)."""
        subnets = [s for s in network.subnets() if s.version == version]
        if not subnets:
            return None
        column = f"ipv{version}"
        used = {ipaddress.ip_address(r[0]) for r in self.conn.execute(
            f"SELECT {column} FROM endpoints WHERE network_id = ? AND {column} IS NOT NULL",
            (network.id,))}
        wanted = endpoint.ipam_config.get(f"IPv{version}Address")
        if wanted:
            address = ipaddress.ip_address(wanted)
            subnet = next((s for s in subnets if address in s.network), None)
            if subnet is None:
                raise NetworkError(f"no configured subnet or ip-range contain the IP address "
                                   f"{wanted}", 400)
            if address in used or address in ipam.reserved(subnet):
                raise NetworkError("Address already in use", 403)
            return str(address)
        free = ipam.lowest_free(subnets[0], used)
        if free is None:
            raise NetworkError(f"no available IPv{version} addresses on this network's address "
                               f"pools: {network.name} ({network.id})", 503)
        return str(free)

    def release(self, container_id: str, network_id: str | None = None) -> None:
        """The container's runtime columns back to NULL (it stopped, or left the network)."""
        where, args = _which(container_id, network_id)
        with db.transaction(self.conn):
            self.conn.execute("UPDATE endpoints SET endpoint_id = NULL, ipv4 = NULL, "
                              f"ipv6 = NULL, mac = NULL, veth = NULL WHERE {where}", args)

    def holders(self) -> list[str]:
        """The containers that hold addresses or host ports (running ones, and any whose run
        ended without its clean-up: a reboot, a killed monitor)."""
        rows = self.conn.execute(
            "SELECT container_id FROM endpoints WHERE endpoint_id IS NOT NULL "
            "UNION SELECT container_id FROM published_ports").fetchall()
        return [r[0] for r in rows]

    def remove_endpoint(self, container_id: str, network_id: str | None = None) -> None:
        """The container leaves the network (every network: at `rm`)."""
        where, args = _which(container_id, network_id)
        with db.transaction(self.conn):
            self.conn.execute(f"DELETE FROM endpoints WHERE {where}", args)

    # --- published ports ----------------------------------------------------------------------

    def publish(self, container_id: str, bindings: list[PortMap]) -> None:
        """Record the host ports the container holds; all or none."""
        try:
            with db.transaction(self.conn):
                for b in bindings:
                    self.conn.execute(
                        "INSERT INTO published_ports (container_id, proto, host_ip, host_port, "
                        "container_port) VALUES (?, ?, ?, ?, ?)",
                        (container_id, b.proto, b.host_ip, b.host_port, b.container_port))
        except sqlite3.IntegrityError:
            taken = {(r["proto"], r["host_ip"], r["host_port"]) for r in self.conn.execute(
                "SELECT proto, host_ip, host_port FROM published_ports")}
            b = next((b for b in bindings if (b.proto, b.host_ip, b.host_port) in taken),
                      bindings[0])
            raise NetworkError(f"Bind for {b.host_ip or '0.0.0.0'}:{b.host_port} failed: port "
                               "is already allocated", 409) from None

    def unpublish(self, container_id: str) -> None:
        with db.transaction(self.conn):
            self.conn.execute("DELETE FROM published_ports WHERE container_id = ?",
                              (container_id,))

    def published_by_container(self) -> dict[str, list[PortMap]]:
        """Every container's published ports (as published() gives one's), in one query."""
        from barque.network.ports import PortMap

        out: dict[str, list[PortMap]] = {}
        for r in self.conn.execute("SELECT * FROM published_ports ORDER BY container_id, "
                                   "container_port, proto, host_ip, host_port"):
            out.setdefault(r["container_id"], []).append(
                PortMap(r["proto"], r["host_ip"], r["host_port"], r["container_port"]))
        return out

    def published(self, container_id: str | None = None) -> list[PortMap]:
        """The ports one container holds (every container's: None)."""
        from barque.network.ports import PortMap

        query = "SELECT * FROM published_ports"
        args: tuple[str, ...] = ()
        if container_id is not None:
            query, args = query + " WHERE container_id = ?", (container_id,)
        rows = self.conn.execute(query + " ORDER BY container_port, proto, host_ip, host_port",
                                 args).fetchall()
        return [PortMap(r["proto"], r["host_ip"], r["host_port"], r["container_port"])
                for r in rows]


def check_endpoint(network: Network, ipam_config: dict[str, str], mac: str | None,
                   aliases: list[str] | None = None) -> None:
    """Docker's validateEndpointSettings for static addresses, aliases and a MAC."""
    errors = []
    for version in (4, 6):
        text = ipam_config.get(f"IPv{version}Address")
        if not text:
            continue
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            address = None
        if address is None or address.version != version or address.is_unspecified:
            errors.append(f"invalid IPv{version} address: {text}")
            continue
        if network.is_default:
            errors.append("user specified IP address is supported on user defined networks "
                          "only")
            continue
        auto = set(network.auto_subnets())
        static = [s for s in network.subnets()
                  if s.version == version and str(s.network) not in auto]
        if not static:
            errors.append("user specified IP address is supported only when connecting to "
                          "networks with user configured subnets")
        elif not any(s.contains(address) for s in static):
            errors.append(f"no configured subnet or ip-range contain the IP address {text}")
    if aliases and network.is_default:
        errors.append("network-scoped alias is supported only for containers in user defined "
                      "networks")
    if errors:
        raise NetworkError("invalid endpoint settings:\n" +
                           "\n".join("* " + e for e in dict.fromkeys(errors)), 400)
    if mac and not _valid_mac(mac):
        raise NetworkError(f"invalid MAC address {mac}", 400)


def _valid_mac(text: str) -> bool:
    parts = text.replace("-", ":").split(":")
    return len(parts) == 6 and all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p)
                                   for p in parts)


def _random_mac() -> str:
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFE) | 0x02  # unicast, locally administered
    return ":".join(f"{b:02x}" for b in raw)


def _version_of(config: dict[str, str]) -> int:
    return ipaddress.ip_network(config["Subnet"], strict=False).version


def _default_gateway(config: dict[str, str]) -> ipam.IPAddress:
    """Docker's: the first address of the IP range (else the subnet) after the subnet's own."""
    subnet = ipaddress.ip_network(config["Subnet"], strict=False)
    pool = ipaddress.ip_network(config["IPRange"], strict=False) if config.get("IPRange") \
        else subnet
    first = pool.network_address
    return first + 1 if first == subnet.network_address else first


def _which(container_id: str, network_id: str | None) -> tuple[str, tuple[str, ...]]:
    if network_id is None:
        return "container_id = ?", (container_id,)
    return "container_id = ? AND network_id = ?", (container_id, network_id)
