"""/_ping, /version, /info."""

from __future__ import annotations

from aiohttp import web

from barque.api import versions
from barque.api.common import Handler, in_engine, json_response
from barque.engine import system

PING_HEADERS = {"API-Version": versions.MAX_API_VERSION, "Docker-Experimental": "false",
                "Ostype": "linux", "Builder-Version": "1", "Swarm": "inactive",
                "Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}


async def ping(request: web.Request) -> web.Response:
    body = None if request.method == "HEAD" else "OK"
    return web.Response(text=body, headers={**PING_HEADERS, "Content-Type": "text/plain; "
                                            "charset=utf-8"})


async def version(request: web.Request) -> web.Response:
    server = system.version()["Server"]
    server.pop("PythonVersion", None)
    server.update({"MinAPIVersion": versions.MIN_API_VERSION, "GitCommit": "",
                   "BuildTime": "", "Platform": {"Name": "Barque"}})
    return json_response(server)


# What SystemInfo has that Barque has no such thing for: the docker CLI prints them.
_INFO_DEFAULTS = {
    "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "",
              "ControlAvailable": False},
    "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"],
                "Log": ["json-file"]},
}


async def info(request: web.Request) -> web.Response:
    return json_response({**_INFO_DEFAULTS, **await in_engine(request, system.info)})


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/_ping", ping), ("HEAD", "/_ping", ping),
    ("GET", "/version", version), ("GET", "/info", info),
]
