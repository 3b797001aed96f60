"""Talking to the runroot's resolver: register a container (starting the resolver if none
runs) and unregister it. Both hold the flock on <runroot>/dns for the whole exchange, so two
`barque` processes never start two resolvers and a resolver never leaves while a client is
registering with it (see server.py).

For the engine: register once the container's netns exists with `lo` up and its endpoints
have their addresses (NetworkStore.allocate), before its process starts, for a container on
at least one user-defined network (Docker runs no resolver for one only on the default
bridge); its resolv.conf then comes from resolvconf.render(..., embedded=True). Unregister
before the netns is removed (a listening socket keeps the netns alive)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from barque.linux.locks import locked_dir
from barque.network.dns import CONTAINERS, SOCKET, state_dir

TIMEOUT = 10.0


class ResolverError(Exception):
    """The resolver could not be started or refused the request."""


def register(root: str, runroot: str, container_id: str, netns_path: str) -> None:
    """Makes sure the resolver for `runroot` runs and answers on 127.0.0.11:53 (UDP and TCP)
    inside the netns at `netns_path` for `container_id`."""
    root, runroot = os.path.abspath(root), os.path.abspath(runroot)
    directory = state_dir(runroot)
    request = {"op": "register", "id": container_id, "netns": os.path.abspath(netns_path)}
    with locked_dir(directory):
        try:
            try:
                _call(directory, request)
            except (FileNotFoundError, ConnectionRefusedError):  # none runs: start one
                _start(root, runroot)
                _call(directory, request)
        except OSError as e:
            raise ResolverError(f"DNS resolver: {e}") from None


def unregister(runroot: str, container_id: str) -> None:
    """Closes the container's sockets (they would keep its netns alive); nothing to do, and
    no error, when no resolver runs."""
    directory = state_dir(runroot)
    if not os.path.isdir(directory):
        return
    with locked_dir(directory):
        try:
            _call(directory, {"op": "unregister", "id": container_id})
        except (OSError, ResolverError):
            # No resolver (or a broken one): make sure the next one does not bring it back.
            if "/" not in container_id and container_id not in ("", ".", ".."):
                try:
                    os.unlink(os.path.join(directory, CONTAINERS, container_id))
                except OSError:
                    pass


def _call(directory: str, request: dict[str, str]) -> None:
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect(f"/proc/self/fd/{dir_fd}/{SOCKET}")  # short, however long the path
            sock.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n") and (chunk := sock.recv(4096)):
                data += chunk
    finally:
        os.close(dir_fd)
    try:
        reply = json.loads(data)
    except ValueError:
        raise ResolverError("the DNS resolver closed the connection") from None
    if not isinstance(reply, dict) or not reply.get("ok"):
        error = reply.get("error") if isinstance(reply, dict) else None
        raise ResolverError(f"DNS resolver: {error or 'bad reply'}")


def _start(root: str, runroot: str) -> None:
    """Starts the resolver and waits until it listens (its first process exits then)."""
    argv = [sys.executable, "-P", "-m", "barque.network.dns", "--root", root,
            "--runroot", runroot]
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, cwd="/", start_new_session=True,
                              timeout=TIMEOUT * 3)
    except subprocess.TimeoutExpired:
        raise ResolverError("the DNS resolver did not start in time") from None
    if proc.returncode != 0:
        reason = proc.stderr.decode(errors="replace").strip() or f"exit {proc.returncode}"
        raise ResolverError(f"starting the DNS resolver: {reason}")
