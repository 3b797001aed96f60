"""Networks at the engine's level: `network create/ls/inspect/rm/prune/connect/disconnect`
with Docker's rules, filters and words, and Docker's Network object for `inspect`.

The built-in networks are `bridge` (a row of the store, made from daemon.json on first use),
`host` (the host's namespace) and `none` (loopback only); the last two are not rows.
"""

from __future__ import annotations

import hashlib
import re

from barque.engine import events
from barque.engine.errors import EngineError
from barque.engine.filters import match_labels, parse_filters
from barque.network.errors import NetworkError

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from barque.engine.context import Engine
    from barque.engine.records import ContainerRecord
    from barque.network.config import DaemonNetConfig
    from barque.network.store import Network, NetworkStore

BUILTIN_DRIVERS = {"host": "host", "none": "null"}  # name -> driver; not rows
PREDEFINED = ("bridge", "host", "none", "default")
LIST_FILTERS = ("dangling", "driver", "id", "label", "name", "scope", "type")
PRUNE_FILTERS = ("label", "label!", "until")


def store_of(engine: Engine) -> NetworkStore:
    from barque.network.store import NetworkStore

    return NetworkStore(engine.records.conn)


def config_of(engine: Engine) -> DaemonNetConfig:
    from barque.network import config

    try:
        return config.load(engine.paths.root)
    except NetworkError as e:
        raise _engine_error(e) from None


def _engine_error(e: NetworkError) -> EngineError:
    """`network *` commands exit 1 on the daemon's errors, as the docker CLI does."""
    return EngineError(str(e), 1, e.status)


def builtin_id(name: str) -> str:
    """A stable ID for `host` and `none` (Docker's are random, made once per daemon)."""
    return hashlib.sha256(f"barque-network:{name}".encode()).hexdigest()


def builtin_networks() -> list[dict[str, Any]]:
    """`host` and `none` as Docker's Network objects, without what needs the engine (their
    Created time, the containers on them)."""
    return [{"Name": name, "Id": builtin_id(name), "Created": "0001-01-01T00:00:00Z",
             "Scope": "local", "Driver": driver, "EnableIPv4": True, "EnableIPv6": False,
             "IPAM": {"Driver": "default", "Options": None, "Config": None}, "Internal": False,
             "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""},
             "ConfigOnly": False, "Containers": {}, "Options": {}, "Labels": {}}
            for name, driver in BUILTIN_DRIVERS.items()]


def default_bridge(engine: Engine) -> Network:
    try:
        return store_of(engine).default_bridge(config_of(engine))
    except NetworkError as e:
        raise _engine_error(e) from None


# --- lookup ----------------------------------------------------------------------------------

def resolve(engine: Engine, ref: str) -> Network | str:
    """A network by name, full ID or unique ID prefix: its row, or the name of a built-in
    one that has none ("host", "none"). EngineError 404 if there is no such network."""
    if ref in BUILTIN_DRIVERS:
        return ref
    if ref in ("bridge", "default"):
        return default_bridge(engine)
    try:
        found = store_of(engine).find(ref)
    except NetworkError as e:
        raise _engine_error(e) from None
    if found is not None:
        return found
    matches = [name for name in BUILTIN_DRIVERS if builtin_id(name).startswith(ref)] \
        if ref and re.fullmatch(r"[0-9a-f]+", ref) else []
    if len(matches) == 1:
        return matches[0]
    raise EngineError(f"network {ref} not found", 1, 404)


def _name_of(network: Network | str) -> str:
    return network if isinstance(network, str) else network.name


# --- create, rm, prune -----------------------------------------------------------------------

def create(engine: Engine, name: str, driver: str = "bridge",
           subnets: list[dict[str, str]] | None = None, internal: bool = False,
           ipv6: bool = False, attachable: bool = False,
           labels: dict[str, str] | None = None,
           options: dict[str, str] | None = None) -> Network:
    if name in PREDEFINED:
        raise EngineError(f"operation is not permitted on predefined {name} network ", 1, 403)
    if driver in ("host", "null"):
        raise EngineError(f'only one instance of "{driver}" network is allowed', 1, 403)
    if driver != "bridge":
        raise EngineError(f'plugin "{driver}" not found', 1, 404)  # dockerd 20.10's words
    if not name or "\n" in name or "\0" in name:
        raise EngineError(f"invalid network name {name!r}", 1, 400)
    default_bridge(engine)  # the default bridge gets its subnet first, as Docker's does
    try:
        network = store_of(engine).create(name, driver, subnets or [], internal, ipv6,
                                          attachable, labels or {}, options or {},
                                          config_of(engine).pools)
    except NetworkError as e:
        raise _engine_error(e) from None
    events.network(engine, network, "create")
    return network


