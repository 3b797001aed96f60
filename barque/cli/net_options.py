"""`run`/`create`'s network flags made into the Engine API's shapes, as the docker CLI does:
`--network` (repeatable, with its `name=…,alias=…,ip=…` form), `--ip`, `--ip6`,
`--mac-address`, `--network-alias`, `--link`, `-p`, `-P`, `--expose`, `--dns`,
`--dns-search`, `--dns-option`, `--add-host`. Bad values fail here in the CLI's words; what
the daemon checks is checked by the engine (barque.engine.netchecks)."""

from __future__ import annotations

import argparse
import re

from barque.cli.run_options import ClientCheck, flag_error
from barque.engine.netchecks import user_defined, valid_mac
from barque.network import ports

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any


# --- --network ------------------------------------------------------------------------------

# Patterns are compiled on first use (re caches them), not by every command at import.
_LONG_SYNTAX = r"\w+=\w+(,\w+=\w+)*"
_FIELDS = {"name": "Target", "alias": "Aliases", "ip": "IPv4Address", "ip6": "IPv6Address",
           "mac-address": "MacAddress", "link": "Links", "driver-opt": "DriverOpts"}


def _attachment(value: str) -> dict[str, Any]:
    """opts.NetworkOpt.Set: a name, or the long syntax (every field lower-cased, as Docker)."""
    if not re.search(_LONG_SYNTAX, value):
        return {"Target": value}
    import csv

    try:
        fields = next(csv.reader([value]))
    except (csv.Error, StopIteration):
        raise flag_error(value, "--network", "invalid field") from None
    opt: dict[str, Any] = {"Target": "", "Aliases": [], "Links": [], "DriverOpts": {}}
    for field in fields:
        key, sep, setting = field.lower().partition("=")
        key, setting = key.strip(), setting.strip()
        if not sep or not key:
            raise flag_error(value, "--network", f"invalid field {field}")
        if key not in _FIELDS:
            raise flag_error(value, "--network", f"invalid field key {key}")
        name = _FIELDS[key]
        if name in ("Aliases", "Links"):
            opt[name].append(setting)
        elif name == "DriverOpts":
            dkey, dsep, dvalue = setting.partition("=")
            if not dsep:
                raise flag_error(value, "--network", "invalid key value pair format in driver "
                                  "options")
            opt[name][dkey.strip()] = dvalue.strip()
        else:
            opt[name] = setting
    if not opt["Target"]:
        raise flag_error(value, "--network", "network name/id is not specified")
    return opt


def _apply_container_options(opt: dict[str, Any], ns: argparse.Namespace) -> None:
    """applyContainerOptions: --network-alias, --link, --ip, --ip6, --mac-address belong to
    the first network."""
    conflicts = (("Aliases", ns.network_alias, "--network-alias", "per-network alias"),
                 ("Links", ns.link, "--link", "per-network links"),
                 ("IPv4Address", ns.ip, "--ip", "per-network IPv4 address"),
                 ("IPv6Address", ns.ip6, "--ip6", "per-network IPv6 address"),
                 ("MacAddress", ns.mac_address, "--mac-address", "per-network MAC address"))
    for key, given, flag, what in conflicts:
        if opt.get(key) and given:
            raise ClientCheck(f"conflicting options: cannot specify both {flag} and {what}")
    if ns.network_alias:
        opt["Aliases"] = list(ns.network_alias)
    if user_defined(opt["Target"]) and ns.link:
        opt["Links"] = list(ns.link)
    for key, given in (("IPv4Address", ns.ip), ("IPv6Address", ns.ip6),
                       ("MacAddress", ns.mac_address)):
        if given:
            opt[key] = given


def _endpoint_settings(opt: dict[str, Any]) -> dict[str, Any]:
    """parseNetworkAttachmentOpt: the attachment as an EndpointSettings."""
    if not opt["Target"].strip():
        raise ClientCheck("no name set for network")
    if not user_defined(opt["Target"]):
        if opt.get("Aliases"):
            raise ClientCheck("network-scoped aliases are only supported for user-defined "
                              "networks")
        if opt.get("Links"):
            raise ClientCheck("links are only supported for user-defined networks")
    settings: dict[str, Any] = {"Aliases": list(opt.get("Aliases") or []) or None,
                                "Links": list(opt.get("Links") or []) or None,
                                "DriverOpts": dict(opt.get("DriverOpts") or {}) or None,
                                "IPAMConfig": None, "MacAddress": ""}
    ipam = {k: opt[k] for k in ("IPv4Address", "IPv6Address") if opt.get(k)}
    if ipam:
        settings["IPAMConfig"] = ipam
    if opt.get("MacAddress"):
        if not valid_mac(opt["MacAddress"]):
            raise ClientCheck(f"{opt['MacAddress']} is not a valid mac address")
        settings["MacAddress"] = opt["MacAddress"]
    return settings


def _empty(settings: dict[str, Any]) -> bool:
    return not any(settings.values())


