"""The resolver process: the control socket, one UDP and one TCP socket on 127.0.0.11:53
inside each registered container's netns (made by a thread that entered that netns; a socket
stays in the netns it was made in, so no NAT is needed), and its own end.

Lifetime: started by client.register (holding the flock on <runroot>/dns), it exits
`dns-resolver-idle` seconds (daemon.json; 60 by default) after its last container went, if
none came meanwhile (a `run --rm` after another then finds it still there): it takes that
flock (never waiting for it: a client holding it waits for our reply), removes its socket
and leaves, so a client either reaches a resolver that will serve it or finds none and
starts one. Registrations are kept in
<runroot>/dns/containers/ so a resolver started again (after a crash) serves them again,
except those whose netns is gone."""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from barque.linux import locks
from barque.linux.namespaces import CLONE_NEWNET, setns_path
from barque.linux.statfs import fs_type
from barque.network import service
from barque.network.dns import CONTAINERS, LOG, state_dir
from barque.network.dns.answer import Answerer
from barque.network.dns.names import Directory

NSFS_MAGIC = 0x6E736673
LISTEN_ADDRESS = "127.0.0.11"
SWEEP_INTERVAL = 10.0      # how often registrations are checked for a netns that went away
MAX_TCP_PER_CONTAINER = 64
MAX_UDP_PENDING = 4096     # queries being answered at once, all containers together
TCP_IDLE = 8.0             # miekg/dns's idle timeout between queries on a connection
TCP_READ = 2.0             # and its read timeout within one
CONTROL_LIMIT = 4096
LOG_LIMIT = 1 << 20

_ID_RE = re.compile(r"^[0-9a-f]{64}\Z")


class RegisterError(Exception):
    pass


def netns_inode(path: str) -> int | None:
    """The inode of the network namespace bind-mounted at `path`, None if none is there."""
    try:
        if fs_type(path) != NSFS_MAGIC:
            return None
        return os.stat(path).st_ino
    except OSError:
        return None


def sockets_in(netns: str, port: int = 53) -> tuple[socket.socket, socket.socket]:
    """UDP and TCP sockets on 127.0.0.11:port inside `netns`, made by a short-lived thread
    that entered it (setns changes only the calling thread; the thread then ends, so no
    thread of ours is ever left in a container's netns)."""
    made: list[socket.socket] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            setns_path(netns, CLONE_NEWNET)
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            made.append(udp)
            udp.bind((LISTEN_ADDRESS, port))
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            made.append(tcp)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((LISTEN_ADDRESS, port))
            tcp.listen(64)
        except BaseException as e:
            failure.append(e)

    thread = threading.Thread(target=work, name="dns-setns")
    thread.start()
    thread.join()
    if failure or len(made) != 2:
        for s in made:
            s.close()
        error = failure[0] if failure else RuntimeError("no sockets")
        raise RegisterError(f"listening on {LISTEN_ADDRESS}:{port} in {netns}: {error}")
    return made[0], made[1]


@dataclass
class Listener:
    """One container's sockets and the TCP connections it has open."""

    netns: str
    inode: int
    udp: asyncio.DatagramTransport
    tcp: asyncio.AbstractServer
    connections: set[asyncio.StreamWriter] = field(default_factory=set)

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()
        for writer in list(self.connections):
            writer.close()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, resolver: Resolver, container_id: str) -> None:
        self.resolver = resolver
        self.container_id = container_id
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram one, by asyncio

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.resolver.spawn(self._answer(data, addr))

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        out = await self.resolver.answerer.reply(self.container_id, data, tcp=False)
        if out is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(out, addr)

    def error_received(self, exc: Exception) -> None:
        pass  # an ICMP error for an earlier reply: nothing to do


