"""Docker's namespace modes other than the network's: IpcMode (`--ipc`), PidMode (`--pid`),
UTSMode (`--uts`) and CgroupnsMode (`--cgroupns`). Checked at create in dockerd's words (a
`container:X` donor resolved to its ID, as dockerd stores it), and at each start turned into
what the spec needs: the namespaces to join by path (the donor's /proc/PID/ns/...) and where
/dev/shm comes from.

A `shareable` container's /dev/shm is a tmpfs the engine mounts on the host at
<container dir>/shm for the run (as dockerd's ShmPath), bound into the container and into
each container that joins its IPC namespace; it is unmounted when the donor stops, and a
joiner's bind keeps it alive: the joiner runs on, as with Docker."""

from __future__ import annotations

import os

from barque.engine.context import Engine, EngineError

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

    from barque.engine.records import ContainerRecord

IPC_MODES = ("", "private", "shareable", "host", "none")
SHM_DIR = "shm"  # a shareable container's /dev/shm on the host, in its container dir
HOST_SHM = "/dev/shm"


def donor_of(mode: str) -> str | None:
    """The X of "container:X" (moby's IsContainer: anything after the first colon)."""
    kind, sep, ref = mode.partition(":")
    return ref if kind == "container" and sep else None


def _valid_ipc(mode: str) -> bool:
    return mode in IPC_MODES or donor_of(mode) is not None


def _valid_pid(mode: str) -> bool:
    """moby's PidMode.Valid."""
    parts = mode.split(":")
    if parts[0] == "container":
        return len(parts) == 2 and parts[1] != ""
    return parts[0] in ("", "host")


def _valid_uts(mode: str) -> bool:
    """moby's UTSMode.Valid (a word after "host:" is allowed, and means private)."""
    return mode.split(":")[0] in ("", "host")


def check_words(host_config: dict[str, Any]) -> None:
    """The modes' words, in dockerd's (its validateHostConfig) words."""
    ipc = str(host_config.get("IpcMode") or "")
    if not _valid_ipc(ipc):
        raise EngineError(f"invalid IPC mode: {ipc}", status=400)
    pid = str(host_config.get("PidMode") or "")
    if not _valid_pid(pid):
        raise EngineError(f"invalid PID mode: {pid}", status=400)
    uts = str(host_config.get("UTSMode") or "")
    if not _valid_uts(uts):
        raise EngineError(f"invalid UTS mode: {uts}", status=400)
    cgroupns = str(host_config.get("CgroupnsMode") or "")
    if cgroupns not in ("", "host", "private"):
        raise EngineError(f"invalid cgroup namespace mode: {cgroupns}", status=400)


def check(engine: Engine, config: dict[str, Any], host_config: dict[str, Any]) -> None:
    """At create, on the container's own config: the words, `--uts host` against `-h`, the
    donors (which must exist: that they run, and an IPC donor is shareable, is checked at
    each start, as dockerd does), and the defaults dockerd fills in (inspect shows them).
    `host_config` is changed: a donor is stored by its full ID, as dockerd does."""
    check_words(host_config)
    if host_config.get("UTSMode") == "host" and config.get("Hostname"):
        raise EngineError("conflicting options: hostname and the UTS mode", status=400)
    ipc = str(host_config.get("IpcMode") or "")
    for key in ("IpcMode", "PidMode"):
        ref = donor_of(str(host_config.get(key) or ""))
        if ref is not None:
            host_config[key] = f"container:{_existing(engine, ref).id}"
    if not ipc:
        host_config["IpcMode"] = "private"  # dockerd's default-ipc-mode
    if not host_config.get("CgroupnsMode"):
        host_config["CgroupnsMode"] = default_cgroupns()


def default_cgroupns() -> str:
    """dockerd's: private on a pure cgroup v2 host, the host's on v1 and hybrid hosts."""
    from barque.cgroups.mountinfo import is_pure_v2

    return "private" if is_pure_v2() else "host"


def _existing(engine: Engine, ref: str) -> ContainerRecord:
    """dockerd's 400 (not 404: the docker CLI would take it for a missing image, and pull)."""
    try:
        return engine.find(ref)
    except EngineError as e:
        raise EngineError(str(e), status=400) from None


def _running_pid(engine: Engine, donor: ContainerRecord) -> int:
    state = engine.state(donor)
    if state.get("Restarting"):
        raise EngineError(f"Container {donor.id} is restarting, wait until the container is "
                          "running", status=409)
    if not state["Running"] or not state["Pid"] or state["Status"] == "dead":
        raise EngineError(f"container {donor.id} is not running", status=409)
    return int(state["Pid"])


def _ipc_donor(engine: Engine, ref: str) -> ContainerRecord:
    """dockerd's getIpcContainer: it exists, runs, and has an IPC namespace to share."""
    try:
        donor = engine.find(ref)
    except EngineError as e:
        raise EngineError(f"can't join IPC of container {ref}: {e}", status=e.status) from None
    said = f"can't join IPC of container {donor.id}"
    try:
        _running_pid(engine, donor)
    except EngineError as e:
        raise EngineError(f"{said}: {e}", status=e.status) from None
    if str(donor.host_config.get("IpcMode") or "") not in ("shareable", "host"):
        raise EngineError(f"{said}: non-shareable IPC (hint: use IpcMode:shareable for the "
                          "donor container)", status=400)
    return donor


