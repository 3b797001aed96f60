"""/containers/{id}/archive (GET, HEAD, PUT: `docker cp` both ways) and
/containers/{id}/export: tars streamed through the engine's copy, archive and export."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from barque.api.bridge import BodyReader, ResponseWriter, stream_out
from barque.api.common import Handler, flag, in_engine
from barque.engine import archive, copy
from barque.engine.context import Engine
from barque.engine.errors import EngineError

STAT_HEADER = "X-Docker-Container-Path-Stat"
_TAR = "application/x-tar"


def _path(request: web.Request) -> str:
    path = request.query.get("path")
    if not path:
        raise EngineError("path cannot be empty", status=400)
    return path


async def stat(request: web.Request) -> web.Response:
    ref, path = request.match_info["id"], _path(request)
    found = await in_engine(request, lambda e: archive.stat_path(e, ref, path))
    return web.Response(headers={STAT_HEADER: found.header(), "Content-Type": _TAR})


async def get(request: web.Request) -> web.StreamResponse:
    ref, path = request.match_info["id"], _path(request)
    response = web.StreamResponse(headers={"Content-Type": _TAR})
    writer = ResponseWriter(asyncio.get_running_loop(), request, response)

    def on_stat(fields: dict[str, Any]) -> None:
        response.headers[STAT_HEADER] = archive.path_stat(path, fields).header()
        writer.prepare()  # the stat goes out before the first byte of the tar

    def run(engine: Engine) -> None:
        copy.copy_from(engine, ref, path, "-", out=writer, on_stat=on_stat)  # type: ignore[arg-type]

    return await stream_out(request, response, in_engine(request, run))


async def put(request: web.Request) -> web.Response:
    ref, path = request.match_info["id"], _path(request)
    body = BodyReader(asyncio.get_running_loop(), request)
    keep_owner = flag(request, "copyUIDGID")
    no_overwrite = flag(request, "noOverwriteDirNonDir")

    def run(engine: Engine) -> None:
        archive.extract_to(engine, ref, path, body,  # type: ignore[arg-type]
                           preserve_owner=keep_owner, no_overwrite_dir_non_dir=no_overwrite)

    await in_engine(request, run)
    return web.Response(status=200)


async def export(request: web.Request) -> web.StreamResponse:
    from barque.engine.export import export_container

    ref = request.match_info["id"]
    response = web.StreamResponse(headers={"Content-Type": _TAR})
    writer = ResponseWriter(asyncio.get_running_loop(), request, response)
    return await stream_out(request, response, in_engine(
        request, lambda e: export_container(e, ref, writer)))  # type: ignore[arg-type]


ROUTES: list[tuple[str, str, Handler]] = [
    ("HEAD", "/containers/{id}/archive", stat),
    ("GET", "/containers/{id}/archive", get),
    ("PUT", "/containers/{id}/archive", put),
    ("GET", "/containers/{id}/export", export),
]
