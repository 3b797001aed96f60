"""POST /build (the classic builder's protocol: the tar context streamed in, its JSON
stream out; engine/build.py does the build) and POST /build/prune."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from barque.api.bridge import BodyReader, ResponseWriter, stream_out
from barque.api.build_stream import ClassicStream, stages_of
from barque.api.common import Handler, flag, in_engine, json_response
from barque.build.options import BuildOptions
from barque.engine.context import Engine
from barque.engine.errors import EngineError

NETWORK_MODES = ("default", "none", "host", "bridge")
# Query parameters of the classic builder Barque's builder has no such knob for: refused
# when set to something but their zero value (the docker CLI sends some always).
_UNSUPPORTED = ("extrahosts", "shmsize", "memory", "memswap", "cpushares",
                "cpusetcpus", "cpusetmems", "cpuperiod", "cpuquota", "ulimits", "squash",
                "isolation", "outputs")
_ZEROES = ("", "0", "-1", "null", "[]", "{}", "false", "default")


def _json_param(request: web.Request, name: str, kind: type) -> Any:
    text = request.query.get(name)
    if not text:
        return kind()
    try:
        value = json.loads(text)
    except ValueError as e:
        raise EngineError(f"invalid {name} parameter: {e}", status=400) from None
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise EngineError(f"invalid {name} parameter: expected a JSON {kind.__name__}",
                          status=400)
    return value


def _tags(request: web.Request) -> list[str]:
    from barque.image import reference

    tags = [t for t in request.query.getall("t", []) if t]
    for tag in tags:
        try:
            parsed = reference.parse(tag)
        except reference.ReferenceError:
            raise EngineError(f'invalid reference format: repository name ({tag}) must be '
                              "lowercase" if tag.lower() != tag else
                              "invalid reference format", status=400) from None
        if parsed.digest:
            raise EngineError("refusing to create a tag with a digest reference",
                              status=400)
    return tags


def build_options(request: web.Request) -> BuildOptions:
    """The query as BuildOptions (the context's fields left for the build)."""
    query = request.query
    if query.get("version", "1") not in ("", "1"):
        raise EngineError("BuildKit (version=2) is not supported by Barque's API: use the "
                          "classic builder (version=1, DOCKER_BUILDKIT=0)", status=400)
    for name in _UNSUPPORTED:
        if query.get(name, "").strip().lower() not in _ZEROES:
            raise EngineError(f"the build parameter {name} is not supported by Barque",
                              status=400)
    network = query.get("networkmode") or "default"
    if network not in NETWORK_MODES:
        raise EngineError(f'network mode "{network}" not supported by Barque\'s builder',
                          status=400)
    args = {k: str(v) for k, v in _json_param(request, "buildargs", dict).items()
            if v is not None}
    labels = {k: str(v) for k, v in _json_param(request, "labels", dict).items()}
    return BuildOptions(
        context_dir="", dockerfile=b"", tags=_tags(request),
        target=query.get("target") or None, build_args=args, labels=labels,
        no_cache=flag(request, "nocache"), pull=flag(request, "pull"),
        platform=query.get("platform") or None,
        network="default" if network == "bridge" else network,
        cache_from=[str(c) for c in _json_param(request, "cachefrom", list)])


async def build(request: web.Request) -> web.StreamResponse:
    from barque.engine.build import build as engine_build
    from barque.engine.build import open_remote_context, open_stream_context

    options = build_options(request)
    dockerfile = request.query.get("dockerfile") or None
    remote = request.query.get("remote") or ""  # a git or http(s) URL instead of the body
    quiet = flag(request, "q")
    loop = asyncio.get_running_loop()
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    writer = ResponseWriter(loop, request, response)
    body = BodyReader(loop, request)

    def run(engine: Engine) -> None:
        context = open_remote_context(engine, remote, dockerfile,
                                      options.build_args) if remote else \
            open_stream_context(engine, body, dockerfile)
        try:
            options.context_dir, options.dockerfile = context.dir, context.dockerfile
            options.dockerfile_name = context.dockerfile_name
            sink = ClassicStream(writer.write, stages_of(context.dockerfile,
                                                         context.dockerfile_name),
                                 options.target, quiet)
            try:
                result = engine_build(engine, options, sink)
            except EngineError as e:
                if not writer.prepared:
                    raise  # nothing sent yet (a bad Dockerfile): dockerd's error reply
                sink.error(str(e))
                return
            sink.built(result.image_id or "", result.tags or options.tags)
        finally:
            context.close()

    return await stream_out(request, response, in_engine(request, run))


def _prune_until(request: web.Request) -> float | None:
    """filters: {"until": ["24h"]} (or "unused-for", buildx's older name); no other key."""
    from barque.engine.logs import parse_since

    filters = _json_param(request, "filters", dict)
    until = None
    for key, values in filters.items():
        if key not in ("until", "unused-for"):
            raise EngineError(f"invalid filter '{key}'", status=400)
        for value in (values if isinstance(values, list) else list(dict(values))):
            try:
                until = parse_since(str(value))
            except ValueError as e:
                raise EngineError(str(e).replace('"since"', '"until"'), status=400) from None
    return until


async def prune(request: web.Request) -> web.Response:
    from barque.engine.system import prune_build_cache

    until, all_ = _prune_until(request), flag(request, "all")
    keep_text = request.query.get("keep-storage") or "0"
    if not keep_text.isdigit():
        raise EngineError(f"invalid keep-storage: {keep_text!r}", status=400)
    removed, reclaimed = await in_engine(request, lambda e: prune_build_cache(
        e, all_entries=all_, until=until, keep_storage=int(keep_text)))
    return json_response({"CachesDeleted": removed or None, "SpaceReclaimed": reclaimed})


ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/build", build),
    ("POST", "/build/prune", prune),
]
