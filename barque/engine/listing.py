"""`docker ps` / GET /containers/json: the containers, filtered with the daemon's rules.

Filters come as the Engine API takes them: a key and its values. Values of one key match if
any does (status=running --filter status=paused: both), except `label`, where every value must
match; different keys must all match."""

from __future__ import annotations

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


def list_containers(engine: Engine, *, all_: bool = False, limit: int | None = None,
                    filters: dict[str, list[str]] | None = None) -> list[ContainerSummary]:
    """The containers, newest first: running ones only unless `all_` (or a `status` filter),
    the newest `limit` only if given."""
    filters = filters or {}
    net_filter = _NetFilter(filters)  # checked before any container is read
    for value in filters.get("status", []):
        if value not in _STATUS_VALUES:
            raise EngineError(f"Invalid filter 'status={value}'", 1, 400)
    for value in filters.get("health", []):
        if value not in _HEALTH_VALUES:
            raise EngineError(f"Unrecognised filter value for health: {value}", 1, 400)
    records = engine.records.all()
    if limit is not None:
        records = records[:limit]
    show_all = all_ or "status" in filters
    out = []
    for record in records:
        state = engine.state(record)
        if not show_all and not state["Running"]:
            continue
        if not _matches(filters, record, state):
            continue
        summary = summarize(engine, record, state)
        if net_filter.matches(summary):
            out.append(summary)
    return out


def summarize(engine: Engine, record: ContainerRecord,
              state: dict[str, Any] | None = None) -> ContainerSummary:
    from barque.engine import netview
    from barque.engine.inspect import command_of, mounts_of, network_view_data, status_text
    from barque.engine.logs import parse_time

    state = engine.state(record) if state is None else state
    endpoints, networks, published = network_view_data(engine, record)
    ports = netview.ports_map(record.config, record.host_config, published,
                              bool(state["Running"]))
    return ContainerSummary(
        id=record.id, name=record.name, image=record.image, image_id=record.image_id,
        command=_command_line(command_of(record)), created=parse_time(record.created),
        state=state["Status"], status=status_text(state),
        labels=dict(record.config.get("Labels") or {}), ports=netview.port_list(ports),
        networks=netview.networks_view(record, False, endpoints, networks),
        volumes=[m["source"] for m in record.mounts if m["type"] == "volume"],
        mounts=mounts_of(engine, record))


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
