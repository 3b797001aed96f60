"""What the whole engine holds: `docker info`, `docker version`, `docker system df`,
`docker system prune`."""

from __future__ import annotations

import os
import socket

from barque.engine import events
from barque.engine.context import Engine, EngineError, find_runtime
from barque.structs import dataclass, field

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any


def dir_size(path: str) -> int:
    """Bytes used by the files under path (hard links counted once), as `du` would."""
    total, seen = 0, set()
    for base, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(base, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def _cgroup_version() -> str:
    return "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"


def _proc_flag(path: str) -> bool:
    try:
        with open(path) as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def host_features() -> dict[str, bool]:
    """SystemInfo's flags of what the host's cgroups and network let containers have (the
    docker CLI warns about each that is false, as against dockerd on the same host)."""
    if _cgroup_version() == "2":
        try:
            with open("/sys/fs/cgroup/cgroup.controllers") as f:
                have = set(f.read().split())
        except OSError:
            have = set()
        swap, oom_kill_disable = "memory" in have, False
    else:
        have = {c for c in ("memory", "cpu", "cpuset", "pids")
                if os.path.isdir(f"/sys/fs/cgroup/{c}")}
        swap = os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
        oom_kill_disable = "memory" in have
    return {"MemoryLimit": "memory" in have, "SwapLimit": swap,
            "CpuCfsPeriod": "cpu" in have, "CpuCfsQuota": "cpu" in have,
            "CPUShares": "cpu" in have, "CPUSet": "cpuset" in have, "PidsLimit": "pids" in have,
            "OomKillDisable": oom_kill_disable,
            "IPv4Forwarding": _proc_flag("/proc/sys/net/ipv4/ip_forward"),
            "BridgeNfIptables": _proc_flag("/proc/sys/net/bridge/bridge-nf-call-iptables"),
            "BridgeNfIp6tables": _proc_flag("/proc/sys/net/bridge/bridge-nf-call-ip6tables")}


def _os_release(key: str) -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith(key + "="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return ""


def _os_name() -> str:
    return _os_release("PRETTY_NAME") or "Linux"


def mem_total() -> int:
    """The host's memory, bytes."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def barque_version() -> str:
    """The installed barque's version ("unknown" when run from a bare source tree)."""
    from importlib import metadata  # ~15 ms: only for the commands that show it

    try:
        return metadata.version("barque")
    except metadata.PackageNotFoundError:
        return "unknown"


API_VERSION = "1.43"
MIN_API_VERSION = "1.24"


def version() -> dict[str, Any]:
    """`docker version`'s data: {"Client": …, "Server": …}, the server part as the Engine
    API's SystemVersion. A missing runtime is shown as "(why)" in its Path."""
    import platform

    from barque.engine.context import EngineError
    from barque.image import oci_layout as ol

    try:
        runtime = find_runtime()
    except EngineError as e:
        runtime = f"({e})"
    plat = ol.host_platform()
    ours = barque_version()
    components = [{"Name": "barque-runtime", "Version": "0.1.0", "Details": {"Path": runtime}}]
    # the docker CLI's and dockerd's fields, in their structs' order; PythonVersion is ours
    client = {"Platform": {"Name": "Barque"}, "Version": ours, "ApiVersion": API_VERSION,
              "DefaultAPIVersion": API_VERSION, "GitCommit": "", "GoVersion": "",
              "Os": plat["os"], "Arch": plat["architecture"], "BuildTime": "",
              "Context": "default", "PythonVersion": platform.python_version()}
    server = {"Platform": {"Name": "Barque"}, "Components": components, "Version": ours,
              "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "GitCommit": "",
              "GoVersion": "", "Os": plat["os"], "Arch": plat["architecture"],
              "KernelVersion": platform.release(), "BuildTime": "",
              "PythonVersion": platform.python_version()}
    return {"Client": client, "Server": server}


def info(engine: Engine, version: str | None = None) -> dict[str, Any]:
    """The Engine API's SystemInfo, with what Barque has, every field in dockerd's order
    (scripts read `{{.SecurityOptions}}`, `{{.Swarm.LocalNodeState}}`, …)."""
    import threading

    states = [engine.state(r)["Status"] for r in engine.records.all()]
    try:
        runtime = find_runtime()
    except Exception:  # noqa: BLE001 (info still shows the rest)
        runtime = ""
    features = host_features()
    return {
        "ID": "", "Containers": len(states),
        "ContainersRunning": sum(s in ("running", "restarting") for s in states),
        "ContainersPaused": states.count("paused"),
        "ContainersStopped": sum(s in ("created", "exited", "dead") for s in states),
        "Images": len(engine.store.images()), "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", _fs_type(engine.paths.root)]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"],
                    "Authorization": None, "Log": ["json-file"]},
        "MemoryLimit": features["MemoryLimit"], "SwapLimit": features["SwapLimit"],
        "KernelMemory": False, "KernelMemoryTCP": False,
        **{k: features[k] for k in ("CpuCfsPeriod", "CpuCfsQuota", "CPUShares", "CPUSet",
                                    "PidsLimit", "IPv4Forwarding", "BridgeNfIptables",
                                    "BridgeNfIp6tables")},
        "Debug": False, "NFd": _open_fds(), "OomKillDisable": features["OomKillDisable"],
        "NGoroutines": threading.active_count(), "SystemTime": _now_rfc3339(),
        "LoggingDriver": "json-file", "CgroupDriver": "cgroupfs",
        "CgroupVersion": _cgroup_version(), "NEventsListener": 0,
        "KernelVersion": os.uname().release, "OperatingSystem": _os_name(),
        "OSVersion": _os_release("VERSION_ID"), "OSType": "linux",
        "Architecture": os.uname().machine,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": [],
                           "AllowNondistributableArtifactsHostnames": [],
                           "InsecureRegistryCIDRs": ["127.0.0.0/8"],  # http only there
                           "IndexConfigs": {"docker.io": {"Name": "docker.io", "Mirrors": [],
                                                          "Secure": True, "Official": True}},
                           "Mirrors": []},
        "NCPU": os.cpu_count() or 1, "MemTotal": mem_total(), "GenericResources": None,
        "DockerRootDir": engine.paths.root,
        **{key: os.environ.get(var, os.environ.get(var.lower(), "")) for key, var in (
            ("HttpProxy", "HTTP_PROXY"), ("HttpsProxy", "HTTPS_PROXY"),
            ("NoProxy", "NO_PROXY"))},
        "Name": socket.gethostname(), "Labels": [], "ExperimentalBuild": False,
        "ServerVersion": barque_version() if version is None else version,
        "Runtimes": {"barque-runtime": {"path": runtime}}, "DefaultRuntime": "barque-runtime",
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                  "ControlAvailable": False, "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": False, "Isolation": "", "InitBinary": "docker-init",
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": {"ID": "", "Expected": ""}, "InitCommit": {"ID": "", "Expected": ""},
        # Docker's default seccomp profile is applied to every container that sets none
        "SecurityOptions": ["name=seccomp,profile=default", *_userns_option(engine)],
        "Warnings": [], "Volumes": len(engine.volumes.all()),
    }


