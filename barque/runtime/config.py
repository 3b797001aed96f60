"""Reading and checking a bundle's config.json before anything is created."""

from __future__ import annotations

import os

from barque.linux.namespaces import NAMESPACES
from barque.runtime import fastjson as json
from barque.runtime import sysctl
from barque.runtime.errors import RuntimeFailure

# linux.devices types: runc's stringToDeviceRune ("u", unbuffered, is a character device)
DEVICE_TYPES = ("c", "u", "b", "p")


def load_bundle(bundle: str) -> tuple[dict, str]:
    """Return (config, absolute rootfs path) or raise a RuntimeFailure saying what is wrong."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise RuntimeFailure(f"JSON specification file {path} not found") from None
    except OSError as e:
        raise RuntimeFailure(f"cannot read {path}: {e.strerror}") from None
    try:
        config = json.loads(raw)
    except ValueError as e:
        raise RuntimeFailure(f"invalid config.json: {e}") from None
    if not isinstance(config, dict):
        raise RuntimeFailure("invalid config.json: the top level must be an object")
    # A NUL can only come from a \u0000 escape (the scanner refuses raw control characters):
    # without one the walk over every string (~2 ms for Docker's seccomp profile) is moot.
    validate(config, may_hold_nul=b"\\u0000" in raw)
    rootfs = config["root"]["path"]
    if not os.path.isabs(rootfs):
        rootfs = os.path.join(bundle, rootfs)
    rootfs = os.path.realpath(rootfs)
    if not os.path.isdir(rootfs):
        raise RuntimeFailure(f"rootfs ({rootfs}) does not exist or is not a directory")
    return config, rootfs


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise RuntimeFailure(f"invalid config.json: {message}")


def _list_of(value: object, kind: type) -> bool:
    """Absent, or a list of `kind`."""
    return value is None or (isinstance(value, list) and all(isinstance(v, kind) for v in value))


def _nul_in(value: object) -> bool:
    if isinstance(value, str):
        return "\0" in value
    if isinstance(value, dict):
        return any(_nul_in(k) or _nul_in(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_nul_in(v) for v in value)
    return False


def _check_shapes(config: dict, may_hold_nul: bool = True) -> None:
    """The types every later check (and the runtime) indexes by, refused with a message
    rather than failing as a TypeError there: the config is whoever wrote the pod spec's."""
    _require(not (may_hold_nul and _nul_in({k: v for k, v in config.items()
                                            if k != "annotations"})),
             "strings cannot contain NUL bytes (no path, argument or setting can)")
    linux = config.get("linux") or {}
    _require(isinstance(linux, dict), "linux must be an object")
    _require(_list_of(linux.get("namespaces"), dict), "linux.namespaces must be a list of "
             "objects")
    _require(all(isinstance(ns.get("type"), str) for ns in linux.get("namespaces") or []),
             "every namespace needs a type")
    _require(_list_of(config.get("mounts"), dict), "mounts must be a list of objects")
    for m in config.get("mounts") or []:
        _require(_list_of(m.get("options"), str), "mount options must be a list of strings")
    hooks = config.get("hooks") or {}
    _require(isinstance(hooks, dict) and all(h is not None and _list_of(h, dict)
                                             for h in hooks.values()),
             "hooks must be an object of lists of objects")


def _check_process_shapes(process: dict, may_hold_nul: bool = True) -> None:
    _require(not (may_hold_nul and _nul_in(process)), "process strings cannot contain NUL bytes")
    _require(_list_of(process.get("env"), str), "process.env must be a list of strings")
    for key in ("scheduler", "ioPriority", "execCPUAffinity"):
        _require(process.get(key) is None or isinstance(process[key], dict),
                 f"process.{key} must be an object")
    for key, field in (("scheduler", "policy"), ("ioPriority", "class")):
        _require(isinstance((process.get(key) or {}).get(field, ""), str),
                 f"process.{key}.{field} must be a string")
    _require(_list_of((process.get("scheduler") or {}).get("flags"), str),
             "process.scheduler.flags must be a list of strings")


