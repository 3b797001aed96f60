"""`docker create`: a container record, its directory and snapshot, its volumes and its hold
on the image; nothing runs yet. Everything that can be checked is checked before anything is
made, and a failure part-way removes what was made."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

from barque.engine import (
    create_fields,
    events,
    images,
    naming,
    netchecks,
    nsmodes,
    resource_checks,
    spec_resources,
    spec_security,
    sysctls,
)
from barque.engine import state as st
from barque.engine.context import Engine, EngineError
from barque.engine.mounts import Mount, MountError, from_host_config
from barque.engine.records import ContainerRecord, RecordError
from barque.engine.spec import SpecError, check_workdir, hostname_of
from barque.engine.volumes import VolumeError
from barque.image.store import Image, ImageError, ImageStore
from barque.storage import snapshot
from barque.storage.atomic import atomic_write

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

RESTART_POLICIES = ("", "no", "always", "unless-stopped", "on-failure")


def merge_image_config(config: dict[str, Any], image_config: dict[str, Any]) -> dict[str, Any]:
    """moby's merge(): what the container does not set comes from its image's config."""
    image = image_config.get("config") or {}
    merged = dict(config)
    env = list(merged.get("Env") or [])
    keys = {e.partition("=")[0] for e in env}
    merged["Env"] = env + [e for e in image.get("Env") or [] if e.partition("=")[0] not in keys]
    labels = dict(image.get("Labels") or {})
    labels.update(merged.get("Labels") or {})
    merged["Labels"] = labels
    if not merged.get("Entrypoint"):
        if not merged.get("Cmd"):
            merged["Cmd"] = image.get("Cmd")
        if merged.get("Entrypoint") is None:
            merged["Entrypoint"] = image.get("Entrypoint")
    for key in ("WorkingDir", "User", "StopSignal"):
        if not merged.get(key) and image.get(key):
            merged[key] = image[key]
    for key in ("ExposedPorts", "Volumes"):
        combined = dict(image.get(key) or {})
        combined.update(merged.get(key) or {})
        merged[key] = combined or None
    if merged.get("Healthcheck") is None and image.get("Healthcheck"):
        merged["Healthcheck"] = image["Healthcheck"]
    return merged


def check_restart_policy(host_config: dict[str, Any]) -> None:
    """dockerd 20.10's checks, in its words."""
    policy = host_config.get("RestartPolicy") or {}
    name = str(policy.get("Name") or "")
    if name not in RESTART_POLICIES:
        raise EngineError(f"invalid restart policy '{name}'", status=400)
    retries = int(policy.get("MaximumRetryCount") or 0)
    if retries and name != "on-failure":
        raise EngineError(f"maximum retry count cannot be used with restart policy '{name}'",
                          status=400)
    if retries < 0:
        raise EngineError("maximum retry count cannot be negative", status=400)
    if host_config.get("AutoRemove") and name not in ("", "no"):
        raise EngineError("can't create 'AutoRemove' container with restart policy",
                          status=400)


def check_settings(config: dict[str, Any], host_config: dict[str, Any]) -> list[Mount]:
    """Docker's create-time validation; the mounts as parsed."""
    try:
        hostname_of("0" * 12, config)
        check_workdir(str(config.get("WorkingDir") or ""))
        resource_checks.check(host_config)
        resource_checks.check_process(
            [str(a) for a in (config.get("Entrypoint") or []) + (config.get("Cmd") or [])],
            [str(e) for e in config.get("Env") or []])
        spec_resources.resources(host_config)
        spec_resources.rlimits(host_config)
        spec_security.capabilities(host_config)
        spec_security.security_options(host_config)
        sysctls.check(host_config)
        mounts = from_host_config(host_config)
    except spec_resources.DeviceError as e:
        error = EngineError(str(e), status=400)
        error.at_start = True
        raise error from None
    except (SpecError, spec_resources.ResourceError, spec_security.SecurityError,
            sysctls.SysctlError, resource_checks.ResourceCheckError, MountError) as e:
        raise EngineError(str(e), status=400) from None
    check_restart_policy(host_config)
    nsmodes.check_words(host_config)
    if not (config.get("Entrypoint") or config.get("Cmd")):
        raise EngineError("No command specified", status=400)
    return mounts


