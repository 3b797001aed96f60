"""A container's OCI spec (config.json), made at each start from its Config and HostConfig
the way Docker's daemon makes it: runc's default spec adapted with Docker's capabilities,
seccomp profile, masked and read-only paths, /dev/shm size, and the container's own
/etc/hostname, /etc/hosts and /etc/resolv.conf bind-mounted from its directory."""

from __future__ import annotations

import copy
import os
import re

from barque.engine import create_fields, spec_resources, spec_security
from barque.engine.users import group_id, resolve_user
from barque.runtime.spec import default_spec

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

    from barque.storage.snapshot import IdMap

DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHM_SIZE = 64 * 1024 * 1024
CGROUP_PARENT = "/barque"  # each container's cgroup is <parent>/<id> in every hierarchy
INIT_PATH = "/sbin/docker-init"  # where Docker puts its init (tini) for --init

# moby's oci.DefaultLinuxSpec() (also the Engine API's documented HostConfig defaults).
DOCKER_MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
]  # fmt: skip
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

_HOSTNAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9.-]{0,63}\Z")  # HOST_NAME_MAX is 64


class SpecError(Exception):
    """The container's settings cannot make a valid spec (Docker reports these as 125)."""


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


def hostname_of(container_id: str, config: dict[str, Any]) -> str:
    hostname = config.get("Hostname") or container_id[:12]
    if not _HOSTNAME_RE.match(hostname):
        raise SpecError(f"invalid hostname format: {hostname}")
    return str(hostname)


def process_env(config: dict[str, Any], hostname: str) -> list[str]:
    """moby's CreateDaemonEnvironment: PATH and HOSTNAME (and TERM with a tty) first, then
    the container's own Env replacing any of them."""
    base = [DEFAULT_PATH_ENV, f"HOSTNAME={hostname}"]
    if config.get("Tty"):
        base.append("TERM=xterm")
    return merge_env(base, list(config.get("Env") or []))


def command_line(config: dict[str, Any], host_config: dict[str, Any]) -> list[str]:
    args = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    if not args:
        raise SpecError("No command specified")
    if host_config.get("Init"):
        args = [INIT_PATH, "--", *args]
    return args


def check_workdir(cwd: str) -> None:
    """dockerd's verifyContainerSettings (at create, and again here at each start)."""
    if cwd and not cwd.startswith("/"):
        raise SpecError(f"the working directory '{cwd}' is invalid, it needs to be an "
                        "absolute path")


