"""/volumes: create, list, inspect, remove, prune (barque/engine/volumes.py does the work)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from barque.api import versions
from barque.api.common import (
    Handler,
    flag,
    go_kind,
    in_engine,
    json_response,
    query_filters,
    read_json,
)
from barque.engine.context import Engine
from barque.engine.errors import EngineError
from barque.engine.system import VOLUME_PRUNE_FILTERS, prune_volumes
from barque.engine.volumes import VOLUME_FILTERS, create_volume, list_volumes, remove_volume


def _strings(body: dict[str, Any], key: str) -> dict[str, str]:
    """A map of strings of the body (Labels, DriverOpts); dockerd's 400 for anything else."""
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EngineError(f"json: cannot unmarshal {go_kind(value)} into Go struct field "
                          f"VolumeCreateBody.{key} of type map[string]string", status=400)
    for item in value.values():
        if not isinstance(item, str):
            raise EngineError(f"json: cannot unmarshal {go_kind(item)} into Go struct field "
                              f"VolumeCreateBody.{key} of type string", status=400)
    return value


async def create(request: web.Request) -> web.Response:
    body = await read_json(request)
    name, driver = body.get("Name") or "", body.get("Driver") or "local"
    if not isinstance(name, str) or not isinstance(driver, str):
        raise EngineError("json: cannot unmarshal into Go struct field VolumeCreateBody.Name "
                          "of type string", status=400)
    labels, options = _strings(body, "Labels"), _strings(body, "DriverOpts")

    def make(engine: Engine) -> dict[str, Any]:
        volume, _ = create_volume(engine, name, driver, labels, options)
        return volume.api()

    return json_response(await in_engine(request, make), status=201)


async def list_(request: web.Request) -> web.Response:
    filters = query_filters(request, VOLUME_FILTERS)

    def ls(engine: Engine) -> list[dict[str, Any]]:
        return [v.api() for v in list_volumes(engine, filters)]

    return json_response({"Volumes": await in_engine(request, ls), "Warnings": []})


async def inspect(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    return json_response(await in_engine(request, lambda e: e.volumes.get(name).api()))


async def remove(request: web.Request) -> web.Response:
    name, force = request.match_info["name"], flag(request, "force")
    await in_engine(request, lambda e: remove_volume(e, name, force))
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    filters = query_filters(request, VOLUME_PRUNE_FILTERS)
    # Before API 1.42 a prune took named volumes too; since, only anonymous ones unless all=.
    version = request.match_info.get("version")
    every = version is not None and versions.parse(version) < versions.parse("1.42")

    removed, reclaimed = await in_engine(request, lambda e: prune_volumes(e, every, filters))
    return json_response({"VolumesDeleted": removed or None, "SpaceReclaimed": reclaimed})


ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/volumes/create", create),
    ("GET", "/volumes", list_),
    ("POST", "/volumes/prune", prune),
    ("GET", "/volumes/{name}", inspect),
    ("DELETE", "/volumes/{name}", remove),
]
