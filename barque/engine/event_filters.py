"""`docker events --filter`: which logged events a filter keeps, as moby's
daemon/events/filter.go decides (any key dockerd does not know keeps everything)."""

from __future__ import annotations

from barque.engine.filters import match_labels

TYPE_CHECKING = False  # not typing's: every command opens an Engine, which imports this
if TYPE_CHECKING:
    from typing import Any

_FUZZY_EVENTS = ("health_status", "exec_create", "exec_start")  # moby #25798


def _exact(filters: dict[str, list[str]], key: str, *values: str) -> bool:
    wanted = filters.get(key)
    return not wanted or any(v in wanted for v in values)


def _fuzzy(filters: dict[str, list[str]], key: str, *values: str) -> bool:
    wanted = filters.get(key)
    return not wanted or any(v.startswith(w) for w in wanted for v in values if v)


def _strip_tag(name: str) -> str:
    """reference's familiar name without its tag (digests kept), as moby's stripTag."""
    if "@" in name:
        return name
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def matches(msg: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    type_, action = str(msg.get("Type") or ""), str(msg.get("Action") or "")
    actor = msg.get("Actor") or {}
    actor_id = str(actor.get("ID") or "")
    attributes = actor.get("Attributes") or {}
    if any(e in _FUZZY_EVENTS for e in filters.get("event", [])):
        event_ok = _fuzzy(filters, "event", action)
    else:
        event_ok = _exact(filters, "event", action)
    name = str(attributes.get("name") or "")
    image_name = str(attributes.get("name" if type_ == "image" else "image") or "")
    return (event_ok and _exact(filters, "type", type_) and
            _exact(filters, "scope", str(msg.get("scope") or "")) and
            _fuzzy(filters, "container", actor_id, name) and
            _fuzzy(filters, "volume", actor_id, name) and
            _fuzzy(filters, "network", actor_id, name) and
            _exact(filters, "image", actor_id, image_name, _strip_tag(actor_id),
                   _strip_tag(image_name)) and
            _no_swarm(filters) and
            ("label" not in filters or match_labels(filters["label"], attributes)))


def _no_swarm(filters: dict[str, list[str]]) -> bool:
    """daemon, plugin, node, service, secret, config: each keeps only events of its own
    type, which Barque never logs, so a filter on one matches nothing."""
    return all(not filters.get(key) for key in
               ("daemon", "plugin", "node", "service", "secret", "config"))
