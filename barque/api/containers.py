"""/containers: create, start, stop, kill, restart, pause, unpause, top, changes, rename,
prune, remove, list, inspect (the streams: container_streams.py)."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from barque.api import container_streams as streams
from barque.api.common import (
    Handler,
    flag,
    in_engine,
    in_reader,
    json_response,
    query_filters,
    read_json,
)
from barque.api.exec import EXECS
from barque.api.runs import RUNS
from barque.engine import lifecycle, listing
from barque.engine.context import Engine
from barque.engine.create import create as engine_create
from barque.engine.errors import EngineError
from barque.engine.records import ContainerRecord

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
    platform = request.query.get("platform") or None
    warnings: list[str] = []

    def make(engine: Engine) -> str:
        return engine_create(engine, image, config, host_config, name=name,
                             networking_config=networking, warnings=warnings,
                             pull=False, platform=platform).id

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

    def run(engine: Engine) -> tuple[str, bool, str]:
        record = engine.find(ref)
        if engine.state(record)["Running"]:
            return record.id, False, ""
        attaching = record.id in runs.attaching
        try:
            lifecycle.start(engine, record.id, attach=attaching)
        except EngineError:
            _remove_if_auto(engine, record)
            raise
        return record.id, True, _start_error(engine, record.id) if attaching else ""

    container_id, started, error = await in_engine(request, run)
    if not started:
        return web.Response(status=304)
    runs.watch(container_id)  # also a run that failed: its end (an --rm removal) as any
    if error:
        raise EngineError(error, 1, 500)
    return web.Response(status=204)


def _remove_if_auto(engine: Engine, record: ContainerRecord) -> None:
    """dockerd's containerStart: a start that fails before the container runs (e.g. a donor
    of `--ipc container:X` that is not shareable) removes an AutoRemove one, for which the
    docker CLI waits (`wait?condition=removed`)."""
    if not record.host_config.get("AutoRemove"):
        return
    try:
        lifecycle.remove(engine, record.id, force=True, volumes=True)
    except EngineError:
        pass


def _start_error(engine: Engine, container_id: str, timeout: float = 60.0) -> str:
    """With a client attaching, the monitor runs the runtime's create once it is there: the
    start waits for that (or the client's absence) so that a container that cannot start
    is the start's answer, as dockerd's ("failed to create shim task: ..."), not an exit."""
    import time

    from barque.engine.state import creating

    deadline = time.monotonic() + timeout
    monitor_dir = engine.paths.monitor_dir(container_id)
    while creating(monitor_dir):
        if time.monotonic() > deadline:
            return ""
        time.sleep(0.005)
    state = engine.state(engine.find(container_id))
    return "" if state["Running"] else str(state["Error"])


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
            "Mounts": s.mounts}


class _Encoded:
    """Each listed container's JSON as last encoded, again while its summary is the same
    (a tuple compare: the listing's cached parts are the same objects, found equal at once)."""

    def __init__(self) -> None:
        self.by_id: dict[str, tuple[tuple[Any, ...], bytes]] = {}

    def body(self, summaries: list[listing.ContainerSummary]) -> bytes:
        """json.dumps of the list's objects, byte for byte."""
        parts = []
        for s in summaries:
            key = (s.name, s.image, s.image_id, s.command, s.created, s.ports, s.labels,
                   s.state, s.status, s.networks, s.mounts)
            seen = self.by_id.get(s.id)
            if seen is None or seen[0] != key:
                seen = (key, json.dumps(_summary_json(s)).encode())
                self.by_id[s.id] = seen
            parts.append(seen[1])
        if len(self.by_id) > 2 * len(summaries) + 64:  # containers gone: forget them
            listed = {s.id for s in summaries}
            for gone in [i for i in self.by_id if i not in listed]:
                self.by_id.pop(gone, None)
        return b"[" + b", ".join(parts) + b"]\n"


_ENCODED = _Encoded()


def _filters(request: web.Request) -> dict[str, list[str]]:
    return query_filters(request, listing.FILTER_KEYS)


async def list_(request: web.Request) -> web.Response:
    filters = _filters(request)
    limit_text = request.query.get("limit")
    limit = int(limit_text) if limit_text and limit_text.lstrip("-").isdigit() else None
    limit = limit if limit is not None and limit > 0 else None
    all_ = flag(request, "all")

    def ls(engine: Engine) -> bytes:
        return _ENCODED.body(listing.list_containers(
            engine, all_=all_ or limit is not None, limit=limit, filters=filters))

    key = ("containers/json", all_, limit, tuple((k, tuple(v)) for k, v in filters.items()))
    return web.Response(body=await in_reader(request, ls, key),
                        content_type="application/json")


async def inspect(request: web.Request) -> web.Response:
    from barque.engine.inspect import inspect as engine_inspect

    ref = request.match_info["id"]
    size = flag(request, "size")
    data = await in_engine(request, lambda e: engine_inspect(e, e.find(ref), size))
    data["ExecIDs"] = request.app[EXECS].ids_of(data["Id"])  # the server's memory
    return json_response(data)


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
    ("POST", "/containers/{id}/resize", streams.resize),
    ("GET", "/containers/{id}/top", top),
    ("GET", "/containers/{id}/changes", changes),
    ("POST", "/containers/{id}/rename", rename),
    ("POST", "/containers/prune", prune),
    ("POST", "/containers/{id}/attach", streams.attach_stream),
    ("GET", "/containers/{id}/attach/ws", streams.attach_ws),
    ("POST", "/containers/{id}/wait", streams.wait),
    ("DELETE", "/containers/{id}", remove),
    ("GET", "/containers/{id}/logs", streams.logs),
]
