"""The create body's fields that Barque does not apply as dockerd does: never ignored silently.
Each is refused with a clear 400 (the CLI's 125) unless it holds its zero or default value,
which the docker CLI, the SDK and compose send for every create; or dropped with dockerd's
warning where dockerd itself drops it. docs/create-fields.md is the table of every field of
Config, HostConfig and NetworkingConfig (API 1.43) and every `docker run` flag.

Not here (other modules own them): IpcMode, UTSMode, PidMode, CgroupnsMode, CgroupParent,
DeviceCgroupRules, Blkio*, MemorySwappiness, ContainerIDFile."""

from __future__ import annotations

import os

from barque.engine.errors import EngineError

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

# The runtime names a create may give: Barque's own, and dockerd's default runtime's name
# (barque-runtime is runc's drop-in, and is what Barque runs for every container).
RUNTIMES = ("", "barque-runtime", "runc")
LOG_DRIVERS = ("", "json-file", "none")
# json-file's options that Barque applies, and those dockerd knows whose defaults Barque
# keeps (any other value is refused).
_LOG_APPLIED = ("max-size", "max-file")
_LOG_DEFAULTS = {"compress": ("", "false"), "mode": ("", "blocking"), "labels": ("",),
                 "labels-regex": ("",), "env": ("",), "env-regex": ("",), "tag": ("",),
                 "max-buffer-size": ("",)}
_KMEM_TCP_FILE = "/sys/fs/cgroup/memory/memory.kmem.tcp.limit_in_bytes"


def unsupported(field: str, why: str = "") -> EngineError:
    return EngineError(f"{field} is not supported by Barque" + (f" ({why})" if why else ""),
                       status=400)


def _set(value: Any) -> bool:
    """A value that is not the zero one the clients send for an unset field."""
    return value not in (None, 0, "", False, [], {})


def check(config: dict[str, Any], host_config: dict[str, Any],
          networking_config: dict[str, Any]) -> list[str]:
    """Refuse what Barque would drop; drop, with dockerd's warnings, what dockerd drops (from
    `host_config`, in place); the warnings. Nothing is made before this."""
    _check_config(config)
    _check_host(host_config)
    _check_log_config(host_config.get("LogConfig"))
    _check_mounts(host_config.get("Mounts") or [])
    for name, settings in (networking_config.get("EndpointsConfig") or {}).items():
        _check_endpoint(name, settings or {})
    _mac_address(config, host_config, networking_config)
    return _discarded(host_config)


def _check_config(config: dict[str, Any]) -> None:
    if config.get("NetworkDisabled"):
        raise unsupported("NetworkDisabled", "use NetworkMode \"none\"")
    health = config.get("Healthcheck") or {}
    if isinstance(health, dict):
        _check_health(health)


def _check_health(health: dict[str, Any]) -> None:
    """dockerd's validateHealthCheck, in its words; a test type dockerd would only log
    about (and never run) is refused."""
    for key in ("Interval", "Timeout", "StartPeriod"):
        value = health.get(key) or 0
        if not isinstance(value, int) or 0 != value < 1_000_000:
            raise EngineError(f"{key} in Healthcheck cannot be less than 1ms", status=400)
    retries = health.get("Retries") or 0
    if not isinstance(retries, int) or retries < 0:
        raise EngineError("Retries in Healthcheck cannot be negative", status=400)
    test = health.get("Test") or []
    if test and (not isinstance(test, list) or
                 str(test[0]) not in ("NONE", "CMD", "CMD-SHELL")):
        raise unsupported(f"healthcheck type {str(test[0]) if isinstance(test, list) else test!r}",
                          "only CMD, CMD-SHELL and NONE")
    if _set(health.get("StartInterval")):
        raise unsupported("Healthcheck.StartInterval")