def _process(spec: dict[str, Any], config: dict[str, Any],
             host_config: dict[str, Any], rootfs: str, hostname: str) -> None:
    process = spec["process"]
    user = resolve_user(rootfs, str(config.get("User") or ""))
    env = process_env(config, hostname)
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={user.home}")
    cwd = config.get("WorkingDir") or "/"
    check_workdir(cwd)
    # Docker cleans it as a path of the container: `-w /../../tmp/x` is /tmp/x in there.
    cwd = "/" + os.path.normpath(cwd).lstrip("/")
    caps = spec_security.capabilities(host_config)
    process.update(terminal=bool(config.get("Tty")), args=command_line(config, host_config),
                   env=env, cwd=cwd, noNewPrivileges=spec_security.no_new_privileges(host_config))
    process.pop("rlimits", None)  # Docker sets none unless asked: the daemon's are inherited
    rlimits = spec_resources.rlimits(host_config)
    if rlimits:
        process["rlimits"] = rlimits
    gids = list(user.additional_gids)
    for group in host_config.get("GroupAdd") or []:
        gid = group_id(rootfs, str(group))
        if gid not in gids:
            gids.append(gid)
    process["user"] = {"uid": user.uid, "gid": user.gid}
    if gids:
        process["user"]["additionalGids"] = gids
    if user.uid == 0 or host_config.get("Privileged"):
        process["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}
    else:
        # As moby does: execve by a non-root user starts with no effective/permitted caps.
        process["capabilities"] = {"bounding": list(caps)}
    if host_config.get("OomScoreAdj"):
        process["oomScoreAdj"] = int(host_config["OomScoreAdj"])
    if config.get("Tty"):
        process["consoleSize"] = {"height": 24, "width": 80}
    process.pop("apparmorProfile", None)
    seccomp = spec_security.seccomp(host_config, caps)
    if seccomp is not None:
        spec["linux"]["seccomp"] = seccomp


def _system_mounts(host_config: dict[str, Any], shm: str | None) -> list[dict[str, Any]]:
    """runc's default mounts as dockerd adapts them; `shm`: where /dev/shm is bound from
    (engine/nsmodes.py), None for a tmpfs of its own, "" for none (IpcMode none)."""
    mounts = copy.deepcopy(default_spec()["mounts"])
    privileged = bool(host_config.get("Privileged"))
    size = int(host_config.get("ShmSize") or DEFAULT_SHM_SIZE)
    for m in mounts:
        if m["destination"] == "/dev/shm":
            m["options"] = ["nosuid", "noexec", "nodev", "mode=1777", f"size={size}"]
            if shm:
                m.update(type="bind", source=shm, options=["rbind", "rprivate"])
        elif m["type"] in ("sysfs", "cgroup") and privileged:
            m["options"] = [o for o in m["options"] if o != "ro"]
    if shm == "":
        mounts = [m for m in mounts if m["destination"] != "/dev/shm"]
    return mounts


def _not_overridden(defaults: list[dict[str, Any]],
                    user_mounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """moby's setMounts: a user mount replaces the default one at its destination, and one
    at /dev replaces every default under /dev too (their mount points would otherwise be made
    in the user's host directory)."""
    taken = {os.path.normpath(m["destination"]) for m in user_mounts}
    return [m for m in defaults if os.path.normpath(m["destination"]) not in taken
            and not ("/dev" in taken and m["destination"].startswith("/dev/"))]


def etc_mounts(container_dir: str, read_only: bool) -> list[dict[str, Any]]:
    """The container's own /etc/hostname, /etc/hosts and /etc/resolv.conf."""
    options = ["rbind", "rprivate"] + (["ro"] if read_only else [])
    return [{"destination": f"/etc/{name}", "type": "bind",
             "source": os.path.join(container_dir, name), "options": list(options)}
            for name in ("hostname", "hosts", "resolv.conf")]


def write_etc_files(container_dir: str, hostname: str, host_config: dict[str, Any],
                    hosts: str | None = None, resolv_conf: str | None = None) -> None:
    """`hosts`, `resolv_conf`: the network's content for them (engine/netsetup.py); None:
    what a container without Barque's networks gets."""
    from barque.image import oci_layout as ol

    if hosts is None:
        hosts = HOSTS
        for entry in host_config.get("ExtraHosts") or []:
            name, _, address = entry.partition(":")
            hosts += f"{address}\t{name}\n"
        if host_config.get("NetworkMode") == "host":
            hosts = _read("/etc/hosts", HOSTS)
    # Not durable (no fsyncs): every start writes them anew before the container sees them,
    # and no container survives the power loss that could leave one empty.
    for name, text in (("hostname", hostname + "\n"), ("hosts", hosts),
                       ("resolv.conf", resolv_conf if resolv_conf is not None
                        else _resolv_conf())):
        ol.atomic_write(os.path.join(container_dir, name), text.encode(), durable=False)


def make_workdir(rootfs: str, cwd: str, owner: tuple[int, int] | None = None) -> None:
    """Docker makes the working dir at each start (for any user), inside the container's root:
    a `..` or a symlink in the image or put there by the container never leads to the host.
    `owner`: (uid, gid) for the directories made (BuildKit's RUN makes them the user's)."""
    from barque.linux import paths

    made: list[tuple[str, str]] = []  # (the parent's host path, the name) of each one made

    def remember(dir_fd: int, name: str) -> None:
        made.append((os.readlink(paths.proc_path(dir_fd)), name))

    with paths.rooted(rootfs) as root_fd:
        os.close(paths.mkdir_all(root_fd, cwd, on_make=remember if owner else None))
        if not made or owner is None:
            return
        root = os.readlink(paths.proc_path(root_fd))
        for parent, name in made:
            made_fd = paths.open_in_root(root_fd, os.path.join(
                "/", os.path.relpath(parent, root), name), os.O_PATH | os.O_NOFOLLOW)
            try:
                os.chown(paths.proc_path(made_fd), *owner)
            finally:
                os.close(made_fd)


def _read(path: str, default: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return default


def _resolv_conf() -> str:
    """The host's resolv.conf without loopback name servers (they would be the container's
    own loopback), as Docker copies it."""
    lines = []
    for line in _read("/etc/resolv.conf", "").splitlines():
        words = line.split()
        if words[:1] == ["nameserver"] and len(words) > 1 and (
                words[1].startswith("127.") or words[1] == "::1"):
            continue
        lines.append(line)
    return "\n".join(lines) + "\n" if lines else ""


def cgroups_path(host_config: dict[str, Any], container_id: str) -> str:
    """linux.cgroupsPath: <parent>/<id>, the parent Barque's own unless --cgroup-parent
    names one (moby's cgroupfs rule, filepath.Join: cleaned). An absolute parent is taken
    from each hierarchy's root; a relative one from the cgroup of the process that starts
    the container (a barque command's, `barque serve`'s: as runc resolves it, under the
    parent of that cgroup on cgroup v2), as dockerd's is under the daemon's cgroup. A
    ".." never leaves the hierarchy (barque/cgroups/paths.py)."""
    parent = str(host_config.get("CgroupParent") or "") or CGROUP_PARENT
    joined = os.path.normpath(os.path.join(parent, container_id))
    return "/" + joined.lstrip("/") if parent.startswith("/") else joined


def _namespaces(spec: dict[str, Any], host_config: dict[str, Any],
                network_path: str | None, joins: dict[str, str]) -> None:
    """Docker's modes: a kind shared with the host is left out (the runtime's own is the
    host's), one shared with another container is joined by path (`joins`, {type: path})."""
    linux = spec["linux"]
    namespaces = list(linux["namespaces"])
    mode = str(host_config.get("NetworkMode") or "default")
    host = set()
    if host_config.get("PidMode") == "host":
        # --pid host: the host's process table; /proc is mounted from the host's namespace.
        host.add("pid")
    if host_config.get("IpcMode") == "host":
        host.add("ipc")
    if host_config.get("UTSMode") == "host":
        host.add("uts")  # the host's hostname: the runtime must not set one
        spec.pop("hostname", None)
        spec.pop("domainname", None)
    if mode == "host":
        host.add("network")
    # Docker's default cgroupns mode: private on cgroup v2, the host's on v1 — as runc's
    # default spec, which has the cgroup namespace on a pure v2 host only; records made
    # before CgroupnsMode was stored keep that default.
    cgroupns = host_config.get("CgroupnsMode")
    if cgroupns == "host":
        host.add("cgroup")
    elif cgroupns == "private" and not any(ns["type"] == "cgroup" for ns in namespaces):
        namespaces.append({"type": "cgroup"})
    namespaces = [ns for ns in namespaces if ns["type"] not in host]
    paths = dict(joins)
    if network_path and mode != "host":
        paths["network"] = network_path
    for ns in namespaces:
        if ns["type"] in paths:
            ns["path"] = paths[ns["type"]]
    linux["namespaces"] = namespaces


def _user_namespace(spec: dict[str, Any], id_maps: tuple[IdMap, IdMap],
                    foreign_netns: bool, path: str | None = None) -> None:
    """Docker's userns-remap: a user namespace of its own with the container's maps (or,
    `path`, the one of the containers whose IPC or PID namespace it joins). Where
    its network namespace is not its own user namespace's (one Barque's networks made, or the
    host's), the kernel refuses a sysfs mount: the host's /sys is bound read-only instead,
    as runc does for a rootless container."""
    linux = spec["linux"]
    for key, mapping in (("uidMappings", id_maps[0]), ("gidMappings", id_maps[1])):
        linux[key] = [{"containerID": inside, "hostID": outside, "size": count}
                      for inside, outside, count in mapping]
    linux["namespaces"].append({"type": "user", "path": path} if path else {"type": "user"})
    if not any(ns["type"] == "ipc" for ns in linux["namespaces"]):
        _bind_host_mqueue(spec)
    if not foreign_netns:
        return
    for m in spec["mounts"]:
        if m["type"] == "sysfs":
            m.update(type="bind", source="/sys",
                     options=["rbind", "nosuid", "noexec", "nodev", "ro"])


def _bind_host_mqueue(spec: dict[str, Any]) -> None:
    """--ipc host under userns-remap: an mqueue mount needs the rights of the IPC namespace's
    user namespace, the host's: its /dev/mqueue bound instead, as runc's rootless spec."""
    mounts = [m for m in spec["mounts"] if m["type"] != "mqueue"]
    if os.path.ismount("/dev/mqueue"):
        mounts.append({"destination": "/dev/mqueue", "type": "bind", "source": "/dev/mqueue",
                       "options": ["rbind", "nosuid", "noexec", "nodev"]})
    spec["mounts"] = mounts


def make_spec(container_id: str, config: dict[str, Any], host_config: dict[str, Any],
              rootfs: str, container_dir: str, user_mounts: list[dict[str, Any]],
              network_path: str | None = None, init_binary: str | None = None,
              id_maps: tuple[IdMap, IdMap] | None = None, joins: dict[str, str] | None = None,
              shm: str | None = None, user_path: str | None = None) -> dict[str, Any]:
    """config.json for a container whose root filesystem is ready at `rootfs`, with its user
    mounts already in OCI form (engine/mounts.py). `id_maps`: (uid, gid) maps of a
    user-namespaced container (its snapshot's); `user_path`: the user namespace it joins.
    `joins`: the other containers' namespaces it joins, {OCI type: path}; `shm`: where its
    /dev/shm is bound from (engine/nsmodes.py)."""
    hostname = hostname_of(container_id, config)
    spec = copy.deepcopy(default_spec())
    _process(spec, config, host_config, rootfs, hostname)
    spec["root"] = {"path": rootfs, "readonly": bool(host_config.get("ReadonlyRootfs"))}
    spec["hostname"] = hostname
    if config.get("Domainname"):
        spec["domainname"] = str(config["Domainname"])
    from barque.engine.mounts import depth_order

    mounts = _not_overridden(_system_mounts(host_config, shm) + etc_mounts(container_dir, False),
                             user_mounts) + user_mounts
    if host_config.get("Init"):
        if not init_binary:
            raise SpecError("--init: no init binary found (install tini: apt-get install tini)")
        mounts.append({"destination": INIT_PATH, "type": "bind", "source": init_binary,
                       "options": ["rbind", "ro", "rprivate"]})
    spec["mounts"] = depth_order(mounts)
    linux = spec["linux"]
    _namespaces(spec, host_config, network_path, joins or {})
    if id_maps is not None:
        _user_namespace(spec, id_maps, foreign_netns=bool(network_path) or
                        host_config.get("NetworkMode") == "host", path=user_path)
    linux["cgroupsPath"] = cgroups_path(host_config, container_id)
    try:
        linux["resources"] = spec_resources.resources(host_config)
        devices = [dev for dev, _ in spec_resources.devices(host_config)]
    except spec_resources.ResourceError as e:
        raise SpecError(str(e)) from None
    create_fields.spec_resources(host_config, linux["resources"])
    if devices:
        linux["devices"] = devices
    if host_config.get("Sysctls"):
        linux["sysctl"] = dict(host_config["Sysctls"])
    try:
        linux["maskedPaths"], linux["readonlyPaths"] = spec_security.system_paths(
            host_config, *_system_paths(host_config))
        profile = spec_security.apparmor_profile(host_config)
    except spec_security.SecurityError as e:
        raise SpecError(str(e)) from None
    if profile:
        spec["process"]["apparmorProfile"] = profile
    create_fields.apply_to_spec(spec, config, host_config)
    return spec


def _system_paths(host_config: dict[str, Any]) -> tuple[list[str], list[str]]:
    """HostConfig's MaskedPaths and ReadonlyPaths where given (the API's: they replace
    Docker's defaults), else the defaults."""
    masked, readonly = host_config.get("MaskedPaths"), host_config.get("ReadonlyPaths")
    return (DOCKER_MASKED_PATHS if masked is None else list(masked),
            DOCKER_READONLY_PATHS if readonly is None else list(readonly))
