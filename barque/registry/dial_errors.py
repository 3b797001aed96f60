"""A connection that failed, in the words of Go's net package as dockerd reports it:
`dial tcp: lookup HOST on 10.0.0.53:53: no such host`, `dial tcp 127.0.0.1:9: connect:
connection refused` — never the HTTP library's internals (`HTTPSConnectionPool(...)`)."""

from __future__ import annotations

import errno
import os
import socket
from urllib.parse import urlsplit

_NO_SUCH_HOST = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


def _causes(exc: BaseException) -> list[BaseException]:
    """exc and what it wraps: causes, contexts, urllib3's `reason`, exceptions in args."""
    found: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    seen: set[int] = set()
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        found.append(current)
        reason = getattr(current, "reason", None)  # urllib3's: an exception, or a str
        todo += [current.__cause__, current.__context__]
        todo += [a for a in (reason, *current.args) if isinstance(a, BaseException)]
    return found


def nameserver(resolv_conf: str = "/etc/resolv.conf") -> str:
    """The server Go's resolver asks first, as its messages name it (`10.0.0.53:53`)."""
    try:
        with open(resolv_conf) as f:
            for line in f:
                words = line.split()
                if len(words) >= 2 and words[0] == "nameserver":
                    host = words[1].split("%")[0]
                    return f"[{host}]:53" if ":" in host else f"{host}:53"
    except OSError:
        pass
    return "127.0.0.1:53"  # Go's default when resolv.conf names none


def _address(host: str, port: int) -> str:
    """HOST:PORT as Go's dialer shows the address it tried: the resolved IP (IPv4 first)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return f"{host}:{port}"
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    ip = str(infos[0][4][0])
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def describe(url: str, exc: BaseException) -> str:
    """What Go's http client says about a request to `url` that could not connect."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    from http.client import RemoteDisconnected

    for cause in _causes(exc):
        if isinstance(cause, RemoteDisconnected):  # closed before any answer: Go's io.EOF
            return "EOF"
        if isinstance(cause, ConnectionResetError):
            return "read: connection reset by peer"
        if isinstance(cause, socket.gaierror):
            if cause.errno in _NO_SUCH_HOST:
                return f"dial tcp: lookup {host} on {nameserver()}: no such host"
            return f"dial tcp: lookup {host} on {nameserver()}: server misbehaving"
        if isinstance(cause, TimeoutError | socket.timeout):
            return f"dial tcp {_address(host, port)}: i/o timeout"
        if isinstance(cause, OSError) and cause.errno:
            words = {errno.ECONNREFUSED: "connection refused"}.get(
                cause.errno, os.strerror(cause.errno).lower())
            return f"dial tcp {_address(host, port)}: connect: {words}"
    return f"dial tcp {host}:{port}: connect: connection failed"
