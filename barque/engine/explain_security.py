"""What confines a container's process, as the kernel reports it: capabilities, seccomp,
no_new_privs, masked and read-only paths, the LSM label, the user inside and outside."""

from __future__ import annotations

from barque.engine import explain_proc as proc
from barque.engine.spec_security import DOCKER_CAPS
from barque.linux import lsm
from barque.linux.capabilities import NAMES as CAP_NAMES

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

_SECCOMP_MODES = {0: "disabled", 1: "strict", 2: "filter"}
_CAP_SETS = (("effective", "CapEff"), ("permitted", "CapPrm"), ("bounding", "CapBnd"),
             ("inheritable", "CapInh"), ("ambient", "CapAmb"))


def cap_names(mask_hex: str) -> list[str]:
    mask = int(mask_hex or "0", 16)
    return [name if i < len(CAP_NAMES) else f"CAP_{i}"
            for i, name in enumerate(CAP_NAMES) if mask >> i & 1]


def capabilities(status: dict[str, str]) -> dict[str, Any]:
    sets: dict[str, Any] = {key: cap_names(status.get(field, "0")) for key, field in _CAP_SETS}
    held = set(sets["effective"])
    sets["docker_default"] = list(DOCKER_CAPS)
    sets["added"] = sorted(held - set(DOCKER_CAPS))
    sets["dropped"] = [c for c in DOCKER_CAPS if c not in held]
    return sets


def seccomp(status: dict[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    """The mode and filter count from the kernel; the profile (which the kernel holds only
    as BPF) summarised from the OCI spec the runtime loaded."""
    mode = int(status.get("Seccomp", "0") or 0)
    profile = (spec.get("linux") or {}).get("seccomp")
    summary = None
    if isinstance(profile, dict):
        allowed: set[str] = set()
        for rule in profile.get("syscalls") or []:
            if rule.get("action") == "SCMP_ACT_ALLOW" and not rule.get("args"):
                allowed.update(rule.get("names") or [])
        summary = {"default_action": profile.get("defaultAction"),
                   "allowed_syscalls": len(allowed),
                   "rules": len(profile.get("syscalls") or [])}
    return {"mode": mode, "mode_name": _SECCOMP_MODES.get(mode, str(mode)),
            "filters": int(status.get("Seccomp_filters", "0") or 0), "profile": summary}


def _masked(mount: proc.Mount | None) -> bool:
    # runc masks a directory with a read-only tmpfs, a file with a bind of /dev/null.
    if mount is None:
        return False
    return (mount.fstype == "tmpfs" and mount.read_only) or mount.root.endswith("/null")


def paths(spec: dict[str, Any], mounts: list[proc.Mount]) -> dict[str, Any]:
    """Each path Docker's defaults mask or make read-only, as it really is in the container's
    mount table; "absent" when the runtime found nothing there to cover."""
    linux = spec.get("linux") or {}
    shown = proc.visible(mounts)
    masked = []
    for path in linux.get("maskedPaths") or []:
        mount = shown.get(path)
        masked.append({"path": path, "state": "masked" if _masked(mount) else
                       ("mounted" if mount else "absent")})
    readonly = []
    for path in linux.get("readonlyPaths") or []:
        mount = shown.get(path)
        readonly.append({"path": path, "state": "read-only" if mount and mount.read_only else
                         ("writable" if mount else "absent")})
    root = shown.get("/")
    return {"masked": masked, "readonly": readonly,
            "root_read_only": bool(root and root.read_only)}


def lsm_label(pid: int) -> dict[str, Any]:
    """The AppArmor profile or SELinux context of the process; None where the module is off."""
    apparmor = selinux = None
    if lsm.apparmor_enabled():
        text = proc.read_text(f"/proc/{pid}/attr/apparmor/current") or \
            proc.read_text(f"/proc/{pid}/attr/current")
        apparmor = (text or "").strip("\0\n ") or None
    if lsm.selinux_enabled():
        selinux = (proc.read_text(f"/proc/{pid}/attr/current") or "").strip("\0\n ") or None
    return {"apparmor": apparmor, "selinux": selinux}


def user(pid: int, status: dict[str, str]) -> dict[str, Any]:
    """Real uid/gid as the host sees them and as they are inside the user namespace."""
    uid_out = int(status.get("Uid", "0").split()[0])
    gid_out = int(status.get("Gid", "0").split()[0])
    uid_map = proc.id_map(pid, "uid_map")
    gid_map = proc.id_map(pid, "gid_map")
    return {"outside": {"uid": uid_out, "gid": gid_out},
            "inside": {"uid": proc.map_to_inside(uid_out, uid_map),
                       "gid": proc.map_to_inside(gid_out, gid_map)},
            "uid_map": uid_map, "gid_map": gid_map}


def collect(pid: int, status: dict[str, str], spec: dict[str, Any],
            mounts: list[proc.Mount]) -> dict[str, Any]:
    return {"capabilities": capabilities(status), "seccomp": seccomp(status, spec),
            "no_new_privs": status.get("NoNewPrivs", "0") == "1",
            "paths": paths(spec, mounts), "lsm": lsm_label(pid), "user": user(pid, status)}