def _volumes_from(engine: Engine, host_config: dict[str, Any],
                  mounts: list[Mount]) -> list[Mount]:
    """--volumes-from CONTAINER[:ro|:rw]: that container's volumes and binds at the same
    paths (read-only as there unless a mode is given), after this container's own mounts
    (which win at the same path), as dockerd's. An anonymous one stays anonymous: `rm -v`
    of whichever container goes last removes it (never while another one uses it)."""
    taken = {os.path.normpath(m.target) for m in mounts}
    extra: list[Mount] = []
    for entry in host_config.get("VolumesFrom") or []:
        ref, _, mode = str(entry).partition(":")
        if mode not in ("", "ro", "rw"):
            raise EngineError(f"invalid mode: {mode}", status=400)
        try:
            source = engine.find(ref)
        except EngineError as e:  # a bad parameter, not a missing image: the CLI must not pull
            raise EngineError(str(e), status=400) from None
        for found in source.mounts:
            mount = mount_from_record(found)
            target = os.path.normpath(mount.target)
            if mount.type not in ("volume", "bind") or target in taken:
                continue
            taken.add(target)
            mount.read_only = mount.read_only if not mode else mode == "ro"
            extra.append(mount)
    return mounts + extra


def _anonymous_for_image_volumes(config: dict[str, Any], mounts: list[Mount]) -> list[Mount]:
    """An image's VOLUME paths not covered by a user mount get anonymous volumes."""
    taken = {os.path.normpath(m.target) for m in mounts}
    extra = [Mount("volume", "", path) for path in sorted(config.get("Volumes") or {})
             if os.path.normpath(path) not in taken]
    return mounts + extra


def _image(store: ImageStore, image_ref: str, pull: bool | str,
           on_pull: Callable[[str], None] | None, platform: str | None = None) -> Image:
    if pull is False or pull == "never":
        return _of_platform(store, images.find_local(store, image_ref), image_ref, platform)
    if pull == "always":
        return _of_platform(store, images.pull_image(store, image_ref, platform=platform),
                            image_ref, platform)
    if pull is True or pull == "missing":
        found = images.find_or_pull(store, image_ref, on_pull=on_pull, platform=platform)
        try:
            return _of_platform(store, found, image_ref, platform)
        except ImageError:  # the local one is another platform's: pull the one asked for
            pulled = images.pull_image(store, image_ref, platform=platform)
            return _of_platform(store, pulled, image_ref, platform)
    raise EngineError(f"invalid pull option: '{pull}': must be one of \"always\", "
                      f"\"missing\" or \"never\"", status=400)


def _of_platform(store: ImageStore, image: Image, image_ref: str,
                 platform: str | None) -> Image:
    """`--platform` / the create's `platform`: the image must be of it (dockerd's words)."""
    if not platform:
        return image
    from barque.image.archive import ArchiveError, parse_platform
    from barque.image.oci_archive import platform_of

    try:
        want = parse_platform(platform)
    except ArchiveError as e:
        raise EngineError(str(e), status=400) from None
    have = platform_of(store.config(image))
    if have["os"] == want["os"] and have["architecture"] == want["architecture"] and \
            have.get("variant", want.get("variant")) == want.get("variant", have.get("variant")):
        return image
    raise ImageError(f"image with reference {image_ref} was found but does not match the "
                     f"specified platform: wanted {_format(want)}, actual: {_format(have)}")


def _format(platform: dict[str, str]) -> str:
    """containerd's platforms.Format."""
    return "/".join(p for p in (platform.get("os"), platform.get("architecture"),
                                platform.get("variant")) if p)


