"""The daemon's network settings: Docker's daemon.json keys under the root dir.

`<root>/daemon.json` may hold "bridge" (the default bridge's interface), "bip" (its gateway
address with prefix), "default-address-pools" and "icc", as Docker's does. Each root gets its
own names, so a test's root never touches a user's Barque: the default root's bridge is
`barque0` and its nftables table `barque`; any other root's are derived from its path (or
given in daemon.json: "nft-table" is Barque's own key, for tests that mark what they make).
Barque's own "network-agent-idle" and "dns-resolver-idle" are the seconds the network agent
and the DNS resolver linger unused before they exit (the agent: 0, it stays; the resolver: 60).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re

from barque import sha256
from barque.network.errors import NetworkError
from barque.structs import dataclass, field

DEFAULT_ROOT = "/var/lib/barque"
DEFAULT_BRIDGE = "barque0"
DEFAULT_TABLE = "barque"
# Docker's default-address-pools (libnetwork/ipamutils): (base, size of each subnet).
DEFAULT_POOLS: list[tuple[str, int]] = [
    ("172.17.0.0/16", 16), ("172.18.0.0/16", 16), ("172.19.0.0/16", 16),
    ("172.20.0.0/14", 16), ("172.24.0.0/14", 16), ("172.28.0.0/14", 16),
    ("192.168.0.0/16", 20),
]
IFNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
TABLE_RE = re.compile(r"^[A-Za-z0-9_]{1,63}$")


@dataclass
class DaemonNetConfig:
    bridge: str                    # the default bridge's interface
    bip: str | None                # its gateway with prefix, "172.17.0.1/16"; None: choose
    pools: list[tuple[str, int]] = field(default_factory=list)  # IPv4 and IPv6 pools
    icc: bool = True               # traffic between containers on the default bridge
    nft_table: str = DEFAULT_TABLE
    agent_idle: float = 0.0        # seconds the network agent lingers unused; 0: it stays
    dns_idle: float = 60.0         # seconds the DNS resolver lingers without a container


def _digest(root: str) -> str:
    return sha256.hexdigest(os.path.abspath(root).encode())


def ula_pool(root: str) -> tuple[str, int]:
    """IPv6 subnets when none is configured: a /48 of unique local addresses derived from the
    root (Docker derives one from its engine ID), split into /64s."""
    digest = _digest(root)
    prefix = f"fd{digest[:2]}:{digest[2:6]}:{digest[6:10]}::/48"
    return str(ipaddress.ip_network(prefix)), 64


def load(root: str) -> DaemonNetConfig:
    """The settings of `root`: its daemon.json over the defaults (a missing file: defaults).
    NetworkError (500) for a file that cannot be used."""
    root = os.path.abspath(root)
    default_root = root == DEFAULT_ROOT
    digest = _digest(root)
    config = DaemonNetConfig(
        bridge=DEFAULT_BRIDGE if default_root else f"bq{digest[:10]}0", bip=None,
        pools=[*DEFAULT_POOLS, ula_pool(root)],
        nft_table=DEFAULT_TABLE if default_root else f"barque_{digest[:10]}")
    path = os.path.join(root, "daemon.json")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return config
    except (OSError, ValueError) as e:
        raise NetworkError(f"unable to configure the Barque daemon with file {path}: {e}",
                           500) from None
    try:
        _apply(config, data, root)
    except (TypeError, ValueError, KeyError) as e:
        raise NetworkError(f"unable to configure the Barque daemon with file {path}: {e}",
                           500) from None
    return config


def _apply(config: DaemonNetConfig, data: object, root: str) -> None:
    if not isinstance(data, dict):
        raise ValueError("the file is not a JSON object")
    if "bridge" in data:
        bridge = data["bridge"]
        if not isinstance(bridge, str) or not IFNAME_RE.match(bridge) or bridge in (".", ".."):
            raise ValueError(f"invalid bridge name {bridge!r}")
        config.bridge = bridge
    if data.get("bip"):
        bip = ipaddress.ip_interface(str(data["bip"]))
        if bip.version != 4 or bip.ip == bip.network.network_address:
            raise ValueError(f"invalid bip {data['bip']!r}")
        config.bip = str(bip)
    if "default-address-pools" in data:
        pools = []
        for pool in data["default-address-pools"]:
            base, size = ipaddress.ip_network(str(pool["base"])), int(pool["size"])
            if not base.prefixlen <= size <= base.max_prefixlen:
                raise ValueError(f"invalid pool {pool!r}: size out of range")
            pools.append((str(base), size))
        if not any(ipaddress.ip_network(base).version == 6 for base, _ in pools):
            pools.append(ula_pool(root))
        config.pools = pools
    if "icc" in data:
        if not isinstance(data["icc"], bool):
            raise ValueError("icc must be true or false")
        config.icc = data["icc"]
    for key, attribute in (("network-agent-idle", "agent_idle"),
                           ("dns-resolver-idle", "dns_idle")):
        if key in data:  # Barque's own keys (tests make them short)
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or \
                    not 0 <= value <= 86400:
                raise ValueError(f"{key} must be a number of seconds")
            setattr(config, attribute, float(value))
    if "nft-table" in data:
        table = data["nft-table"]
        if not isinstance(table, str) or not TABLE_RE.match(table):
            raise ValueError(f"invalid nft-table {table!r}")
        config.nft_table = table
