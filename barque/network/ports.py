"""Published ports: Docker's `-p`/`--expose` syntax (go-connections' nat.ParsePortSpecs, the
docker CLI's --expose), the ports `-P` publishes, and holding host ports with bound sockets so
that no host process can take them while a container publishes them."""

from __future__ import annotations

from barque.structs import dataclass


@dataclass(frozen=True)
class PortMap:
    proto: str          # "tcp" | "udp" | "sctp"
    host_ip: str        # the bound address ("" in rows of an older Barque: 0.0.0.0 and ::)
    host_port: int
    container_port: int


TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    import ipaddress
    from collections.abc import Iterable
    from typing import Any

PROTOCOLS = ("tcp", "udp", "sctp")
DYNAMIC_ATTEMPTS = 10  # Docker's maxAllocatePortAttempts


class PortError(Exception):
    """A bad port spec (status 400) or a host port that cannot be had (500), in Docker's words."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PortRequest:
    """One host binding a container asks for: a fixed port, a range to pick from, or any
    (start == end == 0: a kernel-chosen ephemeral port)."""
    proto: str
    host_ip: str        # "" = every host address (0.0.0.0 and ::)
    start: int
    end: int
    container_port: int


# --- Go's number and address parsing, with Go's error texts --------------------------------

def parse_uint16(text: str) -> int:
    """strconv.ParseUint(text, 10, 16)."""
    if not text or not text.isascii() or not text.isdigit():
        raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax')
    value = int(text)
    if value > 0xFFFF:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": value out of range')
    return value


def parse_port_range(text: str) -> tuple[int, int]:
    """nat.ParsePortRange: "80" or "80-90" (anything after a second "-" is ignored, as Go's)."""
    if text == "":
        raise ValueError("empty string specified for ports")
    if "-" not in text:
        value = parse_uint16(text)
        return value, value
    parts = text.split("-")
    start, end = parse_uint16(parts[0]), parse_uint16(parts[1])
    if end < start:
        raise ValueError(f"invalid range specified for port: {text}")
    return start, end


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """net.ParseIP: a plain IPv4 or IPv6 address (no zone, no prefix), else None."""
    import ipaddress

    if "%" in text or "/" in text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _split_host(hostport: str) -> str:
    """The host of net.SplitHostPort for a bracketed host (Go's errors)."""
    last = hostport.rindex(":")
    end = hostport.find("]")
    if end < 0:
        raise ValueError(f"address {hostport}: missing ']' in address")
    if end + 1 == len(hostport):
        raise ValueError(f"address {hostport}: missing port in address")
    if end + 1 != last:
        why = "too many colons" if hostport[end + 1] == ":" else "missing port"
        raise ValueError(f"address {hostport}: {why} in address")
    if "[" in hostport[1:] or "]" in hostport[end + 1:]:
        bad = "[" if "[" in hostport[1:] else "]"
        raise ValueError(f"address {hostport}: unexpected '{bad}' in address")
    return hostport[1:end]


def join_host_port(host: str, port: int | str) -> str:
    """net.JoinHostPort: IPv6 addresses in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --- -p / --publish, --expose (the docker CLI) ---------------------------------------------

def split_proto_port(raw: str) -> tuple[str, str]:
    """nat.SplitProtoPort: "80/udp" -> ("udp", "80"); no protocol is tcp."""
    parts = raw.split("/")
    if not raw or not parts[0]:
        return "", ""
    if len(parts) == 1:
        return "tcp", raw
    if not parts[1]:
        return "tcp", parts[0]
    return parts[1], parts[0]


def _split_parts(raw: str) -> tuple[str, str, str]:
    parts = raw.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def _port_key(proto: str, start: int, end: int | None = None) -> str:
    """nat.NewPort: "80/tcp", or "80-90/tcp" for a range."""
    return f"{start}/{proto}" if end is None or end == start else f"{start}-{end}/{proto}"


def parse_port_spec(raw: str) -> list[tuple[str, dict[str, str]]]:
    """nat.ParsePortSpec: [ip:[hostPort]:]containerPort[/proto] as ("80/tcp", PortBinding)s.
    Its errors in the words of the go-connections Docker 20.10 ships ("Invalid containerPort")."""
    ip, host_port, container_port = _split_parts(raw)
    proto, container_port = split_proto_port(container_port)
    if ip and ip[0] == "[":
        try:
            ip = _split_host(ip + ":")
        except ValueError as e:
            raise PortError(f"Invalid ip address {ip}: {e}") from None
    if ip and parse_ip(ip) is None:
        raise PortError(f"Invalid ip address: {ip}")
    if not container_port:
        raise PortError(f"No port specified: {raw}<empty>")
    try:
        start, end = parse_port_range(container_port)
    except ValueError:
        raise PortError(f"Invalid containerPort: {container_port}") from None
    host_start = host_end = 0
    if host_port:
        try:
            host_start, host_end = parse_port_range(host_port)
        except ValueError:
            raise PortError(f"Invalid hostPort: {host_port}") from None
        # A host range for one container port is the range to pick a host port from.
        if end - start != host_end - host_start and end != start:
            raise PortError(f"Invalid ranges specified for container and host Ports: "
                            f"{container_port} and {host_port}")
    if proto.lower() not in PROTOCOLS:
        raise PortError(f"Invalid proto: {proto}")
    out = []
    for i in range(end - start + 1):
        if host_port:
            host_port = str(host_start + i)
        if start == end and host_start != host_end:
            host_port = f"{host_port}-{host_end}"
        out.append((_port_key(proto.lower(), start + i), {"HostIp": ip, "HostPort": host_port}))
    return out


def _standard_notation(value: str) -> str:
    """The docker CLI's long syntax: target=80,published=8080,protocol=udp."""
    if "=" not in value:
        return value
    params = {"protocol": "tcp"}
    for param in value.split(","):
        key, sep, setting = param.partition("=")
        if not sep or not key:
            raise PortError(f"invalid publish opts format (should be name=value but got "
                            f"'{param}')")
        params[key] = setting
    if "target" not in params:
        raise PortError("missing required 'target' in the publish port")
    return f"{params.get('published', '')}:{params['target']}/{params['protocol']}"


def parse_publish(values: Iterable[str]
                  ) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, str]]]]:
    """nat.ParsePortSpecs over `-p` values: (Config.ExposedPorts, HostConfig.PortBindings)."""
    exposed: dict[str, dict[str, Any]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for value in values:
        for key, binding in parse_port_spec(_standard_notation(value)):
            exposed.setdefault(key, {})
            bindings.setdefault(key, []).append(binding)
    return exposed, bindings


def port_keys(value: str) -> list[str]:
    """PORT[-END][/PROTO] as "80/tcp" keys, one per port (ValueError: nat.ParsePortRange's)."""
    proto, port = split_proto_port(value)
    start, end = parse_port_range(port)
    return [_port_key(proto, number) for number in range(start, end + 1)]


def parse_expose(values: Iterable[str], exposed: dict[str, dict[str, Any]]) -> None:
    """`--expose PORT[-END][/PROTO]` added to Config.ExposedPorts (the docker CLI's checks)."""
    for value in values:
        if ":" in value:
            raise PortError(f"invalid port format for --expose: {value}")
        try:
            keys = port_keys(value)
        except ValueError as e:
            raise PortError(f"invalid range format for --expose: {value}, error: {e}") from None
        for key in keys:
            exposed.setdefault(key, {})


# --- what a container publishes -------------------------------------------------------------

def _key_ports(key: str) -> tuple[str, range] | None:
    """"80/tcp" or "80-82/udp" as (proto, ports); None for what is not a port key."""
    proto, port = split_proto_port(key)
    try:
        start, end = parse_port_range(port)
    except ValueError:
        return None
    return proto.lower(), range(start, end + 1)


def requested(config: dict[str, Any], host_config: dict[str, Any]) -> list[PortRequest]:
    """The host bindings of HostConfig.PortBindings, plus, with PublishAllPorts (`-P`), any
    host port for every exposed port that has none (the image's EXPOSE included), in Docker's
    order (exact ports first, then by container port and protocol). Nothing is published on
    the host's network, on none, or on another container's (Docker discards those ports)."""
    mode = str(host_config.get("NetworkMode") or "")
    if mode in ("host", "none") or mode.startswith("container:"):
        return []
    bindings = host_config.get("PortBindings") or {}
    keys = set(config.get("ExposedPorts") or {}) | set(bindings)
    out: list[PortRequest] = []
    for key in keys:
        parsed = _key_ports(key)
        if parsed is None or parsed[0] not in PROTOCOLS:
            continue
        proto, ports = parsed
        for port in ports:
            given = bindings.get(key) or []
            for binding in given:
                host_port = str(binding.get("HostPort") or "")
                start, end = parse_port_range(host_port) if host_port else (0, 0)
                out.append(PortRequest(proto, _host_ip(binding), start, end, port))
            if not given and host_config.get("PublishAllPorts"):
                out.append(PortRequest(proto, "", 0, 0, port))
    out.sort(key=lambda r: (r.start == 0 or r.start != r.end, r.container_port,
                            PROTOCOLS.index(r.proto), r.start, r.end, r.host_ip))
    return out


def _host_ip(binding: dict[str, Any]) -> str:
    """HostIp without brackets; an IPv4-mapped IPv6 address is the IPv4 one (Go's To4)."""
    ip = str(binding.get("HostIp") or "")
    ip = ip[1:-1] if ip.startswith("[") and ip.endswith("]") else ip
    parsed = parse_ip(ip)
    if parsed is not None and parsed.version == 6 and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return ip


# --- holding host ports ---------------------------------------------------------------------

def ipv6_listenable() -> bool:
    """Can this host bind an IPv6 socket (Docker's netutils.IsV6Listenable)?"""
    import socket

    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# Barque forwards published ports in the kernel (DNAT), as Docker does with its userland proxy
# off, and follows Docker's rules for that case: the kernel cannot translate between IPv6 and
# IPv4, so an IPv6 host address reaches only a container with an IPv6 address (on an --ipv6
# network), and `-p 8080:80` adds [::]:8080 to 0.0.0.0:8080 only for such a container.
NO_V6_CONTAINER = ("Cannot map from IPv6 to an IPv4-only container because the userland proxy "
                   "is disabled")
# Nor does the kernel route IPv6 loopback traffic out of the loopback interface (IPv6 has no
# route_localnet): a DNAT'd connection from ::1 never completes.
NO_V6_LOOPBACK = ("Cannot map from the IPv6 loopback address to a container because the "
                  "userland proxy is disabled (publish on 127.0.0.1 or [::] instead)")


def _addresses(request: PortRequest, container_ip: str, container_ipv6: str) -> list[str]:
    """The host addresses a request binds: its own, or 0.0.0.0 and (for a container with an
    IPv6 address, on a host that has IPv6) ::. PortError for an IPv6 one nothing can reach."""
    if not request.host_ip:
        return ["0.0.0.0", "::"] if container_ipv6 and ipv6_listenable() else ["0.0.0.0"]
    ip = parse_ip(request.host_ip)
    if ip is None or ip.version == 4:
        return [request.host_ip]
    where = _describe(request.host_ip, request.start if request.start == request.end else 0,
                      container_ipv6 or container_ip, request)
    if not container_ipv6:
        raise PortError(f"failed to bind host port for {where}: {NO_V6_CONTAINER}", 500)
    if ip.is_loopback:
        raise PortError(f"failed to bind host port for {where}: {NO_V6_LOOPBACK}", 500)
    return [request.host_ip]


def _overlaps(a: str, b: str) -> bool:
    """Do two host addresses share a port space (an unspecified one covers its family)?"""
    if a == b or not a or not b:
        return True
    ipa, ipb = parse_ip(a), parse_ip(b)
    if ipa is None or ipb is None or ipa.version != ipb.version:
        return False
    return ipa.is_unspecified or ipb.is_unspecified


def _allocated(proto: str, address: str, port: int,
               taken: Iterable[tuple[str, str, int]]) -> bool:
    return any(p == proto and q == port and _overlaps(address, ip) for p, ip, q in taken)


def _describe(address: str, port: int, container_ip: str, request: PortRequest) -> str:
    """Docker's PortBinding.String(): host-ip:host-port:container-ip:container-port/proto."""
    inside = join_host_port(container_ip, request.container_port)
    return f"{join_host_port(address, port)}:{inside}/{request.proto}"


def _socket_type(proto: str) -> tuple[int, int]:
    import socket

    return {"tcp": (socket.SOCK_STREAM, socket.IPPROTO_TCP),
            "udp": (socket.SOCK_DGRAM, socket.IPPROTO_UDP),
            "sctp": (socket.SOCK_STREAM, socket.IPPROTO_SCTP)}[proto]


def _bind(proto: str, address: str, port: int) -> tuple[int, int]:
    """A socket bound (and, for tcp, listening) at address:port: (fd, the port it got).
    SO_REUSEADDR as Docker, so a port in TIME_WAIT can be had again; listening so that a
    process that also sets SO_REUSEADDR cannot bind it. Never passed on: close-on-exec."""
    import socket

    kind, number = _socket_type(proto)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, kind | socket.SOCK_CLOEXEC, number)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
        if proto == "tcp":
            sock.listen(1)
        port = int(sock.getsockname()[1])
        return sock.detach(), port
    except BaseException:
        sock.close()
        raise


