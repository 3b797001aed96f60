"""Containers as Docker shows them: `inspect`'s JSON and the rows `ps` lists."""

from __future__ import annotations

import os

from barque.engine.context import Engine
from barque.engine.create import mount_from_record
from barque.engine.records import ContainerRecord

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

# HostConfig as dockerd 20.10 shows it: every field in its Go struct's order (the embedded
# Resources flattened), with the values the docker CLI sends for an unset flag. Keys in
# _OMIT_EMPTY are `json:",omitempty"` there: left out when unset.
_HOST_CONFIG_DEFAULTS: dict[str, Any] = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
    "NetworkMode": "bridge", "PortBindings": {}, "RestartPolicy": {"Name": "no",
    "MaximumRetryCount": 0}, "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None,
    "CapAdd": None, "CapDrop": None, "CgroupnsMode": "host", "Dns": [], "DnsOptions": [],
    "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None, "IpcMode": "private", "Cgroup": "",
    "Links": None, "OomScoreAdj": 0, "PidMode": "", "Privileged": False,
    "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": None, "StorageOpt": None,
    "Tmpfs": None, "UTSMode": "", "UsernsMode": "", "ShmSize": 67108864, "Sysctls": None,
    "Runtime": "barque-runtime", "ConsoleSize": [0, 0], "Isolation": "",
    "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0,
    "BlkioWeightDevice": [], "BlkioDeviceReadBps": None, "BlkioDeviceWriteBps": None,
    "BlkioDeviceReadIOps": None, "BlkioDeviceWriteIOps": None, "CpuPeriod": 0, "CpuQuota": 0,
    "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "",
    "Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None, "KernelMemory": 0,
    "KernelMemoryTCP": 0, "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": None,
    "OomKillDisable": False, "PidsLimit": None, "Ulimits": None, "CpuCount": 0,
    "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0, "Mounts": None,
    "MaskedPaths": None, "ReadonlyPaths": None, "Init": None,
}  # fmt: skip
_OMIT_EMPTY = ("StorageOpt", "Tmpfs", "Sysctls", "Runtime", "Mounts", "Init")

# Config's fields in the Go struct's order; the omitempty ones shown only when set.
_CONFIG_ORDER = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout",
                 "AttachStderr", "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd",
                 "Healthcheck", "ArgsEscaped", "Image", "Volumes", "WorkingDir", "Entrypoint",
                 "NetworkDisabled", "MacAddress", "OnBuild", "Labels", "StopSignal",
                 "StopTimeout", "Shell")
_CONFIG_OMIT_EMPTY = ("ExposedPorts", "Healthcheck", "ArgsEscaped", "NetworkDisabled",
                      "MacAddress", "StopSignal", "StopTimeout", "Shell")


def host_config_view(record: ContainerRecord) -> dict[str, Any]:
    """HostConfig in dockerd's key order; keys Barque adds of its own come last."""
    given = {**record.host_config, "Links": _links(record)}
    if not given.get("Privileged"):
        from barque.engine.spec import DOCKER_MASKED_PATHS, DOCKER_READONLY_PATHS

        if given.get("MaskedPaths") is None:
            given["MaskedPaths"] = list(DOCKER_MASKED_PATHS)
        if given.get("ReadonlyPaths") is None:
            given["ReadonlyPaths"] = list(DOCKER_READONLY_PATHS)
    if not given.get("ShmSize"):
        given["ShmSize"] = _HOST_CONFIG_DEFAULTS["ShmSize"]  # records made before dockerd's
    if not given.get("CgroupnsMode"):  # records made before it was stored: as they run
        from barque.engine.nsmodes import default_cgroupns

        given["CgroupnsMode"] = default_cgroupns()
    out: dict[str, Any] = {}
    for key, default in _HOST_CONFIG_DEFAULTS.items():
        value = given.pop(key, default)
        if key in _OMIT_EMPTY and not value:
            continue
        out[key] = value
    out.update(given)
    return out


def config_view(record: ContainerRecord) -> dict[str, Any]:
    """Config in dockerd's key order; Hostname the short ID where none was given, as dockerd
    stores it."""
    given = {**_config_defaults(record), **record.config}
    if not given.get("Hostname"):
        given["Hostname"] = record.id[:12]
    out: dict[str, Any] = {}
    for key in _CONFIG_ORDER:
        if key in given:
            value = given.pop(key)
            if key not in _CONFIG_OMIT_EMPTY or value:
                out[key] = value
    out.update(given)
    return out


def command_of(record: ContainerRecord) -> list[str]:
    return list(record.config.get("Entrypoint") or []) + list(record.config.get("Cmd") or [])


def mounts_of(engine: Engine, record: ContainerRecord) -> list[dict[str, Any]]:
    out = []
    for entry in record.mounts:
        mount = mount_from_record(entry)
        if mount.type == "tmpfs":
            continue  # Docker lists tmpfs mounts in HostConfig only
        api = mount.api()
        if mount.type == "volume":
            api["Source"] = os.path.join(engine.volumes.dir, mount.source, "_data")
            api["Name"] = mount.source
        out.append(api)
    return out


