"""`docker images` / `GET /images/json`: the store's images, filtered as dockerd filters them,
and as rows (one per tag) with what the CLI's table shows.

Filters come as the Engine API takes them, {key: [values]}:
  dangling=true|false   untagged images only (or tagged only); one value
  label=KEY[=VALUE]     every label filter must match (AND)
  before=IMAGE, since=IMAGE   created before / after that image (several: all must hold)
  reference=PATTERN     a tag matches any pattern (OR), as Go's path.Match against the
                        familiar name with tag, or without it; only matching tags are listed
  until=TIME            created before TIME (a Unix time, RFC 3339, or a duration ago)
"""

from __future__ import annotations

import re

from barque.engine.filters import FilterError, check_keys, match_labels, parse_flags
from barque.image import reference as refs
from barque.image.store import Image, ImageError, ImageStore
from barque.structs import dataclass

FILTER_KEYS = ("dangling", "label", "before", "since", "reference", "until")

Filters = dict  # {key: [values]}: the Engine API's `filters` object


class ImageFilterError(ImageError):
    """A filter the engine refuses (an unknown key, a bad value or pattern): Docker's CLI
    shows its message as is."""


@dataclass
class ImageRow:
    """One line of `docker images`: an image under one of its tags (or <none>)."""
    repository: str
    tag: str
    digest: str
    id: str  # the full "sha256:…"
    created: str
    size: int


def parse_filter_flags(specs: list[str]) -> dict[str, list[str]]:
    """`--filter key=value` flags as the API's filters object, as Docker's CLI builds it."""
    try:
        return parse_flags(specs)
    except FilterError as e:
        raise ImageFilterError(f'{e}: "{e.item}"') from None


def select_images(store: ImageStore, filters: dict[str, list[str]] | None = None,
                  repository: str | None = None) -> list[Image]:
    """The images the filters (and `docker images REPOSITORY[:TAG]`) keep."""
    filters = filters or {}
    try:
        check_keys(filters, FILTER_KEYS)
    except FilterError as e:
        raise ImageFilterError(str(e)) from None
    out = store.images()
    if "dangling" in filters:
        want = _dangling(filters["dangling"])
        out = [i for i in out if (not i.tags) == want]
    for value in filters.get("reference", []):
        _pattern(value)  # a bad pattern fails even when no image is tagged
    if filters.get("reference"):
        out = [i for i in out if _matching_tags(i, filters["reference"])]
    for key in ("before", "since"):
        for value in filters.get(key, []):
            pivot = store.resolve(value)
            out = [i for i in out if (i.created < pivot.created) == (key == "before")
                   and i.id != pivot.id]
    for value in filters.get("until", []):
        limit = until_time(value)
        out = [i for i in out if created_time(i) < limit]
    if filters.get("label"):
        out = [i for i in out if match_labels(filters["label"], _labels(store, i))]
    if repository:
        ref = _repository(repository)
        wanted_tag = str(ref) if ref.tag else None
        out = [i for i in out if any(
            t == wanted_tag if wanted_tag else t.rsplit(":", 1)[0] == ref.repository
            for t in i.tags)]
    return out


def list_images(store: ImageStore, filters: dict[str, list[str]] | None = None,
                repository: str | None = None) -> list[ImageRow]:
    """`docker images`' rows: an image with two tags is two rows; an untagged one, one row
    of <none>. With reference filters (or a repository) only the matching tags are rows."""
    filters = filters or {}
    rows: list[ImageRow] = []
    want = _repository(repository) if repository else None
    for image in select_images(store, filters, repository):
        digests = {refs.parse(d, default_tag=False).familiar_repository: d.split("@", 1)[1]
                   for d in image.repo_digests}
        common = (image.id, image.created, image.size)
        if not image.tags:
            rows.append(ImageRow("<none>", "<none>", next(iter(digests.values()), "<none>"),
                                 *common))
        patterns = filters.get("reference")
        for tag in image.tags:
            if patterns and tag not in _matching_tags(image, patterns):
                continue
            ref = refs.parse(tag)
            if want and (ref.familiar_repository != want.familiar_repository
                         or (want.tag and ref.tag != want.tag)):
                continue
            rows.append(ImageRow(ref.familiar_repository, ref.tag or "<none>",
                                 digests.get(ref.familiar_repository, "<none>"), *common))
    return rows


