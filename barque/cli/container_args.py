"""The container and volume commands' arguments, with Docker's flags. Like image_args, kept
apart from their handlers (barque.cli.containers, imported only when a command runs)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from barque.cli.argv_scan import wanted
from barque.cli.usage import set_arg_range

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any


def add_parsers(commands: Any, parser_class: type[argparse.ArgumentParser]) -> Any:
    """Top-level commands (`run`, `ps`, …), the `container` group and the `volume` group;
    returns the `container` group, for commands defined elsewhere. `handler` names a function
    of barque.cli.containers."""
    container = commands.add_parser("container", help="manage containers")
    group = container.add_subparsers(dest="container_command", metavar="COMMAND",
                                     parser_class=parser_class, required=True)
    for name, aliases, adder, handler in _COMMANDS:
        if name is not None:
            _add(commands, name, adder, handler)
        for alias in aliases:
            _add(group, alias, adder, handler, listed=alias not in _UNLISTED)
    volume = commands.add_parser("volume", help="manage volumes")
    vgroup = volume.add_subparsers(dest="volume_command", metavar="COMMAND",
                                   parser_class=parser_class, required=True)
    for names, adder, handler in _VOLUME_COMMANDS:
        for name in names:
            _add(vgroup, name, adder, handler)
    return group


# Not in `container --help`, whose list is Docker's: `explain` is Barque's own (listed in
# `barque --help`), `cleanup` the monitor's.
_UNLISTED = ("explain", "cleanup")


def _add(commands: Any, name: str, adder: Callable[[argparse.ArgumentParser], None],
         handler: str, listed: bool = True) -> None:
    # add_help=False where Docker uses -h for something else (run/create: --hostname).
    wants_h = adder in (_run_args, _create_args)
    listing = {"help": adder.__doc__} if listed else {"description": adder.__doc__}
    parser = commands.add_parser(name, **listing, add_help=not wants_h, allow_abbrev=False)
    if wants_h:
        parser.add_argument("--help", action="help", help="show this help message and exit")
    if wanted(name):
        adder(parser)
    parser.set_defaults(parser=parser, handler=handler, container_handler=True)


def _append(p: argparse.ArgumentParser, *flags: str, **kw: Any) -> None:
    p.add_argument(*flags, action="append", default=[], **kw)


def _create_args(p: argparse.ArgumentParser) -> None:
    """create a new container"""
    _container_options(p)


def _run_args(p: argparse.ArgumentParser) -> None:
    """run a command in a new container"""
    p.add_argument("-d", "--detach", action="store_true",
                   help="run the container in the background and print its ID")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("--sig-proxy", action=argparse.BooleanOptionalAction, default=True,
                   help="proxy received signals to the process")
    p.add_argument("--detach-keys", help="override the key sequence for detaching a container")
    _container_options(p)


def _container_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--interactive", action="store_true", help="keep STDIN open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    p.add_argument("--name", help="assign a name to the container")
    _append(p, "-e", "--env", metavar="KEY[=VALUE]", help="set environment variables")
    _append(p, "--env-file", help="read in a file of environment variables")
    p.add_argument("-w", "--workdir", help="working directory inside the container")
    p.add_argument("-u", "--user", help="username or UID (format: <name|uid>[:<group|gid>])")
    p.add_argument("--entrypoint", help="overwrite the default ENTRYPOINT of the image")
    _append(p, "-v", "--volume", help="bind mount a volume")
    _append(p, "--mount", help="attach a filesystem mount to the container")
    p.add_argument("--read-only", action="store_true", help="mount the root filesystem read-only")
    _append(p, "--tmpfs", help="mount a tmpfs directory")
    _append(p, "--volumes-from", help="mount volumes from the specified container(s)")
    p.add_argument("-m", "--memory", help="memory limit")
    p.add_argument("--memory-swap", help="swap limit equal to memory plus swap: -1 unlimited")
    p.add_argument("--memory-reservation", help="memory soft limit")
    p.add_argument("--cpus", help="number of CPUs")
    p.add_argument("-c", "--cpu-shares", type=int, help="CPU shares (relative weight)")
    p.add_argument("--cpu-period", type=int, help="limit CPU CFS period")
    p.add_argument("--cpu-quota", type=int, help="limit CPU CFS quota")
    p.add_argument("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)")
    p.add_argument("--cpuset-mems", help="MEMs in which to allow execution (0-3, 0,1)")
    p.add_argument("--pids-limit", type=int, help="tune container pids limit (-1 unlimited)")
    p.add_argument("--blkio-weight", type=int, help="block IO weight (10-1000)")
    _append(p, "--blkio-weight-device", help="block IO weight (relative device weight)")
    _append(p, "--device-read-bps", help="limit read rate (bytes per second) from a device")
    _append(p, "--device-write-bps", help="limit write rate (bytes per second) to a device")
    _append(p, "--device-read-iops", help="limit read rate (IO per second) from a device")
    _append(p, "--device-write-iops", help="limit write rate (IO per second) to a device")
    p.add_argument("--memory-swappiness", default="-1",
                   help="tune container memory swappiness (0 to 100)")
    p.add_argument("--cgroup-parent", help="optional parent cgroup for the container")
    p.add_argument("--cidfile", help="write the container ID to the file")
    _append(p, "--ulimit", help="ulimit options (name=soft[:hard])")
    _append(p, "--cap-add", help="add Linux capabilities")
    _append(p, "--cap-drop", help="drop Linux capabilities")
    p.add_argument("--privileged", action="store_true", help="give extended privileges")
    _append(p, "--security-opt", help="security options")
    p.add_argument("--pid", help="PID namespace to use")
    p.add_argument("--ipc", help="IPC mode to use")
    p.add_argument("--uts", help="UTS namespace to use")
    p.add_argument("--cgroupns", help="cgroup namespace to use (host|private)")
    p.add_argument("--userns", help="user namespace to use")
    p.add_argument("-h", "--hostname", help="container host name")
    p.add_argument("--domainname", help="container NIS domain name")
    p.add_argument("--init", action="store_true", help="run an init inside the container")
    p.add_argument("--restart", default="no", help="restart policy")
    p.add_argument("--stop-signal", help="signal to stop the container")
    p.add_argument("--stop-timeout", type=int, help="timeout (in seconds) to stop a container")
    _append(p, "-l", "--label", help="set meta data on a container")
    _append(p, "--label-file", help="read in a line delimited file of labels")
    p.add_argument("--health-cmd", help="command to run to check health")
    p.add_argument("--health-interval", help="time between running the check (ms|s|m|h)")
    p.add_argument("--health-timeout", help="maximum time to allow one check to run")
    p.add_argument("--health-retries", type=int, help="consecutive failures to report unhealthy")
    p.add_argument("--health-start-period", help="start period for the container to initialize")
    p.add_argument("--no-healthcheck", action="store_true", help="disable any HEALTHCHECK")
    _append(p, "--device", help="add a host device to the container")
    _append(p, "--device-cgroup-rule", help="add a rule to the cgroup allowed devices list")
    _network_options(p)
    _append(p, "--group-add", help="add additional groups to join")
    p.add_argument("--shm-size", help="size of /dev/shm")
    _append(p, "--sysctl", help="sysctl options")
    p.add_argument("--oom-kill-disable", action="store_true", help="disable OOM killer")
    p.add_argument("--oom-score-adj", type=int, help="tune host's OOM preferences")
    p.add_argument("--log-driver", default="json-file", help="logging driver")
    _append(p, "--log-opt", help="log driver options")
    p.add_argument("--platform", help="set platform if server is multi-platform capable")
    p.add_argument("--pull", default="missing", choices=["always", "missing", "never"],
                   help="pull image before creating")
    p.add_argument("-q", "--quiet", action="store_true", help="suppress the pull output")
    from barque.cli import extra_options

    extra_options.add(p)
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="COMMAND")


def _network_options(p: argparse.ArgumentParser) -> None:
    _append(p, "--network", "--net", metavar="NETWORK", help="connect a container to a network")
    _append(p, "--network-alias", "--net-alias", help="add network-scoped alias for the "
            "container")
    p.add_argument("--ip", help="IPv4 address (e.g., 172.30.100.104)")
    p.add_argument("--ip6", help="IPv6 address (e.g., 2001:db8::33)")
    p.add_argument("--mac-address", help="container MAC address (e.g., 92:d0:c6:0a:29:33)")
    _append(p, "--link", help="add link to another container")
    _append(p, "-p", "--publish", help="publish a container's port(s) to the host")
    p.add_argument("-P", "--publish-all", action="store_true",
                   help="publish all exposed ports to random ports")
    _append(p, "--expose", help="expose a port or a range of ports")
    _append(p, "--dns", help="set custom DNS servers")
    _append(p, "--dns-search", help="set custom DNS search domains")
    _append(p, "--dns-option", "--dns-opt", help="set DNS options")
    _append(p, "--add-host", help="add a custom host-to-IP mapping (host:ip)")


def _start_args(p: argparse.ArgumentParser) -> None:
    """start one or more stopped containers"""
    p.add_argument("-a", "--attach", action="store_true", help="attach STDOUT/STDERR")
    p.add_argument("-i", "--interactive", action="store_true", help="attach container's STDIN")
    p.add_argument("--detach-keys", help="override the key sequence for detaching a container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def _stop_args(p: argparse.ArgumentParser) -> None:
    """stop one or more running containers"""
    p.add_argument("-s", "--signal", help="signal to send to the container")
    p.add_argument("-t", "--time", "--timeout", dest="time", type=int,
                   help="seconds to wait before killing the container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def _restart_args(p: argparse.ArgumentParser) -> None:
    """restart one or more containers"""
    _stop_args(p)


def _kill_args(p: argparse.ArgumentParser) -> None:
    """kill one or more running containers"""
    p.add_argument("-s", "--signal", default="KILL", help="signal to send to the container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def _rm_args(p: argparse.ArgumentParser) -> None:
    """remove one or more containers"""
    p.add_argument("-f", "--force", action="store_true",
                   help="force the removal of a running container (uses SIGKILL)")
    p.add_argument("-v", "--volumes", action="store_true",
                   help="remove anonymous volumes associated with the container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def _ps_args(p: argparse.ArgumentParser) -> None:
    """list containers"""
    p.add_argument("-a", "--all", action="store_true", help="show all containers")
    _append(p, "-f", "--filter", help="filter output based on conditions provided")
    p.add_argument("--format", help="format output using a Go template")
    p.add_argument("-n", "--last", type=int, default=-1, help="show n last created containers")
    p.add_argument("-l", "--latest", action="store_true", help="show the latest created")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    p.add_argument("-q", "--quiet", action="store_true", help="only display container IDs")
    p.add_argument("-s", "--size", action="store_true", help="display total file sizes")


def _logs_args(p: argparse.ArgumentParser) -> None:
    """fetch the logs of a container"""
    p.add_argument("-f", "--follow", action="store_true", help="follow log output")
    p.add_argument("--since", help="show logs since timestamp or relative (e.g. 42m)")
    p.add_argument("--until", help="show logs before a timestamp or relative")
    p.add_argument("-n", "--tail", default="all", help="number of lines from the end")
    p.add_argument("-t", "--timestamps", action="store_true", help="show timestamps")
    p.add_argument("--details", action="store_true", help="show extra details")
    p.add_argument("container", metavar="CONTAINER")


def _wait_args(p: argparse.ArgumentParser) -> None:
    """block until one or more containers stop, then print their exit codes"""
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def _inspect_args(p: argparse.ArgumentParser) -> None:
    """display detailed information on one or more containers"""
    p.add_argument("-f", "--format", help="format output using a Go template")
    p.add_argument("-s", "--size", action="store_true", help="display total file sizes")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def _pause_args(p: argparse.ArgumentParser) -> None:
    """pause all processes within one or more containers"""
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def _unpause_args(p: argparse.ArgumentParser) -> None:
    """unpause all processes within one or more containers"""
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def _rename_args(p: argparse.ArgumentParser) -> None:
    """rename a container"""
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("new_name", metavar="NEW_NAME")


def _attach_args(p: argparse.ArgumentParser) -> None:
    """attach local standard input, output, and error streams to a running container"""
    p.add_argument("--no-stdin", action="store_true", help="do not attach STDIN")
    p.add_argument("--sig-proxy", action=argparse.BooleanOptionalAction, default=True,
                   help="proxy all received signals to the process")
    p.add_argument("--detach-keys", help="override the key sequence for detaching a container")
    p.add_argument("container", metavar="CONTAINER")


def _exec_args(p: argparse.ArgumentParser) -> None:
    """run a command in a running container"""
    p.add_argument("-d", "--detach", action="store_true", help="run command in the background")
    p.add_argument("--detach-keys", help="override the key sequence for detaching a container")
    p.add_argument("-i", "--interactive", action="store_true", help="keep STDIN open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    _append(p, "-e", "--env", help="set environment variables")
    _append(p, "--env-file", help="read in a file of environment variables")
    p.add_argument("-u", "--user", help="username or UID (format: <name|uid>[:<group|gid>])")
    p.add_argument("-w", "--workdir", help="working directory inside the container")
    p.add_argument("--privileged", action="store_true", help="give extended privileges")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="COMMAND")
    p.usage = "%(prog)s [OPTIONS] CONTAINER COMMAND [ARG...]"
    set_arg_range(p, 2, None)


def _top_args(p: argparse.ArgumentParser) -> None:
    """display the running processes of a container"""
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("ps_args", nargs=argparse.REMAINDER, metavar="[ps OPTIONS]")
    p.usage = "%(prog)s CONTAINER [ps OPTIONS]"


def _explain_args(p: argparse.ArgumentParser) -> None:
    """show what isolates a running container: namespaces, cgroups, union filesystem"""
    from barque.cli.explain import add_arguments

    add_arguments(p)


def _diff_args(p: argparse.ArgumentParser) -> None:
    """inspect changes to files or directories on a container's filesystem"""
    p.add_argument("container", metavar="CONTAINER")


