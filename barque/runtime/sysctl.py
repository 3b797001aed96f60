"""Which sysctls a container may set, and where they are written.

/proc/sys is mostly the host's: only a few entries belong to a namespace the container owns.
The rules are runc's config validator's (libcontainer/configs/validate), with its messages:
IPC sysctls need a private IPC namespace, net.* a network namespace that is not the runtime's
own, kernel.domainname a private UTS namespace; everything else is the host's and refused.
A key is also a path (/proc/sys/<key>): it must name an entry below /proc/sys, nothing else.
"""

from __future__ import annotations

import os

from barque.runtime.errors import RuntimeFailure

# The IPC namespace's sysctls (ipc_sysctls.c), as runc lists them; fs.mqueue.* besides.
IPC_SYSCTLS = frozenset({
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
    "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
})  # fmt: skip


def components(key: str) -> list[str]:
    """The path components of a sysctl key, in sysctl(8)'s two spellings: "net.ipv4.x" or
    "net/ipv4/x"; with dots, a '/' stands for a '.' within a name ("net.ipv4.conf.eth0/100.x",
    sysctl.d(5)). Raises ValueError for a key that is not a plain path below /proc/sys."""
    if not key or "\0" in key:
        raise ValueError("empty key")
    first = min((i for i in (key.find("."), key.find("/")) if i >= 0), default=-1)
    if first >= 0 and key[first] == "/":
        names = key.split("/")
    else:
        names = [name.replace("/", ".") for name in key.split(".")]
    for name in names:
        if name in ("", ".", "..") or "/" in name:
            raise ValueError(f"bad component {name!r}")
    return names


def dotted(key: str) -> str:
    """The key in its dotted form, which the rules are written in (runc's
    convertSysctlVariableToDotsSeparator)."""
    return ".".join(name.replace(".", "/") for name in components(key))


def _is_runtime_netns(path: str) -> bool:
    """A network namespace path that is the runtime's own ("host" means "current" here)."""
    try:
        own, other = os.stat("/proc/self/ns/net"), os.stat(path)
    except OSError as e:
        raise RuntimeFailure(f"invalid netns path: stat {path}: {e.strerror}") from None
    return (own.st_dev, own.st_ino) == (other.st_dev, other.st_ino)


def validate(config: dict) -> None:
    """Refuse, before anything is made, a sysctl the container's namespaces do not own."""
    linux = config.get("linux") or {}
    sysctl = linux.get("sysctl") or {}
    if not isinstance(sysctl, dict):
        raise RuntimeFailure("invalid config.json: linux.sysctl must be an object")
    namespaces = {ns.get("type"): ns.get("path") or "" for ns in linux.get("namespaces") or []
                  if isinstance(ns, dict)}
    host_net: bool | None = None
    for raw_key, value in sysctl.items():
        if not isinstance(value, str):
            raise RuntimeFailure(f"invalid config.json: sysctl {raw_key!r}: value must be a "
                                 "string")
        try:
            key = dotted(raw_key)
        except ValueError:
            raise RuntimeFailure(f"sysctl {raw_key!r} is not a valid sysctl name") from None
        if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
            if "ipc" not in namespaces:
                raise RuntimeFailure(f"sysctl {_q(key)} is not allowed in the hosts ipc "
                                     "namespace")
            continue
        if key.startswith("net."):
            if host_net is None:
                host_net = "network" not in namespaces or bool(
                    namespaces["network"] and _is_runtime_netns(namespaces["network"]))
            if host_net:
                raise RuntimeFailure(f"sysctl {_q(key)} not allowed in host network namespace")
            continue
        if "uts" in namespaces:
            if key == "kernel.domainname":
                continue
            if key == "kernel.hostname":
                raise RuntimeFailure(f'sysctl {_q(key)} is not allowed as it conflicts with the '
                                     'OCI "hostname" field')
        raise RuntimeFailure(f"sysctl {_q(key)} is not in a separate kernel namespace")


def _q(text: str) -> str:
    """Go's %q for the plain ASCII keys that get this far."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_all(sysctl: dict[str, str]) -> None:
    """Write each value to its entry below the container's /proc/sys. The key was checked by
    validate(); it is checked again here, as this is where it becomes a path, and the entry is
    opened without following a symlink (a procfs sysctl entry is never one)."""
    for key, value in sysctl.items():
        try:
            path = os.path.join("/proc/sys", *components(key))
        except ValueError:
            raise RuntimeFailure(f"sysctl {key!r} is not a valid sysctl name") from None
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                os.write(fd, str(value).encode())
            finally:
                os.close(fd)
        except OSError as e:
            raise RuntimeFailure(f"cannot set sysctl {key}={value}: {e.strerror}") from None