def _userns_option(engine: Engine) -> list[str]:
    """dockerd lists "name=userns" while userns-remap is on."""
    from barque.engine import userns

    try:
        return ["name=userns"] if userns.load(engine.paths.root) is not None else []
    except EngineError:
        return []


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def _now_rfc3339() -> str:
    import time

    now = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now // 10**9)) + \
        f".{now % 10**9:09d}Z"


def _fs_type(path: str) -> str:
    best, kind = "", "unknown"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4]
            rest = line.split(" - ", 1)[1].split()
            if (path == point or path.startswith(point.rstrip("/") + "/")) and \
                    len(point) >= len(best):
                best, kind = point, rest[0]
    return kind


def prune_containers(engine: Engine) -> tuple[list[str], int, list[str]]:
    """Remove every container not running: (the removed IDs, the bytes their changes took,
    the errors of those that could not be removed)."""
    from barque.engine import lifecycle
    from barque.engine.context import EngineError

    removed, reclaimed, errors = [], 0, []
    for record in engine.records.all():
        if engine.state(record)["Running"]:
            continue
        size = dir_size(os.path.join(engine.paths.snapshot_dir(record.id), "upper"))
        try:
            lifecycle.remove(engine, record.id)
        except EngineError as e:
            errors.append(str(e))
            continue
        removed.append(record.id)
        reclaimed += size
    events.emit(engine.paths, "container", "prune", "", {"reclaimed": str(reclaimed)})
    return removed, reclaimed, errors


VOLUME_PRUNE_FILTERS = ("label", "label!", "all")


