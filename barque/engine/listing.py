"""`docker ps` / GET /containers/json: the containers, filtered with the daemon's rules.

Filters come as the Engine API takes them: a key and its values. Values of one key match if
any does (status=running --filter status=paused: both), except `label`, where every value must
match; different keys must all match."""

from __future__ import annotations

import os

from barque.engine.context import Engine, EngineError
from barque.engine.filters import match_labels, validate
from barque.engine.records import ContainerRecord
from barque.structs import dataclass

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

FILTER_KEYS = ("status", "name", "id", "label", "exited", "ancestor", "network", "publish",
               "expose", "health")
_HEALTH_VALUES = ("starting", "healthy", "unhealthy", "none")
# moby's container.IsValidStateString: the states a `status` filter may name.
_STATUS_VALUES = ("paused", "restarting", "running", "removing", "dead", "created", "exited")


@dataclass
class ContainerSummary:
    """One container as the list shows it: plain data, for the CLI's table and the API."""
    id: str
    name: str
    image: str  # as the user named it
    image_id: str
    command: str  # entrypoint and cmd, joined with spaces
    created: float  # Unix seconds
    state: str  # "running", "exited", ...
    status: str  # "Up 5 minutes", "Exited (0) 2 seconds ago", ...
    labels: dict[str, str]
    ports: list[dict[str, Any]]  # the API's {IP, PrivatePort, PublicPort, Type}
    networks: dict[str, dict[str, Any]]  # name -> EndpointSettings
    volumes: list[str]  # the sources (names) of its volume mounts, in mount order
    mounts: list[dict[str, Any]]  # inspect's MountPoints (binds and volumes), in mount order
    # shared with the listing's cache (the same object from one listing to the next while
    # nothing in it changed): read only


def list_containers(engine: Engine, *, all_: bool = False, limit: int | None = None,
                    filters: dict[str, list[str]] | None = None) -> list[ContainerSummary]:
    """The containers, newest first: running ones only unless `all_` (or a `status` filter),
    the newest `limit` only if given. Every state is read now; what only a record decides
    is parsed again only where its row changed (the process keeps it: _Cache)."""
    filters = filters or {}
    net_filter = _NetFilter(filters)  # checked before any container is read
    for value in filters.get("status", []):
        if value not in _STATUS_VALUES:
            raise EngineError(f"Invalid filter 'status={value}'", 1, 400)
    for value in filters.get("health", []):
        if value not in _HEALTH_VALUES:
            raise EngineError(f"Unrecognised filter value for health: {value}", 1, 400)
    cache = _cache_of(engine)
    rows = engine.records.texts()
    if limit is None:
        cache.keep({row[0] for row in rows})
    else:
        rows = rows[:limit]
    show_all = all_ or "status" in filters
    nets = _Nets(engine)
    out = []
    for row in rows:
        entry = cache.entry(engine, row)
        state = engine.state(entry.record, cache.states)
        if not show_all and not state["Running"]:
            continue
        if not _matches(filters, entry.record, state):
            continue
        summary = _summary(entry, state, nets)
        if net_filter.matches(summary):
            out.append(summary)
    return out


def summarize(engine: Engine, record: ContainerRecord,
              state: dict[str, Any] | None = None) -> ContainerSummary:
    state = engine.state(record) if state is None else state
    return _summary(_Entry(engine, record), state, _Nets(engine))


class _Entry:
    """One container's record and what of its summary only the record decides: kept by
    _Cache while its row's texts stay the same (shared, never changed)."""
    __slots__ = ("row", "record", "created", "command", "labels", "volumes", "mounts",
                 "own_network", "networks", "last")

    def __init__(self, engine: Engine, record: ContainerRecord,
                 row: tuple[str, ...] = ()) -> None:
        from barque.engine import netsetup, netview
        from barque.engine.inspect import command_of, mounts_of
        from barque.engine.logs import parse_time

        self.row, self.record = row, record
        self.created = parse_time(record.created)
        self.command = _command_line(command_of(record))
        self.labels = dict(record.config.get("Labels") or {})
        self.volumes = [m["source"] for m in record.mounts if m["type"] == "volume"]
        self.mounts = mounts_of(engine, record)
        self.own_network = netsetup.has_own_network(record.host_config)
        # without a network of its own: no endpoints, no ports (netsetup.view_data)
        self.networks = {} if self.own_network else netview.networks_view(record, False,
                                                                          [], {})
        self.last: ContainerSummary | None = None


class _Cache:
    """A process's entries of one root's containers (the API server lists again and
    again), and the monitors' state files as last parsed (monitor.read_state's memo)."""

    def __init__(self) -> None:
        self.entries: dict[str, _Entry] = {}
        self.states: dict[str, Any] = {}

    def entry(self, engine: Engine, row: tuple[str, ...]) -> _Entry:
        entry = self.entries.get(row[0])
        if entry is None or entry.row != row:
            from barque.engine.records import from_texts

            entry = _Entry(engine, from_texts(row), row)
            self.entries[row[0]] = entry
        return entry

    def keep(self, ids: set[str]) -> None:
        """Forget the containers that are gone. (Another thread may list meanwhile, e.g.
        the server's system df: the dicts are copied whole, by C code, before the loops.)"""
        for gone in self.entries.keys() - ids:
            self.entries.pop(gone, None)
        for gone in [d for d in list(self.states) if os.path.basename(d) not in ids]:
            self.states.pop(gone, None)


