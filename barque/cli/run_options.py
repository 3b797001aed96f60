"""`run`/`create` flags made into the Engine API's create body (Config and HostConfig), as
the docker CLI does before it calls the daemon. Bad values fail here in the CLI's words."""

from __future__ import annotations

import argparse
import os
import posixpath
import re
import shlex

from barque.engine.units import parse_bytes, ram_in_bytes

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any


class OptionError(Exception):
    """A bad flag value, refused before anything is made (`docker run` exits 125). This base
    class is for what dockerd checks: the CLI reports it as "Error response from daemon: X"."""


class ClientCheck(OptionError):
    """What the docker CLI checks itself before it calls the daemon: its reportError,
    "docker: X." and "See 'docker run --help'."."""


class FlagValueError(ClientCheck):
    """A value pflag refuses while it parses the flags: `invalid argument "V" for "-m,
    --memory" flag: why`, then the help line (no "docker: ", no full stop)."""


def flag_error(value: str, flag: str, why: str) -> FlagValueError:
    return FlagValueError(f'invalid argument "{value}" for "{flag}" flag: {why}')


def _env_value(value: str) -> str | None:
    """KEY=VALUE as given; a bare KEY copies the host's value, if it has one."""
    key, sep, _ = value.partition("=")
    if not key:
        raise ClientCheck(f"invalid environment variable: {value}")
    if sep:
        return value
    host = os.environ.get(key)
    return None if host is None else f"{key}={host}"