def release(reserved: Iterable[tuple[int, PortMap]]) -> None:
    """Close the sockets that hold host ports."""
    import os

    for fd, _ in reserved:
        try:
            os.close(fd)
        except OSError:
            pass


def _bind_all(request: PortRequest, addresses: list[str], port: int,
              inside: tuple[str, str], ranged: bool) -> list[tuple[int, PortMap]]:
    """`inside`: the container's IPv4 and IPv6 addresses (for the error's words)."""
    """One port on every address, or nothing (OSError carries Docker's words)."""
    held: list[tuple[int, PortMap]] = []
    try:
        for address in addresses:
            try:
                fd, got = _bind(request.proto, address, port)
            except OSError as e:
                reason = (e.strerror or str(e)).lower()
                where = _describe(address, port, inside[":" in address], request)
                text = (f"failed to bind host port {port} for {where}: {reason}" if ranged
                        else f"failed to bind host port for {where}: {reason}")
                raise OSError(e.errno, text) from None
            # One row per socket, its own address: which families a "" request got depends
            # on the container (see _addresses), so the views must not guess it.
            held.append((fd, PortMap(request.proto, address, got, request.container_port)))
            port = got  # a kernel-chosen port: the other addresses get the same one
        return held
    except BaseException:
        release(held)
        raise


