"""/containers' streams: attach (hijacked), wait (headers first, the answer at the end),
logs (stdcopy frames), and resize of an attached TTY."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from barque.api import versions
from barque.api.common import EXECUTOR, PATHS, flag, in_engine
from barque.api.hijack import Hijacked, NullSink, Output
from barque.api.runs import RUNS
from barque.engine import attach, detach_keys, events, lifecycle
from barque.engine.context import Engine
from barque.engine.errors import EngineError


async def resize(request: web.Request) -> web.Response:
    ref = request.match_info["id"]
    try:
        height, width = int(request.query.get("h", "0")), int(request.query.get("w", "0"))
    except ValueError:
        raise EngineError("invalid terminal size", status=400) from None

    def run(engine: Engine) -> None:
        record = engine.find(ref)
        if not engine.state(record)["Running"]:
            raise EngineError(f"Container {record.id} is not running", status=409)
        try:
            attach.control(engine.paths.monitor_dir(record.id), f"resize {height} {width}")
        except attach.AttachError as e:
            raise EngineError(str(e)) from None

    await in_engine(request, run)
    return web.Response(status=200)


@dataclass
class _Selection:
    """What an attach asks for (dockerd's query: each false unless given)."""
    logs: bool
    stream: bool
    stdin: bool
    stdout: bool
    stderr: bool

    @classmethod
    def of(cls, request: web.Request) -> _Selection:
        return cls(*(flag(request, k) for k in ("logs", "stream", "stdin", "stdout",
                                                 "stderr")))


async def _attachable(request: web.Request) -> tuple[str, bool, str]:
    """(id, tty, monitor dir). A stopped container is attachable, as in dockerd: the stream
    begins with its next start (`docker start -a` attaches first); a paused one is not."""
    ref = request.match_info["id"]

    def look(engine: Engine) -> tuple[str, bool, str]:
        record = engine.find(ref)
        lifecycle.attachable(engine, record.id, stopped_too=True)  # paused: its error
        return record.id, bool(record.config.get("Tty")), engine.paths.monitor_dir(record.id)

    return await in_engine(request, look)


async def attach_stream(request: web.Request) -> web.StreamResponse:
    """The hijacked stream (Upgrade: tcp): the log first with logs=1, then (stream=1) the
    monitor's attach socket copied out, in stdcopy frames without a TTY (the monitor frames
    them), raw with one; the client's bytes to the container's stdin with stdin=1, until
    the detach keys (`detachKeys`, else ctrl-p,ctrl-q) on a TTY's, as dockerd."""
    selection = _Selection.of(request)
    keys = _detach_keys(request)
    container_id, tty, monitor_dir = await _attachable(request)
    runs = request.app[RUNS]
    upgrade = request.headers.get("Upgrade", "").lower() == "tcp"
    ctype = "application/vnd.docker." + ("raw-stream" if tty else "multiplexed-stream")
    headers = {"Content-Type": ctype}
    if upgrade:
        headers.update({"Connection": "Upgrade", "Upgrade": "tcp"})
    response = web.StreamResponse(status=101 if upgrade else 200, reason="UPGRADED"
                                  if upgrade else None, headers=headers)
    response.force_close()
    if selection.stream:
        runs.attaching.add(container_id)
    # Hijacked before the 101 goes out: the client's first stdin bytes may follow at once.
    hijacked = Hijacked(request.transport, keys if tty and selection.stdin else None) \
        if upgrade and request.transport else None
    out = Output(response, hijacked)
    try:
        await response.prepare(request)
        if selection.logs:
            if hijacked is not None:
                # The SDK reads the 101's headers through a buffered reader and the stream
                # from the bare socket after it: bytes that came with the headers would be
                # lost in that buffer. The log is at hand at once (a container's output
                # never is): a moment for the client to take the headers first.
                await asyncio.sleep(0.05)
            async with contextlib.aclosing(_log_chunks(
                    request, container_id, stdout=selection.stdout, stderr=selection.stderr,
                    tty=tty)) as chunks:
                async for chunk in chunks:
                    await out.write(chunk)
        if selection.stream and not out.gone:
            await _copy_out(request, container_id, monitor_dir, selection, tty, hijacked, out)
    except (attach.AttachError, ConnectionError):
        pass
    finally:
        runs.attaching.discard(container_id)
    return response


def _detach_keys(request: web.Request) -> bytes:
    """The attach's `detachKeys`; a bad one is dockerd's 400, before anything is done."""
    try:
        return detach_keys.parse(request.query.get("detachKeys"))
    except detach_keys.DetachKeysError as e:
        raise EngineError(str(e), status=400) from None


async def _copy_out(request: web.Request, container_id: str, monitor_dir: str,
                    selection: _Selection, tty: bool, hijacked: Hijacked | None,
                    out: Output) -> None:
    """The monitor's attach socket to the client (and, hijacked, the client to it)."""
    loop = asyncio.get_running_loop()
    sock = await loop.run_in_executor(EXECUTOR, lambda: attach.connect(monitor_dir, 60.0))
    request.app[RUNS].attaching.discard(container_id)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    frames = _Frames(tty, selection)
    try:
        if hijacked is not None:
            # Detached: the attach socket closed (what came before the keys still goes to
            # the container first), so its output ends here and the stream with it.
            hijacked.detached.add_done_callback(lambda _: writer.close())
            hijacked.connect_stdin(writer if selection.stdin else NullSink())
        while data := await reader.read(65536):
            await out.write(frames.framed(data))
    finally:
        writer.close()
    if hijacked is not None and hijacked.detached.done():
        await in_engine(request, lambda engine: events.container(
            engine, engine.find(container_id), "detach"))  # dockerd's event


class _Frames:
    """The monitor's output as the client asked for it: the streams it wants (a TTY's
    output is all stdout, as in Docker), framed (stdcopy) or raw (the websocket)."""

    def __init__(self, tty: bool, selection: _Selection) -> None:
        self.tty = tty
        self.wanted = {n for n, on in ((1, selection.stdout), (2, selection.stderr)) if on}
        self.buf = b""

    def framed(self, data: bytes) -> bytes:
        if self.tty:
            return data if 1 in self.wanted else b""
        if self.wanted == {1, 2}:
            return data  # as the monitor framed it
        return b"".join(attach.frame(n, payload) for n, payload in self._split(data))

    def raw(self, data: bytes) -> bytes:
        if self.tty:
            return data if 1 in self.wanted else b""
        return b"".join(payload for _, payload in self._split(data))

    def _split(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buf += data
        found = []
        while len(self.buf) >= 8:
            stream, size = self.buf[0], int.from_bytes(self.buf[4:8], "big")
            if len(self.buf) < 8 + size:
                break
            if stream in self.wanted:
                found.append((stream, self.buf[8:8 + size]))
            self.buf = self.buf[8 + size:]
        return found


async def attach_ws(request: web.Request) -> web.StreamResponse:
    """GET /containers/{id}/attach/ws: the same over a websocket, raw (never stdcopy
    frames), as binary messages from API 1.28 on (text before, as dockerd); its detach keys
    close the websocket."""
    selection = _Selection.of(request)
    keys = _detach_keys(request)
    container_id, tty, monitor_dir = await _attachable(request)
    runs = request.app[RUNS]
    version, _ = versions.split_path(request.path)
    binary = version is None or versions.parse(version) >= (1, 28)
    ws = web.WebSocketResponse()
    if selection.stream:
        runs.attaching.add(container_id)
    try:
        await ws.prepare(request)

        async def send(data: bytes) -> None:
            if data:
                await (ws.send_bytes(data) if binary else
                       ws.send_str(data.decode(errors="replace")))

        if selection.logs:
            async with contextlib.aclosing(_log_chunks(
                    request, container_id, stdout=selection.stdout, stderr=selection.stderr,
                    tty=True)) as chunks:
                async for chunk in chunks:
                    await send(chunk)
        if selection.stream:
            await _copy_ws(request, container_id, monitor_dir, selection, tty, ws, send,
                           keys if tty and selection.stdin else None)
    except (attach.AttachError, ConnectionError):
        pass
    finally:
        runs.attaching.discard(container_id)
        await ws.close()
    return ws


async def _copy_ws(request: web.Request, container_id: str, monitor_dir: str,
                   selection: _Selection, tty: bool, ws: web.WebSocketResponse,
                   send: Callable[[bytes], Awaitable[None]], keys: bytes | None) -> None:
    loop = asyncio.get_running_loop()
    watch = detach_keys.Watch(keys) if keys else None
    sock = await loop.run_in_executor(EXECUTOR, lambda: attach.connect(monitor_dir, 60.0))
    request.app[RUNS].attaching.discard(container_id)
    reader, writer = await asyncio.open_unix_connection(sock=sock)

    async def stdin() -> None:
        try:
            async for message in ws:
                if not selection.stdin:
                    continue
                if message.type == WSMsgType.BINARY:
                    data = message.data
                elif message.type == WSMsgType.TEXT:
                    data = message.data.encode()
                else:
                    continue
                writer.write(data if watch is None else watch.feed(data))
                await writer.drain()  # the next message waits for the container to take it
                if watch is not None and watch.detached:
                    writer.close()  # the attach socket's end ends the output loop below
                    return
            if selection.stdin and writer.can_write_eof():
                writer.write_eof()  # the client closed: the container's stdin ends
        except ConnectionError:
            pass  # the container's side is gone: the output's end ends the attach

    feeding = asyncio.create_task(stdin())
    frames = _Frames(tty, selection)
    try:
        while data := await reader.read(65536):
            await send(frames.raw(data))
    finally:
        feeding.cancel()
        writer.close()


async def wait(request: web.Request) -> web.StreamResponse:
    """dockerd sends the headers at once and the body when the condition is met (the docker
    CLI sends /wait before /start and waits for those headers)."""
    ref = request.match_info["id"]
    condition = request.query.get("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise EngineError(f'invalid condition: "{condition}"', status=400)
    runs = request.app[RUNS]

    def look(engine: Engine) -> tuple[str, dict[str, Any]]:
        record = engine.find(ref)
        return record.id, engine.state(record)

    container_id, now = await in_engine(request, look)
    # A run this server starts (next, as the docker CLI's `run` does, or now) ends with the
    # server's own clean-up and its final state: waited for beside the engine's wait, which
    # sees the runs of every front end (a `barque start`).
    own = runs.exit_of(container_id) if runs.watching(container_id) or (
        condition != "not-running" and not now["Running"]) else None
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    state = await _end_of_run(request, container_id, condition, own) or now
    answer: dict[str, Any] = {"StatusCode": int(state.get("ExitCode") or 0)}
    # A command that could not be run (126, 127): its message went out on the attach stream
    # (the monitor runs the container once attached), the code is the client's exit code.
    # Any other failure to run is an Error, which the docker CLI exits 125 on.
    if state.get("Error") and answer["StatusCode"] not in (126, 127):
        answer["Error"] = {"Message": state["Error"]}
    try:
        await response.write(json.dumps(answer).encode() + b"\n")
        await response.write_eof()
    except ConnectionError:
        pass  # the client went away meanwhile
    return response


async def _end_of_run(request: web.Request, container_id: str, condition: str,
                      own: asyncio.Future[dict[str, Any]] | None) -> dict[str, Any] | None:
    """The state once the condition is met: the server's own run's when it watches one
    (with its Error), else the engine's; cut when the client goes away."""
    runs = request.app[RUNS]
    engine = asyncio.ensure_future(runs.engine_wait(container_id, condition))
    gone = asyncio.ensure_future(_client_gone(request))
    try:
        waiting: set[asyncio.Future[Any]] = {engine, gone} if own is None else \
            {engine, gone, own}
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if gone in done:
            raise ConnectionResetError("the client went away")
        if own is not None and (own in done or runs.started_here(container_id)):
            state = await asyncio.shield(own)
            if condition == "removed":  # after the server's clean-up: removed if --rm
                done, _ = await asyncio.wait({engine, gone},
                                             return_when=asyncio.FIRST_COMPLETED)
                if gone in done:
                    raise ConnectionResetError("the client went away")
            return state
        return engine.result()
    finally:
        engine.cancel()
        gone.cancel()


async def _client_gone(request: web.Request) -> None:
    """Returns once the client has closed its connection (aiohttp does not cancel handlers
    on that by default)."""
    while request.transport is not None and not request.transport.is_closing():
        await asyncio.sleep(0.5)


async def logs(request: web.Request) -> web.StreamResponse:
    from barque.engine import logs as engine_logs

    ref = request.match_info["id"]
    stdout, stderr = flag(request, "stdout"), flag(request, "stderr")
    if not (stdout or stderr):
        raise EngineError("Bad parameters: you must choose at least one stream", status=400)
    follow, timestamps = flag(request, "follow"), flag(request, "timestamps")
    try:
        since = _unix_time(request.query.get("since"))
        until = _unix_time(request.query.get("until"))
        tail = engine_logs.parse_tail(request.query.get("tail") or "all")
    except ValueError as e:
        raise EngineError(str(e), status=400) from None

    def open_logs(engine: Engine) -> tuple[bool, Any]:
        record = engine.find(ref)
        engine_logs.check_readable(record.host_config)
        return bool(record.config.get("Tty")), None

    tty, _ = await in_engine(request, open_logs)
    response = web.StreamResponse(headers={"Content-Type": "application/vnd.docker." + (
        "raw-stream" if tty else "multiplexed-stream")})
    await response.prepare(request)
    try:
        async with contextlib.aclosing(_log_chunks(
                request, ref, since=since, until=until, tail=tail, follow=follow,
                stdout=stdout, stderr=stderr, timestamps=timestamps, tty=tty)) as chunks:
            async for chunk in chunks:
                await response.write(chunk)
        await response.write_eof()
    except ConnectionError:
        pass  # the client went away: the reader thread stops at its next entry
    return response


async def _log_chunks(request: web.Request, ref: str, *, since: float | None = None,
                      until: float | None = None, tail: int | None = None,
                      follow: bool = False, stdout: bool = True, stderr: bool = True,
                      timestamps: bool = False, tty: bool = False) -> AsyncGenerator[bytes]:
    """The container's log entries of the streams asked for, in stdcopy frames (raw with
    `tty`), read in a worker thread; closing the generator stops the thread."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=256)
    gone = threading.Event()

    def produce() -> None:
        from barque.engine import logs as engine_logs

        try:
            with Engine(request.app[PATHS]) as engine:
                try:
                    entries = engine_logs.container_logs(engine, ref, since, until, tail,
                                                         follow)
                except engine_logs.NotReadable:
                    return  # an attach's replay of a container that keeps no log: none
                for entry in entries:
                    if gone.is_set():
                        break
                    if (entry.stream == "stderr" and not stderr) or \
                            (entry.stream != "stderr" and not stdout):
                        continue
                    text = (entry.time.encode() + b" " if timestamps else b"") + entry.text
                    frame = text if tty else attach.frame(2 if entry.stream == "stderr" else 1,
                                                          text)
                    asyncio.run_coroutine_threadsafe(queue.put(frame), loop).result()
        finally:
            asyncio.run_coroutine_threadsafe(queue.put(None), loop).result()

    producer = loop.run_in_executor(EXECUTOR, produce)
    ended = False
    try:
        while (chunk := await queue.get()) is not None:
            yield chunk
        ended = True
    finally:
        if not ended:  # closed early (the client went away): the thread stops at its next
            gone.set()  # entry; its queue is drained so that it can
            while await queue.get() is not None:
                pass
        await producer


def _unix_time(text: str | None) -> float | None:
    """since/until as the API sends them: Unix seconds, maybe with nanoseconds; 0 is none."""
    if not text:
        return None
    value = float(text)
    return value or None
