"""Blocking file objects over a request's body and a response, for engine calls that read or
write streams (load, import, save) in a worker thread while the event loop moves the bytes:
nothing is held in memory whole, and the body limit for JSON requests does not apply."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from aiohttp import web

CHUNK = 1 << 20


class _BodyRaw(io.RawIOBase):
    def __init__(self, request: web.Request, loop: asyncio.AbstractEventLoop) -> None:
        self._content = request.content
        self._loop = loop

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), CHUNK)
        data = asyncio.run_coroutine_threadsafe(self._content.read(want), self._loop).result()
        buffer[:len(data)] = data
        return len(data)


def body_reader(request: web.Request) -> io.BufferedReader:
    """The request's body as a blocking binary file; call from the event loop, read from a
    worker thread."""
    return io.BufferedReader(_BodyRaw(request, asyncio.get_running_loop()), CHUNK)


class _ResponseRaw(io.RawIOBase):
    """Writes go to `response`, prepared (its headers sent) at the first write: a failure
    before any output is still an HTTP error of its own."""

    def __init__(self, request: web.Request, response: web.StreamResponse,
                 loop: asyncio.AbstractEventLoop) -> None:
        self._request, self._response, self._loop = request, response, loop

    def writable(self) -> bool:
        return True

    async def _write(self, data: bytes) -> None:
        if not self._response.prepared:
            await self._response.prepare(self._request)
        await self._response.write(data)

    def write(self, data: Any, /) -> int:
        chunk = bytes(data)
        asyncio.run_coroutine_threadsafe(self._write(chunk), self._loop).result()
        return len(chunk)


def response_writer(request: web.Request, response: web.StreamResponse) -> io.BufferedWriter:
    """A blocking binary file writing into `response`; call from the event loop, write (and
    flush) from a worker thread."""
    return io.BufferedWriter(_ResponseRaw(request, response, asyncio.get_running_loop()), CHUNK)