def _check_host(hc: dict[str, Any]) -> None:
    runtime = str(hc.get("Runtime") or "")
    if runtime not in RUNTIMES:
        raise unsupported(f"runtime {runtime!r}", "its runtime is barque-runtime")
    isolation = str(hc.get("Isolation") or "")
    if isolation not in ("", "default"):
        raise EngineError(f"Invalid isolation: \"{isolation}\" - linux only supports "
                          "'default'", status=400)  # dockerd's words
    if str(hc.get("VolumeDriver") or "") not in ("", "local"):
        raise unsupported(f"volume driver {hc['VolumeDriver']!r}", "only \"local\"")
    for key in ("Cgroup", "StorageOpt", "DeviceRequests", "CpuRealtimePeriod",
                "CpuRealtimeRuntime"):
        if _set(hc.get(key)):
            raise unsupported(key)
    if _set(hc.get("IOMaximumIOps")) or _set(hc.get("IOMaximumBandwidth")):
        raise EngineError("Invalid QoS settings: linux does not support Maximum IO Bandwidth "
                          "or Maximum IO IOps", status=400)  # dockerd's words
    score = hc.get("OomScoreAdj") or 0
    if not isinstance(score, int) or not -1000 <= score <= 1000:
        raise EngineError(f"Invalid value {score}, range for oom score adj is [-1000, 1000]",
                          status=400)
    size = hc.get("ConsoleSize")
    if size is not None and not (isinstance(size, list) and len(size) == 2 and
                                 all(isinstance(n, int) and n >= 0 for n in size)):
        raise EngineError("invalid ConsoleSize: two unsigned integers, [height, width]",
                          status=400)
    annotations = hc.get("Annotations")
    if annotations is not None and not (
            isinstance(annotations, dict) and
            all(isinstance(k, str) and k and isinstance(v, str) for k, v in annotations.items())):
        raise EngineError("invalid Annotations: an object of non-empty keys to strings",
                          status=400)
    for key in ("MaskedPaths", "ReadonlyPaths"):
        paths = hc.get(key)
        if paths is not None and not (isinstance(paths, list) and
                                      all(isinstance(p, str) and p.startswith("/")
                                          for p in paths)):
            raise EngineError(f"invalid {key}: a list of absolute paths", status=400)


def _check_log_config(log_config: Any) -> None:
    if not isinstance(log_config, dict):
        return
    driver = str(log_config.get("Type") or "")
    if driver not in LOG_DRIVERS:
        raise unsupported(f"logging driver {driver!r}", "only json-file and none")
    options = log_config.get("Config") or {}
    if driver == "none" and options:
        raise EngineError(f"unknown log opt '{next(iter(options))}' for none log driver",
                          status=400)
    for key, value in options.items():
        if key in _LOG_APPLIED:
            continue
        if key not in _LOG_DEFAULTS:
            raise EngineError(f"unknown log opt '{key}' for json-file log driver", status=400)
        if str(value) not in _LOG_DEFAULTS[key]:
            raise unsupported(f"log opt {key}={value}")


_MOUNT_OPTIONS = {"bind": "BindOptions", "volume": "VolumeOptions", "tmpfs": "TmpfsOptions"}


def _check_mounts(mounts: list[Any]) -> None:
    """HostConfig.Mounts' options: dockerd's (API 1.42+) checks of which options go with
    which type, then what Barque does not apply. BindOptions.CreateMountpoint is applied
    (engine/mounts.py)."""
    for m in mounts:
        if not isinstance(m, dict):
            continue
        kind = str(m.get("Type") or "")
        if kind not in _MOUNT_OPTIONS:  # npipe (Windows), cluster (swarm), image (1.48)
            raise EngineError(f"invalid mount config for type \"{kind}\": mount type "
                              "unknown", status=400)  # dockerd's words
        for other, key in _MOUNT_OPTIONS.items():
            if m.get(key) is not None and kind != other:
                raise EngineError(f"{key} must not be specified on mount type \"{kind}\"",
                                  status=400)
        bind = m.get("BindOptions") or {}
        for key in ("NonRecursive", "ReadOnlyNonRecursive", "ReadOnlyForceRecursive"):
            if bind.get(key):
                raise unsupported(f"mount option BindOptions.{key}")
        volume = m.get("VolumeOptions") or {}
        for key in ("Labels", "Subpath"):
            if _set(volume.get(key)):
                raise unsupported(f"mount option VolumeOptions.{key}")
        driver = volume.get("DriverConfig") or {}
        if str(driver.get("Name") or "") not in ("", "local") or _set(driver.get("Options")):
            raise unsupported("mount option VolumeOptions.DriverConfig", "only the local "
                              "driver without options")
        if _set((m.get("TmpfsOptions") or {}).get("Options")):
            raise unsupported("mount option TmpfsOptions.Options")


