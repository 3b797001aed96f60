"""/_ping, /version, /info."""

from __future__ import annotations

import time
from typing import Any

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


def _image_json(usage: system.ImageUsage) -> dict[str, Any]:
    from barque.engine.logs import parse_time
    from barque.image import reference

    image = usage.image
    return {"Id": image.id, "ParentId": "",
            "RepoTags": [reference.parse(t).familiar for t in image.tags],
            "RepoDigests": [reference.parse(d, default_tag=False).familiar
                            for d in image.repo_digests],
            "Created": int(parse_time(image.created)), "Size": usage.size,
            "SharedSize": usage.shared_size, "VirtualSize": usage.size, "Labels": None,
            "Containers": usage.containers}


def _cache_json(entry: Any) -> dict[str, Any]:
    return {"ID": entry.id, "Parent": "", "Parents": None, "Type": entry.type,
            "Description": entry.description, "InUse": entry.in_use, "Shared": entry.shared,
            "Size": entry.size, "CreatedAt": _rfc3339(entry.created_at),
            "LastUsedAt": _rfc3339(entry.last_used), "UsageCount": entry.usage_count}


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


async def disk_usage(request: web.Request) -> web.Response:
    """GET /system/df: Docker's DiskUsage; `type` (repeated, API 1.42) picks the kinds."""
    from barque.api.containers import _summary_json

    kinds = tuple(request.query.getall("type", [])) or system.DISK_USAGE_KINDS
    data = await in_engine(request, lambda e: system.disk_usage_data(e, kinds))
    out: dict[str, Any] = {}
    if data.images is not None:
        out["LayersSize"] = data.layers_size
        out["Images"] = [_image_json(u) for u in data.images]
    if data.containers is not None:
        image_sizes = {u.image.id: u.size for u in data.images or []}
        out["Containers"] = [{**_summary_json(s), "SizeRw": size,
                              "SizeRootFs": size + image_sizes.get(s.image_id, 0)}
                             for s, size in data.containers]
    if data.volumes is not None:
        out["Volumes"] = [{**v.api(), "UsageData": {"Size": size, "RefCount": users}}
                          for v, size, users in data.volumes]
    if data.build_cache is not None:
        out["BuildCache"] = [_cache_json(e) for e in data.build_cache]
        out["BuilderSize"] = sum(e.size for e in data.build_cache if not e.shared)  # < 1.42
    return json_response(out)


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/_ping", ping), ("HEAD", "/_ping", ping),
    ("GET", "/version", version), ("GET", "/info", info),
    ("GET", "/system/df", disk_usage),
]
