"""API version negotiation as dockerd does it: /vX.Y/ prefixes between a minimum and a
maximum, the maximum when a request has none."""

from __future__ import annotations

import re

from barque.engine.errors import EngineError
from barque.engine.system import API_VERSION

MAX_API_VERSION = API_VERSION
MIN_API_VERSION = "1.24"  # dockerd's default minimum

_PREFIX = re.compile(r"^/v(\d+\.\d+)(/.*)$")


def parse(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor)


def split_path(path: str) -> tuple[str | None, str]:
    """The version a path names ("/v1.43/info" -> "1.43", "/info") and the path without it."""
    match = _PREFIX.match(path)
    if match is None:
        return None, path
    return match.group(1), match.group(2)


def check(version: str) -> None:
    """dockerd's words for a version outside what it serves (400)."""
    if parse(version) > parse(MAX_API_VERSION):
        raise EngineError(f"client version {version} is too new. Maximum supported API "
                          f"version is {MAX_API_VERSION}", status=400)
    if parse(version) < parse(MIN_API_VERSION):
        raise EngineError(f"client version {version} is too old. Minimum supported API "
                          f"version is {MIN_API_VERSION}, please upgrade your client to a "
                          "newer version", status=400)