def remove(engine: Engine, ref: str) -> None:
    """Remove a network no running container is on; its bridge and rules go with it."""
    from barque.engine import netsetup

    network = resolve(engine, ref)
    if isinstance(network, str) or network.name in PREDEFINED:
        raise EngineError(f"{_name_of(network)} is a pre-defined network and cannot be removed",
                          1, 403)
    try:
        gone = store_of(engine).remove(network.id)
    except NetworkError as e:
        raise _engine_error(e) from None
    events.network(engine, network, "destroy")
    try:
        netsetup.release_network(engine, gone)
    except NetworkError as e:
        raise _engine_error(e) from None
    except OSError as e:  # the row is gone; its leftovers are reclaimed by name later
        raise EngineError(f"error while removing network: {e}", 1, 500) from None


def prune(engine: Engine, filters: list[str]) -> list[str]:
    """Remove the user-defined networks no running container is on (Docker's `until`,
    `label`, `label!` filters); the names removed."""
    parsed = parse_filters(filters, PRUNE_FILTERS)
    until = None
    if "until" in parsed:
        if len(parsed["until"]) > 1:
            raise EngineError("more than one until filter specified", 1, 400)
        from barque.engine.logs import parse_since

        try:
            until = parse_since(parsed["until"][0])
        except ValueError as e:
            raise EngineError(str(e).replace('"since"', '"until"'), 1, 400) from None
    removed = []
    for network in sorted(store_of(engine).all(), key=lambda n: n.name):
        if network.name in PREDEFINED:
            continue
        if until is not None and _unix(network.created) > until:
            continue
        if not match_labels(parsed.get("label", []), network.labels):
            continue
        if "label!" in parsed and match_labels(parsed["label!"], network.labels):
            continue
        if any(e.endpoint_id for e in store_of(engine).endpoints_on(network.id)):
            continue
        try:
            remove(engine, network.id)
        except EngineError:
            continue  # in use meanwhile: kept, as Docker does
        removed.append(network.name)
    events.emit(engine.paths, "network", "prune", "", {})
    return removed


def _unix(created: str) -> float:
    from barque.engine.logs import parse_time

    return parse_time(created)


# --- connect, disconnect ---------------------------------------------------------------------

def connect(engine: Engine, net_ref: str, container_ref: str, ipv4: str | None = None,
            ipv6: str | None = None, aliases: list[str] | None = None,
            links: list[str] | None = None) -> None:
    """`network connect`: the container joins the network; a running one gets its interface
    now (engine/netsetup.py), a stopped one at its next start."""
    network = resolve(engine, net_ref)
    record = engine.find(container_ref)
    state = engine.state(record)
    _check_alive(record, state)
    mode = _mode(record)
    if isinstance(network, str):  # host or none
        if mode == network:
            return  # already there: nothing to do, as Docker
        if network == "host":
            raise EngineError("cannot connect container to host network - container must be "
                              "created in host network mode", 1, 400)
    if mode == "host" or mode.startswith("container:"):
        raise EngineError("container sharing network namespace with another container or host "
                          "cannot be connected to any other network", 1, 400)
    if mode == "none" or isinstance(network, str):
        raise EngineError("container cannot be connected to multiple networks with one of the "
                          "networks in private (none) mode", 1, 400)
    store = store_of(engine)
    ipam_config = {k: v for k, v in (("IPv4Address", ipv4), ("IPv6Address", ipv6)) if v}
    from barque.network.store import check_endpoint

    try:  # the settings are checked first, as Docker's validateEndpointSettings
        check_endpoint(network, ipam_config, None, list(aliases or []))
    except NetworkError as e:
        raise _engine_error(e) from None
    existing = {e.network_id: e for e in store.endpoints_of(record.id)}
    if network.id in existing:
        if state["Running"]:
            raise EngineError(f"endpoint with name {record.name} already exists in network "
                              f"{network.name}", 1, 403)
        return  # Docker keeps a stopped container's settings and says nothing
    try:
        endpoint = store.add_endpoint(record.id, network.id, list(aliases or []), ipam_config,
                                      None, list(links or []))
    except NetworkError as e:
        raise _engine_error(e) from None
    if not state["Running"]:
        return
    from barque.engine import netsetup

    try:
        netsetup.connect_running(engine, record, network, endpoint)
    except BaseException:
        store.remove_endpoint(record.id, network.id)  # nothing changed
        raise
    events.network(engine, network, "connect", container=record.id)


