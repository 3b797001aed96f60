"""/containers/{id}/exec and /exec/{id}: create, start (hijacked; stdcopy frames without a
TTY, raw with one; or detached), inspect, resize.

An exec is a config until it starts, and a record of how it ended after: like dockerd, the
server keeps both in its memory (an exec belongs to the client that made it, and nobody
else can start it). The run itself is the engine's (barque.engine.exec), as for `barque
exec`: the same process, user, environment and exit codes (126, 127)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import IO, Any

from aiohttp import web

from barque.api.common import EXECUTOR, Handler, in_engine, json_response, read_json
from barque.api.hijack import Hijacked, NullSink, Output, StdinSink
from barque.engine import attach, detach_keys, events
from barque.engine import exec as engine_exec
from barque.engine.context import Engine
from barque.engine.errors import EngineError

KEEP_ENDED = 1000  # ended execs remembered for inspect (dockerd drops them with the container)


@dataclass
class ExecRecord:
    id: str
    container_id: str
    cmd: list[str]
    env: list[str]
    user: str | None
    workdir: str | None
    tty: bool
    privileged: bool
    stdin: bool
    stdout: bool
    stderr: bool
    detach_keys: str
    running: bool = False
    started: asyncio.Event = field(default_factory=asyncio.Event)
    exit_code: int | None = None
    pid: int = 0
    ended_at: float = 0.0
    execution: engine_exec.Execution | None = None

    def inspect(self) -> dict[str, Any]:
        """dockerd's ExecInspect, keys in its order."""
        process: dict[str, Any] = {"tty": self.tty, "entrypoint": self.cmd[0],
                                   "arguments": self.cmd[1:], "privileged": self.privileged}
        if self.user:
            process["user"] = self.user
        if self.running and not self.pid and self.execution is not None:
            self.pid = self.execution.pid()
        return {"ID": self.id, "Running": self.running, "ExitCode": self.exit_code,
                "ProcessConfig": process, "OpenStdin": self.stdin,
                "OpenStderr": self.stderr, "OpenStdout": self.stdout, "CanRemove": False,
                "ContainerID": self.container_id, "DetachKeys": self.detach_keys,
                "Pid": self.pid}


class Execs:
    def __init__(self) -> None:
        self._records: dict[str, ExecRecord] = {}
        self.tasks: set[asyncio.Task[None]] = set()  # detached runs (kept from the GC)

    def add(self, record: ExecRecord) -> None:
        ended = [r for r in self._records.values() if r.exit_code is not None]
        if len(ended) >= KEEP_ENDED:
            for old in sorted(ended, key=lambda r: r.ended_at)[:len(ended) - KEEP_ENDED + 1]:
                del self._records[old.id]
        self._records[record.id] = record

    def ids_of(self, container_id: str) -> list[str] | None:
        """A container's inspect's ExecIDs: its execs not yet ended (dockerd forgets the
        ended ones there, not for exec inspect)."""
        return [r.id for r in self._records.values()
                if r.container_id == container_id and r.exit_code is None] or None

    def get(self, exec_id: str) -> ExecRecord:
        record = self._records.get(exec_id)
        if record is None:
            raise EngineError(f"No such exec instance: {exec_id}", 1, 404)
        return record


EXECS: web.AppKey[Execs] = web.AppKey("execs", Execs)


def _unmarshal_error(value: Any, key: str, go_type: str) -> EngineError:
    """Go's encoding/json words for a value of the wrong type (dockerd's 400)."""
    kind = ("bool" if isinstance(value, bool) else "number" if isinstance(value, int | float)
            else "string" if isinstance(value, str) else "array" if isinstance(value, list)
            else "object")
    return EngineError(f"json: cannot unmarshal {kind} into Go struct field ExecConfig.{key} "
                       f"of type {go_type}", 1, 400)


def _strings(body: dict[str, Any], key: str, strslice: bool = False) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if strslice and isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise _unmarshal_error(value, key, "[]string")
    for item in value:
        if not isinstance(item, str):
            raise _unmarshal_error(item, key, "string")
    return value


def _bool(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise _unmarshal_error(value, key, "bool")
    return value


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key) or ""
    if not isinstance(value, str):
        raise _unmarshal_error(value, key, "string")
    return value


