"""Which images `docker image prune --filter` may remove, as dockerd reads its filters:
dangling=true|false (false: every unused image, as -a), label=K[=V] and label!=K[=V] (each
must hold), until=TIME (created before it; a Unix time, RFC 3339 or a duration ago)."""

from __future__ import annotations

from collections.abc import Callable

from barque.engine.filters import FilterError, check_keys, match_labels
from barque.engine.image_list import created_time, until_time
from barque.image.store import Image, ImageError, ImageStore

FILTER_KEYS = ("dangling", "label", "label!", "until")


class PruneFilterError(ImageError):
    """A filter dockerd refuses: its message, status 400."""


def prune_selector(store: ImageStore, all_images: bool, filters: dict[str, list[str]]
                   ) -> tuple[bool, Callable[[Image], bool] | None]:
    """(all_images, only): whether tagged images are candidates, and the test each candidate
    must pass (None: every one)."""
    try:
        check_keys(filters, FILTER_KEYS)
    except FilterError as e:
        raise PruneFilterError(f"Invalid filter '{e.item}'") from None
    dangling = filters.get("dangling", [])
    for value in dangling:
        if value.lower() not in ("true", "false", "1", "0"):
            raise PruneFilterError(f"Invalid filter 'dangling=[{' '.join(dangling)}]'")
        if value.lower() in ("false", "0"):
            all_images = True
    until = [until_time(v) for v in filters.get("until", [])]
    labels, unlabels = filters.get("label", []), filters.get("label!", [])
    if not (until or labels or unlabels):
        return all_images, None

    def only(image: Image) -> bool:
        if until and not all(created_time(image) < limit for limit in until):
            return False
        if not labels and not unlabels:
            return True
        found = (store.config(image).get("config") or {}).get("Labels") or {}
        return match_labels(labels, found) and not any(
            match_labels([item], found) for item in unlabels)

    return all_images, only