def _read_lines(path: str) -> list[str]:
    try:
        with open(path, "rb") as f:
            raw_lines = f.read().splitlines()
    except OSError as e:
        raise ClientCheck(f"open {path}: {(e.strerror or str(e)).lower()}") from None
    out = []
    for number, raw in enumerate(raw_lines, 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ClientCheck(f"env file {path} contains invalid utf8 bytes at line {number}: "
                              f"{raw.decode('utf-8', 'replace')}") from None
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def environment(ns: argparse.Namespace) -> list[str]:
    values = [v for path in ns.env_file for v in _read_lines(path)] + list(ns.env)
    return [e for e in (_env_value(v) for v in values) if e is not None]


def labels(ns: argparse.Namespace) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in [v for path in ns.label_file for v in _read_lines(path)] + \
            list(ns.label):
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _size(text: str | None, flag: str) -> int:
    if not text:
        return 0
    try:
        size = ram_in_bytes(text)
    except ValueError:
        size = -1
    if not 0 <= size <= 2**63 - 1:  # the API's int64: Go would wrap it to a negative limit
        raise flag_error(text, flag, f"invalid size: '{text}'")
    return size


def _nano_cpus(text: str | None) -> int:
    """As the docker CLI's opts.ParseCPUs: a rational number (big.Rat: "1.5", "3/2", "1e-2",
    never "nan" or "inf"), exact in nano CPUs; the range is the daemon's to check."""
    if not text:
        return 0
    from fractions import Fraction

    try:
        if "_" in text or text.strip() != text:
            raise ValueError(text)
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise flag_error(text, "--cpus", f"failed to parse {text} as a rational number") \
            from None
    nano = value * 1_000_000_000
    if nano.denominator != 1:
        raise flag_error(text, "--cpus", "value is too precise")
    if not -2**63 <= nano.numerator <= 2**63 - 1:
        raise flag_error(text, "--cpus", "value out of range")
    return int(nano)


def ulimits(values: list[str]) -> list[dict[str, Any]]:
    out = []
    for value in values:
        name, sep, limits = value.partition("=")
        if not sep:
            raise flag_error(value, "--ulimit", f"invalid ulimit argument: {value}")
        soft, _, hard = limits.partition(":")
        try:
            soft_n = -1 if soft == "-1" else int(soft)
            hard_n = soft_n if not hard else (-1 if hard == "-1" else int(hard))
        except ValueError:
            raise flag_error(value, "--ulimit", f"invalid ulimit argument: {value}") from None
        if soft_n > hard_n >= 0:
            raise flag_error(value, "--ulimit", "ulimit soft limit must be less than or equal "
                             f"to hard limit: {soft_n} > {hard_n}")
        out.append({"Name": name, "Soft": soft_n, "Hard": hard_n})
    return out


def restart_policy(text: str) -> dict[str, Any]:
    """The docker CLI's ParseRestartPolicy: only the count's syntax; the rest is dockerd's."""
    if text.count(":") > 1:
        raise ClientCheck("invalid restart policy format")
    name, _, count = text.partition(":")
    try:
        retries = int(count) if count else 0
    except ValueError:
        raise ClientCheck("maximum retry count must be an integer") from None
    return {"Name": name or "no", "MaximumRetryCount": retries}


def _device_mode(mode: str) -> bool:
    """validDeviceMode: some of r, w, m, each once."""
    return bool(mode) and set(mode) <= {"r", "w", "m"} and len(set(mode)) == len(mode)


def _clean(path: str) -> str:
    """Go's path.Clean (posixpath keeps a leading "//")."""
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def _validated_device(value: str) -> str:
    """The docker CLI's validateLinuxPath: [host-path:]container-path[:mode], the paths
    cleaned; its errors are its own (reportError)."""
    if value.count(":") > 2 or value.startswith(":"):
        raise ClientCheck(f"bad format for path: {value}")
    split = value.split(":")
    if len(split) == 1:
        target = split[0]
        value = _clean(target)
    elif len(split) == 2:
        if _device_mode(split[1]):
            target = split[0]
            value = f"{_clean(target)}:{split[1]}"
        else:
            target = split[1]
            value = f"{split[0]}:{_clean(target)}"
    else:
        target = split[1]
        if not _device_mode(split[2]):
            raise ClientCheck(f"bad mode specified: {split[2]}")
    if not target.startswith("/"):
        raise ClientCheck(f"{target} is not an absolute path")
    return value


def devices(values: list[str]) -> list[dict[str, str]]:
    """validateDevice then parseLinuxDevice, as the docker CLI."""
    out = []
    for value in values:
        parts = _validated_device(value).split(":")
        host, target, perms = parts[0], "", "rwm"
        if len(parts) == 3:
            perms = parts[2]
        if len(parts) >= 2:
            if _device_mode(parts[1]):
                perms = parts[1]
            else:
                target = parts[1]
        out.append({"PathOnHost": host, "PathInContainer": target or host,
                    "CgroupPermissions": perms})
    return out


def _device_rate(value: str, flag: str) -> tuple[str, str]:
    """DEVICE:VALUE of the blkio flags, the path under /dev/ (the docker CLI's checks)."""
    path, sep, rate = value.partition(":")
    if not sep:
        raise flag_error(value, flag, f"bad format: {value}")
    if not path.startswith("/dev/"):
        raise flag_error(value, flag, f"bad format for device path: {value}")
    return path, rate


def _uint(text: str, bits: int) -> int:
    """Go's strconv.ParseUint(text, 10, bits); ValueError otherwise."""
    if not text.isascii() or not text.isdigit():
        raise ValueError(text)
    number = int(text)
    if number >= 2**bits:
        raise ValueError(text)
    return number


def weight_devices(values: list[str]) -> list[dict[str, Any]]:
    """--blkio-weight-device DEVICE:WEIGHT (10-1000, or 0)."""
    out = []
    for value in values:
        path, text = _device_rate(value, "--blkio-weight-device")
        try:
            weight = _uint(text, 16)
        except ValueError:
            weight = -1
        if weight < 0 or (weight and not 10 <= weight <= 1000):
            raise flag_error(value, "--blkio-weight-device", f"invalid weight for device: "
                             f"{value}")
        out.append({"Path": path, "Weight": weight})
    return out


def throttle_devices(values: list[str], flag: str) -> list[dict[str, Any]]:
    """--device-{read,write}-bps DEVICE:SIZE[kb|mb|gb] and -iops DEVICE:COUNT."""
    out = []
    for value in values:
        path, text = _device_rate(value, flag)
        try:
            rate = ram_in_bytes(text) if flag.endswith("bps") else _uint(text, 64)
        except ValueError:
            rate = -1
        if not 0 <= rate < 2**64:
            how = "<device-path>:<number>[<unit>]. Number must be a positive integer. Unit " \
                "is optional and can be kb, mb, or gb" if flag.endswith("bps") else \
                "<device-path>:<number>. Number must be a positive integer"
            raise flag_error(value, flag, f"invalid rate for device: {value}. The correct "
                             f"format is {how}")
        out.append({"Path": path, "Rate": rate})
    return out


_DEVICE_CGROUP_RULE = re.compile(r"[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}\Z")


def device_cgroup_rules(values: list[str]) -> list[str] | None:
    """--device-cgroup-rule 'TYPE MAJOR:MINOR ACCESS', e.g. 'c 1:3 rwm'."""
    for value in values:
        if not _DEVICE_CGROUP_RULE.match(value):
            raise flag_error(value, "--device-cgroup-rule",
                             f"invalid device cgroup format '{value}'")
    return list(values) or None


def swappiness(text: str) -> int:
    """--memory-swappiness: -1 (the default: the kernel's) or 0-100."""
    try:
        if "_" in text or text.strip() != text:  # Python's int() takes both, Go's not
            raise ValueError(text)
        value = int(text, 10)
    except ValueError:
        raise flag_error(text, "--memory-swappiness", f'strconv.ParseInt: parsing '
                         f'"{text}": invalid syntax') from None
    if value != -1 and not 0 <= value <= 100:
        raise ClientCheck(f"invalid value: {value}. Valid memory swappiness range is 0-100")
    return value


def tmpfs(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        path, _, options = value.partition(":")
        out[path] = options
    return out


_DURATION_NS = {"ns": 1, "us": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def duration_ns(text: str | None, flag: str) -> int:
    if not text:
        return 0
    total, rest = 0, text
    while rest:
        match = re.match(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", rest)
        if not match:
            raise flag_error(text, flag, f'time: invalid duration "{text}"')
        total += int(float(match.group(1)) * _DURATION_NS[match.group(2)]) \
            if len(match.group(1)) < 30 else 2 ** 63  # a float of 400 digits is inf
        rest = rest[match.end():]
    if total >= 2 ** 63:  # Go's durations are int64 nanoseconds
        raise flag_error(text, flag, f'time: invalid duration "{text}"')
    return total


def healthcheck(ns: argparse.Namespace) -> dict[str, Any] | None:
    if ns.no_healthcheck:
        if ns.health_cmd:
            raise ClientCheck("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    check: dict[str, Any] = {}
    if ns.health_cmd:
        check["Test"] = ["CMD-SHELL", ns.health_cmd]
    for key, attr in (("Interval", "health_interval"), ("Timeout", "health_timeout"),
                      ("StartPeriod", "health_start_period")):
        value = duration_ns(getattr(ns, attr), "--" + attr.replace("_", "-"))
        if value:
            check[key] = value
    if ns.health_retries is not None:
        if ns.health_retries < 0:
            raise ClientCheck("--health-retries cannot be negative")
        check["Retries"] = ns.health_retries
    return check or None


def log_config(ns: argparse.Namespace) -> dict[str, Any]:
    if ns.log_driver not in ("json-file", "none"):
        raise OptionError(f'failed to create task for container: logger: no log driver named '
                          f"'{ns.log_driver}' is registered")
    options = {}
    for opt in ns.log_opt:
        key, sep, value = opt.partition("=")
        if not sep:
            raise OptionError(f"invalid key value pair format in log-opt: {opt}")
        if key not in ("max-size", "max-file", "compress", "labels", "env", "tag", "mode"):
            raise OptionError(f"unknown log opt '{key}' for json-file log driver")
        options[key] = value
    if "max-size" in options:
        try:
            parse_bytes(options["max-size"])
        except ValueError:
            raise OptionError(f"invalid size: '{options['max-size']}'") from None
    if "max-file" in options and (not options["max-file"].isdigit() or
                                  int(options["max-file"]) < 1):
        raise OptionError("max-file cannot be less than 1")
    return {"Type": ns.log_driver, "Config": options}


def create_body(ns: argparse.Namespace) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(image, Config, HostConfig) for `run`/`create` flags."""
    image, config, host_config, _ = create_request(ns)
    return image, config, host_config


def create_request(ns: argparse.Namespace
                   ) -> tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(image, Config, HostConfig, NetworkingConfig) for `run`/`create` flags."""
    from barque.cli import net_options

    args = list(ns.args)
    if args and args[0] == "--":
        args = args[1:]
    config: dict[str, Any] = {
        "Hostname": ns.hostname or "",
        "Domainname": ns.domainname or "",
        "User": ns.user or "",
        "AttachStdin": bool(ns.interactive),
        "AttachStdout": not getattr(ns, "detach", False),
        "AttachStderr": not getattr(ns, "detach", False),
        "Tty": bool(ns.tty),
        "OpenStdin": bool(ns.interactive),
        "StdinOnce": bool(ns.interactive) and not getattr(ns, "detach", False),
        "Env": environment(ns),
        "Cmd": args or None,
        "Image": ns.image,
        "WorkingDir": ns.workdir or "",
        "Entrypoint": None,
        "Labels": labels(ns),
    }
    if ns.entrypoint is not None:
        try:
            config["Entrypoint"] = shlex.split(ns.entrypoint) if ns.entrypoint else [""]
        except ValueError as e:  # an unclosed quote
            raise flag_error(ns.entrypoint, "--entrypoint", str(e).lower()) from None
        if not args:
            config["Cmd"] = None
    if ns.stop_signal:
        config["StopSignal"] = ns.stop_signal
    if ns.stop_timeout is not None:
        config["StopTimeout"] = ns.stop_timeout
    check = healthcheck(ns)
    if check is not None:
        config["Healthcheck"] = check
    memory = _size(ns.memory, "-m, --memory")
    swap = -1 if ns.memory_swap == "-1" else _size(ns.memory_swap, "--memory-swap")
    host_config: dict[str, Any] = {
        "Binds": list(ns.volume) or None,  # the docker CLI's nil slices: null in inspect
        "Mounts": [],
        "Tmpfs": tmpfs(ns.tmpfs),
        "VolumesFrom": list(ns.volumes_from) or None,
        "ReadonlyRootfs": bool(ns.read_only),
        "Memory": memory,
        "MemorySwap": swap,
        "MemoryReservation": _size(ns.memory_reservation, "--memory-reservation"),
        "NanoCpus": _nano_cpus(ns.cpus),
        "CpuShares": ns.cpu_shares or 0,
        "CpuPeriod": ns.cpu_period or 0,
        "CpuQuota": ns.cpu_quota or 0,
        "CpusetCpus": ns.cpuset_cpus or "",
        "CpusetMems": ns.cpuset_mems or "",
        "PidsLimit": ns.pids_limit,
        "BlkioWeight": ns.blkio_weight or 0,
        "BlkioWeightDevice": weight_devices(ns.blkio_weight_device),
        # the docker CLI 20.10's: [] for no weight device, null for no throttle
        "BlkioDeviceReadBps": throttle_devices(ns.device_read_bps, "--device-read-bps")
        or None,
        "BlkioDeviceWriteBps": throttle_devices(ns.device_write_bps, "--device-write-bps")
        or None,
        "BlkioDeviceReadIOps": throttle_devices(ns.device_read_iops, "--device-read-iops")
        or None,
        "BlkioDeviceWriteIOps": throttle_devices(ns.device_write_iops, "--device-write-iops")
        or None,
        "MemorySwappiness": swappiness(ns.memory_swappiness),
        "CgroupParent": ns.cgroup_parent or "",
        "ContainerIDFile": ns.cidfile or "",
        "Ulimits": ulimits(ns.ulimit) or None,
        "CapAdd": list(ns.cap_add) or None,
        "CapDrop": list(ns.cap_drop) or None,
        "Privileged": bool(ns.privileged),
        "SecurityOpt": _security_opts(ns.security_opt) or None,
        "Init": True if ns.init else None,
        "RestartPolicy": restart_policy(ns.restart),
        "AutoRemove": bool(getattr(ns, "rm", False)),
        "Devices": devices(ns.device),
        "DeviceCgroupRules": device_cgroup_rules(ns.device_cgroup_rule),
        "GroupAdd": list(ns.group_add) or None,
        "ShmSize": _size(ns.shm_size, "--shm-size"),
        "Sysctls": sysctls(ns.sysctl) or None,
        "OomKillDisable": bool(ns.oom_kill_disable),
        "OomScoreAdj": ns.oom_score_adj or 0,
        "LogConfig": log_config(ns),
    }
    namespace_modes(ns, host_config)
    if getattr(ns, "userns", None):
        if ns.userns.split(":")[0] not in ("", "host"):  # moby's UsernsMode.Valid
            raise OptionError("--userns: invalid USER mode")
        host_config["UsernsMode"] = ns.userns
    if host_config["AutoRemove"] and host_config["RestartPolicy"]["Name"] != "no":
        raise ClientCheck("Conflicting options: --restart and --rm")
    networking_config = net_options.apply(ns, config, host_config)
    from barque.engine.mounts import MountError, parse_mount, to_api

    try:
        host_config["Mounts"] = [to_api(parse_mount(m)) for m in ns.mount]
    except MountError as e:
        raise OptionError(str(e)) from None
    from barque.cli import extra_options

    extra_options.apply(ns, config, host_config, networking_config)
    return ns.image, config, host_config, networking_config


def namespace_modes(ns: argparse.Namespace, host_config: dict[str, Any]) -> None:
    """--pid, --uts and --cgroupns as the docker CLI checks them (moby's Valid methods);
    --ipc is dockerd's to check."""
    from barque.engine import nsmodes

    for flag, key, what in (("pid", "PidMode", "PID"), ("uts", "UTSMode", "UTS"),
                            ("cgroupns", "CgroupnsMode", "CGROUP"), ("ipc", "IpcMode", "")):
        value = getattr(ns, flag, None)
        if value is None:
            continue
        if what:
            try:
                nsmodes.check_words({key: value})
            except nsmodes.EngineError:
                raise ClientCheck(f"--{flag}: invalid {what} mode") from None
        host_config[key] = value


def sysctls(values: list[str]) -> dict[str, str]:
    """As the docker CLI's opts.ValidateSysctl: only namespaced sysctls, as KEY=VALUE."""
    from barque.engine.sysctls import allowed

    out = {}
    for value in values:
        key, sep, setting = value.partition("=")
        if not sep or not allowed(key):
            # Docker 20.10's words (the oracle's); 23+ say "is not allowed"
            raise flag_error(value, "--sysctl", f"sysctl '{value}' is not whitelisted")
        out[key] = setting
    return out


def _security_opts(values: list[str]) -> list[str]:
    """As the docker CLI: a seccomp profile file is read here and sent as its content."""
    out = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep and value != "no-new-privileges" and ":" not in value:
            from barque.cli.gofmt import quote  # the docker CLI's own check, its %q

            raise ClientCheck(f"Invalid --security-opt: {quote(value)}")
        if key == "seccomp" and sep and rest not in ("unconfined", "builtin") and \
                not rest.lstrip().startswith("{"):
            try:
                with open(rest, encoding="utf-8", errors="surrogateescape") as f:
                    value = "seccomp=" + f.read()
            except OSError as e:
                raise ClientCheck(f"opening seccomp profile ({rest}) failed: open {rest}: "
                                  f"{(e.strerror or str(e)).lower()}") from None
        out.append(value)
    return out