async def create(request: web.Request) -> web.Response:
    body = await read_json(request)
    ref = request.match_info["id"]
    cmd, env = _strings(body, "Cmd", strslice=True), _strings(body, "Env")
    user, workdir = _text(body, "User") or None, _text(body, "WorkingDir") or None
    tty, privileged = _bool(body, "Tty"), _bool(body, "Privileged")
    stdin, stdout, stderr = (_bool(body, k) for k in ("AttachStdin", "AttachStdout",
                                                       "AttachStderr"))
    keys = _text(body, "DetachKeys")

    def check(engine: Engine) -> tuple[str, str]:
        # The engine's checks now (running, not paused, a command, the working dir), as
        # dockerd answers them at create; the process itself is made at start, and a user
        # the container lacks is start's error (126), as in dockerd.
        try:
            container_id, _ = engine_exec.process_for(engine, ref, cmd, env=env, user=user,
                                                      workdir=workdir, tty=tty,
                                                      privileged=privileged)
        except EngineError as e:
            if e.exit_code != 126:
                raise
            container_id = engine.find(ref).id
        try:  # after the container's checks, as dockerd
            detach_keys.to_bytes(keys) if keys else None
        except detach_keys.DetachKeysError:  # dockerd's words (a plain error: its 500)
            raise EngineError(detach_keys.invalid_exec(keys), 1, 500) from None
        return container_id, engine_exec.created(engine, container_id, {"args": cmd})

    container_id, exec_id = await in_engine(request, check)
    record = ExecRecord(exec_id, container_id, cmd, env, user, workdir, tty,
                        privileged, stdin, stdout, stderr, keys)
    request.app[EXECS].add(record)
    return json_response({"Id": record.id}, status=201)


async def inspect(request: web.Request) -> web.Response:
    return json_response(request.app[EXECS].get(request.match_info["id"]).inspect())


async def resize(request: web.Request) -> web.Response:
    record = request.app[EXECS].get(request.match_info["id"])
    height, width = _atoi(request.query.get("h", "")), _atoi(request.query.get("w", ""))
    try:  # dockerd waits as long for a start that is on its way
        await asyncio.wait_for(record.started.wait(), 10)
    except TimeoutError:
        raise EngineError("timeout waiting for exec session ready") from None
    execution = record.execution
    if execution is not None and execution.master is not None and record.running:
        try:
            execution.resize(height, width)
        except OSError as e:
            raise EngineError(f"cannot resize the exec's terminal: {e.strerror}") from None
    return web.Response(status=200)


def _atoi(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise EngineError(f'strconv.Atoi: parsing "{text}": invalid syntax', 1,
                          400) from None


async def start(request: web.Request) -> web.StreamResponse:
    record = request.app[EXECS].get(request.match_info["id"])
    body = await read_json(request)
    detach = bool(body.get("Detach"))
    raw = bool(body.get("Tty"))  # dockerd frames by the start's Tty, not the exec's
    size = _console_size(body.get("ConsoleSize"))
    if record.started.is_set():  # dockerd's words: a 409, or on the stream once hijacked
        state = "is already running" if record.running else "has already run"
        message = f"Error: Exec command {record.id} {state}"
        if detach:
            raise EngineError(message, 1, 409)
        return await _failed(request, raw, message)
    record.running = True  # taken: a second start gets the 409 above
    record.started.set()
    try:
        execution = await in_engine(request, lambda e: _launch(e, record, detach, size))
    except BaseException as e:
        record.running = False
        record.exit_code = 126  # dockerd's for any exec that could not start
        record.ended_at = time.monotonic()
        if detach or not isinstance(e, EngineError):
            raise
        return await _failed(request, raw, str(e))
    record.execution = execution
    if detach:  # answered once it runs (dockerd's too): inspect then has its Pid
        failure = await asyncio.get_running_loop().run_in_executor(EXECUTOR,
                                                                   execution.start_failure)
        if failure is not None:  # the runtime's own failure: dockerd's words, exit code 126
            await _finish(record, execution)
            raise EngineError(failure, 1, 500)
        record.pid = await asyncio.get_running_loop().run_in_executor(
            EXECUTOR, execution.wait_started)
        task = asyncio.create_task(_run_detached(record, execution))
        request.app[EXECS].tasks.add(task)
        task.add_done_callback(request.app[EXECS].tasks.discard)
        return web.Response(status=200)
    return await _run_attached(request, record, execution, raw)


def _console_size(value: Any) -> tuple[int, int]:
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and v >= 0
                                                           for v in value):
        return value[0], value[1]
    return 0, 0