def _pid_donor(engine: Engine, ref: str) -> ContainerRecord:
    """dockerd's getPidContainer."""
    try:
        donor = engine.find(ref)
    except EngineError as e:
        raise EngineError(f"cannot join PID of a non running container: {ref}: {e}",
                          status=e.status) from None
    _running_pid(engine, donor)
    return donor


# --- at start ----------------------------------------------------------------------------------

def shm_path(engine: Engine, container_id: str) -> str:
    return os.path.join(engine.paths.container_dir(container_id), SHM_DIR)


def joins(engine: Engine, record: ContainerRecord) -> dict[str, str]:
    """The namespaces this start joins by path, {OCI type: path}: the IPC and PID donors'
    (which must run now, as at create). A user-namespaced container joins its donor's user
    namespace too (a namespace belongs to the user namespace it was made in: only there may
    the container's root mount /proc or mqueue for it); a donor without one is refused."""
    host_config = record.host_config
    found: dict[str, str] = {}
    for kind, key in (("ipc", "IpcMode"), ("pid", "PidMode")):
        ref = donor_of(str(host_config.get(key) or ""))
        if ref is None:
            continue
        donor = _ipc_donor(engine, ref) if kind == "ipc" else _pid_donor(engine, ref)
        pid = _running_pid(engine, donor)
        found[kind] = pin(engine, record.id, kind, f"/proc/{pid}/ns/{kind}")
        found[f"{kind}-donor"] = donor.id
        found[f"{kind}-user"] = pin(engine, record.id, f"{kind}-user", f"/proc/{pid}/ns/user")
    return found


def pin(engine: Engine, container_id: str, name: str, path: str) -> str:
    """The namespace at `path` bound to a file of the container's dir for this run (as `ip
    netns` pins one), which the spec names: a restart by the monitor's policy reuses the
    spec, and the donor's PID may be another process's by then. Unbound by unpin."""
    from barque.linux import mount as lm

    pinned = os.path.join(engine.paths.container_dir(container_id), f"ns-{name}")
    _unbind(pinned)
    with open(pinned, "wb"):
        pass
    try:
        lm.mount(path, pinned, None, lm.MS_BIND)
    except OSError as e:
        raise EngineError(f"cannot hold the namespace {path}: {e.strerror}", status=409) from None
    return pinned


def unpin(engine: Engine, container_id: str) -> None:
    """When the container stops for good: the namespaces it joined are let go."""
    for name in ("ipc", "pid", "ipc-user", "pid-user", "net"):
        _unbind(os.path.join(engine.paths.container_dir(container_id), f"ns-{name}"))


def _unbind(path: str) -> None:
    from barque.linux import mount as lm

    while os.path.ismount(path):
        try:
            lm.umount(path, lm.MNT_DETACH)
        except OSError:
            return


def user_join(found: dict[str, str], remapped: bool) -> str | None:
    """The user namespace a remapped container joins (its donors'), or None: its own. Two
    donors in different user namespaces, or one in none, cannot be joined together."""
    paths = {found[f"{k}-user"] for k in ("ipc", "pid") if f"{k}-user" in found}
    if not remapped or not paths:
        return None
    inodes = {_inode(p) for p in paths}
    if len(inodes) > 1:
        raise EngineError("cannot join the IPC and PID namespaces of containers in different "
                          "user namespaces", status=400)
    if inodes == {_inode("/proc/self/ns/user")}:
        donor = found.get("ipc-donor") or found.get("pid-donor")
        raise EngineError(f"cannot join a namespace of container {donor}: it is not in a user "
                          "namespace and this container is (userns-remap); make both with or "
                          "both without --userns=host", status=400)
    return sorted(paths)[0]


def _inode(path: str) -> int:
    try:
        return os.stat(path).st_ino
    except OSError as e:
        raise EngineError(f"cannot read {path}: {e.strerror}", status=409) from None


def shm_source(engine: Engine, record: ContainerRecord) -> str | None:
    """Where the container's /dev/shm is bound from: None for a tmpfs of its own (private),
    "" for none at all (IpcMode none)."""
    mode = str(record.host_config.get("IpcMode") or "")
    if mode == "none":
        return ""
    if mode == "host":
        return HOST_SHM
    if mode == "shareable":
        return shm_path(engine, record.id)
    ref = donor_of(mode)
    if ref is None:
        return None
    donor = engine.find(ref)
    if donor.host_config.get("IpcMode") == "host":
        return HOST_SHM
    return shm_path(engine, donor.id)


def mount_shm(engine: Engine, record: ContainerRecord, owner: tuple[int, int] | None) -> None:
    """A shareable container's /dev/shm on the host (dockerd's setupIpcDirs), for this run:
    its ShmSize, owned by its root (the mapped root under userns-remap)."""
    if record.host_config.get("IpcMode") != "shareable":
        return
    from barque.engine.spec import DEFAULT_SHM_SIZE
    from barque.linux import mount as lm

    path = shm_path(engine, record.id)
    unmount_shm(engine, record.id)  # what a crashed run left
    os.makedirs(path, mode=0o700, exist_ok=True)
    size = int(record.host_config.get("ShmSize") or DEFAULT_SHM_SIZE)
    options = f"mode=1777,size={size}"
    if owner is not None:
        options += f",uid={owner[0]},gid={owner[1]}"
    lm.mount("shm", path, "tmpfs", lm.MS_NOSUID | lm.MS_NODEV | lm.MS_NOEXEC, options)


def unmount_shm(engine: Engine, container_id: str) -> None:
    """When the container stops (and before it is removed): a joiner's bind keeps the tmpfs
    for the joiner."""
    _unbind(shm_path(engine, container_id))
