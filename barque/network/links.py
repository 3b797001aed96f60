"""Bridges, veth pairs, addresses, routes and MACs, through netlink (pyroute2).

pyroute2 costs ~100 ms to import, so it is imported inside the functions that need it, and
the checks that can do without it (does a link exist?) use if_nametoindex(3)."""

from __future__ import annotations

import errno
import os
import socket

from barque.network import netns

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
    from typing import Any

    IPInterface = IPv4Interface | IPv6Interface
    IPAddress = IPv4Address | IPv6Address

IFF_UP = 0x1
IFA_F_NODAD = 0x2


def link_exists(name: str) -> bool:
    """Whether the calling thread's network namespace has a link of that name."""
    return _index(name) is not None


def ensure_bridge(name: str, addresses: list[str], mtu: int = 1500) -> None:
    """A bridge `name`, up, holding `addresses` (CIDR: its gateways). Idempotent, and safe when
    several processes ensure the same bridge at once."""
    check_name(name)
    interfaces = _interfaces(addresses)
    with _iproute() as ipr:
        link = _get_link(ipr, name)
        if link is None:
            link = _add_bridge(ipr, name, mtu)
        elif link["kind"] != "bridge":
            raise OSError(errno.EEXIST, f"{name} exists and is not a bridge")
        index = link["index"]
        for interface in interfaces:
            _add_address(ipr, index, interface, exist_ok=True)
        if not link["flags"] & IFF_UP:
            _call(f"set {name} up", ipr.link, "set", index=index, state="up")


def delete_bridge(name: str) -> None:
    delete_link(name)


def delete_link(name: str) -> None:
    """Delete a link (a veth takes its peer along); missing is fine."""
    index = _index(name)
    if index is None:
        return
    with _iproute() as ipr:
        _delete(ipr, index, name)


def add_veth(netns_path: str, bridge: str, host_name: str, ifname: str, addresses: list[str],
             gateways: list[str], mac: str | None, mtu: int = 1500) -> None:
    """A veth pair: `host_name` enslaved to `bridge`, its peer `ifname` in the namespace at
    `netns_path` with `mac`, `addresses` and default routes via `gateways`; all up. On any
    failure nothing is left behind."""
    import ipaddress

    for name in (bridge, host_name, ifname):
        check_name(name)
    interfaces = _interfaces(addresses)
    routers = [ipaddress.ip_address(gateway) for gateway in gateways]
    if mac is not None:
        _check_mac(mac)
    master = _index(bridge)
    if master is None:
        raise OSError(errno.ENODEV, f"bridge {bridge} not found")
    with _iproute() as ipr:
        host = _add_pair(ipr, netns_path, host_name, ifname, master, mac, mtu)
        try:
            _hairpin(host_name)
            _configure_peer(netns_path, ifname, interfaces, routers)
        except BaseException:
            # One end takes the other along, wherever it is.
            _delete(ipr, host, host_name)
            raise


def attach(netns_path: str, bridge: str, bridge_addresses: list[str], host_name: str,
           ifname: str, addresses: list[str], gateways: list[str], mac: str | None,
           mtu: int = 1500) -> None:
    """A container's start on one network in one call (one agent round trip): the bridge
    ensured (ensure_bridge), a previous run's veth of that name deleted (its namespace not
    yet gone), then add_veth; the same checks, results and words as those."""
    ensure_bridge(bridge, bridge_addresses, mtu)
    delete_link(host_name)
    add_veth(netns_path, bridge, host_name, ifname, addresses, gateways, mac, mtu)


def _add_pair(ipr: Any, netns_path: str, host_name: str, ifname: str, master: int,
              mac: str | None, mtu: int) -> int:
    """Create the pair in one request: the peer is born in the namespace under its final
    name (so no rename, and no clash with the host's own eth0)."""
    fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        peer: dict[str, Any] = {"ifname": ifname, "mtu": mtu, "net_ns_fd": fd}
        if mac:
            peer["address"] = mac.lower()
        # The host end is enslaved and up from birth: one request less.
        _call(f"add veth {host_name}", ipr.link, "add", ifname=host_name, kind="veth",
              mtu=mtu, master=master, state="up", peer=peer)
    finally:
        os.close(fd)
    index = _index(host_name)
    if index is None:  # someone deleted it under us
        raise OSError(errno.ENODEV, f"veth {host_name} vanished")
    return index


def _hairpin(host_name: str) -> None:
    """Frames may leave the bridge port they came in by, as Docker sets it: a container
    reaching its own published port is DNATed back to itself (with br_netfilter on, the
    bridge would otherwise drop that frame)."""
    with open(f"/sys/class/net/{host_name}/brport/hairpin_mode", "w") as f:
        f.write("1")


