"""A throw-away network for firewall tests, made with `ip`: bridges, network namespaces on
them through veth pairs, a plain "outside" namespace, and tiny TCP/UDP servers that answer
with their name and the address they see the client at. Everything carries the run's
prefixes and is removed by cleanup()."""

from __future__ import annotations

import inspect
import ipaddress
import json
import random
import select
import socket
import subprocess
import sys
from dataclasses import dataclass, field

SERVER = r"""
import socket, sys
name, addr, port, proto = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, kind)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
if proto == "tcp":
    s.listen(16)
print("ready", flush=True)
while True:
    if proto == "tcp":
        c, peer = s.accept()
        c.sendall(f"{name} {peer[0]}\n".encode())
        c.close()
    else:
        data, peer = s.recvfrom(100)
        s.sendto(f"{name} {peer[0]}\n".encode(), peer)
"""

def ask(addr: str, port: int, proto: str = "tcp", timeout: float = 1.0) -> str:
    """The server's answer ("NAME PEER"), or "" when nothing answers in time."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, kind) as s:
        s.settimeout(timeout)
        try:
            if proto == "tcp":
                s.connect((addr, port))
                return s.recv(100).decode().strip()
            s.sendto(b"hi", (addr, port))
            return s.recv(100).decode().strip()
        except OSError:
            return ""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def free_subnets(count: int) -> list[ipaddress.IPv4Network]:
    """Random /24s in 10.0.0.0/8 that no route or address of the host overlaps."""
    out = subprocess.run(["ip", "-j", "-4", "route", "show", "table", "all"],
                         capture_output=True, text=True, check=True).stdout
    used = []
    for route in json.loads(out):
        try:
            used.append(ipaddress.ip_network(route.get("dst", ""), strict=False))
        except ValueError:
            pass
    chosen: list[ipaddress.IPv4Network] = []
    while len(chosen) < count:
        net = ipaddress.IPv4Network(f"10.{random.randrange(100, 250)}."
                                    f"{random.randrange(0, 256)}.0/24")
        if not any(net.overlaps(u) for u in used + chosen if u.prefixlen > 0):
            chosen.append(net)
    return chosen


def host(net: ipaddress.IPv4Network, n: int) -> str:
    return str(net.network_address + n)


@dataclass
class Topology:
    if_prefix: str
    run_prefix: str
    links: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    servers: list[subprocess.Popen[str]] = field(default_factory=list)

    def bridge(self, name: str, net: ipaddress.IPv4Network) -> str:
        """A bridge IF_PREFIX+name with the subnet's first address; returns its name."""
        br = self.if_prefix + name
        ip("link", "add", br, "type", "bridge")
        self.links.append(br)
        ip("addr", "add", f"{host(net, 1)}/{net.prefixlen}", "dev", br)
        ip("link", "set", br, "up")
        return br

    def namespace(self, name: str, net: ipaddress.IPv4Network, n: int,
                  bridge: str | None = None) -> str:
        """A netns RUN_PREFIX+name whose eth0 has address n of net and a default route via
        address 1: on the bridge, or (no bridge) on a veth whose host end holds address 1."""
        ns = self.run_prefix + name
        ip("netns", "add", ns)
        self.namespaces.append(ns)
        outer = self.if_prefix + "v" + name
        ip("link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.links.append(outer)
        if bridge:
            ip("link", "set", outer, "master", bridge)
        else:
            ip("addr", "add", f"{host(net, 1)}/{net.prefixlen}", "dev", outer)
        ip("link", "set", outer, "up")
        ip("-n", ns, "addr", "add", f"{host(net, n)}/{net.prefixlen}", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "route", "add", "default", "via", host(net, 1))
        return ns

    def serve(self, ns: str | None, name: str, addr: str, port: int, proto: str = "tcp") -> None:
        """A server answering "NAME CLIENT_ADDRESS", in ns (None: on the host)."""
        argv = [sys.executable, "-c", SERVER, name, addr, str(port), proto, self.run_prefix]
        if ns:
            argv = ["ip", "netns", "exec", ns, *argv]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        self.servers.append(proc)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        assert ready and proc.stdout.readline().strip() == "ready", f"server {name} did not start"

    def ask_from(self, ns: str, addr: str, port: int, proto: str = "tcp",
                 timeout: float = 1.0) -> str:
        """ask() run inside ns."""
        client = (f"import socket, sys\n{inspect.getsource(ask)}\n"
                  "print(ask(sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])))")
        out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", client, addr,
                              str(port), proto, str(timeout)],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def cleanup(self) -> None:
        for proc in self.servers:
            proc.kill()
            proc.wait()
            if proc.stdout:
                proc.stdout.close()
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for link in self.links:
            subprocess.run(["ip", "link", "del", link], capture_output=True)
