"""The default config.json that `barque-runtime spec` writes: runc's, field for field."""

from __future__ import annotations

import os
from typing import Any

OCI_VERSION = "1.2.1"
# What runc 1.1's `spec` writes into config.json (its vendored runtime-spec's version).
SPEC_FILE_VERSION = "1.0.2-dev"

DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

MASKED_PATHS = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
]

READONLY_PATHS = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
]


def default_spec() -> dict:
    """runc 1.1's `spec`: with a cgroup namespace only where the host is pure cgroup v2."""
    from barque.cgroups.mountinfo import is_pure_v2

    spec: dict[str, Any] = {
        "ociVersion": SPEC_FILE_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": list(DEFAULT_CAPS),
                "effective": list(DEFAULT_CAPS),
                "permitted": list(DEFAULT_CAPS),
                # as runc's: not inheritable, so the kernel refuses these (runc warns, runs)
                "ambient": list(DEFAULT_CAPS),
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": [
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
            },
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"},
                {"type": "network"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"},
            ],
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }
    if is_pure_v2():
        spec["linux"]["namespaces"].append({"type": "cgroup"})
    return spec


def rootless_spec(uid: int | None = None, gid: int | None = None) -> dict:
    """runc's `spec --rootless`: a user namespace mapping the caller to root, no cgroup limits."""
    spec = default_spec()
    host_uid = os.geteuid() if uid is None else uid
    host_gid = os.getegid() if gid is None else gid
    linux = spec["linux"]
    namespaces = [ns for ns in linux.pop("namespaces") if ns["type"] != "network"]
    del linux["resources"]
    rest = dict(linux)
    linux.clear()  # runc's key order: the mappings first
    linux["uidMappings"] = [{"containerID": 0, "hostID": host_uid, "size": 1}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": host_gid, "size": 1}]
    linux["namespaces"] = namespaces + [{"type": "user"}]
    linux.update(rest)
    for m in spec["mounts"]:
        if m["destination"] == "/dev/pts":
            m["options"] = [o for o in m["options"] if o != "gid=5"]
        if m["destination"] == "/sys":
            # sysfs cannot be mounted without owning the network namespace: bind the host's.
            options = ["rbind", "nosuid", "noexec", "nodev", "ro"]
            m.update(type="none", source="/sys", options=options)
    return spec
