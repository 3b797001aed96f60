"""Docker's filters.Args: `--filter key=value` flags (or the API's `filters` JSON) as values
per key, and the matching rules the daemon's list commands share."""

from __future__ import annotations

from barque.engine.errors import EngineError


def parse_filters(items: list[str], accepted: tuple[str, ...]) -> dict[str, list[str]]:
    """`--filter key=value` flags as Docker's filters.Args: values per key."""
    parsed: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep:
            raise EngineError("bad format of filter (expected name=value)", 1, 400)
        parsed.setdefault(key, []).append(value)
    check_keys(parsed, accepted)
    return parsed


def check_keys(filters: dict[str, list[str]], accepted: tuple[str, ...]) -> None:
    """The daemon's Validate: a key it does not know is an error, before anything is read."""
    for key in filters:
        if key not in accepted:
            raise EngineError(f"invalid filter '{key}'", 1, 400)


def match_labels(wanted: list[str], labels: dict[str, str]) -> bool:
    """filters.Args.MatchKVList: every "key" present, every "key=value" equal."""
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True
