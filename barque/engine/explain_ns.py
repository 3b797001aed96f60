"""A container's namespaces beside the host's: private or shared (with the host, with other
containers: `--ipc`, `--pid` or `--network container:X`, both ways), and what that means
for this container, in one line each."""

from __future__ import annotations

from barque.engine import explain_proc as proc

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

# "The host" is the namespaces Barque itself runs in, which a container's are unshared from
# (PID 1's may be unreadable, and differ when Barque runs in a container of its own).
HOST_PID = "self"


def _meaning(kind: str, private: bool, pid: int, status: dict[str, str],
             spec: dict[str, Any]) -> str:
    if kind == "pid":
        inner = status.get("NSpid", str(pid)).split()[-1]
        return (f"PID {inner} inside is PID {pid} outside" if private else
                f"sees every process of the host; its PID {pid} is the host's")
    if kind == "mnt":
        count = len(proc.mountinfo(pid))
        return (f"its own mount table ({count} mounts; / is its union filesystem)" if private
                else "sees and changes the host's mount table")
    if kind == "uts":
        name = spec.get("hostname") or ""
        return (f"its own hostname{f' ({name})' if name else ''} and domain name" if private
                else "the host's hostname: changing it changes the host's")
    if kind == "ipc":
        return ("its own System V IPC objects and POSIX message queues" if private else
                "shares System V IPC and POSIX message queues with the host")
    if kind == "net":
        names = ", ".join(proc.interfaces(pid)) or "none"
        return (f"its own network stack: interfaces {names}" if private else
                f"the host's network stack: interfaces {names}")
    if kind == "user":
        if not private:
            return "no user namespace: uid 0 inside is uid 0 on the host"
        mapping = proc.id_map(pid, "uid_map")
        maps = "; ".join(f"{a}->{b} ({c})" for a, b, c in mapping)
        root = next((b for a, b, c in mapping if a == 0), None)
        said = ("root inside is unmapped outside" if root is None else
                f"root inside is uid {root} outside")
        return f"its own users: {said}; uid map inside->outside {maps}"
    if kind == "cgroup":
        return ("sees its own cgroup as the root /" if private else
                "sees the host's cgroup tree and its own place in it")
    offsets = " ".join((proc.read_text(f"/proc/{pid}/timens_offsets") or "").split())
    return (f"its own clock offsets ({offsets})" if private else
            "the host's monotonic and boot-time clocks")


def collect(pid: int, status: dict[str, str], spec: dict[str, Any],
            others: dict[str, dict[str, int | None]]) -> list[dict[str, Any]]:
    """`others`: the namespace inodes of every other running container, by name."""
    mine = proc.namespaces(pid)
    host = proc.namespaces(HOST_PID)
    out: list[dict[str, Any]] = []
    for kind in proc.NAMESPACES:
        inode = mine[kind]
        if inode is None:
            out.append({"type": kind, "inode": None, "host_inode": host[kind],
                        "private": False, "shared_with": [],
                        "meaning": "not supported by this kernel"})
            continue
        private = inode != host[kind]
        shared = [] if private else ["host"]
        shared += sorted(name for name, theirs in others.items() if theirs.get(kind) == inode)
        meaning = _meaning(kind, private, pid, status, spec)
        if private and shared:  # --ipc/--pid/--network container:X, or its joiners
            meaning = _with_containers(kind, meaning, ", ".join(shared))
        out.append({"type": kind, "inode": inode, "host_inode": host[kind], "private": private,
                    "shared_with": shared, "meaning": meaning})
    return out


def _with_containers(kind: str, meaning: str, names: str) -> str:
    """A namespace of containers, not the host's: whose, and what they share."""
    if kind == "pid":
        return f"sees the processes of {names} too; {meaning}"
    if kind == "ipc":
        return f"System V IPC objects and POSIX message queues shared with {names}"
    if kind == "net":
        return f"the network stack of {names}: " + meaning.rpartition(": ")[2]
    return f"{meaning}, shared with {names}"
