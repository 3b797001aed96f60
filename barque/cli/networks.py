"""The `network` commands' handlers: parse, call barque.engine.networks, print as docker."""

from __future__ import annotations

import argparse
import ipaddress
import re
import sys

from barque.cli import formatting as fmt
from barque.cli.containers import CommandError, _confirm, client_words, print_objects
from barque.engine import networks
from barque.engine.context import Engine, EngineError

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

NETWORK_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
NETWORK_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
                   "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS",
                   "CreatedAt": "CREATED AT"}


# --- create ----------------------------------------------------------------------------------

def _key_values(items: list[str]) -> dict[str, str]:
    return dict(item.partition("=")[::2] for item in items)


def _subnet_matches(subnet: str, data: str) -> bool:
    """The docker CLI's subnetMatches: is `data` (an address or a CIDR) inside `subnet`?"""
    try:
        network = ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        raise CommandError(f"invalid subnet: invalid CIDR address: {subnet}") from None
    if "/" in data:
        try:
            address = ipaddress.ip_interface(data).ip
        except ValueError:
            raise CommandError(f"invalid cidr: invalid CIDR address: {data}") from None
    else:
        try:
            address = ipaddress.ip_address(data)
        except ValueError:
            return False
    return address.version == network.version and address in network


def consolidate_ipam(subnets: list[str], ranges: list[str],
                     gateways: list[str]) -> list[dict[str, str]]:
    """The docker CLI's consolidateIpam: each --ip-range and --gateway to its --subnet."""
    if len(subnets) < len(ranges) or len(subnets) < len(gateways):
        raise CommandError("every ip-range or gateway must have a corresponding subnet")
    configs: dict[str, dict[str, str]] = {}
    for subnet in subnets:
        for other in configs:
            if _subnet_matches(subnet, other) or _subnet_matches(other, subnet):
                raise CommandError("multiple overlapping subnet configuration is not supported")
        configs[subnet] = {"Subnet": subnet}
    for key, values, what in (("IPRange", ranges, "range"), ("Gateway", gateways, "gateway")):
        plural = "ranges" if key == "IPRange" else "gateways"
        for value in values:
            match = False
            for subnet in subnets:
                if not _subnet_matches(subnet, value):
                    continue
                if key in configs[subnet]:
                    raise CommandError(
                        f"cannot configure multiple {plural} ({value}, {configs[subnet][key]}) "
                        f"{'on' if key == 'IPRange' else 'for'} the same subnet ({subnet})")
                configs[subnet][key] = value
                match = True
            if not match:
                raise CommandError(f"no matching subnet for {what} {value}")
    return list(configs.values())


def cmd_network_create(ns: argparse.Namespace, engine: Engine) -> int:
    configs = consolidate_ipam(ns.subnet, ns.ip_range, ns.gateway)
    if ns.ipam_driver != "default":
        raise EngineError(f'plugin "{ns.ipam_driver}" not found', 1, 404)  # dockerd 20.10's
    if ns.scope not in ("", "local"):
        raise EngineError(f"invalid scope {ns.scope}: only \"local\" networks are supported",
                          1, 400)
    network = networks.create(engine, ns.name, ns.driver, configs, ns.internal, ns.ipv6,
                              ns.attachable, _key_values(ns.label), _key_values(ns.opt))
    print(network.id)
    return 0


# --- ls --------------------------------------------------------------------------------------

class NetworkRow:
    """A line of `network ls` (the docker CLI's networkContext: its fields in the order its
    JSON has them, and the Label method)."""

    go_name = "*network.networkContext"  # in template errors, as docker's

    def __init__(self, net: dict[str, Any], no_trunc: bool) -> None:
        labels = net["Labels"] or {}
        self.CreatedAt = fmt.go_time(net["Created"])
        self.Driver = net["Driver"]
        self.ID = net["Id"] if no_trunc else net["Id"][:12]
        self.IPv6 = "true" if net["EnableIPv6"] else "false"
        self.Internal = "true" if net["Internal"] else "false"
        self.Labels = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        self.Name = net["Name"]
        self.Scope = net["Scope"]
        self._labels = labels

    def Label(self, name: str) -> str:  # noqa: N802 - the template's method name
        return str(self._labels.get(name, ""))


def _natural_key(name: str) -> list[Any]:
    """sortorder.NaturalLess, as the docker CLI sorts `network ls`: numbers by value."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", name) if part]


def cmd_network_ls(ns: argparse.Namespace, engine: Engine) -> int:
    found = networks.list_networks(engine, ns.filter)
    found.sort(key=lambda n: _natural_key(n["Name"]))
    rows = [NetworkRow(net, ns.no_trunc) for net in found]
    sys.stdout.write(fmt.format_table(rows, ns.format, NETWORK_TABLE, NETWORK_HEADERS,
                                      quiet_field="ID" if ns.quiet else None))
    return 0


# --- inspect, rm, prune ----------------------------------------------------------------------

def cmd_network_inspect(ns: argparse.Namespace, engine: Engine) -> int:
    from barque.cli.template_views import inspect_template

    template = inspect_template(ns.format)
    found, errors = [], []
    for ref in ns.networks:
        try:
            found.append(networks.inspect(engine, ref))
        except EngineError as e:
            errors.append(client_words(e, "network", ref))
    status = print_objects(found, template)
    for error in errors:
        sys.stderr.write(error + "\n")
    return 1 if errors else status


def cmd_network_rm(ns: argparse.Namespace, engine: Engine) -> int:
    """Each network removed is named on stdout, each failure on stderr (then exit 1); with
    -f one that does not exist is passed over in silence, as docker does."""
    status = 0
    for ref in ns.networks:
        try:
            networks.remove(engine, ref)
        except EngineError as e:
            if not (ns.force and e.status == 404):
                sys.stderr.write(client_words(e, "network", ref) + "\n")
                status = 1
            continue
        print(ref)
    return status


def cmd_network_prune(ns: argparse.Namespace, engine: Engine) -> int:
    if not ns.force and not _confirm("This will remove all custom networks not used by at "
                                     "least one container."):
        return 0
    removed = networks.prune(engine, ns.filter)
    if removed:
        print("Deleted Networks:\n" + "".join(name + "\n" for name in removed))
    return 0


# --- connect, disconnect ---------------------------------------------------------------------

def cmd_network_connect(ns: argparse.Namespace, engine: Engine) -> int:
    networks.connect(engine, ns.network, ns.container, ns.ip, ns.ip6, ns.alias)
    return 0


def cmd_network_disconnect(ns: argparse.Namespace, engine: Engine) -> int:
    networks.disconnect(engine, ns.network, ns.container, ns.force)
    return 0