def _configure_peer(netns_path: str, ifname: str, interfaces: list[IPInterface],
                    gateways: list[IPAddress]) -> None:
    # A netlink socket opened by this thread while inside the namespace talks to it: no
    # process forked to enter it (pyroute2's NetNS).
    with netns.entered(netns_path):
        with _iproute() as ipr:
            index = _index(ifname)
            if index is None:
                raise OSError(errno.ENODEV, f"{ifname} not found in {netns_path}")
            if any(i.version == 6 for i in interfaces):
                _no_dad(ifname)
            for interface in interfaces:
                _add_address(ipr, index, interface, exist_ok=False)
            _call(f"set {ifname} up", ipr.link, "set", index=index, state="up")
            for gateway in gateways:
                v6 = gateway.version == 6
                _call(f"add default route via {gateway}", ipr.route, "add",
                      family=socket.AF_INET6 if v6 else socket.AF_INET,
                      dst="::/0" if v6 else "0.0.0.0/0", gateway=str(gateway), oif=index)


def _no_dad(ifname: str) -> None:
    """No duplicate address detection on the container's end, for its link-local address
    too (set before the link goes up): the namespace has nobody else to clash with. The
    thread is inside the namespace, and /proc/sys/net shows the opener's namespace."""
    with open(f"/proc/sys/net/ipv6/conf/{ifname}/accept_dad", "w") as f:
        f.write("0")


def _add_bridge(ipr: Any, name: str, mtu: int) -> dict[str, Any]:
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        # A MAC of its own: else the bridge takes its lowest port's, and every container's
        # cached gateway MAC goes stale when that port comes or goes.
        ipr.link("add", ifname=name, kind="bridge", mtu=mtu, address=_random_mac(),
                 state="up")
    except NetlinkError as e:
        if e.code != errno.EEXIST:  # another process made it first: fine
            raise _oserror(e, f"add bridge {name}") from None
    link = _get_link(ipr, name)
    if link is None:
        raise OSError(errno.ENODEV, f"bridge {name} vanished")
    if link["kind"] != "bridge":
        raise OSError(errno.EEXIST, f"{name} exists and is not a bridge")
    return link


def check_name(name: str) -> None:
    """The kernel's rules for an interface name (dev_valid_name): 1-15 bytes, not . or ..,
    no /, : or whitespace. Checked up front: a name also goes into /proc/sys paths."""
    raw = name.encode()
    if not 0 < len(raw) < 16 or name in (".", "..") or any(
            c in "/:\0" or c.isspace() for c in name):
        raise ValueError(f"invalid interface name: {name!r}")


def _interfaces(addresses: list[str]) -> list[IPInterface]:
    """Parsed before anything is made: bad input changes nothing (ValueError: "... does not
    appear to be an IPv4 or IPv6 interface")."""
    import ipaddress

    return [ipaddress.ip_interface(cidr) for cidr in addresses]


def _check_mac(mac: str) -> None:
    octets = mac.split(":")
    if len(octets) != 6 or not all(len(o) == 2 and _is_hex(o) for o in octets):
        raise ValueError(f"invalid MAC address: {mac}")


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def _add_address(ipr: Any, index: int, interface: IPInterface, exist_ok: bool) -> None:
    from pyroute2.netlink.exceptions import NetlinkError

    spec: dict[str, Any] = {"index": index, "address": str(interface.ip),
                            "prefixlen": interface.network.prefixlen}
    if interface.version == 6:
        # No duplicate address detection: the address is usable now, not in ~1 s (a
        # container's first packet would otherwise leave from no address at all).
        spec["flags"] = IFA_F_NODAD
    else:
        spec["broadcast"] = True
    try:
        ipr.addr("add", **spec)
    except NetlinkError as e:
        if not (exist_ok and e.code == errno.EEXIST):
            raise _oserror(e, f"add address {interface}") from None


def _get_link(ipr: Any, name: str) -> dict[str, Any] | None:
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        msg = ipr.link("get", ifname=name)[0]
    except NetlinkError as e:
        if e.code == errno.ENODEV:
            return None
        raise _oserror(e, f"get link {name}") from None
    return {"index": msg["index"], "flags": msg["flags"],
            "kind": msg.get(("linkinfo", "kind"))}


def _delete(ipr: Any, index: int, name: str) -> None:
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        ipr.link("del", index=index)
    except NetlinkError as e:
        if e.code != errno.ENODEV:
            raise _oserror(e, f"delete link {name}") from None


def _call(what: str, method: Any, *args: Any, **kwargs: Any) -> Any:
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        return method(*args, **kwargs)
    except NetlinkError as e:
        raise _oserror(e, what) from None


def _oserror(e: Any, what: str) -> OSError:
    return OSError(e.code, f"{what}: {os.strerror(e.code)}")


def _index(name: str) -> int | None:
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return None


def _random_mac() -> str:
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFE) | 0x02  # unicast, locally administered
    return ":".join(f"{b:02x}" for b in raw)


def _iproute() -> Any:
    """A netlink route socket in the calling thread's network namespace."""
    from pyroute2 import IPRoute

    return IPRoute()
