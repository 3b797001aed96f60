"""What the embedded resolver knows, read from the state DB (read-only): who asks, and which
addresses a name has for it — Docker's rules: a container's name, its network aliases, its
short id and its hostname resolve for containers sharing a user-defined network with it
(never on the default `bridge`), case-insensitively; "name.network" picks the network."""

from __future__ import annotations

import ipaddress
import json
import os
import sqlite3
from dataclasses import dataclass, field
from urllib.parse import quote

DEFAULT_BRIDGE = "bridge"


@dataclass
class Net:
    id: str
    name: str
    internal: bool
    # the asker's links on this network (--link NAME:ALIAS): alias -> the linked container
    links: dict[str, str] = field(default_factory=dict)


@dataclass
class Asker:
    """A container that sends queries: its networks (in connect order) and DNS settings."""

    id: str
    networks: list[Net] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)          # HostConfig.Dns
    dns_options: list[str] = field(default_factory=list)  # HostConfig.DnsOptions

    @property
    def user_networks(self) -> list[Net]:
        return [n for n in self.networks if n.name != DEFAULT_BRIDGE]

    @property
    def external(self) -> bool:
        """Docker's hasExternalAccess: on at least one network that is not --internal."""
        return any(not n.internal for n in self.networks)


@dataclass
class Member:
    """A running container's endpoint on a network, with every name it answers to there."""

    container_name: str
    names: set[str]
    ipv4: str | None
    ipv6: str | None


class Directory:
    """Lookups in <root>/barque.db; every call reads the current state (no cache to go stale)."""

    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, "barque.db")
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(f"file:{quote(self.path)}?mode=ro", uri=True, timeout=5,
                                   isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA query_only = 1")
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def asker(self, container_id: str) -> Asker:
        db = self._db()
        asker = Asker(container_id)
        row = db.execute("SELECT host_config FROM containers WHERE id = ?",
                         (container_id,)).fetchone()
        if row is not None:
            host_config = _json_object(row[0])
            asker.dns = _strings(host_config.get("Dns"))
            asker.dns_options = _strings(host_config.get("DnsOptions"))
        rows = db.execute(
            "SELECT n.id, n.name, n.internal, e.links FROM endpoints e JOIN networks n"
            " ON n.id = e.network_id WHERE e.container_id = ? ORDER BY e.position",
            (container_id,)).fetchall()
        asker.networks = [Net(r[0], r[1], bool(r[2]), _links(r[3])) for r in rows]
        return asker

    def members(self, network_id: str) -> list[Member]:
        rows = self._db().execute(
            "SELECT c.id, c.name, c.config, e.aliases, e.ipv4, e.ipv6 FROM endpoints e"
            " JOIN containers c ON c.id = e.container_id WHERE e.network_id = ?"
            " AND (e.ipv4 IS NOT NULL OR e.ipv6 IS NOT NULL) ORDER BY c.created",
            (network_id,)).fetchall()
        return [_member(*r) for r in rows]

    def lookup(self, asker: Asker, name: str, ipv6: bool) -> list[str] | None:
        """The addresses of `name` (no final dot) for `asker`; [] when the name is known
        without an address of that family (Docker answers NOERROR, empty), None when unknown
        (then it is forwarded)."""
        name = name.lower()
        for wanted, network in _splits(name):
            for net in asker.user_networks:
                if network is not None and net.name.lower() != network:
                    continue
                target = net.links.get(wanted, wanted)
                found = [m for m in self.members(net.id) if target in m.names]
                if found:
                    addresses = [m.ipv6 if ipv6 else m.ipv4 for m in found]
                    return list(dict.fromkeys(a for a in addresses if a))
        return None

    def reverse(self, asker: Asker, address: str) -> str | None:
        """Docker's PTR answer for an address on the asker's user networks: "name.network"."""
        for net in asker.user_networks:
            for m in self.members(net.id):
                if address in (m.ipv4, _norm(m.ipv6)):
                    return f"{m.container_name}.{net.name}"
        return None


def _member(container_id: str, name: str, config: str, aliases: str, ipv4: str | None,
            ipv6: str | None) -> Member:
    hostname = _json_object(config).get("Hostname")
    names = {name, container_id[:12], *_strings(_json(aliases))}
    if isinstance(hostname, str) and hostname:
        names.add(hostname)
    return Member(name, {n.lower() for n in names}, ipv4, ipv6)


def _links(text: str | None) -> dict[str, str]:
    """["NAME:ALIAS", "NAME"] as {alias: name}, lower-cased (a name may have Docker's "/")."""
    found = {}
    for link in _strings(_json(text)):
        name, _, alias = link.partition(":")
        name = name.strip("/").lower()
        found[(alias.strip("/") or name).lower()] = name
    return found


def _splits(name: str) -> list[tuple[str, str | None]]:
    """Docker's ways to read "a.b.c": a.b.c on any network, a.b on network c, a on b.c."""
    ways: list[tuple[str, str | None]] = [(name, None)]
    cut = len(name)
    while (cut := name.rfind(".", 0, cut)) > 0:
        ways.append((name[:cut], name[cut + 1:]))
    return ways


def _norm(address: str | None) -> str | None:
    if address is None:
        return None
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address


def _json(text: str | None) -> object:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _json_object(text: str | None) -> dict[str, object]:
    value = _json(text)
    return value if isinstance(value, dict) else {}


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