def _cp_args(p: argparse.ArgumentParser) -> None:
    """copy files/folders between a container and the local filesystem"""
    p.add_argument("-a", "--archive", action="store_true", help="archive mode (copy all "
                   "uid/gid information)")
    p.add_argument("-L", "--follow-link", action="store_true",
                   help="always follow symbol link in SRC_PATH")
    p.add_argument("-q", "--quiet", action="store_true", help="suppress progress output")
    p.add_argument("source", metavar="SRC")
    p.add_argument("dest", metavar="DEST")
    p.usage = ("%(prog)s [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n"
               "\t%(prog)s [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH")


def _commit_args(p: argparse.ArgumentParser) -> None:
    """create a new image from a container's changes"""
    p.add_argument("-a", "--author", default="", help="author")
    _append(p, "-c", "--change", help="apply Dockerfile instruction to the created image")
    p.add_argument("-m", "--message", default="", help="commit message")
    p.add_argument("-p", "--pause", action=argparse.BooleanOptionalAction, default=True,
                   help="pause container during commit")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")


def _stats_args(p: argparse.ArgumentParser) -> None:
    """display a live stream of container(s) resource usage statistics"""
    p.add_argument("-a", "--all", action="store_true", help="show all containers")
    p.add_argument("--format", help="format output using a Go template")
    p.add_argument("--no-stream", action="store_true", help="disable streaming stats and only "
                   "pull the first result")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    p.add_argument("containers", nargs="*", metavar="CONTAINER")