def networks(ns: argparse.Namespace) -> tuple[str, dict[str, dict[str, Any]]]:
    """(HostConfig.NetworkMode, NetworkingConfig.EndpointsConfig), as parseNetworkOpts."""
    if ns.mac_address and not valid_mac(ns.mac_address):
        raise ClientCheck(f"{ns.mac_address} is not a valid mac address")
    attachments = [_attachment(v) for v in ns.network] or [{"Target": "default"}]
    endpoints: dict[str, dict[str, Any]] = {}
    kinds = set()
    for i, opt in enumerate(attachments):
        kinds.add(user_defined(opt["Target"]))
        if i == 0:
            _apply_container_options(opt, ns)
        settings = _endpoint_settings(opt)
        if opt["Target"] in endpoints:
            raise ClientCheck(f'network "{opt["Target"]}" is specified multiple times')
        # One network given without options: the daemon makes its endpoint anyway.
        if ns.network and i == 0 and len(attachments) == 1 and _empty(settings):
            continue
        endpoints[opt["Target"]] = settings
    if len(kinds) > 1:
        raise ClientCheck("conflicting options: cannot attach both user-defined and "
                          "non-user-defined network-modes")
    return attachments[0]["Target"], endpoints


# --- dns, hosts, links ----------------------------------------------------------------------

def ip_string(text: str) -> str | None:
    """opts.ValidateIPAddress's result: Go's canonical form of an address, or None."""
    address = ports.parse_ip(text.strip())
    if address is None:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped if mapped is not None else address)


def dns_servers(values: list[str]) -> list[str]:
    out = []
    for value in values:
        address = ip_string(value)
        if address is None:
            # opts.ValidateIPAddress's words in Docker 20.10 (the oracle's); 23+ say "IP
            # address is not correctly formatted: X"
            raise flag_error(value, "--dns", f"{value} is not an ip address")
        out.append(address)
    return out


_DOMAIN = (r"^(:?(:?[a-zA-Z0-9]|(:?[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9]))"
           r"(:?\.(:?[a-zA-Z0-9]|(:?[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])))*)"
           r"\.?[\t\n\f\r ]*\Z")


def dns_search(values: list[str]) -> list[str]:
    """opts.ValidateDNSSearch (its regular expression, typos included)."""
    out = []
    for value in values:
        domain = value.strip(" ")
        if domain != ".":
            match = re.match(_DOMAIN, domain) if re.search(r"[a-zA-Z]", domain) else None
            if match is None or len(match.group(1)) >= 255:
                raise flag_error(value, "--dns-search", f"{domain} is not a valid domain")
            domain = match.group(1)
        out.append(domain)
    return out


def extra_hosts(values: list[str]) -> list[str]:
    """opts.ValidateExtraHost: host:ip or host=ip, an address in brackets allowed; sent as
    host:ip."""
    out = []
    for value in values:
        host, sep, address = value.partition("=")
        if not sep:
            host, sep, address = value.partition(":")
        if not sep or not host or ":" in host:
            raise flag_error(value, "--add-host", f'bad format for add-host: "{value}"')
        if address != "host-gateway":
            if len(address) > 2 and address[0] == "[" and address[-1] == "]":
                address = address[1:-1]
            if ip_string(address) is None:
                raise flag_error(value, "--add-host",
                                  f'invalid IP address in add-host: "{address}"')
        out.append(f"{host}:{address}")
    return out


def links(values: list[str]) -> list[str]:
    """opts.ValidateLink: name or name:alias."""
    for value in values:
        if not value:
            raise flag_error(value, "--link", "empty string specified for links")
        if len(value.split(":", 2)) > 2:
            raise flag_error(value, "--link", f"bad format for links: {value}")
    return list(values)


def localhost_dns_warnings(servers: list[str]) -> list[str]:
    """The docker CLI's warning for a loopback name server (the first one only)."""
    for server in servers:
        address = ports.parse_ip(server)
        if address is not None and address.is_loopback:
            return [f"Localhost DNS ({server}) may fail in containers."]
    return []


# --- everything -----------------------------------------------------------------------------

def apply(ns: argparse.Namespace, config: dict[str, Any], host_config: dict[str, Any]
          ) -> dict[str, Any]:
    """Fill Config/HostConfig with the network flags; the NetworkingConfig to create with."""
    try:
        exposed, bindings = ports.parse_publish(ns.publish)
        ports.parse_expose(ns.expose, exposed)
    except ports.PortError as e:
        raise ClientCheck(str(e)) from None
    mode, endpoints = networks(ns)
    if exposed:
        config["ExposedPorts"] = exposed
    host_config.update({
        "NetworkMode": mode,
        "PortBindings": bindings,
        "PublishAllPorts": bool(ns.publish_all),
        "Dns": dns_servers(ns.dns),
        "DnsSearch": dns_search(ns.dns_search),
        "DnsOptions": list(ns.dns_option),
        "ExtraHosts": extra_hosts(ns.add_host) or None,
        "Links": links(ns.link) or None,
    })
    return {"EndpointsConfig": endpoints}
