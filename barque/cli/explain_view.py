"""The facts of `barque explain` as sections of (what, value, meaning) rows: the one wording
that the terminal view and the HTML page both show."""

from __future__ import annotations

from barque.structs import dataclass, field

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

NO_LIMIT = "no limit"

# What a VM needs for the same isolation, to set beside the container's cost. Typical
# published figures, not measured here: said so wherever they are shown.
VM_NOTE = ("A VM giving the same isolation boots its own kernel and init: a minimal one "
           "(Firecracker's) ~125 ms and ~5 MiB of VMM beside the guest's own memory; a "
           "QEMU/KVM guest with a distribution seconds and 100+ MiB (typical figures, not "
           "measured here).")


@dataclass
class Section:
    key: str  # namespaces, cgroups, filesystem, security, cost
    title: str
    intro: str
    rows: list[tuple[str, str, str]] = field(default_factory=list)


def size(value: int | None) -> str:
    if value is None:
        return "?"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{value} B"


def _limit(value: int | None, show: Any = size) -> str:
    return NO_LIMIT if value is None else str(show(value))


def namespaces(facts: dict[str, Any]) -> Section:
    section = Section("namespaces", "Namespaces",
                      "What the container sees: each kind is private to it, or shared.")
    for ns in facts["namespaces"]:
        if ns["private"] and not ns["shared_with"]:
            where = "private"
        else:  # with the host, or (private) with other containers only
            where = "shared with " + ", ".join(ns["shared_with"] or ["host"])
        inodes = f"{ns['inode']}" + (f" (host {ns['host_inode']})" if ns["private"] else "")
        section.rows.append((ns["type"], f"{where}, {inodes}", ns["meaning"]))
    return section


def cgroups(facts: dict[str, Any]) -> Section:
    cg = facts["cgroups"]
    path = next(iter(cg["paths"].values()), "?") if cg["paths"] else "?"
    section = Section("cgroups", f"cgroups (v{cg['version']})",
                      f"What it may use: limits beside live use, cgroup {path}.")
    memory, pids, cpu = cg["memory"], cg["pids"], cg["cpu"]
    peak = f", peak {size(memory['peak'])}" if memory["peak"] is not None else ""
    section.rows += [
        ("memory", f"{size(memory['current'])}{peak} / {_limit(memory['limit'])}",
         "the kernel reclaims, then OOM-kills, past the limit"),
        ("cpu", f"{cpu['percent']:.1f}% of a CPU over {cpu['sample_seconds']:.1f} s / "
         f"{_limit(cpu['limit_cpus'], lambda c: f'{c:g} CPUs')}",
         (f"quota {cpu['quota_us']} us per {cpu['period_us']} us; " if cpu["quota_us"]
          else "no CPU quota; ") + f"{cpu['usage_ns'] / 1e9:.2f} s used since start"),
        ("pids", f"{pids['current']} / {_limit(pids['limit'], str)}",
         "fork fails with EAGAIN at the limit"),
        ("io", f"read {size(cg['io']['read_bytes'])}, written {size(cg['io']['write_bytes'])}",
         "block I/O through the block layer (not page-cache writes yet unflushed)"),
        ("oom kills", str(cg["oom_kills"]), "processes the kernel killed for memory"),
    ]
    return section


def filesystem(facts: dict[str, Any]) -> Section:
    fs = facts["filesystem"]
    section = Section("filesystem", "Union filesystem",
                      "What it stores: read-only layers under one writable upper dir.")
    overlay = fs["overlay"]
    if overlay is None:
        section.rows.append(("/", fs["fstype"] or "?", "no overlay: a plain copy"))
        return section
    for layer in overlay["layers"]:
        name = (layer["digest"] or layer["dir"])
        what = {"image": "image layer", "init": "init layer",
                "other": "lower dir"}[layer["kind"]]
        others = layer["shared_with"]
        role = "its /etc files and mount points; " if layer["kind"] == "init" else ""
        section.rows.append((what, f"{_short(name)} {size(layer['size'])}",
                             f"{role}read-only; shared with {others} other container"
                             f"{'' if others == 1 else 's'}"))
    cow = overlay["copy_on_write"] or {}
    section.rows.append(("upper dir", overlay["upper_dir"],
                         "read-only mount" if overlay["read_only"] else "where writes go"))
    section.rows.append(("copied up", f"{size(cow.get('bytes'))} in {cow.get('files', 0)} "
                         f"files, {cow.get('whiteouts', 0)} deleted",
                         "copy-on-write so far" + (" (walk truncated)"
                                                   if cow.get("truncated") else "")))
    for entry in cow.get("largest") or []:
        section.rows.append(("largest", entry["path"], size(entry["bytes"])))
    return section