def _cleanup_args(p: argparse.ArgumentParser) -> None:
    """(internal) after a container's last exit: unmount it, remove it if it was run --rm"""
    p.add_argument("--run-id", help="the start whose monitor ended (a later start is left alone)")
    p.add_argument("container", metavar="CONTAINER")


def _prune_args(p: argparse.ArgumentParser) -> None:
    """remove all stopped containers"""
    _append(p, "--filter", help="provide filter values (e.g. 'until=<timestamp>')")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")


def _volume_create_args(p: argparse.ArgumentParser) -> None:
    """create a volume"""
    p.add_argument("name", nargs="?", default="", metavar="VOLUME")
    p.add_argument("-d", "--driver", default="local", help="specify volume driver name")
    _append(p, "--label", help="set metadata for a volume")
    _append(p, "-o", "--opt", help="set driver specific options")
    p.add_argument("--name", dest="name_flag", help="specify volume name")


def _volume_ls_args(p: argparse.ArgumentParser) -> None:
    """list volumes"""
    _append(p, "-f", "--filter", help="provide filter values (e.g. 'dangling=true')")
    p.add_argument("--format", help="format output using a Go template")
    p.add_argument("-q", "--quiet", action="store_true", help="only display volume names")


def _volume_inspect_args(p: argparse.ArgumentParser) -> None:
    """display detailed information on one or more volumes"""
    p.add_argument("-f", "--format", help="format output using a Go template")
    p.add_argument("volumes", nargs="+", metavar="VOLUME")


