"""Published ports: what a container publishes on the host."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PortMap:
    proto: str          # "tcp" | "udp" | "sctp"
    host_ip: str        # "" = every host address
    host_port: int
    container_port: int
