"""Turn an image plus `docker run` options into an OCI bundle (config.json + rootfs).

The spec starts from `barque.runtime.spec.default_spec()` (runc's) and is adapted the way
Docker adapts containerd's default: Docker's 14 capabilities, a writable rootfs, no
no_new_privs, Docker's masked paths, a fresh network namespace holding only loopback
(`--network none`), and environment/cwd/user/hostname taken from the image and options.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from typing import Any

from barque.image import oci_layout as ol
from barque.linux import paths
from barque.runtime.spec import default_spec

DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# moby's caps.DefaultCapabilities(), in moby's order.
DOCKER_CAPS = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]

# moby's oci.DefaultLinuxSpec() (also the Engine API's documented HostConfig defaults).
DOCKER_MASKED_PATHS = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
]
DOCKER_READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

# libnetwork's /etc/hosts for a container without network (`--network none`).
HOSTS = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)

_HOSTNAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9.-]{0,63}$")  # HOST_NAME_MAX is 64


class BundleError(Exception):
    """The image and options cannot make a valid container (Docker reports these as 125)."""


@dataclass
class RunOptions:
    """What `docker run` lets the user override; None means "take it from the image"."""

    command: list[str] = field(default_factory=list)  # replaces the image's Cmd when non-empty
    env: list[str] = field(default_factory=list)  # KEY=VALUE, applied after the image's Env
    workdir: str | None = None
    hostname: str | None = None
    user: str | None = None  # name|uid[:group|gid], resolved in the container's /etc files


@dataclass(frozen=True)
class ExecUser:
    uid: int
    gid: int
    additional_gids: list[int]
    home: str


def secure_join(root: str, path: str) -> str:
    """Resolve `path` as if `root` were `/`: nothing can lead outside it."""
    try:
        return paths.secure_join(root, path)
    except OSError as e:
        raise BundleError(f"resolving {path!r}: {e.strerror}") from None


def _read_rootfs_file(rootfs: str, path: str) -> list[list[str]]:
    """The colon-separated records of a container file like /etc/passwd; [] if absent."""
    try:
        with open(secure_join(rootfs, path), encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return []
    return [line.split(":") for line in lines if line and not line.startswith("#")]


def resolve_user(rootfs: str, spec: str) -> ExecUser:
    """Docker's (runc's GetExecUser) reading of `USER`/`--user`: name|uid[:group|gid]."""
    user, _, group = (spec or "").partition(":")
    uid, gid, home, name = 0, 0, "/", "root"
    passwd = [r for r in _read_rootfs_file(rootfs, "/etc/passwd") if len(r) >= 7]
    if user:
        entry = next((r for r in passwd if r[0] == user), None)
        if entry is None and user.isdigit():
            entry = next((r for r in passwd if r[2] == user), None)
        if entry is not None:
            name, uid, gid, home = entry[0], int(entry[2]), int(entry[3]), entry[5]
        elif user.isdigit():
            uid, name = int(user), ""
        else:
            raise BundleError(f"unable to find user {user}: no matching entries in passwd file")
    else:
        entry = next((r for r in passwd if r[2] == "0"), None)
        if entry is not None:
            home = entry[5]
    groups = [r for r in _read_rootfs_file(rootfs, "/etc/group") if len(r) >= 4]
    if group:
        match = next((r for r in groups if r[0] == group), None)
        if match is None and group.isdigit():
            match = next((r for r in groups if r[2] == group), None)
        if match is not None:
            gid = int(match[2])
        elif group.isdigit():
            gid = int(group)
        else:
            raise BundleError(f"unable to find group {group}: no matching entries in group file")
    # Supplementary groups: the /etc/group entries listing the user (only for a named user).
    extra = sorted(
        {int(r[2]) for r in groups if name and name in r[3].split(",") and r[2].isdigit()} - {gid}
    )
    return ExecUser(uid=uid, gid=gid, additional_gids=extra, home=home or "/")


def merge_env(base: list[str], overrides: list[str]) -> list[str]:
    """Docker's ReplaceOrAppendEnvValues: a later KEY=… replaces an earlier one in place."""
    result = list(base)
    position = {e.partition("=")[0]: i for i, e in enumerate(result)}
    for entry in overrides:
        key = entry.partition("=")[0]
        if key in position:
            result[position[key]] = entry
        else:
            position[key] = len(result)
            result.append(entry)
    return result


