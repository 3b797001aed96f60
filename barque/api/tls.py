"""TLS for tcp:// listeners, done here with an ssl.SSLObject over memory BIOs, the plain
HTTP handed to aiohttp through a socketpair.

Why not asyncio's own TLS transport: on a client's close_notify it closes the whole
connection. The docker CLI half-closes its hijacked attach stream (CloseWrite: over TLS, a
close_notify) once it has no more stdin — at once for a `run` without -i — and then reads
the container's output; Go's TLS and dockerd keep that other direction open, so must we."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable

_LOG = logging.getLogger("barque.api")
_CHUNK = 256 * 1024
HANDSHAKE_TIMEOUT = 30.0  # a connection that never finishes its handshake holds nothing long

ProtocolFactory = Callable[[], asyncio.BaseProtocol]


class _Plain(asyncio.Protocol):
    """Our end of the socketpair: what aiohttp answers goes out encrypted."""

    def __init__(self, pump: TLSPump) -> None:
        self.pump = pump

    def data_received(self, data: bytes) -> None:
        self.pump.send(data)

    def eof_received(self) -> bool:
        self.pump.finish()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.pump.finish()

    def pause_writing(self) -> None:
        self.pump.pause_reading()

    def resume_writing(self) -> None:
        self.pump.resume_reading()


class TLSPump(asyncio.Protocol):
    """One client's TCP connection: the handshake (client certificate required by the
    context), then records decrypted to aiohttp and its answers encrypted back."""

    def __init__(self, context: ssl.SSLContext, serve: ProtocolFactory) -> None:
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.serve = serve
        self.transport: asyncio.Transport | None = None
        self.plain: asyncio.Transport | None = None
        self.handshaken = False
        self.closed = False
        self._early: list[bytes] = []  # decrypted before the plain side was connected
        self._eof_pending = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        asyncio.get_running_loop().call_later(HANDSHAKE_TIMEOUT, self._handshake_overdue)

    def _handshake_overdue(self) -> None:
        if not self.handshaken:
            self._close()

    def data_received(self, data: bytes) -> None:
        self.incoming.write(data)
        if not self.handshaken and not self._handshake():
            return
        self._decrypt()

    def eof_received(self) -> bool:
        self._plain_eof()  # TCP closed without a close_notify: no more requests
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.plain is not None:
            self.plain.close()

    def pause_writing(self) -> None:
        if self.plain is not None:
            self.plain.pause_reading()

    def resume_writing(self) -> None:
        if self.plain is not None:
            self.plain.resume_reading()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def _handshake(self) -> bool:
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return False
        except (ssl.SSLError, OSError) as e:  # no or a foreign client certificate, not TLS
            _LOG.debug("TLS handshake refused: %s", e)
            self._flush()  # the alert, so the client learns why
            self._close()
            return False
        self.handshaken = True
        self._flush()
        asyncio.get_running_loop().create_task(self._connect_plain())
        return True

    async def _connect_plain(self) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            await loop.connect_accepted_socket(self.serve, sock=theirs)
            plain, _ = await loop.connect_accepted_socket(lambda: _Plain(self), sock=ours)
        except OSError:
            ours.close()
            theirs.close()
            self._close()
            return
        assert isinstance(plain, asyncio.Transport)
        self.plain = plain
        if self.closed:
            plain.close()
            return
        for data in self._early:
            plain.write(data)
        self._early.clear()
        if self._eof_pending:
            plain.write_eof()

    def _decrypt(self) -> None:
        while True:
            try:
                data = self.tls.read(_CHUNK)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:  # the client's close_notify: a half-close
                self._plain_eof()
                break
            except (ssl.SSLError, OSError) as e:
                _LOG.debug("TLS read: %s", e)
                self._close()
                return
            if not data:
                self._plain_eof()
                break
            if self.plain is None:
                self._early.append(data)
            else:
                self.plain.write(data)
        self._flush()  # TLS 1.3's post-handshake messages (tickets, key updates)

    def _plain_eof(self) -> None:
        if self.plain is None:
            self._eof_pending = True
        elif not self.plain.is_closing() and self.plain.can_write_eof():
            try:
                self.plain.write_eof()
            except OSError:
                pass

    def send(self, data: bytes) -> None:
        """aiohttp's bytes, encrypted to the client."""
        if self.closed:
            return
        try:
            self.tls.write(data)
        except (ssl.SSLError, OSError) as e:
            _LOG.debug("TLS write: %s", e)
            self._close()
            return
        self._flush()

    def finish(self) -> None:
        """aiohttp is done with the connection: close_notify, then the TCP connection."""
        if self.closed:
            return
        try:
            self.tls.unwrap()
        except (ssl.SSLError, OSError):
            pass  # SSLWantReadError: ours is sent; the client's is not waited for
        self._flush()
        self._close()

    def _flush(self) -> None:
        data = self.outgoing.read()
        if data and self.transport is not None and not self.closed:
            self.transport.write(data)

    def _close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()  # after what is buffered has gone out
        if self.plain is not None:
            self.plain.close()