def create(engine: Engine, image_ref: str, config: dict[str, Any], host_config: dict[str, Any],
           name: str | None = None,
           on_pull: Callable[[str], None] | None = None,
           networking_config: dict[str, Any] | None = None,
           warnings: list[str] | None = None, keep_mounted: bool = False,
           pull: bool | str = True, platform: str | None = None) -> ContainerRecord:
    """Make a container of `image_ref` with the Engine API's Config, HostConfig and
    NetworkingConfig (its EndpointsConfig become the container's endpoints). The daemon's
    warnings are appended to `warnings`. `keep_mounted`: leave the snapshot mounted for the
    start that follows at once (`run`), which then finds it so: an unmount and a mount less.
    `pull` is `--pull`: "missing" (True) pulls an image that is not local; "never" (False)
    makes a missing image dockerd's 404 "No such image" without asking any registry (the
    API's clients pull through /images/create themselves); "always" pulls first.
    `platform` (`--platform`, the API's `platform`): the image must be of it."""
    if name is not None:
        try:
            name = naming.check_name(name)
        except ValueError as e:
            raise EngineError(str(e), status=400) from None
    host_config = dict(host_config)
    networking_config = netchecks.normalize(host_config, networking_config)
    said = netchecks.check(engine, config, host_config, networking_config)
    said += create_fields.check(config, host_config, networking_config)
    nsmodes.check(engine, config, host_config)
    said += _daemon_defaults(host_config)
    try:
        said += resource_checks.adapt(host_config)
    except resource_checks.ResourceCheckError as e:
        raise EngineError(str(e), status=400) from None
    store = engine.store
    try:
        image = _image(store, image_ref, pull, on_pull, platform)
        image_config = store.config(image)
    except ImageError as e:
        raise EngineError(str(e), status=404) from None
    config = merge_image_config({**config, "Image": image_ref}, image_config)
    mounts = _volumes_from(engine, host_config, check_settings(config, host_config))
    mounts = _anonymous_for_image_volumes(config, mounts)
    from barque.engine import userns

    remap = userns.load(engine.paths.root)
    userns.check(remap, host_config)
    ids = None if remap is None or host_config.get("UsernsMode") == "host" else (
        remap.uids, remap.gids)
    record = ContainerRecord(id=naming.new_id(), name=name or "", created=st.now(),
                             image=image_ref, image_id=image.id, config=config,
                             host_config=host_config, state=st.initial())
    _insert(engine, record)
    try:
        from barque.engine import netsetup

        netsetup.add_endpoints(engine, record, networking_config)
        _make(engine, record, image, mounts, keep_mounted, ids)
    except BaseException as e:
        _unmake(engine, record)
        if isinstance(e, snapshot.SnapshotError | ImageError):
            raise EngineError(str(e)) from None
        raise
    if warnings is not None:
        warnings += said
    events.container(engine, record, "create")
    return record


def _daemon_defaults(host_config: dict[str, Any]) -> list[str]:
    """What dockerd's adaptContainerSettings and resource checks fill in at create (and
    inspect then shows): the default /dev/shm size, the default log driver, and swap twice
    the memory limit when only the memory limit is given (unlimited, with dockerd's warning,
    without swap accounting)."""
    from barque.engine.spec import DEFAULT_SHM_SIZE

    if not host_config.get("ShmSize"):
        host_config["ShmSize"] = DEFAULT_SHM_SIZE
    log_config = host_config.get("LogConfig")
    if isinstance(log_config, dict) and not log_config.get("Type"):
        # the docker CLI and compose send Type "": dockerd's default driver then
        host_config["LogConfig"] = {**log_config, "Type": "json-file",
                                    "Config": log_config.get("Config") or {}}
    memory = host_config.get("Memory") or 0
    if memory > 0 and not host_config.get("MemorySwap"):
        from barque.engine.system import host_features

        if host_features()["SwapLimit"]:
            host_config["MemorySwap"] = memory * 2
        else:
            host_config["MemorySwap"] = -1
            return ["Your kernel does not support swap limit capabilities or the cgroup is not "
                    "mounted. Memory limited without swap."]
    return []


def _insert(engine: Engine, record: ContainerRecord) -> None:
    if record.name:
        engine.records.insert(record)
        return
    for attempt in range(10):  # moby's generated names: retry on the rare collision
        record.name = naming.random_name(attempt)
        try:
            engine.records.insert(record)
            return
        except RecordError:
            continue
    raise EngineError("could not find a free container name")


def _make(engine: Engine, record: ContainerRecord, image: Image, mounts: list[Mount],
          keep_mounted: bool = False, ids: tuple[snapshot.IdMap, snapshot.IdMap] | None = None
          ) -> None:
    store = engine.store
    container_dir = engine.paths.container_dir(record.id)
    os.makedirs(engine.paths.containers, mode=0o700, exist_ok=True)
    os.mkdir(container_dir, 0o700)
    if ids is not None:
        _let_mapped_root_in(engine, container_dir, ids)
    with store.writing():  # the image collector waits until the hold is recorded
        store.hold(record.id, image)
    make_init_layer(init_layer(engine, record.id))
    snap = snapshot.Snapshot(engine.paths.snapshot_dir(record.id))
    snap.prepare(lowers_of(engine, record.id, image), overlay=_overlay_works(engine), ids=ids)
    if not keep_mounted:
        snap.unmount()  # mounted again at each start
    for mount in mounts:
        if mount.type == "volume":
            volume, _ = engine.volumes.create(mount.source)
            if not mount.source:
                mount.source, mount.anonymous = volume.name, True
    record.mounts = [_mount_record(m) for m in mounts]
    engine.records.update(record)