def _reserve_one(request: PortRequest, taken: list[tuple[str, str, int]],
                 container_ip: str, container_ipv6: str) -> list[tuple[int, PortMap]]:
    import errno

    addresses = _addresses(request, container_ip, container_ipv6)
    inside = (container_ip, container_ipv6 or container_ip)
    if request.start and request.start == request.end:
        for address in addresses:
            if _allocated(request.proto, address, request.start, taken):
                raise PortError(f"Bind for {join_host_port(address, request.start)} failed: "
                                "port is already allocated", 500)
        try:
            return _bind_all(request, addresses, request.start, inside, False)
        except OSError as e:
            raise PortError(e.strerror or str(e), 500) from None
    candidates = (range(request.start, request.end + 1) if request.start
                  else [0] * DYNAMIC_ATTEMPTS)
    last: OSError | None = None
    for port in candidates:
        if port and any(_allocated(request.proto, a, port, taken) for a in addresses):
            continue
        try:
            held = _bind_all(request, addresses, port, inside, bool(request.start))
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise PortError(e.strerror or str(e), 500) from None
            last = e
            continue
        if port == 0 and _allocated(request.proto, addresses[0], held[0][1].host_port, taken):
            release(held)  # the kernel's pick is recorded as another container's
            continue
        return held
    if last is not None and not request.start:
        raise PortError(last.strerror or str(last), 500)
    raise PortError("all ports are allocated", 500)