class Resolver:
    def __init__(self, root: str, runroot: str, port: int = 53,
                 pid_fd: int | None = None) -> None:
        self.root = root
        self.idle = _idle_of(root)
        self.idle_since = time.monotonic()
        self.handed_pid_fd = pid_fd
        self.dir = state_dir(runroot)
        self.port = port
        self.directory = Directory(root)
        self.answerer = Answerer(self.directory)
        self.listeners: dict[str, Listener] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.stopped = asyncio.Event()
        self.dir_fd = -1
        self.pid_fd = -1
        self.control: asyncio.AbstractServer | None = None
        self.exiting = False
        self.last_error = 0.0

    # -- start and end ---------------------------------------------------------------------

    async def start(self) -> None:
        # Up to MAX_FORWARDS sockets to upstream servers at once, plus each container's: the
        # usual soft limit of 1024 descriptors is too few (Go programs such as Docker's
        # daemon raise it to the hard limit the same way).
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        os.makedirs(os.path.join(self.dir, CONTAINERS), mode=0o700, exist_ok=True)
        self.dir_fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.pid_fd = service.own_pidfile(self.dir, self.handed_pid_fd)
        control = service.listen(self.dir_fd)
        self.control = await asyncio.start_unix_server(self._control, sock=control,
                                                       limit=CONTROL_LIMIT)
        await self._restore()
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: self.log_error(context))
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        self.spawn(self._sweeper())
        if not self.listeners:
            self.spawn(self._exit_when_idle())
        self.log(f"started, pid {os.getpid()}, {len(self.listeners)} container(s)")

    async def run(self) -> None:
        await self.stopped.wait()
        for listener in self.listeners.values():
            listener.close()
        if self.control is not None:
            self.control.close()
        self.directory.close()
        await asyncio.sleep(0)  # let the transports close their sockets

    def stop(self) -> None:
        """SIGTERM: leave, keeping the registrations for the next resolver."""
        if self._try_dir_lock():
            self._remove_files()
        self.stopped.set()

    def _try_dir_lock(self) -> bool:
        return locks.try_lock(self.dir_fd)

    def _remove_files(self) -> None:
        service.remove_files(self.dir, self.pid_fd)
        self.pid_fd = -1

    async def _exit_when_idle(self) -> None:
        if self.exiting:
            return
        self.exiting = True
        try:
            while not self.listeners and not self.stopped.is_set():
                left = self.idle_since + self.idle - time.monotonic()
                if left > 0:  # linger: the next `run` may well come soon
                    await asyncio.sleep(min(left, 0.5))
                    continue
                if not self._try_dir_lock():
                    await asyncio.sleep(0.05)  # a client is registering: see what it brings
                    continue
                if self.listeners:
                    locks.unlock(self.dir_fd)
                    return
                # No client can reach us from here on; the lock is ours until we are gone.
                self._remove_files()
                self.log("no container left: exiting")
                self.stopped.set()
        finally:
            self.exiting = False

    # -- containers ------------------------------------------------------------------------

    async def _restore(self) -> None:
        registry = os.path.join(self.dir, CONTAINERS)
        for container_id in sorted(os.listdir(registry)):
            try:
                with open(os.path.join(registry, container_id)) as f:
                    netns = json.load(f)["netns"]
                await self.register(container_id, netns)
            except Exception as e:
                self.log(f"dropping {container_id[:12]}: {e}")
                self._forget(container_id)

    async def register(self, container_id: str, netns: object) -> None:
        if not _ID_RE.match(container_id):
            raise RegisterError(f"invalid container id {container_id!r}")
        if not isinstance(netns, str) or not os.path.isabs(netns):
            raise RegisterError(f"invalid netns path {netns!r}")
        inode = netns_inode(netns)
        if inode is None:
            raise RegisterError(f"{netns} is not a network namespace")
        current = self.listeners.get(container_id)
        if current is not None and current.inode == inode:
            return  # already listening there (`network connect` to one more user network)
        self._close(container_id)  # a container started again has a new netns: listen there
        udp, tcp = sockets_in(netns, self.port)
        listener = await self._listen(container_id, netns, inode, udp, tcp)
        self.listeners[container_id] = listener
        record = os.path.join(self.dir, CONTAINERS, container_id)
        with open(record + ".tmp", "w") as f:
            json.dump({"netns": netns}, f)
        os.replace(record + ".tmp", record)

    async def _listen(self, container_id: str, netns: str, inode: int, udp: socket.socket,
                      tcp: socket.socket) -> Listener:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Udp(self, container_id), sock=udp)
        except BaseException:
            udp.close()
            tcp.close()
            raise
        connections: set[asyncio.StreamWriter] = set()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._tcp_client(container_id, connections, reader, writer)

        try:
            server = await asyncio.start_server(serve, sock=tcp)
        except BaseException:
            transport.close()
            tcp.close()
            raise
        return Listener(netns, inode, transport, server, connections)

    def unregister(self, container_id: str) -> None:
        self._close(container_id)
        self._forget(container_id)
        if not self.listeners:
            self.idle_since = time.monotonic()
            self.spawn(self._exit_when_idle())

    def _close(self, container_id: str) -> None:
        listener = self.listeners.pop(container_id, None)
        if listener is not None:
            listener.close()

    def _forget(self, container_id: str) -> None:
        if _ID_RE.match(container_id) or container_id.endswith(".tmp"):
            try:
                os.unlink(os.path.join(self.dir, CONTAINERS, container_id))
            except FileNotFoundError:
                pass

    async def _sweeper(self) -> None:
        """Drops containers whose netns went away without an unregister (a crash): a socket
        of ours would keep that netns alive."""
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            self.sweep()

    def sweep(self) -> None:
        for container_id, listener in list(self.listeners.items()):
            if netns_inode(listener.netns) != listener.inode:
                self.log(f"netns of {container_id[:12]} is gone: dropping it")
                self.unregister(container_id)

    # -- queries ---------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if len(self.tasks) >= MAX_UDP_PENDING:
            coro.close()
            return
        task = asyncio.ensure_future(self._guard(coro))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _guard(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except Exception:
            self.log_error()  # one bad query, or one gone client, never stops the others

    async def _tcp_client(self, container_id: str, connections: set[asyncio.StreamWriter],
                          reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(connections) >= MAX_TCP_PER_CONTAINER:
            writer.close()
            return
        connections.add(writer)
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE)
                (size,) = struct.unpack("!H", head)
                data = await asyncio.wait_for(reader.readexactly(size), TCP_READ)
                out = await self.answerer.reply(container_id, data, tcp=True)
                if out is None:
                    break
                writer.write(struct.pack("!H", len(out)) + out)
                await asyncio.wait_for(writer.drain(), TCP_IDLE)
        except Exception:
            pass
        finally:
            connections.discard(writer)
            writer.close()

    # -- control ---------------------------------------------------------------------------

    async def _control(self, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            try:
                await self._do(json.loads(line))
                reply: dict[str, object] = {"ok": True}
            except Exception as e:
                reply = {"error": str(e)}
            writer.write(json.dumps(reply).encode() + b"\n")
            await asyncio.wait_for(writer.drain(), 10)
        except Exception:
            pass
        finally:
            writer.close()

    async def _do(self, request: object) -> None:
        if not isinstance(request, dict):
            raise RegisterError("bad request")
        op, container_id = request.get("op"), request.get("id")
        if not isinstance(container_id, str) or not _ID_RE.match(container_id):
            raise RegisterError(f"invalid container id {container_id!r}")
        if op == "register":
            await self.register(container_id, request.get("netns"))
        elif op == "unregister":
            self.unregister(container_id)
        else:
            raise RegisterError(f"unknown request {op!r}")

    def log_error(self, context: dict[str, Any] | None = None) -> None:
        """Notes an unexpected error, at most one a second (a container can cause them)."""
        now = time.monotonic()
        if now - self.last_error < 1.0:
            return
        self.last_error = now
        import traceback

        error = context.get("exception") if context else None
        if context is not None and error is None:
            self.log(f"error: {context.get('message')}")
        else:
            self.log("error: " + "".join(traceback.format_exception(
                error if error is not None else sys.exc_info()[1])).rstrip())

    def log(self, message: str) -> None:
        path = os.path.join(self.dir, LOG)
        try:
            mode = "w" if os.path.exists(path) and os.path.getsize(path) > LOG_LIMIT else "a"
            with open(path, mode) as f:
                f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {message}\n")
        except OSError:
            pass


def _idle_of(root: str) -> float:
    from barque.network import config

    try:
        return config.load(root).dns_idle
    except Exception:
        return 60.0


async def serve(root: str, runroot: str, ready: int | None = None, port: int = 53,
                pid_fd: int | None = None) -> None:
    """Runs the resolver until it has had no container for its idle time (or SIGTERM).
    `ready`: a pipe's write end, told "ok" once the control socket listens, or the error that
    stopped the start; `pid_fd`: its pid file, locked by whoever started it."""
    resolver = Resolver(root, runroot, port, pid_fd)
    try:
        await resolver.start()
    except BaseException as e:
        service.tell_ready(ready, e)
        raise
    service.tell_ready(ready)
    await resolver.run()