def _launch(engine: Engine, record: ExecRecord, detach: bool,
            size: tuple[int, int]) -> engine_exec.Execution:
    _, process = engine_exec.process_for(engine, record.container_id, record.cmd,
                                         env=record.env, user=record.user,
                                         workdir=record.workdir, tty=record.tty,
                                         privileged=record.privileged)
    # Never the runtime's --detach: the server waits for every exec, for its exit code.
    return engine_exec.Execution(engine, record.container_id, process, detach=False,
                                 interactive=record.stdin and not detach, exec_id=record.id,
                                 pty=None if detach else size)


async def _finish(record: ExecRecord, execution: engine_exec.Execution) -> None:
    record.pid = record.pid or execution.pid()
    try:
        code = await asyncio.get_running_loop().run_in_executor(EXECUTOR, execution.wait)
    finally:
        if execution.master is not None:
            os.close(execution.master)
            execution.master = None
    record.exit_code, record.running = code, False
    record.ended_at = time.monotonic()
    record.execution = None  # kept for inspect: the record, not the process's handles


async def _run_detached(record: ExecRecord, execution: engine_exec.Execution) -> None:
    """Output dropped (dockerd's too), the exit code kept for inspect."""
    outputs = [p for p in (execution.proc.stdout, execution.proc.stderr) if p is not None]
    await asyncio.gather(*(_copy_pipe(p, None) for p in outputs))
    await _finish(record, execution)


def _stream_response(request: web.Request, raw: bool, keys: bytes | None = None
                     ) -> tuple[web.StreamResponse, Hijacked | None]:
    upgrade = request.headers.get("Upgrade", "").lower() == "tcp"
    ctype = "application/vnd.docker." + ("raw-stream" if raw else
                                         "multiplexed-stream")
    headers = {"Content-Type": ctype}
    if upgrade:
        headers.update({"Connection": "Upgrade", "Upgrade": "tcp"})
    response = web.StreamResponse(status=101 if upgrade else 200,
                                  reason="UPGRADED" if upgrade else None, headers=headers)
    response.force_close()
    return response, Hijacked(request.transport, keys) \
        if upgrade and request.transport else None


async def _failed(request: web.Request, raw: bool, message: str) -> web.StreamResponse:
    """dockerd's answer to an attached start that fails: the stream, with the error on its
    stdout; the client learns the exit code (126) from inspect."""
    response, hijacked = _stream_response(request, raw)
    await response.prepare(request)
    if hijacked is not None:
        await asyncio.sleep(0.05)  # the SDK's buffered headers: see container_streams
    text = message.encode() + b"\r\n"
    await Output(response, hijacked).write(text if raw else attach.frame(1, text))
    return response