def inspect(engine: Engine, record: ContainerRecord, size: bool = False) -> dict[str, Any]:
    """dockerd's ContainerInspect; `size` (`inspect -s`, `?size=1`) adds SizeRw and
    SizeRootFs after GraphDriver, where Docker's struct has them."""
    state = engine.state(record)
    restart_count = state.pop("RestartCount")
    command = command_of(record)
    directory = engine.paths.container_dir(record.id)
    snapshot = engine.paths.snapshot_dir(record.id)
    return {
        "Id": record.id,
        "Created": record.created,
        "Path": command[0] if command else "",
        "Args": command[1:],
        "State": state,
        "Image": record.image_id,
        "ResolvConfPath": os.path.join(directory, "resolv.conf"),
        "HostnamePath": os.path.join(directory, "hostname"),
        "HostsPath": os.path.join(directory, "hosts"),
        "LogPath": engine.paths.log_file(record.id),
        "Name": "/" + record.name,
        "RestartCount": restart_count,
        "Driver": "overlay2",  # the name dockerd's scripts test for: the same overlayfs
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": host_config_view(record),
        "GraphDriver": {"Data": {
            "LowerDir": ":".join(_lowers(engine, record)),
            "MergedDir": os.path.join(snapshot, "merged"),
            "UpperDir": os.path.join(snapshot, "upper"),
            "WorkDir": os.path.join(snapshot, "work")}, "Name": "overlay2"},
        **(_sizes(engine, record) if size else {}),
        "Mounts": mounts_of(engine, record),
        "Config": config_view(record),
        "NetworkSettings": network_settings(engine, record, state),
    }


def _sizes(engine: Engine, record: ContainerRecord) -> dict[str, int]:
    from barque.engine.listing import sizes_of

    rw, root = sizes_of(engine, record.id, record.image_id)
    return {"SizeRw": rw, "SizeRootFs": root}


def inspect_object(engine: Engine, name: str, images_too: bool = False, size: bool = False
                   ) -> dict[str, Any] | None:
    """`docker inspect`'s lookup: a container by that name or ID (with its sizes if `size`),
    else (`images_too`) an image, else a network; None if there is none."""
    from barque.engine.errors import EngineError

    try:
        return inspect(engine, engine.find(name), size)
    except EngineError:
        if not images_too:
            return None
    image = engine.store.lookup(name)
    if image is not None:
        from barque.engine import images

        return images.inspect(engine.store, image)
    from barque.engine import networks

    try:
        return networks.inspect(engine, name)
    except EngineError:
        return None


def network_view_data(engine: Engine, record: ContainerRecord) -> tuple[Any, Any, Any]:
    """(endpoints, networks by id, published PortMaps) of a container."""
    from barque.engine import netsetup

    return netsetup.view_data(engine, record)


def network_settings(engine: Engine, record: ContainerRecord,
                     state: dict[str, Any]) -> dict[str, Any]:
    from barque.engine import netview
    from barque.network.ports import ipv6_listenable

    endpoints, networks, published = network_view_data(engine, record)
    sandbox_key = os.path.join(engine.paths.runroot, "netns", record.id)
    # Rows name their address, but those of a Barque before that: "" (0.0.0.0 and ::). A
    # socket's cost only when it matters.
    ipv6 = ipv6_listenable() if any(not p.host_ip for p in published) else True
    return netview.network_settings(record, bool(state["Running"]), endpoints, networks,
                                    published, sandbox_key, ipv6)


def _links(record: ContainerRecord) -> list[str] | None:
    """HostConfig.Links as Docker shows them: "/name:/this/alias", for the default bridge's
    legacy links only."""
    from barque.engine.netchecks import user_defined

    given = record.host_config.get("Links") or []
    if not given or user_defined(str(record.host_config.get("NetworkMode") or "")):
        return None
    out = []
    for link in given:
        name, _, alias = str(link).partition(":")
        name = name.lstrip("/")
        out.append(f"/{name}:/{record.name}/{alias.rpartition('/')[2] or name}")
    return sorted(out)


def _lowers(engine: Engine, record: ContainerRecord) -> list[str]:
    from barque.engine.create import lowers_of
    from barque.image.store import ImageError

    try:
        return lowers_of(engine, record.id, engine.store.get(record.image_id))
    except (ImageError, KeyError):
        return []


def _config_defaults(record: ContainerRecord) -> dict[str, Any]:
    return {"Hostname": record.id[:12], "Domainname": "", "User": "", "AttachStdin": False,
            "AttachStdout": False, "AttachStderr": False, "Tty": False, "OpenStdin": False,
            "StdinOnce": False, "Env": None, "Cmd": None, "Image": record.image,
            "Volumes": None, "WorkingDir": "", "Entrypoint": None, "OnBuild": None,
            "Labels": {}}


def status_text(state: dict[str, Any], now: float | None = None) -> str:
    """`docker ps`'s STATUS column: "Up 5 minutes", "Exited (3) 2 seconds ago", …"""
    import time as _time

    from barque.engine.logs import parse_time
    from barque.engine.state import ZERO_TIME
    from barque.engine.units import human_duration

    now = _time.time() if now is None else now
    status = state["Status"]
    if status in ("running", "paused"):
        from barque.engine.health import ps_suffix

        text = "Up " + human_duration(now - parse_time(state["StartedAt"]))
        return text + (" (Paused)" if status == "paused" else ps_suffix(state.get("Health")))
    if status == "restarting":
        return (f"Restarting ({state['ExitCode']}) "
                f"{human_duration(now - parse_time(state['FinishedAt']))} ago")
    if status == "created":
        return "Created"
    if status == "dead":
        return "Dead"
    if state["FinishedAt"] == ZERO_TIME:
        return f"Exited ({state['ExitCode']})"
    return (f"Exited ({state['ExitCode']}) "
            f"{human_duration(now - parse_time(state['FinishedAt']))} ago")
