"""Files for an engine call in a worker thread (common.in_engine) that stream: a writer whose
bytes go out as a response's body, a reader of a request's body. Neither holds more than a
chunk: a build context or an archive is never read into memory whole (nor limited to the
server's JSON body limit)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

T = TypeVar("T")


class ResponseWriter:
    """(In the worker thread) write() sends to `response`, prepared on the first write (or
    by prepare(), after the handler set headers): an engine error before that is still
    answered as Docker's error body."""

    def __init__(self, loop: asyncio.AbstractEventLoop, request: web.Request,
                 response: web.StreamResponse) -> None:
        self.loop, self.request, self.response = loop, request, response

    def call(self, coro: Callable[[], Awaitable[T]]) -> T:
        return asyncio.run_coroutine_threadsafe(_run(coro), self.loop).result()

    def prepare(self) -> None:
        self.call(self._prepare)

    async def _prepare(self) -> None:
        if not self.response.prepared:
            await self.response.prepare(self.request)

    def write(self, data: bytes) -> int:
        async def send() -> None:
            await self._prepare()
            await self.response.write(bytes(data))

        if data:
            self.call(send)
        return len(data)

    def flush(self) -> None:
        pass

    @property
    def prepared(self) -> bool:
        return self.response.prepared


async def _run(coro: Callable[[], Awaitable[T]]) -> T:
    return await coro()


class BodyReader:
    """(In the worker thread) read() from the request's body as it arrives."""

    def __init__(self, loop: asyncio.AbstractEventLoop, request: web.Request) -> None:
        self.loop, self.content = loop, request.content

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            chunks = []
            while chunk := self.read(1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        future = asyncio.run_coroutine_threadsafe(self.content.read(size), self.loop)
        return future.result()

    def readable(self) -> bool:
        return True


async def stream_out(request: web.Request, response: web.StreamResponse,
                     work: Awaitable[object]) -> web.StreamResponse:
    """Await `work` (an in_engine call writing to `response`), then end the response. A
    client that hung up once it had what it wanted (the docker CLI stops reading at a tar's
    end, `stats --no-stream` after one reading) is no error to log."""
    try:
        await work
        if not response.prepared:
            await response.prepare(request)
        await response.write_eof()
    except Exception:
        transport = request.transport
        if response.prepared and (transport is None or transport.is_closing()):
            return response
        raise
    return response