async def _run_attached(request: web.Request, record: ExecRecord,
                        execution: engine_exec.Execution, raw: bool) -> web.StreamResponse:
    # dockerd watches a TTY's stdin for the detach keys (the exec's, else ctrl-p,ctrl-q)
    keys = detach_keys.parse(record.detach_keys) if record.tty and record.stdin else None
    response, hijacked = _stream_response(request, raw, keys)
    out = Output(response, hijacked)
    stdin: StdinSink = NullSink()
    copying: asyncio.Future[None] | None = None
    handed_off = False  # detached: the rest is _detached()'s
    try:
        await response.prepare(request)
        # Once the headers are out (the process's output never comes with them: see
        # container_streams): the runtime's own failure, in dockerd's words on stdout
        failure = await asyncio.get_running_loop().run_in_executor(EXECUTOR,
                                                                   execution.start_failure)
        if failure is not None:
            text = failure.encode() + b"\r\n"
            await out.write(text if raw else attach.frame(1, text))
            return response
        stdin = await _stdin_of(record, execution)
        if hijacked is not None:
            hijacked.connect_stdin(stdin)
        copying = asyncio.ensure_future(_copy_output(record, execution, out, raw))
        if hijacked is not None and keys is not None:
            await asyncio.wait({copying, hijacked.detached},
                               return_when=asyncio.FIRST_COMPLETED)
            if hijacked.detached.done() and not copying.done():
                out.gone = True  # the stream ends; the process runs on, its output drained
                task = asyncio.create_task(_detached(request, record, execution, copying,
                                                     stdin))
                request.app[EXECS].tasks.add(task)
                task.add_done_callback(request.app[EXECS].tasks.discard)
                handed_off = True
                return response
        await copying
    finally:
        if not handed_off:
            if copying is not None and not copying.done():
                copying.cancel()
            if isinstance(stdin, asyncio.StreamWriter):
                stdin.close()  # the process is gone: its stdin pipe (or our pty's dup) too
            await _finish(record, execution)
    return response


async def _detached(request: web.Request, record: ExecRecord,
                    execution: engine_exec.Execution, copying: asyncio.Future[None],
                    stdin: StdinSink) -> None:
    """After the detach keys: dockerd's exec_detach event; the process's output is drained
    to its end, then its exit code kept for inspect, as for a detached exec."""
    try:
        await in_engine(request, lambda engine: events.container(
            engine, engine.find(record.container_id), "exec_detach", execID=record.id))
    except EngineError:
        pass  # the container is gone meanwhile: the process with it
    try:
        await copying
    finally:
        if isinstance(stdin, asyncio.StreamWriter):
            stdin.close()
        await _finish(record, execution)


async def _stdin_of(record: ExecRecord, execution: engine_exec.Execution) -> StdinSink:
    """The client's bytes go to the process's stdin pipe or our pty; without AttachStdin
    they are dropped."""
    loop = asyncio.get_running_loop()
    if not record.stdin:
        return NullSink()
    if execution.master is not None:
        target: IO[bytes] = os.fdopen(os.dup(execution.master), "wb", buffering=0)
    elif execution.proc.stdin is not None:
        target, execution.proc.stdin = execution.proc.stdin, None  # the transport's now
    else:
        return NullSink()
    transport, protocol = await loop.connect_write_pipe(
        lambda: asyncio.streams.FlowControlMixin(), target)
    return asyncio.StreamWriter(transport, protocol, None, loop)


async def _copy_output(record: ExecRecord, execution: engine_exec.Execution,
                       out: Output, raw: bool) -> None:
    """The process's output: stdcopy frames, or raw bytes if the start asked for a TTY
    (a pty's output is stdout)."""
    outputs: list[tuple[IO[bytes], int, bool]]
    if execution.master is not None:
        outputs = [(os.fdopen(os.dup(execution.master), "rb", buffering=0), 1,
                    record.stdout)]
    else:
        outputs = [(pipe, stream, wanted) for pipe, stream, wanted in (
            (execution.proc.stdout, 1, record.stdout),
            (execution.proc.stderr, 2, record.stderr)) if pipe is not None]
    copies = []
    for pipe, stream, wanted in outputs:

        async def sink(data: bytes, stream: int = stream) -> None:
            await out.write(data if raw else attach.frame(stream, data))

        copies.append(_copy_pipe(pipe, sink if wanted else None))
    await asyncio.gather(*copies)


async def _copy_pipe(pipe: IO[bytes],
                     sink: Callable[[bytes], Awaitable[None]] | None) -> None:
    """pipe (a pipe or a pty master) to sink until its EOF (a pty's EIO); None drops it."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20, loop=loop)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader, loop=loop), pipe)
    try:
        while True:
            try:
                data = await reader.read(65536)
            except OSError:  # EIO: the pty's other side is closed (the process ended)
                break
            if not data:
                break
            if sink is not None:
                await sink(data)
    finally:
        transport.close()


ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/containers/{id}/exec", create),
    ("POST", "/exec/{id}/start", start),
    ("POST", "/exec/{id}/resize", resize),
    ("GET", "/exec/{id}/json", inspect),
]