def _volume_rm_args(p: argparse.ArgumentParser) -> None:
    """remove one or more volumes"""
    p.add_argument("-f", "--force", action="store_true", help="force the removal")
    p.add_argument("volumes", nargs="+", metavar="VOLUME")


def _volume_prune_args(p: argparse.ArgumentParser) -> None:
    """remove unused local volumes"""
    p.add_argument("-a", "--all", action="store_true", help="remove all unused volumes, not "
                   "just anonymous ones")
    _append(p, "--filter", help="provide filter values (e.g. 'label=<label>')")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")


# (top-level name or None, names in the `container` group, arguments, handler)
_COMMANDS: list[tuple[str | None, tuple[str, ...], Callable[[argparse.ArgumentParser], None],
                      str]] = [
    ("run", ("run",), _run_args, "cmd_run"),
    ("create", ("create",), _create_args, "cmd_create"),
    ("start", ("start",), _start_args, "cmd_start"),
    ("stop", ("stop",), _stop_args, "cmd_stop"),
    ("restart", ("restart",), _restart_args, "cmd_restart"),
    ("kill", ("kill",), _kill_args, "cmd_kill"),
    ("rm", ("rm", "remove"), _rm_args, "cmd_rm"),
    ("ps", ("ls", "ps", "list"), _ps_args, "cmd_ps"),
    ("logs", ("logs",), _logs_args, "cmd_logs"),
    ("wait", ("wait",), _wait_args, "cmd_wait"),
    (None, ("inspect",), _inspect_args, "cmd_inspect"),
    ("pause", ("pause",), _pause_args, "cmd_pause"),
    ("unpause", ("unpause",), _unpause_args, "cmd_unpause"),
    ("rename", ("rename",), _rename_args, "cmd_rename"),
    ("attach", ("attach",), _attach_args, "cmd_attach"),
    ("exec", ("exec",), _exec_args, "cmd_exec"),
    ("top", ("top",), _top_args, "cmd_top"),
    ("diff", ("diff",), _diff_args, "cmd_diff"),
    ("explain", ("explain",), _explain_args, "cmd_explain"),
    ("cp", ("cp",), _cp_args, "cmd_cp"),
    ("stats", ("stats",), _stats_args, "cmd_stats"),
    ("commit", ("commit",), _commit_args, "cmd_commit"),
    (None, ("prune",), _prune_args, "cmd_container_prune"),
    (None, ("cleanup",), _cleanup_args, "cmd_cleanup"),
]
_VOLUME_COMMANDS: list[tuple[tuple[str, ...], Callable[[argparse.ArgumentParser], None], str]] = [
    (("create",), _volume_create_args, "cmd_volume_create"),
    (("ls", "list"), _volume_ls_args, "cmd_volume_ls"),
    (("inspect",), _volume_inspect_args, "cmd_volume_inspect"),
    (("rm", "remove"), _volume_rm_args, "cmd_volume_rm"),
    (("prune",), _volume_prune_args, "cmd_volume_prune"),
]
