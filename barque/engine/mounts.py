"""Volumes and mounts as `docker run` takes them (`-v`, `--mount`, `--tmpfs`), parsed into one
form, checked at create time, and made into OCI mounts at start.

Docker's words are kept for every error: the CLI and the Engine API both report them.
"""

from __future__ import annotations

import os
import re

from barque.structs import dataclass, field

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

# A pattern, compiled on first use (re caches it), not by every command at import.
VOLUME_NAME_RE = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+\Z"
_PROPAGATION = ("shared", "rshared", "slave", "rslave", "private", "rprivate")
_DEFAULT_TMPFS = ["nosuid", "nodev", "noexec"]


class MountError(Exception):
    pass


@dataclass
class Mount:
    """One user mount. `source`: a host path (bind), a volume name (volume; "" means a new
    anonymous volume), or "" (tmpfs)."""

    type: str  # "bind", "volume" or "tmpfs"
    source: str
    target: str
    read_only: bool = False
    propagation: str = ""
    no_copy: bool = False
    options: list[str] = field(default_factory=list)  # tmpfs mount options
    create_source: bool = False  # -v binds create a missing host directory; --mount does not
    anonymous: bool = False  # a volume made for this container alone (`rm -v` removes it)
    mode: str = ""  # MountPoint.Mode as dockerd shows it: -v's options as given, "z" by default
    # for a named volume

    def api(self) -> dict[str, Any]:
        """The Engine API's MountPoint, for `inspect`'s "Mounts": the Go struct's field order,
        Name and Driver only for volumes (omitempty), binds rprivate unless told otherwise."""
        out: dict[str, Any] = {"Type": self.type}
        if self.type == "volume":
            out["Name"] = self.source
        out.update(Source=self.source, Destination=self.target)
        if self.type == "volume":
            out["Driver"] = "local"
        out.update(Mode=self.mode, RW=not self.read_only, Propagation=self.propagation or (
            "rprivate" if self.type == "bind" else ""))
        return out



def _check_target(spec: str, target: str) -> None:
    if not target.startswith("/"):
        raise MountError(f"invalid volume specification: '{spec}': invalid mount config: "
                         f"invalid mount path: '{target}' mount path must be absolute")
    if os.path.normpath(target) == "/":
        raise MountError(f"invalid volume specification: '{spec}': invalid mount config: "
                         "destination can't be '/'")


def parse_bind(spec: str) -> Mount:
    """`-v SRC:DST[:OPTS]` or `-v DST` (a new anonymous volume)."""
    parts = spec.split(":")
    if not spec or len(parts) > 3 or any(p == "" for p in parts):
        raise MountError(f"invalid volume specification: '{spec}'")
    if len(parts) == 1:
        _check_target(spec, parts[0])
        return Mount("volume", "", parts[0])
    source, target = parts[0], parts[1]
    _check_target(spec, target)
    mount = Mount("bind" if source.startswith("/") else "volume", source, target)
    if mount.type == "volume" and not re.match(VOLUME_NAME_RE, source):
        raise MountError(f"invalid volume specification: '{spec}': \"{source}\" includes "
                         "invalid characters for a local volume name, only "
                         "\"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass "
                         "a host directory, use absolute path")
    mount.create_source = mount.type == "bind"
    mount.mode = parts[2] if len(parts) == 3 else "z" if mount.type == "volume" else ""
    for opt in parts[2].split(",") if len(parts) == 3 else []:
        if opt in ("ro", "rw"):
            mount.read_only = opt == "ro"
        elif opt in _PROPAGATION and mount.type == "bind":
            mount.propagation = opt
        elif opt == "nocopy" and mount.type == "volume":
            mount.no_copy = True
        elif opt in ("z", "Z"):
            pass  # SELinux relabelling: nothing to do on a host without SELinux
        else:
            raise MountError(f"invalid volume specification: '{spec}': invalid mode: {opt}")
    return mount


def _csv_fields(spec: str) -> list[str]:
    import csv

    try:
        return next(csv.reader([spec])) if spec else []
    except (csv.Error, StopIteration) as e:  # a line break, a stray quote
        raise MountError(f"invalid argument for --mount: {e}") from None


