"""Talking to the runroot's resolver: register a container (starting the resolver if none
runs) and unregister it. Both hold the flock on <runroot>/dns for the whole exchange, so a
resolver never leaves while a client is registering with it (see server.py); starting one
goes through barque.network.service, whose pid-file lock keeps it to one per runroot.

For the engine: register once the container's netns exists with `lo` up and its endpoints
have their addresses (NetworkStore.allocate), before its process starts, for a container on
at least one user-defined network (Docker runs no resolver for one only on the default
bridge); its resolv.conf then comes from resolvconf.render(..., embedded=True). Unregister
before the netns is removed (a listening socket keeps the netns alive)."""

from __future__ import annotations

import os

from barque.linux.locks import locked_dir
from barque.network import service
from barque.network.dns import CONTAINERS, state_dir

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
            except service.NotRunning:  # none runs (or a dead one's socket): start one
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
        if "/" not in container_id and not os.path.exists(
                os.path.join(directory, CONTAINERS, container_id)):
            # The resolver records a container before its register returns, and forgets it
            # only on unregister: never registered (a default-bridge-only container) or gone.
            return
        try:
            _call(directory, {"op": "unregister", "id": container_id})
        except (OSError, ResolverError):
            # No resolver (or a broken one): make sure the next one does not bring it back.
            if "/" not in container_id and container_id not in ("", ".", ".."):
                try:
                    os.unlink(os.path.join(directory, CONTAINERS, container_id))
                except OSError:
                    pass


def stop(runroot: str) -> None:
    """SIGTERM the runroot's resolver, if one runs (it keeps the registrations)."""
    service.stop(state_dir(runroot))


def _call(directory: str, request: dict[str, str]) -> None:
    reply = service.call(directory, request, TIMEOUT)
    if not reply.get("ok"):
        raise ResolverError(f"DNS resolver: {reply.get('error') or 'bad reply'}")


def _start(root: str, runroot: str) -> None:
    """Starts the resolver and waits until it listens."""
    argv = service.python_argv("barque.network.dns", "--root", root, "--runroot", runroot)
    try:
        if not service.start(state_dir(runroot), argv, wait=TIMEOUT * 3):
            raise ResolverError("starting the DNS resolver: another one runs and does not "
                                "answer")
    except service.HelperError as e:
        raise ResolverError(f"starting the DNS resolver: {e}") from None