def listed_tags(image: Image, filters: dict[str, list[str]]) -> list[str]:
    """The image's tags a listing shows: those the reference filters match, or all."""
    patterns = filters.get("reference")
    return _matching_tags(image, patterns) if patterns else list(image.tags)


# --- the filters' rules ----------------------------------------------------------------------

def _dangling(values: list[str]) -> bool:
    wanted = set()
    for value in values:
        if value not in ("true", "false", "1", "0"):
            raise ImageFilterError(f"Invalid filter 'dangling={value}'")
        wanted.add(value in ("true", "1"))
    if len(wanted) > 1:
        raise ImageFilterError("Invalid filter 'dangling=[true false]'")
    return wanted.pop()


def _matching_tags(image: Image, patterns: list[str]) -> list[str]:
    """The image's tags some pattern matches (reference.FamiliarMatch: `name:tag`, then
    `name`)."""
    out = []
    for tag in image.tags:
        ref = refs.parse(tag)
        if any(_pattern(p).fullmatch(ref.familiar) or
               _pattern(p).fullmatch(ref.familiar_repository) for p in patterns):
            out.append(tag)
    return out


def _pattern(pattern: str) -> re.Pattern[str]:
    """Go's path.Match pattern as a regex: `*` and `?` stop at '/', `[^…]` negates, `\\`
    escapes; a malformed pattern is Go's ErrBadPattern."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            if i + 1 == len(pattern):
                raise ImageFilterError("syntax error in pattern")
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            end, cls = _char_class(pattern, i + 1)
            out.append(cls)
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _char_class(pattern: str, i: int) -> tuple[int, str]:
    """A `[…]` class from index i (after '['): (index of its ']', the regex class). As Go,
    a class is never empty and may match '/'."""
    negate = i < len(pattern) and pattern[i] == "^"
    i += negate
    parts: list[str] = []
    while True:
        if i >= len(pattern):
            raise ImageFilterError("syntax error in pattern")
        if pattern[i] == "]" and parts:
            break
        lo, i = _class_char(pattern, i)
        if i < len(pattern) and pattern[i] == "-":
            hi, i = _class_char(pattern, i + 1)
            if hi < lo:
                raise ImageFilterError("syntax error in pattern")
            parts.append(f"{re.escape(lo)}-{re.escape(hi)}")
        else:
            parts.append(re.escape(lo))
    body = "".join(parts)
    return i, f"[^{body}]" if negate else f"[{body}]"


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    if i >= len(pattern) or pattern[i] in "-]":
        raise ImageFilterError("syntax error in pattern")
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            raise ImageFilterError("syntax error in pattern")
    return pattern[i], i + 1


def until_time(text: str) -> float:
    """An until= filter's value as Unix seconds."""
    from barque.engine.logs import parse_since

    try:
        return parse_since(text)
    except ValueError:
        raise ImageFilterError(f'invalid value for "until": failed to parse value as time '
                               f'or duration: "{text}"') from None


def created_time(image: Image) -> float:
    """When the image was made, as Unix seconds (0 if its config says nothing usable)."""
    from barque.engine.logs import parse_time

    try:
        return parse_time(image.created)
    except ValueError:
        return 0.0


def _labels(store: ImageStore, image: Image) -> dict[str, str]:
    return (store.config(image).get("config") or {}).get("Labels") or {}


def _repository(text: str) -> refs.Reference:
    try:
        return refs.parse(text, default_tag=False)
    except refs.ReferenceError as e:
        raise ImageFilterError(str(e)) from None
