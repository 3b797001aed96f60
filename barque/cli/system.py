"""`info`, `version`, `system df`, `system prune`, `port` and `update`: their arguments and
handlers (small enough to live together)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from barque.cli import formatting as fmt
from barque.cli.containers import CommandError, _confirm, _daemon_error, _each, look_up
from barque.cli.gofmt import GoStruct
from barque.engine.context import Engine, EngineError

# --- info, version ----------------------------------------------------------------------------

def cmd_info(ns: argparse.Namespace, engine: Engine) -> int:
    from barque.cli.template_views import INFO_TYPES, print_struct
    from barque.engine.system import info

    data = info(engine)
    data["ClientInfo"] = {"Debug": False, "Context": "default", "Plugins": [],
                          "Warnings": None}  # the docker CLI adds its own part
    if ns.format:
        return print_struct(ns.format, data, INFO_TYPES)
    print(f"""Client:
 Version:    {data['ServerVersion']}
 Context:    default

Server:
 Containers: {data['Containers']}
  Running: {data['ContainersRunning']}
  Paused: {data['ContainersPaused']}
  Stopped: {data['ContainersStopped']}
 Images: {data['Images']}
 Server Version: {data['ServerVersion']}
 Storage Driver: {data['Driver']}
  Backing Filesystem: {data['DriverStatus'][0][1]}
 Logging Driver: {data['LoggingDriver']}
 Cgroup Driver: {data['CgroupDriver']}
 Cgroup Version: {data['CgroupVersion']}
 Runtimes: {' '.join(data['Runtimes'])}
 Default Runtime: {data['DefaultRuntime']}
 Kernel Version: {data['KernelVersion']}
 Operating System: {data['OperatingSystem']}
 OSType: {data['OSType']}
 Architecture: {data['Architecture']}
 CPUs: {data['NCPU']}
 Total Memory: {fmt.bytes_size(data['MemTotal'])}
 Name: {data['Name']}
 Docker Root Dir: {data['DockerRootDir']}""")
    return 0


def cmd_version(ns: argparse.Namespace, engine: Engine | None) -> int:
    from barque.cli.template_views import VERSION_TYPES, print_struct
    from barque.engine.system import version

    data = version()
    if ns.format:
        # Go's field APIVersion is the JSON key ApiVersion: `{{.Client.APIVersion}}` works
        # while `{{json .Client}}` stays as docker prints it.
        data = {k: GoStruct(v, "", {"APIVersion": v.get("ApiVersion")})
                for k, v in data.items()}
        return print_struct(ns.format, data, VERSION_TYPES, name="version")
    server = data["Server"]
    print(f"barque version {server['Version']}")
    print(f" Python:   {server['PythonVersion']}")
    print(f" OS/Arch:  {server['Os']}/{server['Arch']}")
    print(f" Runtime:  {server['Components'][0]['Details']['Path']}")
    return 0


# --- system df, system prune -----------------------------------------------------------------

DF_TABLE = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
DF_CONTEXTS = {"Images": "*formatter.diskUsageImagesContext",  # as docker's errors name them
               "Containers": "*formatter.diskUsageContainersContext",
               "Local Volumes": "*formatter.diskUsageVolumesContext",
               "Build Cache": "*formatter.diskUsageBuilderContext"}
DF_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
              "Reclaimable": "RECLAIMABLE"}


def cmd_df(ns: argparse.Namespace, engine: Engine) -> int:
    from barque.engine.system import disk_usage

    if ns.verbose:
        sys.stdout.write(_df_verbose(engine))
        return 0
    rows = []
    for row in disk_usage(engine):
        size, reclaim = row["Size"], row["Reclaimable"]
        # the docker CLI gives no share for the build cache
        percent = f" ({reclaim * 100 // size}%)" if size and row["Type"] != "Build Cache" \
            else ""
        # strings all, as the docker CLI's JSON has them ({"TotalCount":"6",...})
        # units.HumanSize: 4 significant digits, where ps and images show 3
        fields = {**row, "TotalCount": str(row["TotalCount"]), "Active": str(row["Active"]),
                  "Size": fmt.human_size(size, 4),
                  "Reclaimable": fmt.human_size(reclaim, 4) + percent}
        rows.append(GoStruct(fields, DF_CONTEXTS.get(row["Type"], "*formatter.diskUsageContext")))
    sys.stdout.write(fmt.format_table(rows, ns.format, DF_TABLE, DF_HEADERS))
    return 0


DF_IMAGES = ("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t"
             "{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}")
DF_CONTAINERS = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t"
                 "{{.RunningFor}}\t{{.Status}}\t{{.Names}}")
DF_VOLUMES = "table {{.Name}}\t{{.Links}}\t{{.Size}}"
DF_CACHE = ("table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t"
            "{{.UsageCount}}\t{{.Shared}}")
DF_VERBOSE_HEADERS = {
    "Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED",
    "Size": "SIZE", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
    "Containers": "CONTAINERS", "Image": "IMAGE", "Command": "COMMAND",
    "LocalVolumes": "LOCAL VOLUMES", "RunningFor": "CREATED", "Status": "STATUS",
    "Names": "NAMES", "Name": "VOLUME NAME", "Links": "LINKS", "CacheType": "CACHE TYPE",
    "LastUsedSince": "LAST USED", "UsageCount": "USAGE", "Shared": "SHARED"}


def _df_verbose(engine: Engine) -> str:
    """`docker system df -v`: each kind's table under its title."""
    from barque.cli.containers import ps_row
    from barque.engine.system import build_cache_usage, disk_usage_data, image_usage

    headers = DF_VERBOSE_HEADERS
    images = [{**row, "Size": fmt.human_size(row["Size"], 4),
               "SharedSize": fmt.human_size(row["SharedSize"], 4),
               "UniqueSize": fmt.human_size(row["UniqueSize"], 4),
               "CreatedSince": fmt.time_ago_iso(row["Created"])}
              for row in image_usage(engine)]
    data = disk_usage_data(engine, ("container", "volume"))
    assert data.containers is not None and data.volumes is not None
    containers = [{**ps_row(summary, False), "Size": fmt.human_size(size, 4)}
                  for summary, size in data.containers]
    volumes = [{"Name": v.name, "Links": users, "Size": fmt.human_size(size, 4)}
               for v, size, users in data.volumes]
    entries = build_cache_usage(engine)
    cache = [{"ID": e.id, "CacheType": "regular", "Size": fmt.human_size(e.size, 4),
              "CreatedSince": fmt.time_ago(e.created_at), "LastUsedSince":
              fmt.time_ago(e.last_used), "UsageCount": e.usage_count,
              "Shared": "true" if e.shared else "false"} for e in entries]
    cache_size = sum(e.size for e in entries if not e.shared)
    cache_headers = {**headers, "ID": "CACHE ID", "CreatedSince": "CREATED"}
    return ("Images space usage:\n\n" + fmt.format_table(images, None, DF_IMAGES, headers)
            + "\nContainers space usage:\n\n"
            + fmt.format_table(containers, None, DF_CONTAINERS,
                               {**headers, "ID": "CONTAINER ID"})
            + "\nLocal Volumes space usage:\n\n"
            + fmt.format_table(volumes, None, DF_VOLUMES, headers)
            + f"\nBuild cache usage: {fmt.human_size(cache_size, 4)}\n\n"
            + fmt.format_table(cache, None, DF_CACHE, cache_headers))