def _cgroup2_unified() -> bool:
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def make_spec(
    container_id: str, image_config: dict[str, Any], options: RunOptions, rootfs: str
) -> dict[str, Any]:
    """The runtime spec (config.json) for a container of this image with these options."""
    cfg = image_config.get("config") or {}
    entrypoint = list(cfg.get("Entrypoint") or [])
    args = entrypoint + (list(options.command) or list(cfg.get("Cmd") or []))
    if not args:
        raise BundleError("No command specified")

    hostname = options.hostname or container_id[:12]
    if not _HOSTNAME_RE.match(hostname):
        raise BundleError(f"invalid hostname format: {hostname}")

    workdir = options.workdir or cfg.get("WorkingDir") or "/"
    if not workdir.startswith("/"):
        raise BundleError(
            f"the working directory '{workdir}' is invalid, it needs to be an absolute path"
        )
    user = resolve_user(rootfs, options.user if options.user is not None else cfg.get("User", ""))

    env = merge_env([DEFAULT_PATH_ENV, f"HOSTNAME={hostname}"], list(cfg.get("Env") or []))
    env = merge_env(env, options.env)
    if not any(e.startswith("HOME=") for e in env):
        # runc adds HOME from /etc/passwd too; setting it here keeps every runtime alike.
        env.append(f"HOME={user.home}")

    spec = copy.deepcopy(default_spec())
    process = spec["process"]
    process.update(terminal=False, args=args, env=env, cwd=workdir, noNewPrivileges=False)
    process["user"] = {"uid": user.uid, "gid": user.gid}
    if user.additional_gids:
        process["user"]["additionalGids"] = user.additional_gids
    if user.uid == 0:
        process["capabilities"] = {
            k: list(DOCKER_CAPS) for k in ("bounding", "effective", "permitted")
        }
    else:
        # As moby does: execve by a non-root user starts with no effective/permitted caps.
        process["capabilities"] = {"bounding": list(DOCKER_CAPS)}
    spec["root"] = {"path": "rootfs", "readonly": False}
    spec["hostname"] = hostname

    linux = spec["linux"]
    if not _cgroup2_unified():
        # Docker's default cgroupns mode: private on cgroup v2, the host's on v1.
        linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] != "cgroup"]
    linux["cgroupsPath"] = f"/barque/{container_id}"
    linux["maskedPaths"] = list(DOCKER_MASKED_PATHS)
    linux["readonlyPaths"] = list(DOCKER_READONLY_PATHS)
    return spec


def _write_container_file(rootfs: str, path: str, content: str) -> None:
    target = secure_join(rootfs, path)
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    if os.path.lexists(target) and not os.path.isfile(target):
        _remove_path(target)
    ol.atomic_write(target, content.encode())


def _remove_path(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def prepare_rootfs(rootfs: str, spec: dict[str, Any]) -> None:
    """What Docker's daemon does to a rootfs before starting: the working directory exists,
    and /etc/hostname and /etc/hosts describe this container (Docker bind-mounts its own
    copies over the image's; the rootfs is private to this container, so writing is alike)."""
    os.makedirs(secure_join(rootfs, spec["process"]["cwd"]), mode=0o755, exist_ok=True)
    _write_container_file(rootfs, "/etc/hostname", spec["hostname"] + "\n")
    _write_container_file(rootfs, "/etc/hosts", HOSTS)


def create_bundle(
    bundle_dir: str,
    container_id: str,
    image_config: dict[str, Any],
    rootfs: str,
    options: RunOptions,
) -> dict[str, Any]:
    """Write `bundle_dir/config.json` for a container of an image whose root filesystem is
    ready at `rootfs` (a snapshot); returns the spec written."""
    spec = make_spec(container_id, image_config, options, rootfs)
    spec["root"]["path"] = os.path.relpath(rootfs, bundle_dir) \
        if rootfs.startswith(bundle_dir + os.sep) else rootfs
    prepare_rootfs(rootfs, spec)
    text = json.dumps(spec, indent=2) + "\n"  # indented: people read config.json when debugging
    ol.atomic_write(os.path.join(bundle_dir, "config.json"), text.encode())
    return spec
