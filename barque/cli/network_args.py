"""The `network` commands' arguments, with Docker's flags (their handlers are in
barque.cli.networks, imported only when one runs)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from barque.cli.argv_scan import wanted

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any


def add_parsers(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    network = commands.add_parser("network", help="manage networks")
    group = network.add_subparsers(dest="network_command", metavar="COMMAND",
                                   parser_class=parser_class, required=True)
    for names, adder, handler in _COMMANDS:
        for name in names:
            parser = group.add_parser(name, help=adder.__doc__, allow_abbrev=False)
            if wanted(name):
                adder(parser)
            parser.set_defaults(parser=parser, handler=handler, system_handler=True,
                                cli_module="networks")


def _append(p: argparse.ArgumentParser, *flags: str, **kw: Any) -> None:
    p.add_argument(*flags, action="append", default=[], **kw)


def _create_args(p: argparse.ArgumentParser) -> None:
    """create a network"""
    p.add_argument("name", metavar="NETWORK")
    p.add_argument("--attachable", action="store_true", help="enable manual container "
                   "attachment")
    p.add_argument("-d", "--driver", default="bridge", help="driver to manage the network")
    _append(p, "--gateway", help="IPv4 or IPv6 gateway for the master subnet")
    p.add_argument("--internal", action="store_true", help="restrict external access to the "
                   "network")
    _append(p, "--ip-range", help="allocate container IP from a sub-range")
    p.add_argument("--ipam-driver", default="default", help="IP address management driver")
    p.add_argument("--ipv6", action="store_true", help="enable IPv6 networking")
    _append(p, "--label", help="set metadata on a network")
    _append(p, "-o", "--opt", help="set driver specific options")
    p.add_argument("--scope", default="", help="control the network's scope")
    _append(p, "--subnet", help="subnet in CIDR format that represents a network segment")


def _ls_args(p: argparse.ArgumentParser) -> None:
    """list networks"""
    _append(p, "-f", "--filter", help="provide filter values (e.g. 'driver=bridge')")
    p.add_argument("--format", help="format output using a Go template")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate the output")
    p.add_argument("-q", "--quiet", action="store_true", help="only display network IDs")


def _inspect_args(p: argparse.ArgumentParser) -> None:
    """display detailed information on one or more networks"""
    p.add_argument("-f", "--format", help="format output using a Go template")
    p.add_argument("-v", "--verbose", action="store_true", help="verbose output for "
                   "diagnostics")
    p.add_argument("networks", nargs="+", metavar="NETWORK")


def _rm_args(p: argparse.ArgumentParser) -> None:
    """remove one or more networks"""
    p.add_argument("-f", "--force", action="store_true", help="do not error if the network "
                   "does not exist")
    p.add_argument("networks", nargs="+", metavar="NETWORK")


def _prune_args(p: argparse.ArgumentParser) -> None:
    """remove all unused networks"""
    _append(p, "--filter", help="provide filter values (e.g. 'until=<timestamp>')")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")


def _connect_args(p: argparse.ArgumentParser) -> None:
    """connect a container to a network"""
    _append(p, "--alias", help="add network-scoped alias for the container")
    p.add_argument("--ip", help="IPv4 address (e.g., 172.30.100.104)")
    p.add_argument("--ip6", help="IPv6 address (e.g., 2001:db8::33)")
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("container", metavar="CONTAINER")


def _disconnect_args(p: argparse.ArgumentParser) -> None:
    """disconnect a container from a network"""
    p.add_argument("-f", "--force", action="store_true", help="force the container to "
                   "disconnect from a network")
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("container", metavar="CONTAINER")


_COMMANDS: list[tuple[tuple[str, ...], Callable[[argparse.ArgumentParser], None], str]] = [
    (("create",), _create_args, "cmd_network_create"),
    (("ls", "list"), _ls_args, "cmd_network_ls"),
    (("inspect",), _inspect_args, "cmd_network_inspect"),
    (("rm", "remove"), _rm_args, "cmd_network_rm"),
    (("prune",), _prune_args, "cmd_network_prune"),
    (("connect",), _connect_args, "cmd_network_connect"),
    (("disconnect",), _disconnect_args, "cmd_network_disconnect"),
]
