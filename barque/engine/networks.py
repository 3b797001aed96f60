"""The networks containers can be put in. Until bridge networks exist (#5), the two that need
no set-up: `host` (the host's network namespace) and `none` (a namespace of its own with only
loopback, which is also what the default gives today)."""

from __future__ import annotations

import hashlib

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any


def _network_id(name: str) -> str:
    """A stable ID for a built-in network (Docker's are random, made once per daemon)."""
    return hashlib.sha256(f"barque-network:{name}".encode()).hexdigest()


def builtin_networks() -> list[dict[str, Any]]:
    """The Engine API's Network objects for the built-in networks."""
    return [{"Name": name, "Id": _network_id(name), "Created": "0001-01-01T00:00:00Z",
             "Scope": "local", "Driver": driver, "EnableIPv6": False, "Internal": False,
             "Attachable": False, "Ingress": False, "IPAM": {"Driver": "default",
                                                            "Config": []},
             "Options": {}, "Labels": {}} for name, driver in (("host", "host"),
                                                              ("none", "null"))]
