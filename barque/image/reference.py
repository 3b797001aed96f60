"""Image references as Docker parses them (distribution/reference): `[domain/]path[:tag][@digest]`.

`busybox` is `docker.io/library/busybox:latest`; a first component holding `.` or `:`, or
`localhost`, is a registry host; anything else is a Docker Hub path.
"""

from __future__ import annotations

import re

from barque.structs import dataclass

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*\Z", re.ASCII)
# Compiled on first use (re caches them): a plain name such as "busybox" needs neither.
_DOMAIN_RE = rf"^{_DOMAIN}\Z"  # with re.ASCII
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}\Z", re.ASCII)
_DIGEST_RE = r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}\Z"
_SHA256_RE = re.compile(r"^sha256:[a-f0-9]{64}\Z")
_ID_RE = re.compile(r"^[a-f0-9]{64}\Z")
NAME_MAX = 255


class ReferenceError(ValueError):
    """Not a valid image reference; the message is Docker's wording where it has one."""


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """`docker.io/library/busybox`."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_repository(self) -> str:
        """`busybox`, `user/app`, `localhost:5000/app`: how Docker prints names."""
        if self.domain == DEFAULT_DOMAIN:
            # Only `library/NAME` shortens: `library/a/b` as `a/b` would name another repo.
            short = self.path.removeprefix(OFFICIAL_PREFIX)
            return short if "/" not in short else self.path
        return self.repository

    def __str__(self) -> str:
        out = self.repository
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    @property
    def familiar(self) -> str:
        out = self.familiar_repository
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def with_tag(self, tag: str | None) -> Reference:
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, None, digest)


def is_image_id(text: str) -> bool:
    """A full image ID, with or without `sha256:` (Docker refuses these as repository names)."""
    return bool(_ID_RE.match(text) or _SHA256_RE.match(text))


def parse(text: str, default_tag: bool = True) -> Reference:
    """Parse and normalise `text`; adds `:latest` when it has neither tag nor digest."""
    if not isinstance(text, str) or not text:
        raise ReferenceError("invalid reference format")
    if text != text.strip():
        raise ReferenceError("invalid reference format")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not re.match(_DIGEST_RE, digest):
            raise ReferenceError("invalid reference format")
        if digest.startswith("sha256:") and not _SHA256_RE.match(digest):
            raise ReferenceError("invalid checksum digest format")
    tag = None
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG_RE.match(tag):
            raise ReferenceError("invalid reference format")
    if _ID_RE.match(rest) and tag is None and digest is None:
        raise ReferenceError(f"invalid repository name ({rest}), cannot specify 64-byte "
                             "hexadecimal strings")
    domain, path = split_domain(rest)
    if not _PATH_RE.match(path):
        if path.lower() != path and _PATH_RE.match(path.lower()):
            raise ReferenceError("invalid reference format: repository name must be lowercase")
        raise ReferenceError("invalid reference format")
    if len(domain) + 1 + len(path) > NAME_MAX:
        raise ReferenceError("repository name must not be more than 255 characters")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def split_domain(name: str) -> tuple[str, str]:
    first, sep, remainder = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not re.match(_DOMAIN_RE, first, re.ASCII):
            raise ReferenceError("invalid reference format")
        domain, path = first, remainder
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return domain, path


def is_insecure_default(domain: str) -> bool:
    """Registries Docker talks plain http to without being told: localhost and loopback."""
    import ipaddress

    host = domain.rsplit(":", 1)[0] if not domain.startswith("[") else domain.split("]")[0][1:]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name, even one starting "127.", is not loopback