def _let_mapped_root_in(engine: Engine, container_dir: str,
                        ids: tuple[snapshot.IdMap, snapshot.IdMap]) -> None:
    from barque.engine import userns

    owner = userns.root_of(ids)
    if owner is None:
        raise EngineError("userns-remap: the container's root is not mapped")
    userns.let_root_in(engine.paths.root, engine.paths.containers, container_dir, owner)


# In the runroot: "<boot id> <device> <dir>" lines, one per containers dir whose probe for
# overlayfs (a test mount, ~3 ms of CPU) succeeded in that boot, so that it runs once, not at
# every create. The boot ID and the device keep a line from speaking for another kernel or
# another file system mounted there since.
OVERLAY_PROBED = "overlay-probed"


def _overlay_works(engine: Engine) -> bool | None:
    """Whether overlayfs works for snapshots in the containers dir (None: unknown, let the
    snapshot probe). A failed probe is not remembered: it may have been a passing shortage."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot_id = f.read().strip()
        base = os.path.realpath(engine.paths.containers)
        line = f"{boot_id} {os.stat(base).st_dev} {base}"
    except OSError:
        return None
    marker = os.path.join(engine.paths.runroot, OVERLAY_PROBED)
    try:
        with open(marker) as f:
            known = f.read().splitlines()
    except OSError:
        known = []
    if line in known:
        return True
    if not snapshot.overlay_supported(base):
        return False
    try:
        os.makedirs(engine.paths.runroot, mode=0o700, exist_ok=True)
        # A cache: never fsynced, losing it costs one probe.
        atomic_write(marker, "".join(f"{k}\n" for k in [*known[-15:], line]).encode(),
                     0o600, durable=False)
    except OSError:
        pass
    return True


# Docker's "init layer": the mount points the runtime needs, in a layer of their own between
# the image and the container's upper dir, so that they never show up as the container's
# changes (`diff`, `commit`, `export` of a container that only ran `true` are empty).
_INIT_DIRS = ("dev", "dev/pts", "dev/shm", "proc", "sys", "etc")
_INIT_FILES = ("etc/hostname", "etc/hosts", "etc/resolv.conf")


def init_layer(engine: Engine, container_id: str) -> str:
    return os.path.join(engine.paths.container_dir(container_id), "init")


def make_init_layer(path: str) -> None:
    os.mkdir(path, 0o755)
    for name in _INIT_DIRS:
        os.makedirs(os.path.join(path, name), mode=0o755, exist_ok=True)
    for name in _INIT_FILES:
        with open(os.path.join(path, name), "wb"):
            pass
        os.chmod(os.path.join(path, name), 0o644)
    # Docker's marker that scripts test for "am I in a container"; in the init layer, so it
    # is never a change (diff, commit)
    with open(os.path.join(path, ".dockerenv"), "wb"):
        pass
    os.chmod(os.path.join(path, ".dockerenv"), 0o755)
    os.symlink("/proc/mounts", os.path.join(path, "etc", "mtab"))


def lowers_of(engine: Engine, container_id: str, image: Image) -> list[str]:
    """The snapshot's lower dirs, top-most first: the init layer, then the image's."""
    return [init_layer(engine, container_id), *engine.store.lowers(image)]


def _mount_record(mount: Mount) -> dict[str, Any]:
    return {"type": mount.type, "source": mount.source, "target": mount.target,
            "read_only": mount.read_only, "propagation": mount.propagation,
            "no_copy": mount.no_copy, "options": list(mount.options),
            "create_source": mount.create_source, "anonymous": mount.anonymous,
            "mode": mount.mode}


def mount_from_record(entry: dict[str, Any]) -> Mount:
    return Mount(entry["type"], entry["source"], entry["target"], entry["read_only"],
                 entry["propagation"], entry["no_copy"], list(entry["options"]),
                 entry["create_source"], entry["anonymous"], entry.get("mode", ""))


def _unmake(engine: Engine, record: ContainerRecord) -> None:
    """Undo a half-made container: nothing of it may stay (anonymous volumes included)."""
    try:
        snapshot.remove(engine.paths.snapshot_dir(record.id))
    except snapshot.SnapshotError:
        pass
    shutil.rmtree(engine.paths.container_dir(record.id), ignore_errors=True)
    engine.store.release(record.id)
    for entry in record.mounts:
        if entry.get("anonymous"):
            try:  # not one that another container uses (--volumes-from)
                users = [u for u in engine.users_of_volume(entry["source"]) if u != record.id]
                engine.volumes.remove(entry["source"], users, force=not users)
            except VolumeError:
                pass
    engine.records.delete(record.id)
