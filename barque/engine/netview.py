"""Docker's views of a container's network: `inspect`'s NetworkSettings, `ps`'s PORTS and
NETWORKS, `port`'s lines, `ps --filter network=|publish=|expose=`. Pure functions of the
record and the rows netsetup.view_data gives (endpoints, networks by id, published PortMaps),
read by attribute only: any objects of the design's Endpoint/Network/PortMap shape do."""

from __future__ import annotations

import functools
import hashlib

from barque.engine.netchecks import user_defined

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

DEFAULT_NETWORK = "bridge"


class ViewError(Exception):
    """A bad `port` argument or `ps` filter, in the docker CLI's or daemon's words."""


def _mode(host_config: dict[str, Any]) -> str:
    mode = str(host_config.get("NetworkMode") or DEFAULT_NETWORK)
    return DEFAULT_NETWORK if mode == "default" else mode


def _has_own_network(host_config: dict[str, Any]) -> bool:
    """Bridge-type networking (the default bridge or a user network): ports can be published."""
    return _mode(host_config) not in ("host", "none") and \
        not _mode(host_config).startswith("container:")


# --- Ports ------------------------------------------------------------------------------------

def _exposed_keys(config: dict[str, Any], host_config: dict[str, Any]) -> set[tuple[int, str]]:
    from barque.network.ports import parse_port_range, split_proto_port

    out = set()
    for key in set(config.get("ExposedPorts") or {}) | set(host_config.get("PortBindings") or {}):
        proto, port = split_proto_port(key)
        try:
            start, end = parse_port_range(port)
        except ValueError:
            continue
        out |= {(number, proto.lower()) for number in range(start, end + 1)}
    return out


def ports_map(config: dict[str, Any], host_config: dict[str, Any], published: Iterable[Any],
              running: bool, ipv6: bool = True) -> dict[str, list[dict[str, str]] | None]:
    """NetworkSettings.Ports: every exposed port of a running container, with the host
    bindings it holds ("" = 0.0.0.0 and, where the host has IPv6, ::) or null; {} otherwise."""
    if not running or not _has_own_network(host_config):
        return {}
    out: dict[tuple[int, str], list[dict[str, str]] | None] = {
        key: None for key in _exposed_keys(config, host_config)}
    for m in published:
        bindings = out.get((m.container_port, m.proto)) or []
        addresses = [m.host_ip] if m.host_ip else (["0.0.0.0", "::"] if ipv6 else ["0.0.0.0"])
        bindings += [{"HostIp": a, "HostPort": str(m.host_port)} for a in addresses]
        out[(m.container_port, m.proto)] = bindings
    return {key: out[(port, proto)] for key, port, proto in
            sorted((f"{port}/{proto}", port, proto) for port, proto in out)}


def port_list(ports: dict[str, list[dict[str, str]] | None]) -> list[dict[str, Any]]:
    """The API's container list Ports ({IP, PrivatePort, PublicPort, Type}) from the map."""
    out: list[dict[str, Any]] = []
    for key, bindings in ports.items():
        port, _, proto = key.partition("/")
        if not bindings:
            out.append({"PrivatePort": int(port), "Type": proto})
            continue
        out += [{"IP": b.get("HostIp") or "", "PrivatePort": int(port),
                 "PublicPort": int(b.get("HostPort") or 0), "Type": proto} for b in bindings]
    return out


def _join(host: str, port: int | str) -> str:
    from barque.network.ports import join_host_port

    return join_host_port(host, port)


def display_ports(ports: list[dict[str, Any]]) -> str:
    """The docker CLI's DisplayablePorts: "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp",
    exposed-only as "80/tcp", consecutive ports collapsed into ranges."""
    ports = sorted(ports, key=lambda p: (p["PrivatePort"], p.get("IP") or "",
                                         p.get("PublicPort") or 0, p["Type"]))
    groups: dict[str, list[int]] = {}  # key -> [first, last], in creation order
    result: list[str] = []
    mappings: list[str] = []
    for port in ports:
        current, key, ip = port["PrivatePort"], port["Type"], port.get("IP") or ""
        if ip:
            if port.get("PublicPort") != current:
                mappings.append(f"{_join(ip, port.get('PublicPort') or 0)}->{current}/"
                                f"{port['Type']}")
                continue
            key = f"{ip}/{port['Type']}"
        group = groups.get(key)
        if group is None:
            groups[key] = [current, current]
        elif current == group[1] + 1:
            group[1] = current
        else:
            result.append(_group(key, *group))
            groups[key] = [current, current]
    result += [_group(key, *group) for key, group in groups.items()]
    return ", ".join(result + mappings)


