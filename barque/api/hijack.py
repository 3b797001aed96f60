"""A connection taken over after its 101 answer (Docker's `Upgrade: tcp`): from then on the
client's bytes are the container's stdin and ours its output, with no HTTP framing.

The docker CLI half-closes its side once it has no more stdin (at once without -i): aiohttp's
protocol would close the whole connection on that EOF, so the transport gets this protocol,
which keeps the other direction open and passes the EOF on to the container's stdin."""

from __future__ import annotations

import asyncio
from typing import Protocol

from aiohttp import web

from barque.engine.detach_keys import Watch


class StdinSink(Protocol):
    """Where the client's bytes go (an asyncio.StreamWriter, or NullSink)."""

    def write(self, data: bytes) -> None: ...

    def can_write_eof(self) -> bool: ...

    def write_eof(self) -> None: ...


class NullSink:
    """Stdin not attached: the client's bytes are read and dropped."""

    def write(self, data: bytes) -> None:
        pass

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        pass


STDIN_BUFFER = 1 << 20  # stdin held for a container that does not read it yet


class Hijacked(asyncio.Protocol):
    """`detach_keys`: the sequence that ends the stream when the client types it (dockerd
    watches a TTY's stdin only); what came before it still reaches the container, nothing
    after it does, and `detached` is then done."""

    def __init__(self, transport: asyncio.Transport, detach_keys: bytes | None = None) -> None:
        self.transport = transport
        self.closed = asyncio.get_running_loop().create_future()
        self.detached = asyncio.get_running_loop().create_future()
        self._watch = Watch(detach_keys) if detach_keys else None
        self._stdin: StdinSink | None = None
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._throttled = False  # we stopped reading the client: its stdin waits in TCP
        self._resumer: asyncio.Future[None] | None = None
        self._eof = False
        transport.set_protocol(self)
        transport.resume_reading()

    def connect_stdin(self, writer: StdinSink) -> None:
        """From here on stdin goes to the container's attach socket (what came before too)."""
        self._stdin = writer
        for data in self._pending:
            writer.write(data)
        self._pending.clear()
        if self._eof:
            self._stdin_eof()
        if self._throttled:  # paused while nothing took stdin: read again, unless the
            self._throttled = False  # pending bytes already fill the container's side
            self.transport.resume_reading()
            self._throttle()

    def data_received(self, data: bytes) -> None:
        if self._watch is not None:
            if self._watch.detached:
                return  # typed after the sequence: for nobody
            data = self._watch.feed(data)
            if self._watch.detached:
                self.transport.pause_reading()
                self.detached.set_result(None)
        if self._stdin is None:
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size > STDIN_BUFFER and not self._throttled:
                self._throttled = True
                self.transport.pause_reading()
        else:
            self._stdin.write(data)
            self._throttle()

    def _throttle(self) -> None:
        """Past STDIN_BUFFER unsent to the container, read no more of the client's stdin
        until it has gone (the client's writes then block: back-pressure, not memory)."""
        target = getattr(self._stdin, "transport", None)
        if self._throttled or not isinstance(target, asyncio.WriteTransport) or \
                target.get_write_buffer_size() <= STDIN_BUFFER:
            return
        self._throttled = True
        self.transport.pause_reading()
        self._resumer = asyncio.ensure_future(self._resume_when_drained())

    async def _resume_when_drained(self) -> None:
        drain = getattr(self._stdin, "drain", None)
        try:
            if drain is not None:
                await drain()
        except (ConnectionError, RuntimeError):
            pass  # the container's side is gone: nothing to hold back for
        self._throttled = False
        if not self.transport.is_closing():
            self.transport.resume_reading()

    def eof_received(self) -> bool:
        self._eof = True
        if self._stdin is not None:
            self._stdin_eof()
        return True  # keep the output direction open

    def _stdin_eof(self) -> None:
        assert self._stdin is not None
        try:
            if self._stdin.can_write_eof():
                self._stdin.write_eof()
        except OSError:
            pass

    def connection_lost(self, exc: Exception | None) -> None:
        self._can_write.set()  # a drain() returns; the next write() fails
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    async def drain(self) -> None:
        """Until the client has read enough of what we wrote (a slow client slows the copy
        instead of filling our memory)."""
        await self._can_write.wait()

    def write(self, data: bytes) -> None:
        if self.transport.is_closing():
            raise ConnectionResetError("the client went away")
        self.transport.write(data)


class Output:
    """Where a stream's output goes: the hijacked connection or the response's body; once
    the client is gone, nowhere (the output is still drained, as by dockerd)."""

    def __init__(self, response: web.StreamResponse, hijacked: Hijacked | None) -> None:
        self.response, self.hijacked, self.gone = response, hijacked, False

    async def write(self, data: bytes) -> None:
        if self.gone or not data:
            return
        try:
            if self.hijacked is not None:
                self.hijacked.write(data)
                await self.hijacked.drain()
            else:
                await self.response.write(data)
        except ConnectionError:
            self.gone = True