def disconnect(engine: Engine, net_ref: str, container_ref: str, force: bool = False) -> None:
    """`network disconnect`: the container leaves the network (a running one loses its
    interface now)."""
    try:
        record = engine.find(container_ref)
    except EngineError:
        if not force:
            raise
        _force_leave(engine, net_ref, container_ref)
        return
    network = resolve(engine, net_ref)
    state = engine.state(record)
    _check_alive(record, state)
    mode = _mode(record)
    if isinstance(network, str):
        if mode == "host" and network == "host":
            raise EngineError("cannot disconnect container from host network - container was "
                              "created in host network mode", 1, 400)
        raise _not_connected(record, network, state)
    store = store_of(engine)
    endpoint = next((e for e in store.endpoints_of(record.id) if e.network_id == network.id),
                    None)
    if endpoint is None:
        raise _not_connected(record, network.name, state)
    if state["Running"] and endpoint.endpoint_id:
        from barque.engine import netsetup

        netsetup.disconnect_running(engine, record, network)
    store.remove_endpoint(record.id, network.id)
    events.network(engine, network, "disconnect", container=record.id)


def _force_leave(engine: Engine, net_ref: str, container_ref: str) -> None:
    """`disconnect -f` of a container that no longer exists: its endpoint goes anyway."""
    network = resolve(engine, net_ref)
    if isinstance(network, str):
        raise EngineError(f"endpoint {container_ref} not found", 1, 404)
    store = store_of(engine)
    gone = [e for e in store.endpoints_on(network.id) if e.container_id.startswith(container_ref)]
    if len(gone) != 1:
        raise EngineError(f"endpoint {container_ref} not found", 1, 404)
    store.remove_endpoint(gone[0].container_id, network.id)


def _not_connected(record: ContainerRecord, name: str, state: dict[str, Any]) -> EngineError:
    the = "" if state["Running"] else "the "  # Docker's two wordings
    return EngineError(f"container {record.id} is not connected to {the}network {name}", 1, 400)


def _check_alive(record: ContainerRecord, state: dict[str, Any]) -> None:
    if state.get("Dead") or state.get("Status") == "dead":
        raise EngineError(f"Container {record.id} is marked for removal and cannot be connected "
                          "or disconnected to the network", 1, 409)


def _mode(record: ContainerRecord) -> str:
    mode = str(record.host_config.get("NetworkMode") or "")
    return "bridge" if mode in ("", "default") else mode


# --- views -----------------------------------------------------------------------------------

def api(engine: Engine, network: Network | str, containers: bool = True) -> dict[str, Any]:
    """Docker's Network object (`network inspect`); `containers` False leaves Containers
    empty, as Docker's list does."""
    if isinstance(network, str):
        return _builtin_api(engine, network, containers)
    config = [{k: c[k] for k in ("Subnet", "IPRange", "Gateway") if c.get(k)}
              for c in network.ipam.get("Config") or []]
    return {
        "Name": network.name, "Id": network.id, "Created": network.created, "Scope": "local",
        "Driver": network.driver, "EnableIPv4": True, "EnableIPv6": network.ipv6,
        "IPAM": {"Driver": network.ipam.get("Driver", "default"),
                 "Options": network.ipam.get("Options"), "Config": config},
        "Internal": network.internal, "Attachable": network.attachable, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
        "Containers": attached(engine, network) if containers else {},
        "Options": network.options, "Labels": network.labels,
    }


