"""The Engine API's `filters` (Docker's filters.Args): `--filter key=value` flags as
{key: [values]}, and the rules every listing shares (labels)."""

from __future__ import annotations

from barque.engine.errors import EngineError


class FilterError(ValueError):
    """A flag without '=' or a key the listing does not know; `item` is what was given."""

    def __init__(self, message: str, item: str) -> None:
        super().__init__(message)
        self.item = item


def parse_flags(items: list[str], accepted: tuple[str, ...] | None = None
                ) -> dict[str, list[str]]:
    """`--filter key=value` flags as the API's filters, in Docker's CLI's way (values of
    one key kept in order); with `accepted`, an unknown key is refused as dockerd does."""
    parsed: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep:
            raise FilterError("bad format of filter (expected name=value)", item)
        parsed.setdefault(key, []).append(value)
    if accepted is not None:
        check_keys(parsed, accepted)
    return parsed


def check_keys(filters: dict[str, list[str]], accepted: tuple[str, ...]) -> None:
    """The daemon's Validate: a key it does not know is an error, before anything is read
    (in dockerd 20.10's words, the oracle's: "Invalid filter")."""
    for key in filters:
        if key not in accepted:
            raise FilterError(f"Invalid filter '{key}'", key)


def parse_filters(items: list[str], accepted: tuple[str, ...]) -> dict[str, list[str]]:
    """parse_flags with the daemon's answer to bad filters: an EngineError (400)."""
    try:
        return parse_flags(items, accepted)
    except FilterError as e:
        raise EngineError(str(e), 1, 400) from None


def validate(filters: dict[str, list[str]], accepted: tuple[str, ...]) -> None:
    """check_keys with the daemon's answer to an unknown key: an EngineError (400)."""
    try:
        check_keys(filters, accepted)
    except FilterError as e:
        raise EngineError(str(e), 1, 400) from None


def match_labels(wanted: list[str], labels: dict[str, str]) -> bool:
    """filters.Args.MatchKVList: every "key" present, every "key=value" equal."""
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True
