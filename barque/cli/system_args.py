"""The arguments of `info`, `version`, `system df|prune|info`, `port` and `update` (their
handlers are in barque.cli.system, imported only when one runs)."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any


def add_parsers(commands: Any, parser_class: type[argparse.ArgumentParser],
                container_group: Any) -> None:
    """`port` and `update` are also in the `container` group, as Docker's."""
    info = commands.add_parser("info", help="display system-wide information")
    info.add_argument("-f", "--format", help="format output using a Go template")
    info.set_defaults(parser=info, handler="cmd_info", system_handler=True)
    version = commands.add_parser("version", help="show the Barque version information")
    version.add_argument("-f", "--format", help="format output using a Go template")
    version.set_defaults(parser=version, handler="cmd_version", system_handler=True)
    system = commands.add_parser("system", help="manage Barque")  # Docker: "Manage Docker"
    group = system.add_subparsers(dest="system_command", metavar="COMMAND",
                                  parser_class=parser_class, required=True)
    df = group.add_parser("df", help="show barque disk usage")
    df.add_argument("--format", help="format output using a Go template")
    df.add_argument("-v", "--verbose", action="store_true", help=argparse.SUPPRESS)
    df.set_defaults(parser=df, handler="cmd_df", system_handler=True)
    prune = group.add_parser("prune", help="remove unused data")
    prune.add_argument("-a", "--all", action="store_true", help="remove all unused images "
                       "not just dangling ones")
    prune.add_argument("-f", "--force", action="store_true", help="do not prompt")
    prune.add_argument("--volumes", action="store_true", help="prune anonymous volumes")
    prune.add_argument("--filter", action="append", default=[], help="provide filter values")
    prune.set_defaults(parser=prune, handler="cmd_system_prune", system_handler=True)
    for parent in (commands, group):  # `events` and `system events`
        events = parent.add_parser("events", help="get real time events from the server")
        events.add_argument("-f", "--filter", action="append", default=[],
                            help="filter output based on conditions provided")
        events.add_argument("--format", help="format output using a custom template")
        events.add_argument("--since", help="show all events created since timestamp")
        events.add_argument("--until", help="stream events until this timestamp")
        events.set_defaults(parser=events, handler="cmd_events", system_handler=True)
    for sub in ("info",):
        alias = group.add_parser(sub, help="display system-wide information")
        alias.add_argument("-f", "--format", help="format output using a Go template")
        alias.set_defaults(parser=alias, handler="cmd_info", system_handler=True)
    for parent in (commands, container_group):
        _port_and_update(parent)


def _port_and_update(parent: Any) -> None:
    port = parent.add_parser("port", help="list port mappings or a specific mapping for the "
                             "container")
    port.add_argument("container", metavar="CONTAINER")
    port.add_argument("port", nargs="?", metavar="PRIVATE_PORT[/PROTO]")
    port.set_defaults(parser=port, handler="cmd_port", system_handler=True)
    update = parent.add_parser("update", help="update configuration of one or more containers")
    for flag in ("--memory", "-m"), ("--memory-swap",), ("--memory-reservation",), \
            ("--cpus",), ("--cpuset-cpus",), ("--cpuset-mems",), ("--restart",):
        update.add_argument(*flag)
    for flag in ("--cpu-shares", "-c"), ("--cpu-period",), ("--cpu-quota",), \
            ("--pids-limit",), ("--blkio-weight",):
        update.add_argument(*flag, type=int)
    update.add_argument("containers", nargs="+", metavar="CONTAINER")
    update.set_defaults(parser=update, handler="cmd_update", system_handler=True)
