"""Which `--sysctl` a container may have: moby's opts.ValidateSysctl list (the namespaced
ones), checked again against the container's network mode as runc's validator would at start,
so that a refused sysctl fails `create` before anything is made."""

from __future__ import annotations

from barque.runtime.sysctl import IPC_SYSCTLS, dotted

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any


class SysctlError(Exception):
    pass


def allowed(key: str) -> bool:
    """moby's whitelist, for a key that is a plain path below /proc/sys."""
    try:
        name = dotted(key)
    except ValueError:
        return False
    return name == key and (name in IPC_SYSCTLS or name.startswith(("net.", "fs.mqueue.")))


def check(host_config: dict[str, Any]) -> None:
    sysctls = host_config.get("Sysctls") or {}
    host_net = str(host_config.get("NetworkMode") or "") == "host"
    for key, value in sysctls.items():
        if not allowed(str(key)):
            raise SysctlError(f"sysctl '{key}={value}' is not allowed")
        if host_net and str(key).startswith("net."):
            raise SysctlError(f'sysctl "{key}" not allowed in host network namespace')