def attached(engine: Engine, network: Network) -> dict[str, dict[str, str]]:
    """Network inspect's Containers: the endpoints that have addresses (running ones)."""
    prefixes = {s.version: s.network.prefixlen for s in reversed(network.subnets())}
    found = {}
    for endpoint in store_of(engine).endpoints_on(network.id):
        if not endpoint.endpoint_id:
            continue
        record = engine.records.get(endpoint.container_id)
        found[endpoint.container_id] = {
            "Name": record.name if record else endpoint.container_id[:12],
            "EndpointID": endpoint.endpoint_id, "MacAddress": endpoint.mac or "",
            "IPv4Address": f"{endpoint.ipv4}/{prefixes.get(4)}" if endpoint.ipv4 else "",
            "IPv6Address": f"{endpoint.ipv6}/{prefixes.get(6)}" if endpoint.ipv6 else "",
        }
    return found


def _builtin_api(engine: Engine, name: str, containers: bool) -> dict[str, Any]:
    found = {}
    if containers:
        for record in engine.records.all():
            if _mode(record) == name and engine.state(record)["Running"]:
                found[record.id] = {
                    "Name": record.name,
                    "EndpointID": hashlib.sha256(f"{record.id}:{name}".encode()).hexdigest(),
                    "MacAddress": "", "IPv4Address": "", "IPv6Address": ""}
    [obj] = [n for n in builtin_networks() if n["Name"] == name]
    return {**obj, "Created": default_bridge(engine).created, "Containers": found}


def inspect(engine: Engine, ref: str) -> dict[str, Any]:
    return api(engine, resolve(engine, ref))


# --- ls ---------------------------------------------------------------------------------------

def _match(values: list[str], field: str) -> bool:
    """filters.Args.Match: equal, or the value as a regular expression found in the field."""
    for value in values:
        if value == field:
            return True
        try:
            if re.search(value, field):
                return True
        except re.error:
            continue
    return False


def list_networks(engine: Engine, filters: list[str]) -> list[dict[str, Any]]:
    """Every network as Docker's Network object (Containers left empty), filtered as Docker's
    FilterNetworks does."""
    parsed = parse_filters(filters, LIST_FILTERS)
    bridge = default_bridge(engine)
    networks: list[Network | str] = [bridge, *BUILTIN_DRIVERS,
                                     *(n for n in store_of(engine).all() if n.id != bridge.id)]
    found = [api(engine, n, containers=False) for n in networks]
    checks: list[tuple[str, Callable[[list[str], dict[str, Any]], bool]]] = [
        ("driver", lambda v, n: n["Driver"] in v), ("name", lambda v, n: _match(v, n["Name"])),
        ("id", lambda v, n: _match(v, n["Id"])),
        ("label", lambda v, n: match_labels(v, n["Labels"])),
        ("scope", lambda v, n: n["Scope"] in v)]
    for key, check in checks:
        if key in parsed:
            found = [n for n in found if check(parsed[key], n)]
    if "dangling" in parsed:
        found = _dangling(engine, found, parsed["dangling"])
    if "type" in parsed:
        for value in parsed["type"]:
            if value not in ("builtin", "custom"):
                raise EngineError(f"invalid filter: 'type'='{value}'", 1, 400)
        found = [n for n in found if ("builtin" if n["Name"] in PREDEFINED else "custom")
                 in parsed["type"]]
    return found


def _dangling(engine: Engine, found: list[dict[str, Any]],
              values: list[str]) -> list[dict[str, Any]]:
    if len(values) > 1:
        raise EngineError('got more than one value for filter key "dangling"', 1, 400)
    if values[0] not in ("0", "1", "false", "true"):
        raise EngineError('invalid value for filter \'dangling\', must be "true" (or "1"), or '
                          '"false" (or "0")', 1, 400)
    only = values[0] in ("1", "true")
    store = store_of(engine)

    def used(n: dict[str, Any]) -> bool:
        if n["Name"] in PREDEFINED:
            return True
        return any(e.endpoint_id for e in store.endpoints_on(n["Id"]))
    return [n for n in found if used(n) != only]
