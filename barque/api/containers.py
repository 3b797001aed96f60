"""/containers: create, start, stop, kill, restart, pause, unpause, resize, top, changes,
rename, prune, attach, wait, remove, list, inspect, logs."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

from aiohttp import web

from barque.api.common import EXECUTOR, PATHS, Handler, flag, in_engine, json_response, read_json
from barque.api.hijack import Hijacked
from barque.api.runs import RUNS
from barque.engine import attach, lifecycle, listing
from barque.engine.context import Engine
from barque.engine.create import create as engine_create
from barque.engine.errors import EngineError
from barque.engine.filters import parse_filters

_HOST_KEYS = ("HostConfig", "NetworkingConfig")


def _create_body(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any],
                                                 dict[str, Any] | None]:
    """Config, HostConfig, NetworkingConfig of a create request, in the shapes the engine
    relies on (400 otherwise: the engine never sees a string where a list belongs)."""
    config = {k: v for k, v in body.items() if k not in _HOST_KEYS}
    host_config = _object(body, "HostConfig") or {}
    networking = _object(body, "NetworkingConfig") or None
    for key in ("Cmd", "Entrypoint"):  # Docker's strslice: a string is a one-word list
        if isinstance(config.get(key), str):
            config[key] = [config[key]]
        elif config.get(key) is not None and not _strings(config[key]):
            raise EngineError(f"invalid JSON: {key} must be a string or an array of strings",
                              status=400)
    if config.get("Env") is not None and not _strings(config["Env"]):
        raise EngineError("json: cannot unmarshal into Go struct field Config.Env of type "
                          "[]string", status=400)
    return config, host_config, networking


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


async def create(request: web.Request) -> web.Response:
    config, host_config, networking = _create_body(await read_json(request))
    image = str(config.get("Image") or "")
    if not image:
        raise EngineError("Config cannot be empty in order to create a container", status=400)
    name = request.query.get("name") or None
    warnings: list[str] = []

    def make(engine: Engine) -> str:
        return engine_create(engine, image, config, host_config, name=name,
                             networking_config=networking, warnings=warnings).id

    container_id = await in_engine(request, make)
    return json_response({"Id": container_id, "Warnings": warnings}, status=201)


def _object(body: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = body.get(key)
    if value is not None and not isinstance(value, dict):
        raise EngineError(f"invalid JSON: {key} must be an object", status=400)
    return value


async def start(request: web.Request) -> web.Response:
    ref = request.match_info["id"]
    runs = request.app[RUNS]

    def run(engine: Engine) -> tuple[str, bool]:
        record = engine.find(ref)
        if engine.state(record)["Running"]:
            return record.id, False
        lifecycle.start(engine, record.id, attach=record.id in runs.attaching)
        return record.id, True

    container_id, started = await in_engine(request, run)
    if not started:
        return web.Response(status=304)
    runs.watch(container_id)
    return web.Response(status=204)


def _timeout(request: web.Request) -> int | None:
    text = request.query.get("t")
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise EngineError(f"invalid value for t: {text!r}", status=400) from None


async def stop(request: web.Request) -> web.Response:
    ref, timeout = request.match_info["id"], _timeout(request)
    signal = request.query.get("signal") or None

    def run(engine: Engine) -> bool:
        record = engine.find(ref)
        if not engine.state(record)["Running"]:
            return False
        lifecycle.stop(engine, record.id, timeout, signal)
        return True

    return web.Response(status=204 if await in_engine(request, run) else 304)


async def kill(request: web.Request) -> web.Response:
    ref, signal = request.match_info["id"], request.query.get("signal") or "KILL"
    await in_engine(request, lambda e: lifecycle.kill(e, ref, signal))
    return web.Response(status=204)


async def restart(request: web.Request) -> web.Response:
    ref, timeout = request.match_info["id"], _timeout(request)
    container_id = await in_engine(request, lambda e: lifecycle.restart(e, ref, timeout).id)
    request.app[RUNS].watch(container_id)
    return web.Response(status=204)


async def pause(request: web.Request) -> web.Response:
    ref = request.match_info["id"]
    await in_engine(request, lambda e: lifecycle.pause(e, ref))
    return web.Response(status=204)


async def unpause(request: web.Request) -> web.Response:
    ref = request.match_info["id"]
    await in_engine(request, lambda e: lifecycle.unpause(e, ref))
    return web.Response(status=204)


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


async def top(request: web.Request) -> web.Response:
    from barque.engine.top import top as engine_top

    ref, ps_args = request.match_info["id"], (request.query.get("ps_args") or "").split()
    table = await in_engine(request, lambda e: engine_top(e, ref, ps_args or None))
    return json_response({"Titles": table.titles, "Processes": table.processes})


_CHANGE_KINDS = {"C": 0, "A": 1, "D": 2}


async def changes(request: web.Request) -> web.Response:
    from barque.engine.diff import container_changes

    ref = request.match_info["id"]
    found = await in_engine(request, lambda e: container_changes(e, ref))
    return json_response([{"Path": path, "Kind": _CHANGE_KINDS[kind]} for kind, path in found]
                         or None)


async def rename(request: web.Request) -> web.Response:
    from barque.engine import naming

    ref, name = request.match_info["id"], request.query.get("name") or ""
    await in_engine(request, lambda e: naming.rename(e, ref, name))
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    from barque.engine.system import prune_containers

    if _filters_given(request):
        raise EngineError("container prune filters are not supported yet", status=400)
    removed, reclaimed, errors = await in_engine(request, prune_containers)
    for error in errors:
        logging.getLogger("barque.api").warning("container prune: %s", error)
    return json_response({"ContainersDeleted": removed or None, "SpaceReclaimed": reclaimed})


def _filters_given(request: web.Request) -> bool:
    text = request.query.get("filters") or ""
    return text.strip() not in ("", "{}")


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
    await response.write(json.dumps(answer).encode() + b"\n")
    await response.write_eof()
    return response


async def remove(request: web.Request) -> web.Response:
    ref = request.match_info["id"]
    force, volumes = flag(request, "force"), flag(request, "v")

    def rm(engine: Engine) -> tuple[str, dict[str, Any]]:
        record = engine.find(ref)
        state = engine.state(record)
        lifecycle.remove(engine, record.id, force=force, volumes=volumes)
        return record.id, state

    container_id, state = await in_engine(request, rm)
    request.app[RUNS].ended(container_id, state)  # a /wait?condition=removed on it
    return web.Response(status=204)


def _summary_json(s: listing.ContainerSummary) -> dict[str, Any]:
    return {"Id": s.id, "Names": ["/" + s.name], "Image": s.image, "ImageID": s.image_id,
            "Command": s.command, "Created": int(s.created), "Ports": s.ports,
            "Labels": s.labels, "State": s.state, "Status": s.status,
            "HostConfig": {"NetworkMode": "default"},
            "NetworkSettings": {"Networks": s.networks},
            "Mounts": [{"Type": "volume", "Name": v} for v in s.volumes]}


def _filters(request: web.Request) -> dict[str, list[str]]:
    """Filters as JSON: {"key": ["v", ...]} or the old {"key": {"v": true}}."""
    text = request.query.get("filters")
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise EngineError(f"invalid filter: {e}", status=400) from None
    if not isinstance(raw, dict):
        raise EngineError("invalid filter", status=400)
    pairs = [f"{key}={value}" for key, values in raw.items()
             for value in (values if isinstance(values, list) else
                           [v for v, on in dict(values).items() if on])]
    return parse_filters(pairs, listing.FILTER_KEYS)


async def list_(request: web.Request) -> web.Response:
    filters = _filters(request)
    limit_text = request.query.get("limit")
    limit = int(limit_text) if limit_text and limit_text.lstrip("-").isdigit() else None
    limit = limit if limit is not None and limit > 0 else None
    all_ = flag(request, "all")

    def ls(engine: Engine) -> list[dict[str, Any]]:
        return [_summary_json(s) for s in listing.list_containers(
            engine, all_=all_ or limit is not None, limit=limit, filters=filters)]

    return json_response(await in_engine(request, ls))


async def inspect(request: web.Request) -> web.Response:
    from barque.engine.inspect import inspect as engine_inspect

    ref = request.match_info["id"]
    return json_response(await in_engine(request,
                                             lambda e: engine_inspect(e, e.find(ref))))


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


ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/containers/create", create),
    ("GET", "/containers/json", list_),
    ("GET", "/containers/{id}/json", inspect),
    ("POST", "/containers/{id}/start", start),
    ("POST", "/containers/{id}/stop", stop),
    ("POST", "/containers/{id}/kill", kill),
    ("POST", "/containers/{id}/restart", restart),
    ("POST", "/containers/{id}/pause", pause),
    ("POST", "/containers/{id}/unpause", unpause),
    ("POST", "/containers/{id}/resize", resize),
    ("GET", "/containers/{id}/top", top),
    ("GET", "/containers/{id}/changes", changes),
    ("POST", "/containers/{id}/rename", rename),
    ("POST", "/containers/prune", prune),
    ("POST", "/containers/{id}/attach", attach_stream),
    ("POST", "/containers/{id}/wait", wait),
    ("DELETE", "/containers/{id}", remove),
    ("GET", "/containers/{id}/logs", logs),
]