def _check_endpoint(name: str, settings: dict[str, Any]) -> None:
    if name in ("none", "host") and settings.get("MacAddress"):  # no interface of its own
        raise EngineError("conflicting options: mac-address and the network mode",
                          status=400)
    ipam = settings.get("IPAMConfig") or {}
    if _set(ipam.get("LinkLocalIPs")):
        raise unsupported(f"network {name}: LinkLocalIPs (--link-local-ip)")
    if _set(settings.get("DriverOpts")):
        raise unsupported(f"network {name}: endpoint DriverOpts")
    if _set(settings.get("GwPriority")):
        raise unsupported(f"network {name}: GwPriority")


def _mac_address(config: dict[str, Any], host_config: dict[str, Any],
                 networking_config: dict[str, Any]) -> None:
    """Config.MacAddress (deprecated in API 1.44, which moved it to the endpoint): the MAC
    of the endpoint of NetworkMode, as dockerd applies it."""
    mac = str(config.get("MacAddress") or "")
    endpoints = networking_config.get("EndpointsConfig") or {}
    mode = str(host_config.get("NetworkMode") or "")
    if mac and mode == "none":
        raise EngineError("conflicting options: mac-address and the network mode",
                          status=400)  # as netchecks with host and a container's network
    if not mac or mode not in endpoints:
        return
    settings = dict(endpoints[mode] or {})
    if settings.get("MacAddress") and settings["MacAddress"] != mac:
        raise EngineError("the container's MacAddress and its endpoint's differ", status=400)
    settings["MacAddress"] = mac
    endpoints[mode] = settings


def _discarded(hc: dict[str, Any]) -> list[str]:
    """What dockerd drops with a warning (or, for CpuCount, a Windows-only field dockerd
    drops without one: Barque says so)."""
    warnings = []
    if _set(hc.get("KernelMemory")):
        # Removed from API 1.42 and no longer enforced by the kernel: dockerd drops it.
        warnings += ["Specifying a kernel memory limit is deprecated and will be removed in a "
                     "future release.",
                     "Your kernel does not support kernel memory limit capabilities or the "
                     "cgroup is not mounted. Limitation discarded."]
        hc["KernelMemory"] = 0
    if _set(hc.get("KernelMemoryTCP")) and not os.path.exists(_KMEM_TCP_FILE):
        warnings.append("Your kernel does not support kernel memory TCP limit capabilities "
                        "or the cgroup is not mounted. Limitation discarded.")
        hc["KernelMemoryTCP"] = 0
    if _set(hc.get("CpuPercent")):
        warnings.append("linux does not support CPU percent. Percent discarded.")
        hc["CpuPercent"] = 0
    if _set(hc.get("CpuCount")):
        warnings.append("linux does not support CPU count. Count discarded.")
        hc["CpuCount"] = 0
    return warnings


def spec_resources(host_config: dict[str, Any], resources: dict[str, Any]) -> None:
    """The fields above that reach linux.resources: KernelMemoryTCP (cgroup v1's
    memory.kmem.tcp.limit_in_bytes; dropped at create where the host has none)."""
    tcp = host_config.get("KernelMemoryTCP")
    if tcp:
        resources.setdefault("memory", {})["kernelTCP"] = int(tcp)


def apply_to_spec(spec: dict[str, Any], config: dict[str, Any],
                  host_config: dict[str, Any]) -> None:
    """ConsoleSize (the TTY's first size, as dockerd since API 1.42) and Annotations (the
    OCI spec's, as dockerd since API 1.43)."""
    size = host_config.get("ConsoleSize") or [0, 0]
    if config.get("Tty") and size[0] and size[1]:
        spec["process"]["consoleSize"] = {"height": int(size[0]), "width": int(size[1])}
    annotations = host_config.get("Annotations")
    if annotations:
        spec["annotations"] = {**(spec.get("annotations") or {}), **annotations}
