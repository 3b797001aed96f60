"""/containers' streams: attach (hijacked), wait (headers first, the answer at the end),
logs (stdcopy frames), and resize of an attached TTY."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aiohttp import web

from barque.api.common import EXECUTOR, PATHS, flag, in_engine
from barque.api.hijack import Hijacked
from barque.api.runs import RUNS
from barque.engine import attach, lifecycle
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


async def attach_stream(request: web.Request) -> web.StreamResponse:
    """The hijacked stream (Upgrade: tcp): the monitor's attach socket copied out, in
    stdcopy frames without a TTY (the monitor frames them), raw with one."""
    ref = request.match_info["id"]
    runs = request.app[RUNS]

    def attachable(engine: Engine) -> tuple[str, bool, str]:
        record = engine.find(ref)
        state = engine.state(record)
        if state["Status"] not in ("created", "running"):
            lifecycle.attachable(engine, record.id)  # its error: stopped or paused
        return record.id, bool(record.config.get("Tty")), engine.paths.monitor_dir(record.id)

    container_id, tty, monitor_dir = await in_engine(request, attachable)
    upgrade = request.headers.get("Upgrade", "").lower() == "tcp"
    ctype = "application/vnd.docker." + ("raw-stream" if tty else "multiplexed-stream")
    headers = {"Content-Type": ctype}
    if upgrade:
        headers.update({"Connection": "Upgrade", "Upgrade": "tcp"})
    response = web.StreamResponse(status=101 if upgrade else 200, reason="UPGRADED"
                                  if upgrade else None, headers=headers)
    response.force_close()
    runs.attaching.add(container_id)
    # Hijacked before the 101 goes out: the client's first stdin bytes may follow at once.
    hijacked = Hijacked(request.transport) if upgrade and request.transport else None
    try:
        await response.prepare(request)
        await _copy_out(request, monitor_dir, hijacked, response)
    except (attach.AttachError, ConnectionError):
        pass
    finally:
        runs.attaching.discard(container_id)
    return response


async def _copy_out(request: web.Request, monitor_dir: str, hijacked: Hijacked | None,
                    response: web.StreamResponse) -> None:
    """The monitor's attach socket to the client (and, hijacked, the client to it)."""
    loop = asyncio.get_running_loop()
    sock = await loop.run_in_executor(EXECUTOR, lambda: attach.connect(monitor_dir, 60.0))
    request.app[RUNS].attaching.discard(request.match_info["id"])
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    try:
        if hijacked is not None:
            hijacked.connect_stdin(writer)
        while data := await reader.read(65536):
            if hijacked is not None:
                hijacked.write(data)
            else:
                await response.write(data)
    finally:
        writer.close()


async def wait(request: web.Request) -> web.StreamResponse:
    """dockerd sends the headers at once and the body when the condition is met (the docker
    CLI sends /wait before /start and waits for those headers)."""
    ref = request.match_info["id"]
    condition = request.query.get("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise EngineError(f'invalid condition: "{condition}"', status=400)
    runs = request.app[RUNS]

    def look(engine: Engine) -> tuple[str, bool]:
        record = engine.find(ref)
        return record.id, bool(engine.state(record)["Running"])

    container_id, running = await in_engine(request, look)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    if runs.watching(container_id) or condition != "not-running" and not running:
        state = await runs.exit_of(container_id)
        if condition == "removed":  # a claim this server could not get: the monitor's
            try:  # exit command removes it
                await in_engine(request, lambda e: lifecycle.wait(e, container_id, "removed"))
            except EngineError:
                pass  # already gone
    else:
        state = await in_engine(request, lambda e: lifecycle.wait(e, container_id, condition))
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
        return bool(record.config.get("Tty")), None

    tty, _ = await in_engine(request, open_logs)
    response = web.StreamResponse(headers={"Content-Type": "application/vnd.docker." + (
        "raw-stream" if tty else "multiplexed-stream")})
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=256)
    gone = threading.Event()

    def produce() -> None:
        try:
            with Engine(request.app[PATHS]) as engine:
                for entry in engine_logs.container_logs(engine, ref, since, until, tail,
                                                        follow):
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
    try:
        while (chunk := await queue.get()) is not None:
            await response.write(chunk)
    except ConnectionError:
        gone.set()  # the client went away: the reader thread stops at its next entry
        while await queue.get() is not None:
            pass
    await producer
    try:
        await response.write_eof()
    except ConnectionError:
        pass
    return response


def _unix_time(text: str | None) -> float | None:
    """since/until as the API sends them: Unix seconds, maybe with nanoseconds; 0 is none."""
    if not text:
        return None
    value = float(text)
    return value or None
