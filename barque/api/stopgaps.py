"""The least of another part of issue 11 that docker-compose needs before that part lands:
GET /images/{name}/json (Part A, images). make_app registers these routes LAST: aiohttp
answers a path with the first route added for it, so the owner's own route wins once merged,
and this module can then go."""

from __future__ import annotations

from aiohttp import web

from barque.api.common import Handler, in_engine, json_response
from barque.engine import images
from barque.engine.context import Engine
from barque.engine.errors import EngineError
from barque.image.store import ImageNotFound


async def image_inspect(request: web.Request) -> web.Response:
    name = request.match_info["name"]

    def look(engine: Engine) -> dict[str, object]:
        try:
            return images.inspect_named(engine.store, name)
        except ImageNotFound:
            raise EngineError(f"No such image: {name}", status=404) from None

    return json_response(await in_engine(request, look))


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/images/{name:.+}/json", image_inspect),
]