def reserve(requests: Iterable[PortRequest | PortMap],
            allocated: Iterable[tuple[str, str, int]] = (),
            container_ip: str = "", container_ipv6: str = "") -> list[tuple[int, PortMap]]:
    """Bind every requested host port, all or nothing: [(socket fd, PortMap)], one entry per
    socket, its PortMap naming that socket's address (a request for every address, "", gives
    0.0.0.0 and, when the container has an IPv6 address `container_ipv6`, ::). A host port
    of 0 is one the kernel chooses, the same on both addresses. `allocated` are
    (proto, host_ip, host_port) other containers publish (the published_ports table): asking
    for one gives Docker's "port is already allocated"; a host process holding the port gives
    Docker 28's "failed to bind host port for …: address already in use". The fds are
    close-on-exec; the caller hands them to the monitor (--hold-fd) and closes its own."""
    taken = list(allocated)
    held: list[tuple[int, PortMap]] = []
    try:
        for item in requests:
            request = item if isinstance(item, PortRequest) else PortRequest(
                item.proto, item.host_ip, item.host_port, item.host_port, item.container_port)
            got = _reserve_one(request, taken, container_ip, container_ipv6)
            held += got
            taken += [(m.proto, m.host_ip, m.host_port) for _, m in got]
    except BaseException:
        release(held)
        raise
    return held


def port_maps(reserved: Iterable[tuple[int, PortMap]]) -> list[PortMap]:
    """The distinct PortMaps of reserve's result, in order (for the table and the firewall)."""
    return list(dict.fromkeys(m for _, m in reserved))
