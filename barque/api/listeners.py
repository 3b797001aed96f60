"""Where `barque serve` listens, as dockerd's -H takes it: unix:///path, fd:// (systemd's
socket), and tcp://HOST:PORT — the last only with TLS client certificates (--tlsverify):
whoever reaches an API socket is root on this machine, so a TCP port without client
certificates is refused, not warned about.

Everything is checked (every -H parsed, the certificates loaded) before anything is bound,
and a failure part way closes what was bound: bad flags change nothing."""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass

from barque.api import unix_socket
from barque.engine.errors import EngineError

DEFAULT_TLS_PORT = 2376  # dockerd's for TLS
DEFAULT_TCP_ADDRESS = "127.0.0.1"


@dataclass(frozen=True)
class TLSOptions:
    """dockerd's flags; the files default to $DOCKER_CERT_PATH or ~/.docker, as its."""
    tls: bool = False
    verify: bool = False
    cacert: str | None = None
    cert: str | None = None
    key: str | None = None

    def path(self, given: str | None, name: str) -> str:
        if given:
            return given
        base = os.environ.get("DOCKER_CERT_PATH") or os.path.expanduser("~/.docker")
        return os.path.join(base, name)


@dataclass(frozen=True)
class Host:
    proto: str  # "unix", "fd" or "tcp"
    address: str  # the socket's path, or the IP to bind; "" for fd://
    port: int = 0

    def __str__(self) -> str:
        if self.proto == "tcp":
            ip = f"[{self.address}]" if ":" in self.address else self.address
            return f"tcp://{ip}:{self.port}"
        return f"{self.proto}://{self.address}"


@dataclass
class Listener:
    host: Host
    sock: socket.socket
    ssl: ssl.SSLContext | None


def parse_host(text: str) -> Host:
    """One -H: unix:///abs/path, fd://, tcp://IP[:PORT] or IP:PORT (tcp implied)."""
    value = text.strip()
    if value == "fd://":
        return Host("fd", "")
    if value.startswith("fd://"):
        raise EngineError(f"invalid bind address {text!r}: only fd:// (the first socket "
                          "systemd passes) is supported", status=400)
    if value.startswith("unix://"):
        path = value.removeprefix("unix://")
        if not path.startswith("/"):
            raise EngineError(f"invalid socket path {path!r}: must be absolute", status=400)
        return Host("unix", path)
    if "://" in value and not value.startswith("tcp://"):
        proto = value.split("://", 1)[0]
        raise EngineError(f"Invalid bind address format: {text}: unsupported protocol "
                          f"{proto!r} (unix://, tcp://, fd://)", status=400)
    return _parse_tcp(text, value.removeprefix("tcp://"))


def _parse_tcp(text: str, rest: str) -> Host:
    if "/" in rest.rstrip("/"):
        raise EngineError(f"Invalid bind address format: {text}: no path allowed",
                          status=400)
    rest = rest.rstrip("/")
    if rest.startswith("["):  # [v6]:port
        address, _, port_text = rest[1:].partition("]")
        port_text = port_text.removeprefix(":")
    elif rest.count(":") > 1:
        raise EngineError(f"Invalid bind address format: {text}: write an IPv6 address "
                          "in brackets, [::1]:2376", status=400)
    else:
        address, _, port_text = rest.partition(":")
    try:
        ip = ipaddress.ip_address(address if address not in ("", "localhost")
                                  else DEFAULT_TCP_ADDRESS)
        port = int(port_text) if port_text else DEFAULT_TLS_PORT
    except ValueError:
        raise EngineError(f"Invalid bind address format: {text}: an IP address and a "
                          "port are needed (names are not resolved)", status=400) from None
    if not 0 < port < 65536:
        raise EngineError(f"Invalid bind address format: {text}: invalid port {port}",
                          status=400)
    return Host("tcp", str(ip), port)


def tls_context(options: TLSOptions) -> ssl.SSLContext:
    """The server's side of --tlsverify: its certificate, and clients' certificates
    required and checked against --tlscacert."""
    cacert = options.path(options.cacert, "ca.pem")
    cert = options.path(options.cert, "cert.pem")
    key = options.path(options.key, "key.pem")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # dockerd's minimum
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise EngineError(f"Could not load X509 key pair (cert: {cert!r}, key: {key!r}): "
                          f"{_reason(e)}", status=400) from None
    try:
        context.load_verify_locations(cafile=cacert)
    except (OSError, ssl.SSLError) as e:
        raise EngineError(f"Could not read CA certificate {cacert!r}: {_reason(e)}",
                          status=400) from None
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _reason(e: Exception) -> str:
    if isinstance(e, OSError) and e.strerror and not isinstance(e, ssl.SSLError):
        return e.strerror.lower()
    return str(getattr(e, "reason", None) or e)


def check(hosts: list[Host], options: TLSOptions) -> None:
    """dockerd's rules for the flags, and Barque's one stricter: TCP needs --tlsverify."""
    for host in hosts:
        if host.proto == "tcp" and not options.verify:
            raise EngineError(
                f"refusing to listen on {host} without --tlsverify: anyone who reaches "
                "the port would be root on this machine; pass --tlsverify --tlscacert "
                "--tlscert --tlskey (clients then need a certificate signed by that CA) "
                "or serve a unix socket", status=400)
    if sum(host.proto == "fd" for host in hosts) > 1:
        raise EngineError("fd:// given more than once", status=400)
    seen = [str(host) for host in hosts]
    for name in seen:
        if seen.count(name) > 1:
            raise EngineError(f"{name} given more than once", status=400)


def open_all(texts: list[str], options: TLSOptions) -> list[Listener]:
    """Every -H parsed and checked, the TLS context made, then each bound; all or none."""
    hosts = [parse_host(text) for text in texts]
    check(hosts, options)
    context = tls_context(options) if any(h.proto == "tcp" for h in hosts) else None
    opened: list[Listener] = []
    try:
        for host in hosts:
            opened.append(Listener(host, _bind(host), context if host.proto == "tcp"
                                   else None))
    except BaseException:
        close_all(opened)
        raise
    return opened


def _bind(host: Host) -> socket.socket:
    if host.proto == "fd":
        return unix_socket.activated()
    if host.proto == "unix":
        return unix_socket.bind(host.address)
    family = socket.AF_INET6 if ":" in host.address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host.address, host.port))
        sock.listen(1024)
    except OSError as e:
        sock.close()
        raise EngineError(f"listen tcp {host.address}:{host.port}: bind: "
                          f"{(e.strerror or str(e)).lower()}", status=400) from None
    return sock


def close_all(listeners: list[Listener]) -> None:
    """The sockets closed; the unix ones' files removed (systemd's stays its)."""
    for listener in listeners:
        listener.sock.close()
        if listener.host.proto == "unix":
            try:
                os.unlink(listener.host.address)
            except OSError:
                pass