def validate(config: dict, may_hold_nul: bool = True) -> None:
    """`may_hold_nul`: False when the JSON text had no \\u0000, so no string holds a NUL."""
    _check_shapes(config, may_hold_nul)
    _require(isinstance(config.get("ociVersion"), str), "ociVersion must be a string")
    root = config.get("root")
    _require(isinstance(root, dict) and isinstance(root.get("path"), str) and root["path"] != "",
             "root.path is required")
    process = config.get("process")
    if not isinstance(process, dict):
        raise RuntimeFailure("invalid config.json: process is required")
    validate_process(process)
    linux = config.get("linux") or {}
    _require(isinstance(linux, dict), "linux must be an object")
    seen: set[str] = set()
    for ns in linux.get("namespaces") or []:
        kind = ns.get("type") if isinstance(ns, dict) else None
        _require(kind in NAMESPACES, f"unknown namespace type {kind!r}")
        _require(kind not in seen, f"namespace {kind} listed twice")
        seen.add(str(kind))
    # No mount namespace is valid (runc chroots into the rootfs), but runc's validator
    # refuses to mask or make read-only paths then, in these words.
    if "mount" not in seen and (linux.get("maskedPaths") or linux.get("readonlyPaths")):
        raise RuntimeFailure("unable to restrict sys entries without a private MNT namespace")
    if "user" in seen and not any(
        ns.get("type") == "user" and ns.get("path") for ns in linux["namespaces"]
    ):
        _require(bool(linux.get("uidMappings")) and bool(linux.get("gidMappings")),
                 "a new user namespace needs uidMappings and gidMappings")
    for m in config.get("mounts") or []:
        _require(isinstance(m, dict) and isinstance(m.get("destination"), str),
                 "every mount needs a destination")
        _require(os.path.isabs(m["destination"]),
                 f"mount destination {m['destination']!r} is not absolute")
        _require(isinstance(m.get("options", []), list),
                 f"mount {m['destination']}: options must be a list")
        if m.get("uidMappings") or {"idmap", "ridmap"} & set(m.get("options") or []):
            raise RuntimeFailure(f"mount {m['destination']}: idmapped mounts are not supported "
                                 "by barque-runtime")
    for dev in linux.get("devices") or []:
        _require(isinstance(dev, dict) and isinstance(dev.get("path"), str),
                 "every device needs a path")
        if dev.get("type", "") not in DEVICE_TYPES:  # runc's words (specconv)
            raise RuntimeFailure(f'invalid device type "{dev.get("type", "")}"')
    personality = linux.get("personality")
    if personality is not None:
        _require(isinstance(personality, dict) and personality.get("domain") in
                 ("LINUX", "LINUX32"), "linux.personality.domain must be LINUX or LINUX32")
    sysctl.validate(config)
    for key in ("intelRdt", "netDevices", "memoryPolicy"):
        if linux.get(key):
            raise RuntimeFailure(f"linux.{key} is not supported by barque-runtime")
    for kind, hooks in (config.get("hooks") or {}).items():
        for hook in hooks:
            _require(isinstance(hook, dict) and os.path.isabs(str(hook.get("path", ""))),
                     f"{kind} hook path must be absolute")


def validate_process(process: dict) -> None:
    args = process.get("args")
    _require(isinstance(args, list) and len(args) > 0 and all(isinstance(a, str) for a in args),
             "process.args must be a non-empty list of strings")
    cwd = process.get("cwd", "/")
    _require(isinstance(cwd, str) and os.path.isabs(cwd),
             f"process.cwd {cwd!r} must be an absolute path")
    _check_process_shapes(process)
    user = process.get("user", {})
    _require(isinstance(user, dict), "process.user must be an object")
    for key in ("uid", "gid"):
        _require(isinstance(user.get(key, 0), int) and user.get(key, 0) >= 0,
                 f"process.user.{key} must be a non-negative integer")
    for env in process.get("env") or []:
        _require(isinstance(env, str) and "=" in env, f"bad environment entry {env!r}")
    _validate_labels(process)
    _validate_scheduling(process)


def _validate_labels(process: dict) -> None:
    """A confinement asked for on a host that cannot give it is an error, not a warning: the
    process would run unconfined (runc's validator says the same of SELinux labels, and its
    AppArmor write fails where AppArmor is not loaded). "unconfined" asks for nothing."""
    if not process.get("apparmorProfile") and not process.get("selinuxLabel"):
        return
    from barque.linux import lsm

    if process.get("apparmorProfile") not in (None, "", "unconfined") and \
            not lsm.apparmor_enabled():
        raise RuntimeFailure("apparmor profile is specified in config, but apparmor is "
                             "disabled or not supported")
    if process.get("selinuxLabel") and not lsm.selinux_enabled():
        raise RuntimeFailure("selinux label is specified in config, but selinux is disabled "
                             "or not supported")


def _validate_scheduling(process: dict) -> None:
    if not {"scheduler", "ioPriority", "execCPUAffinity"} & process.keys():
        return  # the common case: no need to import sched (and with it ctypes) here
    from barque.linux import sched

    scheduler = process.get("scheduler")
    if scheduler is not None:
        _require(isinstance(scheduler, dict) and scheduler.get("policy") in sched.POLICIES,
                 f"process.scheduler.policy must be one of {', '.join(sched.POLICIES)}")
        for flag in scheduler.get("flags") or []:
            _require(flag in sched.FLAGS, f"unknown process.scheduler flag {flag!r}")
    io = process.get("ioPriority")
    if io is not None:
        _require(isinstance(io, dict) and io.get("class") in sched.IOPRIO_CLASSES,
                 f"process.ioPriority.class must be one of {', '.join(sched.IOPRIO_CLASSES)}")
        _require(isinstance(io.get("priority", 0), int) and 0 <= io.get("priority", 0) <= 7,
                 "process.ioPriority.priority must be 0 to 7")
    affinity = process.get("execCPUAffinity") or {}
    for key in ("initial", "final"):
        if affinity.get(key):
            try:
                sched.parse_cpus(str(affinity[key]))
            except ValueError:
                raise RuntimeFailure(f"invalid config.json: bad CPU list in "
                                     f"process.execCPUAffinity.{key}: {affinity[key]!r}") from None