def parse_mount(spec: str) -> Mount:
    """`--mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,…]`."""
    values: dict[str, str] = {}
    flags: set[str] = set()
    for item in _csv_fields(spec):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep:
            if key in ("readonly", "ro", "volume-nocopy"):
                flags.add(key)
                continue
            raise MountError(f"invalid argument for --mount: invalid field '{item}' must be a "
                             "key=value pair")
        values[key] = value
    kind = values.pop("type", "volume")
    source = values.pop("source", values.pop("src", ""))
    target = values.pop("target", values.pop("destination", values.pop("dst", "")))
    if kind not in ("bind", "volume", "tmpfs"):
        raise MountError(f"invalid argument for --mount: invalid mount type: {kind}")
    if not target:
        raise MountError("invalid argument for --mount: target is required")
    mount = Mount(kind, source, target)
    if values.pop("readonly", values.pop("ro", "false")).lower() in ("1", "true") or \
            {"readonly", "ro"} & flags:
        mount.read_only = True
    if "volume-nocopy" in flags or values.pop("volume-nocopy", "false") == "true":
        mount.no_copy = True
    if "bind-propagation" in values:
        mount.propagation = values.pop("bind-propagation")
    if "tmpfs-size" in values:
        mount.options.append(f"size={values.pop('tmpfs-size')}")
    if "tmpfs-mode" in values:
        mount.options.append(f"mode={values.pop('tmpfs-mode')}")
    if values:
        raise MountError(f"invalid argument for --mount: unexpected key '{next(iter(values))}' "
                         f"in '{spec}'")
    check(mount)
    return mount


def parse_tmpfs(path: str, options: str) -> Mount:
    mount = Mount("tmpfs", "", path, options=[o for o in options.split(",") if o])
    check(mount)
    return mount


def check(mount: Mount) -> None:
    """What is wrong with a mount before anything is created, in Docker's words."""
    spec = f"{mount.source}:{mount.target}" if mount.source else mount.target
    _check_target(spec, mount.target)
    if mount.type == "bind":
        if not mount.source.startswith("/"):
            raise MountError(f"invalid mount config for type \"bind\": invalid mount path: "
                             f"'{mount.source}' mount path must be absolute")
        if not mount.create_source and not os.path.exists(mount.source):
            raise MountError(f"invalid mount config for type \"bind\": bind source path does "
                             f"not exist: {mount.source}")
    if mount.type == "volume" and mount.source and not re.match(VOLUME_NAME_RE, mount.source):
        raise MountError(f"invalid mount config for type \"volume\": invalid volume name "
                         f"\"{mount.source}\"")
    if mount.type == "tmpfs" and mount.source:
        raise MountError("invalid mount config for type \"tmpfs\": source must not be set")
    if mount.propagation and mount.propagation not in _PROPAGATION:
        raise MountError(f"invalid mount config: invalid propagation mode: {mount.propagation}")


def from_host_config(host_config: dict[str, Any]) -> list[Mount]:
    """Every user mount of a HostConfig (Binds, Mounts, Tmpfs), checked; a target given twice
    is an error, as in Docker."""
    mounts = [parse_bind(b) for b in host_config.get("Binds") or []]
    for m in host_config.get("Mounts") or []:
        mount = Mount(str(m.get("Type", "volume")), str(m.get("Source", "")),
                      str(m.get("Target", "")), bool(m.get("ReadOnly")))
        mount.mode = "z" if mount.type == "volume" else ""
        mount.propagation = str((m.get("BindOptions") or {}).get("Propagation", ""))
        mount.create_source = bool((m.get("BindOptions") or {}).get("CreateMountpoint"))
        mount.no_copy = bool((m.get("VolumeOptions") or {}).get("NoCopy"))
        tmpfs = m.get("TmpfsOptions") or {}
        if tmpfs.get("SizeBytes"):
            mount.options.append(f"size={int(tmpfs['SizeBytes'])}")
        if tmpfs.get("Mode"):
            mount.options.append(f"mode={int(tmpfs['Mode']):o}")
        check(mount)
        mounts.append(mount)
    for path, options in (host_config.get("Tmpfs") or {}).items():
        mounts.append(parse_tmpfs(path, options))
    seen: set[str] = set()
    for mount in mounts:
        target = os.path.normpath(mount.target)
        if target in seen:
            raise MountError(f"Duplicate mount point: {target}")
        seen.add(target)
    return mounts


def to_api(mount: Mount) -> dict[str, Any]:
    """The Engine API's HostConfig.Mounts entry for a mount."""
    out: dict[str, Any] = {"Type": mount.type, "Source": mount.source, "Target": mount.target}
    if mount.read_only:
        out["ReadOnly"] = True
    if mount.propagation:
        out["BindOptions"] = {"Propagation": mount.propagation}
    if mount.no_copy:
        out["VolumeOptions"] = {"NoCopy": True}
    return out


def oci_mount(mount: Mount, source: str) -> dict[str, Any]:
    """The OCI spec's mount for a user mount whose host source is `source`."""
    if mount.type == "tmpfs":
        options = list(_DEFAULT_TMPFS) + mount.options
        if mount.read_only:
            options.append("ro")
        return {"destination": mount.target, "type": "tmpfs", "source": "tmpfs",
                "options": options}
    options = ["rbind", mount.propagation or "rprivate"]
    if mount.read_only:
        options.append("ro")
    return {"destination": mount.target, "type": "bind", "source": source, "options": options}


def depth_order(mounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Parents before children (/a before /a/b), as Docker sorts them; stable otherwise."""
    return sorted(mounts, key=lambda m: len(os.path.normpath(m["destination"]).split("/")))
