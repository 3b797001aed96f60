"""The few rtnetlink requests a container's start needs, spoken directly over a netlink socket.

pyroute2 takes ~0.1 s to import and ~7 ms of CPU for one veth with its addresses and routes;
these requests take well under a millisecond, so a start needs neither pyroute2 nor the
network agent that keeps it loaded (links.attach). Errors are OSError(errno, "<what>:
<strerror>"), the words links.py gives for pyroute2's."""

from __future__ import annotations

import os
import socket
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_NEWROUTE = 20, 24
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO = 1, 3, 4, 10, 18
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
IFA_F_NODAD = 0x2
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
IFF_UP = 0x1
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1
_IFINFO = "=BxHiII"


def _attr(kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return struct.pack("=HH", size, kind) + payload + b"\0" * (-size & 3)


def _str(kind: int, text: str) -> bytes:
    return _attr(kind, text.encode() + b"\0")


def _u32(kind: int, value: int) -> bytes:
    return _attr(kind, struct.pack("=I", value))


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def _ifinfo(index: int = 0, up: bool = False) -> bytes:
    return struct.pack(_IFINFO, socket.AF_UNSPEC, 0, index, IFF_UP if up else 0,
                       IFF_UP if up else 0)


class Link:
    def __init__(self, index: int, flags: int, kind: str | None) -> None:
        self.index, self.flags, self.kind = index, flags, kind


class Rtnl:
    """A route netlink socket in the calling thread's network namespace (as it is when the
    socket is made: netns.entered first to talk to another one)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    # -- requests ----------------------------------------------------------------------------

    def get_link(self, name: str) -> Link | None:
        """The link of that name (None: there is none)."""
        reply = self._request(RTM_GETLINK, 0, _ifinfo() + _str(IFLA_IFNAME, name),
                              f"get link {name}", missing_ok=True)
        if reply is None:
            return None
        _, _, index, flags, _ = struct.unpack_from(_IFINFO, reply)
        kind = None
        for attr, payload in _attrs(reply[16:]):
            if attr & 0x3FFF == IFLA_LINKINFO:
                for sub, data in _attrs(payload):
                    if sub & 0x3FFF == IFLA_INFO_KIND:
                        kind = data.rstrip(b"\0").decode()
        return Link(index, flags, kind)

    def add_bridge(self, name: str, mtu: int, mac: str) -> None:
        body = _ifinfo(up=True) + _str(IFLA_IFNAME, name) + _u32(IFLA_MTU, mtu) + \
            _attr(IFLA_ADDRESS, _mac(mac)) + _attr(IFLA_LINKINFO, _str(IFLA_INFO_KIND, "bridge"))
        self._request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, f"add bridge {name}")

    def add_veth(self, host_name: str, master: int, peer_name: str, peer_netns_fd: int,
                 peer_mac: str | None, mtu: int) -> None:
        """A pair in one request: `host_name` up and enslaved to `master`, its peer born down
        in the namespace of `peer_netns_fd` under its final name."""
        peer = _ifinfo() + _str(IFLA_IFNAME, peer_name) + _u32(IFLA_MTU, mtu) + \
            _u32(IFLA_NET_NS_FD, peer_netns_fd)
        if peer_mac:
            peer += _attr(IFLA_ADDRESS, _mac(peer_mac))
        info = _str(IFLA_INFO_KIND, "veth") + \
            _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer))
        body = _ifinfo(up=True) + _str(IFLA_IFNAME, host_name) + _u32(IFLA_MTU, mtu) + \
            _u32(IFLA_MASTER, master) + _attr(IFLA_LINKINFO, info)
        self._request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, f"add veth {host_name}")

    def set_up(self, index: int, name: str) -> None:
        self._request(RTM_NEWLINK, 0, _ifinfo(index, up=True), f"set {name} up")

    def delete_link(self, index: int, name: str) -> None:
        """Missing is fine."""
        self._request(RTM_DELLINK, 0, _ifinfo(index), f"delete link {name}", missing_ok=True)

    def add_address(self, index: int, interface: IPv4Interface | IPv6Interface,
                    exist_ok: bool) -> None:
        v6 = interface.version == 6
        raw = interface.ip.packed
        body = struct.pack("=BBBBI", socket.AF_INET6 if v6 else socket.AF_INET,
                           interface.network.prefixlen, IFA_F_NODAD if v6 else 0, 0, index)
        body += _attr(IFA_ADDRESS, raw)
        if not v6:
            body += _attr(IFA_LOCAL, raw)
            if interface.network.prefixlen < 31:
                body += _attr(IFA_BROADCAST, interface.network.broadcast_address.packed)
        self._request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body,
                      f"add address {interface}", exist_ok=exist_ok)

    def add_default_route(self, gateway: IPv4Address | IPv6Address, index: int) -> None:
        v6 = gateway.version == 6
        body = struct.pack("=BBBBBBBBI", socket.AF_INET6 if v6 else socket.AF_INET, 0, 0, 0,
                           RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
        body += _attr(RTA_GATEWAY, gateway.packed) + _u32(RTA_OIF, index)
        self._request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body,
                      f"add default route via {gateway}")

    # -- the exchange ------------------------------------------------------------------------

    def _request(self, kind: int, flags: int, body: bytes, what: str,
                 missing_ok: bool = False, exist_ok: bool = False) -> bytes | None:
        """Send one request; the payload of its reply message (a GET's), or None on an ack.
        OSError with the kernel's errno otherwise."""
        self.seq += 1
        ack = 0 if kind == RTM_GETLINK else NLM_F_ACK
        self.sock.send(struct.pack("=IHHII", 16 + len(body), kind,
                                   NLM_F_REQUEST | ack | flags, self.seq, 0) + body)
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + 16 <= len(data):
                length, msg_type, _, seq, _ = struct.unpack_from("=IHHII", data, offset)
                if length < 16:
                    break
                payload = data[offset + 16:offset + length]
                offset += (length + 3) & ~3
                if seq != self.seq:
                    continue  # a late answer to an earlier request
                if msg_type == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", payload)
                    if code == 0:
                        return None
                    code = -code
                    if missing_ok and code in (19, 2):  # ENODEV, ENOENT
                        return None
                    if exist_ok and code == 17:  # EEXIST
                        return None
                    raise OSError(code, f"{what}: {os.strerror(code)}")
                if msg_type == NLMSG_DONE:
                    return None
                return payload


def _attrs(data: bytes) -> list[tuple[int, bytes]]:
    result = []
    offset = 0
    while offset + 4 <= len(data):
        size, kind = struct.unpack_from("=HH", data, offset)
        if size < 4:
            break
        result.append((kind, data[offset + 4:offset + size]))
        offset += (size + 3) & ~3
    return result
