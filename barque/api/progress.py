"""Docker's JSON message stream (jsonmessage): what /images/create, /images/{name}/push and
/images/load send, one JSON object per line, and the docker CLI and the SDK render. A failure
before the first message is an HTTP error of its own (as dockerd: its writer has not flushed);
after it, an {"errorDetail": ...} message."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from barque.api.common import in_engine
from barque.engine.context import Engine
from barque.engine.errors import EngineError
from barque.engine.units import progress_bar
from barque.image.reference import Reference
from barque.registry.progress import Progress

PROGRESS_INTERVAL = 0.1  # seconds between two progress messages of one layer
Emit = Callable[[dict[str, Any]], None]
_WORDS = {  # event → (pull wording, push wording), as dockerd's
    "started": ("Pulling fs layer", "Preparing"),
    "waiting": ("Waiting", "Waiting"),
    "exists": ("Already exists", "Layer already exists"),
    "transfer": ("Downloading", "Pushing"),
    "done": ("Pull complete", "Pushed"),
}


class ClientGone(Exception):
    """Raised in the engine's thread by `emit` once the client has gone."""


def error_message(text: str) -> dict[str, Any]:
    return {"errorDetail": {"message": text}, "error": text}


class JSONProgress(Progress):
    """The registry's progress events as dockerd's messages. Called from worker threads:
    `emit` must be thread-safe (json_stream's is)."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.push = False
        self._pushing = ""  # the repository whose push was announced
        self._last: dict[str, float] = {}  # layer → when its last progress went out

    def _word(self, event: str) -> str:
        return _WORDS[event][1 if self.push else 0]

    def _layer(self, layer: str, status: str, detail: dict[str, int] | None = None) -> None:
        self.emit({"status": status, "progressDetail": detail or {}, "id": layer})

    def pull_started(self, ref: Reference) -> None:
        self.emit({"status": f"Pulling from {ref.path}", "id": ref.tag or ref.digest or ""})

    def push_started(self, ref: Reference) -> None:
        self.push = True
        if ref.repository != self._pushing:  # once per repository, as dockerd's
            self._pushing = ref.repository
            self.emit({"status": f"The push refers to repository [{ref.repository}]"})

    def layer_started(self, layer: str, size: int | None) -> None:
        self._layer(layer, self._word("started"))

    def layer_waiting(self, layer: str) -> None:
        self._layer(layer, self._word("waiting"))

    def layer_exists(self, layer: str) -> None:
        self._layer(layer, self._word("exists"))

    def layer_progress(self, layer: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if done != total and now - self._last.get(layer, 0.0) < PROGRESS_INTERVAL:
            return  # as dockerd's progress reader: not a message per chunk
        self._last[layer] = now
        detail = {"current": done, **({"total": total} if total else {})}
        self.emit({"status": self._word("transfer"), "progressDetail": detail,
                   "progress": progress_bar(done, total), "id": layer})

    def layer_verifying(self, layer: str) -> None:
        self._layer(layer, "Verifying Checksum")
        self._layer(layer, "Download complete")

    def layer_mounted(self, layer: str, from_repo: str) -> None:
        self._layer(layer, f"Mounted from {from_repo}")

    def layer_done(self, layer: str) -> None:
        self._layer(layer, self._word("done"))

    def pull_finished(self, ref: Reference, digest: str, up_to_date: bool) -> None:
        status = "Image is up to date for" if up_to_date else "Downloaded newer image for"
        self.emit({"status": f"Digest: {digest}"})
        self.emit({"status": f"Status: {status} {ref.familiar}"})

    def push_finished(self, ref: Reference, digest: str, size: int) -> None:
        tag = ref.tag or "latest"
        self.emit({"status": f"{tag}: digest: {digest} size: {size}"})
        self.emit({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": size}})


def _failed(error: BaseException, failure: Callable[[BaseException], tuple[str, int]]
            ) -> tuple[str, int]:
    text, status = failure(error)
    if status >= 500:  # a registry down is worth a line; a bug (not Barque's error), a trace
        ours = type(error).__module__.startswith("barque.")
        logging.getLogger("barque.api").warning("%s", text, exc_info=None if ours else error)
    return text, status


def _encode(message: dict[str, Any]) -> bytes:
    """One message as dockerd writes it: compact JSON, CRLF."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\r\n"


async def json_stream(request: web.Request, work: Callable[[Engine, Emit], None],
                      failure: Callable[[BaseException], tuple[str, int]],
                      always_ok: bool = False) -> web.StreamResponse:
    """Run work(engine, emit) in the engine's pool and stream what it emits. `failure` gives
    an exception's (message, status); `always_ok`: start the 200 stream at once, so every
    failure is in-stream (dockerd's /images/load)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    gone = threading.Event()

    def emit(message: dict[str, Any]) -> None:
        if gone.is_set():  # as dockerd: a pull or push ends with its client's connection
            raise ClientGone("the client closed the connection")
        loop.call_soon_threadsafe(queue.put_nowait, message)

    task = asyncio.ensure_future(in_engine(request, lambda engine: work(engine, emit)))
    # After every emit: the thread's call_soon_threadsafe calls precede the future's result.
    task.add_done_callback(lambda _: queue.put_nowait(None))
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    if always_ok:
        await response.prepare(request)
    message = await queue.get()
    if message is None and not response.prepared:
        error = task.exception()
        if error is not None:
            text, status = _failed(error, failure)
            raise EngineError(text, status=status)
    if not response.prepared:
        await response.prepare(request)
    try:
        while message is not None:
            await response.write(_encode(message))
            message = await queue.get()
        error = task.exception()
        if error is not None:
            await response.write(_encode(error_message(_failed(error, failure)[0])))
        await response.write_eof()
    except ConnectionError:
        gone.set()  # the engine's call stops at its next message
    return response