def cmd_system_prune(ns: argparse.Namespace, engine: Engine) -> int:
    if ns.filter:
        raise CommandError("system prune --filter is not supported yet")
    what = ["all stopped containers", "all networks not used by at least one container",
            "all dangling images" if not ns.all else
            "all images without at least one container associated to them"]
    if ns.volumes:
        what.insert(2, "all anonymous volumes not used by at least one container")
    what.append("all build cache" if ns.all else "unused build cache")
    if not ns.force and not _confirm("This will remove:\n  - " + "\n  - ".join(what)):
        return 0
    from barque.cli.images import deleted_lines
    from barque.engine.system import prune_system

    report = prune_system(engine, all_images=ns.all, volumes=ns.volumes)
    for error in report.container_errors:
        _daemon_error(EngineError(error))
    for title, names in (("Containers", report.containers), ("Networks", report.networks),
                         ("Volumes", report.volumes)):
        if names:
            print(f"Deleted {title}:\n" + "\n".join(names) + "\n")
    if report.images:
        print("Deleted Images:\n" + deleted_lines(report.images) + "\n")
    if report.build_cache:
        print("Deleted build cache objects:\n" + "\n".join(report.build_cache) + "\n")
    print(f"Total reclaimed space: {fmt.human_size(report.reclaimed)}")
    return 0


# --- port, update ----------------------------------------------------------------------------

def cmd_port(ns: argparse.Namespace, engine: Engine) -> int:
    """`docker port`: the host addresses of a running container's published ports."""
    from barque.engine import netview
    from barque.engine.inspect import network_settings

    record = look_up(engine, ns.container)
    ports = network_settings(engine, record, engine.state(record))["Ports"]
    try:
        lines = netview.port_lines(ports, ns.port, ns.container)
    except netview.ViewError as e:
        raise CommandError(str(e)) from None
    if lines:
        print("\n".join(lines))
    return 0