def _short(text: str) -> str:
    """A digest as its first 12 hex digits; a dir as its last component."""
    if text.startswith("sha256:"):
        return text[:19]
    return "…/" + text.rstrip("/").rpartition("/")[2]


def security(facts: dict[str, Any]) -> Section:
    sec = facts["security"]
    caps, sc, user, paths = sec["capabilities"], sec["seccomp"], sec["user"], sec["paths"]
    section = Section("security", "Security",
                      "What it may do: privileges beside Docker's defaults.")
    held = len(caps["effective"])
    changes = []
    if caps["added"]:
        changes.append("added " + " ".join(c[4:] for c in caps["added"]))
    if caps["dropped"]:
        changes.append("dropped " + " ".join(c[4:] for c in caps["dropped"]))
    section.rows.append(("capabilities", f"{held} held (Docker's default: "
                         f"{len(caps['docker_default'])})", "; ".join(changes) or
                         "exactly Docker's default set"))
    profile = sc["profile"]
    allowed = f", {profile['allowed_syscalls']} syscalls allowed" if profile else ""
    section.rows.append(("seccomp", f"{sc['mode_name']} ({sc['filters']} filters{allowed})",
                         "other syscalls fail" if sc["mode"] == 2 else "every syscall allowed"))
    section.rows.append(("no_new_privs", "yes" if sec["no_new_privs"] else "no",
                         "setuid binaries cannot gain privileges" if sec["no_new_privs"]
                         else "setuid binaries work"))
    masked = [p["path"] for p in paths["masked"] if p["state"] == "masked"]
    readonly = [p["path"] for p in paths["readonly"] if p["state"] == "read-only"]
    section.rows.append(("masked paths", f"{len(masked)}", " ".join(masked) or "none"))
    section.rows.append(("read-only paths", f"{len(readonly)}", " ".join(readonly) or "none"))
    section.rows.append(("root filesystem", "read-only" if paths["root_read_only"]
                         else "writable", "--read-only" if paths["root_read_only"] else ""))
    lsm = sec["lsm"]
    label = lsm["apparmor"] or lsm["selinux"]
    section.rows.append(("LSM label", label or "none", "AppArmor/SELinux confinement"
                         if label else "no AppArmor or SELinux on this host"))
    inside, outside = user["inside"], user["outside"]
    section.rows.append(("user", f"uid {inside['uid']} inside = uid {outside['uid']} outside",
                         f"gid {inside['gid']} inside = gid {outside['gid']} outside"))
    return section


def cost(facts: dict[str, Any]) -> Section:
    c = facts["cost"]
    section = Section("cost", "Beside the host (the VM comparison)",
                      "What the isolation costs: no kernel to boot, one small monitor.")
    latency = c["start_latency_ms"]
    section.rows += [
        ("monitor memory", size(c["monitor_rss_bytes"]),
         f"barque-monitor (pid {c['monitor_pid']}) resident; the container's own processes "
         "are counted in its cgroup"),
        ("start latency", f"{latency:.0f} ms" if latency is not None else "?",
         "from create to running (the container's state)"),
        ("a VM instead", "a kernel + init to boot", VM_NOTE),
    ]
    return section


def sections(facts: dict[str, Any]) -> list[Section]:
    return [namespaces(facts), cgroups(facts), filesystem(facts), security(facts),
            cost(facts)]