def _group(key: str, first: int, last: int) -> str:
    ip, _, kind = key.rpartition("/")
    span = str(first) if first == last else f"{first}-{last}"
    if ip:
        span = f"{_join(ip, span)}->{span}"
    return f"{span}/{kind}"


# --- `port` -------------------------------------------------------------------------------------

def _natural_less(a: str, b: str) -> bool:
    """fvbommel/sortorder.NaturalLess, which `docker port` sorts its lines with."""
    i = j = 0
    while i < len(a) and j < len(b):
        da, db = a[i].isdigit(), b[j].isdigit()
        if da != db:
            return da
        if not da:
            if a[i] != b[j]:
                return a[i] < b[j]
            i, j = i + 1, j + 1
            continue
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        si, sj = i, j
        while i < len(a) and a[i].isdigit():
            i += 1
        while j < len(b) and b[j].isdigit():
            j += 1
        if i - si != j - sj:
            return i - si < j - sj
        if a[si:i] != b[sj:j]:
            return a[si:i] < b[sj:j]
        if si != sj:
            return si < sj
    return len(a) < len(b)


def _natural_cmp(x: str, y: str) -> int:
    return -1 if _natural_less(x, y) else (1 if _natural_less(y, x) else 0)


def _natural_sorted(lines: list[str]) -> list[str]:
    return sorted(lines, key=functools.cmp_to_key(_natural_cmp))


def port_lines(ports: dict[str, list[dict[str, str]] | None], private: str | None,
               container: str) -> list[str]:
    """`docker port CONTAINER [PRIVATE_PORT[/PROTO]]`'s lines; ViewError with its words."""
    from barque.network.ports import parse_uint16

    if private:
        port, _, proto = private.partition("/")
        try:
            parse_uint16(port)
        except ValueError as e:
            raise ViewError(f"Error: invalid port ({port}): {e}") from None
        frontends = ports.get(f"{port}/{proto or 'tcp'}")
        if not frontends:
            raise ViewError(f"Error: No public port '{port}/{proto or 'tcp'}' published for "
                            f"{container}")
        lines = [_join(f.get("HostIp") or "", f.get("HostPort") or "") for f in frontends]
    else:
        lines = [f"{key} -> {_join(f.get('HostIp') or '', f.get('HostPort') or '')}"
                 for key, frontends in ports.items() for f in frontends or []]
    return _natural_sorted(lines)


# --- Networks ---------------------------------------------------------------------------------

def _prefix_len(network: Any, address: str | None) -> int:
    import ipaddress

    if not address or network is None:
        return 0
    ip = ipaddress.ip_address(address)
    for subnet in network.subnets():
        if ip in subnet.network:
            return int(subnet.network.prefixlen)
    return 0


def _gateway(network: Any, version: int) -> str:
    for subnet in network.subnets() if network is not None else []:
        if subnet.network.version == version and subnet.gateway is not None:
            return str(subnet.gateway)
    return ""


def dns_names(record: Any, aliases: list[str]) -> list[str]:
    """buildEndpointDNSNames: name, aliases, short ID, hostname, without repeats."""
    names = [record.name] if record.name else []
    names += list(aliases)
    names.append(record.id[:12])
    hostname = (record.config or {}).get("Hostname")
    if hostname:
        names.append(hostname)
    return list(dict.fromkeys(names))


def _endpoint_view(record: Any, endpoint: Any, network: Any, running: bool) -> dict[str, Any]:
    live = running and bool(endpoint.endpoint_id)
    v4 = endpoint.ipv4 if live else None
    v6 = endpoint.ipv6 if live else None
    name = network.name if network is not None else ""
    return {
        "IPAMConfig": dict(endpoint.ipam_config) or None,
        "Links": list(endpoint.links) or None,
        "Aliases": list(endpoint.aliases) or None,
        "MacAddress": (endpoint.mac if live else endpoint.mac_config) or "",
        "DriverOpts": None,
        "GwPriority": 0,
        "NetworkID": endpoint.network_id,
        "EndpointID": endpoint.endpoint_id if live else "",
        "Gateway": _gateway(network, 4) if v4 else "",
        "IPAddress": v4 or "",
        "IPPrefixLen": _prefix_len(network, v4),
        "IPv6Gateway": _gateway(network, 6) if v6 else "",
        "GlobalIPv6Address": v6 or "",
        "GlobalIPv6PrefixLen": _prefix_len(network, v6),
        "DNSNames": dns_names(record, list(endpoint.aliases)) if user_defined(name) else None,
    }