def prune_volumes(engine: Engine, all_volumes: bool,
                  filters: dict[str, list[str]] | None = None) -> tuple[list[str], int]:
    """Remove the volumes no container uses (only anonymous ones unless `all_volumes` or an
    `all` filter); Docker's `label` (all must match) and `label!` (not all may) filters."""
    from barque.engine.filters import match_labels, validate

    filters = filters or {}
    validate(filters, VOLUME_PRUNE_FILTERS)
    for value in filters.get("all", []):
        if value.lower() not in ("0", "1", "true", "false"):
            raise EngineError(f"invalid filter 'all={value}'", 1, 400)
        all_volumes = all_volumes or value.lower() in ("1", "true")
    removed, reclaimed = [], 0
    for volume in engine.volumes.all():
        if not (all_volumes or volume.anonymous) or engine.users_of_volume(volume.name):
            continue
        if not match_labels(filters.get("label", []), volume.labels):
            continue
        if "label!" in filters and match_labels(filters["label!"], volume.labels):
            continue  # dockerd's MatchKVList, as network prune
        reclaimed += dir_size(volume.mountpoint)
        engine.volumes.remove(volume.name, [])
        removed.append(volume.name)
    events.emit(engine.paths, "volume", "prune", "", {"reclaimed": str(reclaimed)})
    return removed, reclaimed


@dataclass
class SystemPruneReport:
    """What `docker system prune` removed, in the order Docker reports it."""
    containers: list[str]
    container_errors: list[str]  # containers that could not be removed, why
    networks: list[str]
    volumes: list[str]
    images: list[dict[str, str]]  # ImageDeleteResponseItems, as images.prune gives them
    reclaimed: int  # bytes
    build_cache: list[str] = field(default_factory=list)  # the cache entries' IDs


def prune_system(engine: Engine, *, all_images: bool = False,
                 volumes: bool = False) -> SystemPruneReport:
    """`docker system prune [-a] [--volumes]`: stopped containers, unused networks, unused
    anonymous volumes (with `volumes`), dangling (or, with `all_images`, unused) images,
    then the build cache (with `all_images` all of it, else what no image shares)."""
    from barque.engine import images, networks

    removed, reclaimed, errors = prune_containers(engine)
    networks_gone = networks.prune(engine, [])
    volumes_gone: list[str] = []
    if volumes:
        volumes_gone, volume_bytes = prune_volumes(engine, False)
        reclaimed += volume_bytes
    pruned = images.prune(engine.store, all_images=all_images)
    cache, cache_bytes = prune_build_cache(engine, all_entries=all_images)
    return SystemPruneReport(removed, errors, networks_gone, volumes_gone,
                             pruned["ImagesDeleted"],
                             reclaimed + pruned["SpaceReclaimed"] + cache_bytes, cache)


@dataclass
class ImageUsage:
    image: Any  # barque.image.store.Image
    size: int  # its layers' bytes
    shared_size: int  # of those, the bytes of layers another image has too
    containers: int  # the containers made from it


@dataclass
class DiskUsage:
    """What `docker system df` and GET /system/df show: each kind's objects with their bytes
    (a kind not asked for is None)."""
    layers_size: int
    images: list[ImageUsage] | None
    containers: list[tuple[Any, int]] | None  # (listing.ContainerSummary, its changes' bytes)
    volumes: list[tuple[Any, int, int]] | None  # (Volume, bytes, containers using it)
    build_cache: list[Any] | None  # barque.build.cache.Usage


DISK_USAGE_KINDS = ("container", "image", "volume", "build-cache")


def disk_usage_data(engine: Engine, kinds: tuple[str, ...] = DISK_USAGE_KINDS) -> DiskUsage:
    from barque.engine import listing

    for kind in kinds:
        if kind not in DISK_USAGE_KINDS:
            raise EngineError(f"unknown object type: {kind}", 1, 400)
    layers, images = _image_sizes(engine) if "image" in kinds else (0, None)
    containers = None
    if "container" in kinds:
        containers = [(s, dir_size(os.path.join(engine.paths.snapshot_dir(s.id), "upper")))
                      for s in listing.list_containers(engine, all_=True)]
    volumes = None
    if "volume" in kinds:
        volumes = [(v, dir_size(v.mountpoint), len(engine.users_of_volume(v.name)))
                   for v in engine.volumes.all()]
    cache = build_cache_usage(engine) if "build-cache" in kinds else None
    return DiskUsage(layers, images, containers, volumes, cache)


