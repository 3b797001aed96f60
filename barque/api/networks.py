"""/networks: create, list, inspect, remove, connect, disconnect, prune (the work is
barque/engine/networks.py's, as for `barque network`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from barque.api.common import (
    Handler,
    filter_flags,
    go_kind,
    in_engine,
    json_response,
    query_filters,
    read_json,
)
from barque.engine import networks
from barque.engine.context import Engine
from barque.engine.errors import EngineError

_IPAM_KEYS = ("Subnet", "IPRange", "Gateway")


def _bad(message: str) -> EngineError:
    return EngineError(message, status=400)


def _typed(body: dict[str, Any], key: str, kind: type, default: Any,
           struct: str = "NetworkCreateRequest") -> Any:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise _bad(f"json: cannot unmarshal {go_kind(value)} into Go struct field "
                   f"{struct}.{key} of type {_GO_TYPES[kind]}")
    return value


_GO_TYPES = {str: "string", bool: "bool", dict: "map[string]string", list: "[]string"}


def _string_map(body: dict[str, Any], key: str) -> dict[str, str]:
    value = _typed(body, key, dict, {})
    for item in value.values():
        if not isinstance(item, str):
            raise _bad(f"json: cannot unmarshal {go_kind(item)} into Go struct field "
                       f"NetworkCreateRequest.{key} of type string")
    return dict(value)


def _ipam_configs(body: dict[str, Any]) -> list[dict[str, str]]:
    """IPAM's Config entries as the engine takes them (what `--subnet`, `--ip-range` and
    `--gateway` make); what Barque's IPAM has no such thing for is refused, never ignored."""
    ipam = _typed(body, "IPAM", dict, {})
    driver = ipam.get("Driver") or "default"
    if driver != "default":
        raise EngineError(f'plugin "{driver}" not found', status=404)  # dockerd 20.10's
    if ipam.get("Options"):
        raise _bad("IPAM options are not supported by Barque's default IPAM driver")
    configs = []
    for entry in _typed(ipam, "Config", list, []):
        if not isinstance(entry, dict) or \
                not all(isinstance(entry.get(k) or "", str) for k in _IPAM_KEYS):
            raise _bad("json: cannot unmarshal into Go struct field IPAM.Config of type "
                       "network.IPAMConfig")
        if entry.get("AuxiliaryAddresses"):
            raise _bad("IPAM AuxiliaryAddresses are not supported by Barque")
        configs.append({k: entry[k] for k in _IPAM_KEYS if entry.get(k)})
    return configs


async def create(request: web.Request) -> web.Response:
    body = await read_json(request)
    name = _typed(body, "Name", str, "")
    driver = _typed(body, "Driver", str, "") or "bridge"
    scope = _typed(body, "Scope", str, "")
    if scope not in ("", "local"):
        raise _bad(f'invalid scope {scope}: only "local" networks are supported')
    if _typed(body, "Ingress", bool, False):
        raise EngineError("ingress networks need swarm mode, which Barque does not have",
                          status=403)
    if _typed(body, "ConfigOnly", bool, False) or \
            (_typed(body, "ConfigFrom", dict, {}) or {}).get("Network"):
        raise _bad("config-only networks (ConfigOnly, ConfigFrom) are not supported by Barque")
    configs = _ipam_configs(body)
    internal = _typed(body, "Internal", bool, False)
    ipv6 = _typed(body, "EnableIPv6", bool, False)
    attachable = _typed(body, "Attachable", bool, False)
    labels, options = _string_map(body, "Labels"), _string_map(body, "Options")

    def make(engine: Engine) -> str:
        return networks.create(engine, name, driver, configs, internal, ipv6, attachable,
                               labels, options).id

    network_id = await in_engine(request, make)
    return json_response({"Id": network_id, "Warning": ""}, status=201)


async def list_(request: web.Request) -> web.Response:
    flags = filter_flags(query_filters(request, networks.LIST_FILTERS))
    return json_response(await in_engine(request, lambda e: networks.list_networks(e, flags)))


async def inspect(request: web.Request) -> web.Response:
    ref = request.match_info["id"]
    scope = request.query.get("scope") or ""
    if scope not in ("", "local"):  # Barque's networks are all local: none in another scope
        raise EngineError(f"network {ref} not found", status=404)
    return json_response(await in_engine(request, lambda e: networks.inspect(e, ref)))


async def remove(request: web.Request) -> web.Response:
    ref = request.match_info["id"]
    await in_engine(request, lambda e: networks.remove(e, ref))
    return web.Response(status=204)


def _container(body: dict[str, Any]) -> str:
    container = _typed(body, "Container", str, "", "NetworkConnect")
    if not container:
        raise _bad('invalid name or ID supplied: ""')
    return container


_UNSUPPORTED_ENDPOINT = ("LinkLocalIPs", "MacAddress", "DriverOpts")


async def connect(request: web.Request) -> web.Response:
    ref, body = request.match_info["id"], await read_json(request)
    container = _container(body)
    endpoint = _typed(body, "EndpointConfig", dict, {}, "NetworkConnect")
    ipam = _typed(endpoint, "IPAMConfig", dict, {}, "EndpointSettings")
    given = [k for k in _UNSUPPORTED_ENDPOINT if endpoint.get(k)] + \
        [f"IPAMConfig.{k}" for k in ("LinkLocalIPs",) if ipam.get(k)]
    if given:
        raise _bad(f"network connect with {', '.join(given)} is not supported by Barque")
    aliases = _typed(endpoint, "Aliases", list, [], "EndpointSettings")
    if not all(isinstance(a, str) for a in aliases):
        raise _bad("json: cannot unmarshal into Go struct field Aliases of type []string")
    # per-network links (compose's `links:` on every start): names the container's
    # resolver answers with the linked container's address on this network
    links = _typed(endpoint, "Links", list, [], "EndpointSettings")
    if not all(isinstance(x, str) for x in links):
        raise _bad("json: cannot unmarshal into Go struct field Links of type []string")
    bad = next((x for x in links if not x or x.count(":") > 1), None)
    if bad is not None:
        raise _bad(f"invalid link format: {bad}")
    ipv4 = _typed(ipam, "IPv4Address", str, "", "EndpointIPAMConfig") or None
    ipv6 = _typed(ipam, "IPv6Address", str, "", "EndpointIPAMConfig") or None
    await in_engine(request, lambda e: networks.connect(e, ref, container, ipv4, ipv6,
                                                        aliases, links))
    return web.Response(status=200)


async def disconnect(request: web.Request) -> web.Response:
    ref, body = request.match_info["id"], await read_json(request)
    container = _container(body)
    force = _typed(body, "Force", bool, False, "NetworkDisconnect")
    await in_engine(request, lambda e: networks.disconnect(e, ref, container, force))
    return web.Response(status=200)


async def prune(request: web.Request) -> web.Response:
    flags = filter_flags(query_filters(request, networks.PRUNE_FILTERS))
    removed = await in_engine(request, lambda e: networks.prune(e, flags))
    return json_response({"NetworksDeleted": removed or None})


ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/networks/create", create),
    ("GET", "/networks", list_),
    ("POST", "/networks/prune", prune),
    ("GET", "/networks/{id}", inspect),
    ("DELETE", "/networks/{id}", remove),
    ("POST", "/networks/{id}/connect", connect),
    ("POST", "/networks/{id}/disconnect", disconnect),
]