def _builtin_view(name: str) -> dict[str, Any]:
    """host or none: no endpoint row, Docker still lists the network."""
    from barque.engine.networks import builtin_networks

    ids = {n["Name"]: n["Id"] for n in builtin_networks()}
    return {"IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "",
            "DriverOpts": None, "GwPriority": 0, "NetworkID": ids.get(name, ""),
            "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
            "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "DNSNames": None}


def networks_view(record: Any, running: bool, endpoints: Iterable[Any],
                  networks: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """NetworkSettings.Networks: name -> EndpointSettings, in connect order."""
    mode = _mode(record.host_config)
    if mode in ("host", "none"):
        return {mode: _builtin_view(mode)}
    out = {}
    for endpoint in sorted(endpoints, key=lambda e: e.position):
        network = networks.get(endpoint.network_id)
        name = network.name if network is not None else endpoint.network_id
        out[name] = _endpoint_view(record, endpoint, network, running)
    return out


def network_names(record: Any, endpoints: Iterable[Any], networks: dict[str, Any]) -> list[str]:
    """`ps`'s NETWORKS: the container's networks' names, sorted."""
    return sorted(networks_view(record, False, endpoints, networks))


_TOP_LEVEL = ("EndpointID", "Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "IPAddress",
              "IPPrefixLen", "IPv6Gateway", "MacAddress")


def network_settings(record: Any, running: bool, endpoints: Iterable[Any],
                     networks: dict[str, Any], published: Iterable[Any], sandbox_key: str = "",
                     ipv6: bool = True) -> dict[str, Any]:
    """`inspect`'s NetworkSettings, Docker 28's fields and order. The top-level address fields
    describe the default bridge only (empty on user networks), as Docker's."""
    endpoints = list(endpoints)
    nets = networks_view(record, running, endpoints, networks)
    bridge = nets.get(DEFAULT_NETWORK) if _mode(record.host_config) != "host" else None
    sandboxed = running and not _mode(record.host_config).startswith("container:")
    settings: dict[str, Any] = {
        "Bridge": "",
        "SandboxID": hashlib.sha256(f"sandbox:{record.id}".encode()).hexdigest()
        if sandboxed else "",
        "SandboxKey": sandbox_key if sandboxed else "",
        "Ports": ports_map(record.config or {}, record.host_config, published, running, ipv6),
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
    }
    for key in _TOP_LEVEL:
        settings[key] = bridge[key] if bridge is not None else \
            (0 if key.endswith("PrefixLen") else "")
    settings["Networks"] = nets
    return settings


# --- ps filters ---------------------------------------------------------------------------------

def port_filter(key: str, values: Iterable[str]) -> set[str]:
    """The daemon's portOp: `publish=`/`expose=` values as "80/tcp" keys (ranges expanded)."""
    from barque.network.ports import port_keys, split_proto_port

    out: set[str] = set()
    for value in values:
        if ":" in value:
            raise ViewError(f"filter for '{key}' should not contain ':': {value}")
        try:
            out.update(port_keys(value))
        except ValueError as e:
            port = split_proto_port(value)[1]
            raise ViewError(f"error while looking up for {key} {port}: {e}") from None
    return out


def matches_ports(ports: list[dict[str, Any]], publish: set[str], expose: set[str]) -> bool:
    """Does a container's port list match any `publish=` (host side) or `expose=` (container
    side) filter value?"""
    for port in ports:
        if f"{port.get('PublicPort') or 0}/{port['Type']}" in publish or \
                f"{port['PrivatePort']}/{port['Type']}" in expose:
            return True
    return False


def matches_network(values: Iterable[str], nets: dict[str, dict[str, Any]]) -> bool:
    """`network=`: a network's name, or a prefix of its ID."""
    return any(value in nets or any(str(n.get("NetworkID") or "").startswith(value)
                                    for n in nets.values()) for value in values)