def cmd_update(ns: argparse.Namespace, engine: Engine) -> int:
    from barque.cli.run_options import (
        FlagValueError,
        OptionError,
        _nano_cpus,
        _size,
        restart_policy,
    )
    from barque.engine.update import update

    try:
        changes: dict[str, Any] = {
            "Memory": _size(ns.memory, "-m, --memory") if ns.memory else None,
            "MemorySwap": (-1 if ns.memory_swap == "-1" else _size(ns.memory_swap,
                                                                   "--memory-swap"))
            if ns.memory_swap else None,
            "MemoryReservation": _size(ns.memory_reservation, "--memory-reservation")
            if ns.memory_reservation else None,
            "NanoCpus": _nano_cpus(ns.cpus) if ns.cpus else None,
            "CpuShares": ns.cpu_shares, "CpuPeriod": ns.cpu_period, "CpuQuota": ns.cpu_quota,
            "CpusetCpus": ns.cpuset_cpus, "CpusetMems": ns.cpuset_mems,
            "PidsLimit": ns.pids_limit, "BlkioWeight": ns.blkio_weight,
            "RestartPolicy": restart_policy(ns.restart) if ns.restart else None,
        }
    except FlagValueError as e:  # pflag's refusal, in cobra's shape (exit 125)
        sys.stderr.write(f"{e}\nSee 'barque update --help'.\n")
        return 125
    except OptionError as e:
        raise CommandError(str(e)) from None
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        raise CommandError("you must provide one or more flags when using this command")
    return _each(ns.containers, lambda name: update(engine, name, changes))



# --- events -----------------------------------------------------------------------------------

def cmd_events(ns: argparse.Namespace, engine: Engine) -> int:
    """`docker events`: the log's events since --since (none: from now on), until --until
    (none: until interrupted), in docker's line format or --format's."""
    from barque.engine import events
    from barque.engine.filters import FilterError, parse_flags

    try:
        filters = parse_flags(ns.filter)
    except FilterError as e:
        raise CommandError(f'invalid argument "{e.item}" for "-f, --filter" flag: {e}') \
            from None
    since, until = _event_time(ns.since), _event_time(ns.until)
    if since is not None and until is not None and until < since:
        raise EngineError(f"`since` time ({_api_time(ns.since, since)}) cannot be after "
                          f"`until` time ({_api_time(ns.until, until)})", 1, 400)
    show = _event_printer(ns.format)
    try:
        for msg in events.read(engine.paths.runroot, since, until, filters, follow=True):
            sys.stdout.write(show(msg))
            sys.stdout.flush()
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _event_time(text: str | None) -> int | None:
    """--since/--until as the docker CLI takes them (a Unix time, an RFC 3339 time or a
    duration before now), in nanoseconds."""
    from barque.engine.logs import parse_since

    if not text:
        return None
    try:
        return int(round(parse_since(text) * 1e9)) or None
    except ValueError as e:
        raise CommandError(str(e)) from None


def _api_time(text: str, ns: int) -> str:
    """What the docker CLI would have sent: a Unix time as given, others as SECONDS.NANOS."""
    try:
        float(text)
        return text
    except ValueError:
        return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def _event_printer(template: str | None) -> Any:
    """The function making an event's output line."""
    import json

    if template in ("json", "{{json .}}"):  # the API's own keys, as Go's encoder
        return lambda msg: json.dumps(msg, ensure_ascii=False, separators=(",", ":")) + "\n"
    if template:
        from barque.cli.gotemplate import compile as compile_template

        tmpl = compile_template(template)
        return lambda msg: tmpl.execute(_go_event(msg)) + "\n"
    return _event_line


def _go_event(msg: dict[str, Any]) -> dict[str, Any]:
    """events.Message by its Go field names (what templates see)."""
    actor = msg.get("Actor") or {}
    return {"Status": msg.get("status", ""), "ID": msg.get("id", ""),
            "From": msg.get("from", ""), "Type": msg.get("Type", ""),
            "Action": msg.get("Action", ""),
            "Actor": {"ID": actor.get("ID", ""), "Attributes": actor.get("Attributes") or {}},
            "Scope": msg.get("scope", ""), "Time": msg.get("time", 0),
            "TimeNano": msg.get("timeNano", 0)}


def _event_line(msg: dict[str, Any]) -> str:
    """docker's prettyPrintEvent: local time with nanoseconds, type, action, actor, and the
    attributes sorted by key."""
    import datetime

    nano = int(msg.get("timeNano") or 0) or int(msg.get("time") or 0) * 1_000_000_000
    stamp = datetime.datetime.fromtimestamp(nano // 1_000_000_000).astimezone()
    offset = stamp.strftime("%z")
    zone = "Z" if offset in ("+0000", "") else f"{offset[:3]}:{offset[3:]}"
    when = f"{stamp:%Y-%m-%dT%H:%M:%S}.{nano % 1_000_000_000:09d}{zone}"
    actor = msg.get("Actor") or {}
    line = f"{when} {msg.get('Type', '')} {msg.get('Action', '')} {actor.get('ID', '')}"
    attributes = actor.get("Attributes") or {}
    if attributes:
        line += " (" + ", ".join(f"{k}={attributes[k]}" for k in sorted(attributes)) + ")"
    return line + "\n"
