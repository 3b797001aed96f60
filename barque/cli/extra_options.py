"""`run`/`create` flags of Docker's whose fields Barque applies in few lines, drops with
dockerd's warning, or refuses (engine/create_fields.py): parsed as the docker CLI parses
them, so that a user gets the engine's clear words ("… is not supported by Barque"), or the
field, rather than an unknown flag. docs/create-fields.md has the table."""

from __future__ import annotations

import argparse

from barque.cli.run_options import ClientCheck, duration_ns, flag_error

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any


def add(p: argparse.ArgumentParser) -> None:
    def append(*flags: str, **kw: Any) -> None:
        p.add_argument(*flags, action="append", default=[], **kw)

    append("-a", "--attach", help="attach to STDIN, STDOUT or STDERR")
    append("--annotation", help="add an annotation to the container (passed through to the "
           "OCI runtime)")
    p.add_argument("--runtime", help="runtime to use for this container")
    p.add_argument("--isolation", help="container isolation technology")
    append("--storage-opt", help="storage driver options for the container")
    p.add_argument("--volume-driver", help="optional volume driver for the container")
    p.add_argument("--gpus", help="GPU devices to add to the container ('all' to pass all "
                   "GPUs)")
    p.add_argument("--kernel-memory", help="kernel memory limit")
    p.add_argument("--cpu-rt-period", type=int, help="limit CPU real-time period in "
                   "microseconds")
    p.add_argument("--cpu-rt-runtime", type=int, help="limit CPU real-time runtime in "
                   "microseconds")
    p.add_argument("--cpu-count", type=int, help="CPU count (Windows only)")
    p.add_argument("--cpu-percent", type=int, help="CPU percent (Windows only)")
    p.add_argument("--io-maxbandwidth", help="maximum IO bandwidth limit for the system drive "
                   "(Windows only)")
    p.add_argument("--io-maxiops", type=int, help="maximum IOps limit for the system drive "
                   "(Windows only)")
    append("--link-local-ip", help="container IPv4/IPv6 link-local addresses")
    p.add_argument("--health-start-interval", help="time between running the check during "
                   "the start period (ms|s|m|h)")


def apply(ns: argparse.Namespace, config: dict[str, Any], host_config: dict[str, Any],
          networking_config: dict[str, Any]) -> None:
    """The flags above into the create body, each only when given (the docker CLI's zero
    values otherwise, which every create may carry)."""
    from barque.cli.run_options import _size

    if ns.attach:
        _attach(ns, config)
    if ns.annotation:
        host_config["Annotations"] = _map(ns.annotation)
    for key, value in (("Runtime", ns.runtime), ("Isolation", ns.isolation),
                       ("VolumeDriver", ns.volume_driver)):
        if value:
            host_config[key] = value
    if ns.storage_opt:
        host_config["StorageOpt"] = _storage_opts(ns.storage_opt)
    if ns.gpus:
        host_config["DeviceRequests"] = [{"Driver": "", "Count": -1, "DeviceIDs": None,
                                          "Capabilities": [["gpu"]], "Options": {}}]
    host_config["KernelMemory"] = _size(ns.kernel_memory, "--kernel-memory")
    host_config["IOMaximumBandwidth"] = _size(ns.io_maxbandwidth, "--io-maxbandwidth")
    for key, value in (("CpuRealtimePeriod", ns.cpu_rt_period),
                       ("CpuRealtimeRuntime", ns.cpu_rt_runtime), ("CpuCount", ns.cpu_count),
                       ("CpuPercent", ns.cpu_percent), ("IOMaximumIOps", ns.io_maxiops)):
        host_config[key] = value or 0
    if ns.link_local_ip:
        _link_local_ips(ns.link_local_ip, host_config, networking_config)
    interval = duration_ns(ns.health_start_interval, "--health-start-interval")
    if interval:
        config["Healthcheck"] = {**(config.get("Healthcheck") or {}), "StartInterval": interval}


def _attach(ns: argparse.Namespace, config: dict[str, Any]) -> None:
    """-a: the streams `run` attaches (the others' output is not shown), as the docker
    CLI's; -i attaches stdin too."""
    streams = set()
    for value in ns.attach:
        if value.lower() not in ("stdin", "stdout", "stderr"):
            raise flag_error(value, "-a, --attach", "valid streams are STDIN, STDOUT and "
                             "STDERR")
        streams.add(value.lower())
    if getattr(ns, "detach", False):
        raise ClientCheck("Conflicting options: -a and -d")
    config["AttachStdin"] = "stdin" in streams or bool(ns.interactive)
    config["AttachStdout"] = "stdout" in streams
    config["AttachStderr"] = "stderr" in streams
    config["StdinOnce"] = bool(ns.interactive) and config["AttachStdin"]


def _map(values: list[str]) -> dict[str, str]:
    """The docker CLI's MapOpts: KEY=VALUE, a bare KEY an empty value."""
    out = {}
    for value in values:
        key, _, setting = value.partition("=")
        out[key] = setting
    return out


def _storage_opts(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, setting = value.partition("=")
        if not sep:
            raise ClientCheck("invalid storage option")
        out[key] = setting
    return out


def _link_local_ips(values: list[str], host_config: dict[str, Any],
                    networking_config: dict[str, Any]) -> None:
    import ipaddress

    for value in values:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise flag_error(value, "--link-local-ip", f"{value} is not an ip address") \
                from None
    endpoints = networking_config.setdefault("EndpointsConfig", {})
    name = next(iter(endpoints), None) or str(host_config.get("NetworkMode") or "default")
    settings = dict(endpoints.get(name) or {})
    settings["IPAMConfig"] = {**(settings.get("IPAMConfig") or {}), "LinkLocalIPs": values}
    endpoints[name] = settings