def _image_sizes(engine: Engine) -> tuple[int, list[ImageUsage]]:
    """(the bytes of all layers, each counted once; each image's usage)."""
    store = engine.store
    images = store.images()
    users: dict[str, int] = {}
    for record in engine.records.all():
        users[record.image_id] = users.get(record.image_id, 0) + 1
    holders: dict[str, int] = {}
    layer_size: dict[str, int] = {}
    for image in images:
        for layer, size in zip(image.layers, store.layer_sizes(image), strict=False):
            holders[layer.chain_id] = holders.get(layer.chain_id, 0) + 1
            layer_size[layer.chain_id] = size
    found = []
    for image in images:
        chains = {layer.chain_id for layer in image.layers}
        found.append(ImageUsage(image, sum(layer_size.get(c, 0) for c in chains),
                                sum(layer_size.get(c, 0) for c in chains
                                    if holders.get(c, 0) > 1),
                                users.get(image.id, 0)))
    return sum(layer_size.values()), found


def disk_usage(engine: Engine) -> list[dict[str, Any]]:
    """`docker system df`'s rows: images, containers, local volumes, build cache."""
    data = disk_usage_data(engine, ("container", "image", "volume"))
    assert data.images is not None and data.containers is not None and data.volumes is not None
    # the docker CLI: all layers once; reclaimable what no container's image holds alone
    in_use = sum(u.size - u.shared_size for u in data.images if u.containers)
    active = [size for s, size in data.containers
              if s.state in ("running", "paused", "restarting")]  # State.Running
    return [
        _row("Images", len(data.images), sum(u.containers > 0 for u in data.images),
             data.layers_size, data.layers_size - in_use),
        _row("Containers", len(data.containers), len(active),
             sum(size for _, size in data.containers),
             sum(size for _, size in data.containers) - sum(active)),
        _row("Local Volumes", len(data.volumes), sum(n > 0 for _, _, n in data.volumes),
             sum(size for _, size, _ in data.volumes),
             sum(size for _, size, n in data.volumes if not n)),
        build_cache_row(engine),
    ]


def image_usage(engine: Engine) -> list[dict[str, Any]]:
    """`system df -v`'s images: one row per name (or one `<none>` row), with the bytes of
    layers another image shares and those only it has, and the containers using it."""
    from barque.image import reference

    rows = []
    for usage in _image_sizes(engine)[1]:
        image = usage.image
        common = {"ID": image.short_id, "Created": image.created, "Size": usage.size,
                  "SharedSize": usage.shared_size, "UniqueSize": usage.size - usage.shared_size,
                  "Containers": usage.containers}
        names = [reference.parse(t) for t in image.tags]
        rows += [{"Repository": n.familiar_repository, "Tag": n.tag or "<none>", **common}
                 for n in names] or [{"Repository": "<none>", "Tag": "<none>", **common}]
    return rows


def build_cache_row(engine: Engine) -> dict[str, Any]:
    """Docker's Build Cache row: entries, those in use, the bytes of those not shared with
    an image, the bytes a prune would free."""
    entries = build_cache_usage(engine)
    own = [e for e in entries if not e.shared]
    size = sum(e.size for e in own)
    return _row("Build Cache", len(entries), sum(e.in_use for e in entries), size,
                size - sum(e.size for e in own if e.in_use))


def build_cache_usage(engine: Engine) -> list[Any]:
    """The build cache's entries (barque.build.cache.Usage), newest use first."""
    from barque.build.cache import BuildCache

    return BuildCache(engine.store.conn).usage()


def prune_build_cache(engine: Engine, *, all_entries: bool = False,
                      until: float | None = None, keep_storage: int = 0
                      ) -> tuple[list[str], int]:
    """`builder prune`, `system prune`: drop cache entries (those no image shares, or all;
    unused since `until`; down to `keep_storage` bytes), then the layers and blobs nothing
    holds any more; (the entries' IDs, the bytes freed)."""
    from barque.build.cache import BuildCache

    store = engine.store
    dropped = BuildCache(store.conn).prune(all_entries=all_entries, until=until,
                                           keep_storage=keep_storage)
    if not dropped:
        return [], 0
    before = store.disk_usage()
    store.collect_garbage()
    return [entry.id for entry in dropped], max(0, before - store.disk_usage())


def _row(kind: str, total: int, active: int, size: int, reclaimable: int) -> dict[str, Any]:
    return {"Type": kind, "TotalCount": total, "Active": active, "Size": size,
            "Reclaimable": reclaimable}
