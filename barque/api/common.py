"""What every handler shares: the engine opened in a worker thread (its calls block: SQLite,
the runtime, the monitor), JSON bodies read as dockerd reads them, Docker's error body."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aiohttp import web

from barque.engine.context import Engine
from barque.engine.errors import EngineError
from barque.engine.filters import parse_filters
from barque.engine.paths import Paths
from barque.storage.db import DB_NAME

T = TypeVar("T")

# The engine's calls block, some for as long as a container runs (/wait, logs -f): a pool of
# their own, which a stopping server does not wait for (serve()).
EXECUTOR = ThreadPoolExecutor(128, thread_name_prefix="engine")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PATHS: web.AppKey[Paths] = web.AppKey("paths", Paths)


async def in_engine(request: web.Request, fn: Callable[[Engine], T]) -> T:
    """fn(engine) in a worker thread, on an Engine of its own (SQLite connections stay in
    the thread that opened them)."""
    paths = request.app[PATHS]

    def call() -> T:
        with Engine(paths) as engine:
            return fn(engine)

    return await asyncio.get_running_loop().run_in_executor(EXECUTOR, call)


# Reads that clients poll (GET /containers/json) run one at a time on a thread of their
# own: side by side on several threads they only fought for the GIL (10 polling clients:
# 1.8x the CPU per request), and the one thread keeps its Engine (no database opened per
# request; a connection outside a transaction reads the latest commit of every process).
READER = ThreadPoolExecutor(1, thread_name_prefix="reader")
_ENGINES: dict[tuple[str, str], tuple[tuple[int, int], Engine]] = {}  # READER's only


READS: web.AppKey[dict[Any, Any]] = web.AppKey("reads", dict)  # key -> _Read not yet done


class _Read:
    """One call on READER, shared by the requests with its key that came before it began."""
    __slots__ = ("started", "future")

    def __init__(self) -> None:
        self.started = False
        self.future: asyncio.Future[Any] | None = None


async def in_reader(request: web.Request, fn: Callable[[Engine], T], key: Any) -> T:
    """fn(engine) on the READER thread, on its Engine of the server's root. Requests with
    the same `key` (the same question) that come while one waits for the thread share its
    answer (which must not be changed): it is read after each of them came, so it is as
    current as their own would be, and polling clients cost one listing per turn, not one
    each."""
    paths, pending = request.app[PATHS], request.app[READS]
    read = pending.get(key)
    if read is None or read.started:
        fresh = read = _Read()

        def call() -> T:
            fresh.started = True  # before anything is read: later requests make a new one
            return fn(_reader(paths))

        def done(future: asyncio.Future[Any]) -> None:
            if pending.get(key) is fresh:
                del pending[key]
            if not future.cancelled():
                future.exception()  # retrieved, even if every request waiting went away

        read.future = asyncio.get_running_loop().run_in_executor(READER, call)
        read.future.add_done_callback(done)
        pending[key] = read
    assert read.future is not None
    return await asyncio.shield(read.future)


def _reader(paths: Paths) -> Engine:
    """READER's Engine on `paths`, opened again if the state database was replaced."""
    key, db_path = (paths.root, paths.runroot), os.path.join(paths.root, DB_NAME)
    kept = _ENGINES.get(key)
    try:
        st = os.stat(db_path)
        if kept is not None and kept[0] == (st.st_dev, st.st_ino):
            return kept[1]
    except OSError:
        pass
    if kept is not None:
        del _ENGINES[key]
        kept[1].close()
    engine = Engine(paths)
    st = os.stat(db_path)
    _ENGINES[key] = ((st.st_dev, st.st_ino), engine)
    return engine


def json_response(data: Any, status: int = 200) -> web.Response:
    """JSON with Content-Type exactly "application/json": the docker client reads an
    error's message only then (no charset parameter)."""
    return web.Response(body=json.dumps(data).encode() + b"\n", status=status,
                        content_type="application/json")


def error_response(message: str, status: int) -> web.Response:
    return json_response({"message": message}, status)


async def read_json(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; dockerd's 400s for a wrong content type or bad JSON."""
    body = await request.read()
    if not body:
        return {}
    ctype = request.headers.get("Content-Type", "")
    if ctype and ctype.split(";")[0].strip() != "application/json":
        raise EngineError(f"unsupported Content-Type header ({ctype}): must be "
                          "'application/json'", status=400)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise EngineError(f"invalid JSON: {e}", status=400) from None
    if not isinstance(data, dict):
        raise EngineError("invalid JSON: expected an object", status=400)
    return data


def flag(request: web.Request, name: str, default: bool = False) -> bool:
    """Docker's boolean query values: "", "0", "false" (any case) are false."""
    value = request.query.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("", "0", "false", "no")


def raw_filters(request: web.Request) -> dict[str, list[str]]:
    """The `filters` query parameter as {key: [values]}: JSON {"key": ["v", ...]} or the old
    {"key": {"v": true}}; keys unchecked (for engine calls that check their own)."""
    text = request.query.get("filters")
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise EngineError(f"invalid filter: {e}", status=400) from None
    if not isinstance(raw, dict):
        raise EngineError("invalid filter", status=400)
    out: dict[str, list[str]] = {}
    for key, values in raw.items():
        if isinstance(values, list):
            out[key] = [str(v) for v in values]
        elif isinstance(values, dict):
            out[key] = [str(v) for v, on in values.items() if on]
        else:
            raise EngineError(f"invalid filter '{key}'", status=400)
    return out


def query_filters(request: web.Request, accepted: tuple[str, ...]) -> dict[str, list[str]]:
    """raw_filters, checked as dockerd checks them: a key outside `accepted` is a 400."""
    return parse_filters(filter_flags(raw_filters(request)), accepted)


def filter_flags(filters: dict[str, list[str]]) -> list[str]:
    """{key: [values]} back as `--filter key=value` flags, for engine calls that take them."""
    return [f"{key}={value}" for key, values in filters.items() for value in values]


def go_kind(value: Any) -> str:
    """What Go's encoding/json calls a JSON value in its type errors ("cannot unmarshal
    number into ...")."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"