_CACHES: dict[tuple[str, str], _Cache] = {}


def _cache_of(engine: Engine) -> _Cache:
    key = (engine.paths.root, engine.paths.runroot)
    cache = _CACHES.get(key)
    if cache is None:
        cache = _CACHES.setdefault(key, _Cache())
    return cache


class _Nets:
    """Every endpoint, network and published port, read once per listing (three queries)
    and only if a listed container has a network of its own."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.loaded = False
        self.endpoints: dict[str, list[Any]] = {}
        self.networks: dict[str, Any] = {}
        self.published: dict[str, list[Any]] = {}

    def of(self, container_id: str) -> tuple[list[Any], dict[str, Any], list[Any]]:
        if not self.loaded:
            from barque.engine import netsetup

            store = netsetup.store_of(self.engine)
            for endpoint in store.endpoints_all():
                self.endpoints.setdefault(endpoint.container_id, []).append(endpoint)
            self.networks = {n.id: n for n in store.all()}
            self.published = store.published_by_container()
            self.loaded = True
        return (self.endpoints.get(container_id, []), self.networks,
                self.published.get(container_id, []))


def _summary(entry: _Entry, state: dict[str, Any], nets: _Nets) -> ContainerSummary:
    from barque.engine import netview
    from barque.engine.inspect import status_text

    record = entry.record
    ports: list[dict[str, Any]] = []
    networks = entry.networks
    if entry.own_network:
        endpoints, by_id, published = nets.of(record.id)
        ports = netview.port_list(netview.ports_map(record.config, record.host_config,
                                                    published, bool(state["Running"])))
        networks = netview.networks_view(record, False, endpoints, by_id)
    status = status_text(state)
    last = entry.last
    if last is not None and last.state == state["Status"] and last.status == status and \
            last.ports == ports and last.networks == networks:
        return last  # as the last listing showed it: the same object (cheaper than a new one)
    entry.last = ContainerSummary(
        id=record.id, name=record.name, image=record.image, image_id=record.image_id,
        command=entry.command, created=entry.created, state=state["Status"],
        status=status, labels=entry.labels, ports=ports, networks=networks,
        volumes=entry.volumes, mounts=entry.mounts)
    return entry.last


def _command_line(command: list[str]) -> str:
    """dockerd's Command of a listed container: the arguments with a space in single quotes."""
    return " ".join(command[:1] + [f"'{a}'" if " " in a else a for a in command[1:]])


def sizes(engine: Engine, summary: ContainerSummary) -> tuple[int, int]:
    """(SizeRw, SizeRootFs) as dockerd gives them for `ps -s`: the bytes of the container's
    own changes, and those plus its image's."""
    return sizes_of(engine, summary.id, summary.image_id)


def sizes_of(engine: Engine, container_id: str, image_id: str) -> tuple[int, int]:
    import os

    from barque.engine.system import dir_size
    from barque.image.store import ImageError

    rw = dir_size(os.path.join(engine.paths.snapshot_dir(container_id), "upper"))
    try:
        return rw, rw + engine.store.get(image_id).size
    except ImageError:
        return rw, rw


def _matches(filters: dict[str, list[str]], record: ContainerRecord,
             state: dict[str, Any]) -> bool:
    for key, values in filters.items():
        if key == "label":
            if not match_labels(values, record.config.get("Labels") or {}):
                return False
        elif key in _TESTS and not any(_TESTS[key](record, state, v) for v in values):
            return False
    return True


_TESTS: dict[str, Any] = {
    "status": lambda record, state, value: state["Status"] == value,
    "health": lambda record, state, value: (state.get("Health") or {}).get(
        "Status", "none") == value,
    "name": lambda record, state, value: value in record.name,
    "id": lambda record, state, value: record.id.startswith(value),
    "exited": lambda record, state, value: (state["Status"] == "exited" and
                                            str(state["ExitCode"]) == value),
    "ancestor": lambda record, state, value: value in (record.image, record.image_id,
                                                       record.image_id[7:19]),
}


class _NetFilter:
    """network=, publish=, expose=: read from the container's network view (the daemon's
    rules); the filters' values are checked once, up front, with every key."""

    def __init__(self, filters: dict[str, list[str]]) -> None:
        from barque.engine import netview

        validate(filters, FILTER_KEYS)
        try:
            self.publish = netview.port_filter("publish", filters.get("publish", []))
            self.expose = netview.port_filter("expose", filters.get("expose", []))
        except netview.ViewError as e:
            raise EngineError(str(e), 1, 400) from None
        self.networks = filters.get("network")

    def matches(self, summary: ContainerSummary) -> bool:
        from barque.engine import netview

        if self.networks is not None and not netview.matches_network(self.networks,
                                                                     summary.networks):
            return False
        return not (self.publish or self.expose) or netview.matches_ports(
            summary.ports, self.publish, self.expose)
