"""GET /events: the engine's event log as dockerd streams it, one JSON object a line, past
ones first (since/until), then new ones until `until` or until the client goes."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aiohttp import web

from barque.api.common import EXECUTOR, PATHS, raw_filters
from barque.api.runs import RUNS
from barque.engine import events
from barque.engine.errors import EngineError


def parse_timestamp(name: str, text: str | None) -> int | None:
    """since/until as the docker CLI sends them ("SECONDS[.NANOSECONDS]") in nanoseconds;
    absent or 0: none."""
    if not text:
        return None
    seconds, _, fraction = text.partition(".")
    try:
        if not seconds.lstrip("-").isdigit() or (fraction and not fraction.isdigit()):
            raise ValueError
        value = int(seconds) * 1_000_000_000 + int((fraction + "000000000")[:9] or 0)
    except ValueError:
        raise EngineError(f'invalid value for {name}: "{text}"', status=400) from None
    return value or None


async def get_events(request: web.Request) -> web.StreamResponse:
    since = parse_timestamp("since", request.query.get("since"))
    until = parse_timestamp("until", request.query.get("until"))
    if since is not None and until is not None and until < since:
        raise EngineError(f"`since` time ({request.query['since']}) cannot be after `until` "
                          f"time ({request.query['until']})", status=400)
    filters = raw_filters(request)  # unknown keys match everything, as dockerd
    runroot = request.app[PATHS].runroot
    runs = request.app[RUNS]
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=256)
    gone = threading.Event()
    # The log is opened (and, without since/until, its end taken) before the headers go out:
    # what a client does after it has them is in the stream.
    reader = events.read(runroot, since, until, filters, follow=True,
                         stopped=lambda: gone.is_set() or runs.stopping)

    def produce() -> None:
        try:
            for msg in reader:
                asyncio.run_coroutine_threadsafe(queue.put(msg), loop).result()
                if gone.is_set():
                    break
        finally:
            reader.close()
            asyncio.run_coroutine_threadsafe(queue.put(None), loop).result()

    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    producer = loop.run_in_executor(EXECUTOR, produce)
    try:
        while (msg := await queue.get()) is not None:
            await response.write(_line(msg))
    except ConnectionError:
        gone.set()  # the client went away: the reader stops at its next poll
        while await queue.get() is not None:
            pass
    finally:
        gone.set()
    await producer
    try:
        await response.write_eof()
    except ConnectionError:
        pass
    return response


def _line(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


ROUTES = [("GET", "/events", get_events)]
