"""SHA-256 of small strings without `hashlib`: importing hashlib loads OpenSSL's libcrypto
(~2 ms of every `run`, which hashes only a few names). CPython's own implementation gives the
same digests; hashlib stays the fallback where that module is missing."""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any


def _constructor() -> Any:
    # By version, not by trying: a failed import costs a scan of sys.path.
    try:
        if sys.version_info >= (3, 12):
            from _sha2 import sha256  # type: ignore[import-not-found,unused-ignore]
        else:
            from _sha256 import sha256  # type: ignore[import-not-found,no-redef,unused-ignore]
        return sha256
    except ImportError:
        import hashlib

        return hashlib.sha256


_sha256 = _constructor()


def new() -> Any:
    """A hash object to update() piece by piece (hashlib.sha256's interface)."""
    return _sha256()


def digest(data: bytes) -> bytes:
    return bytes(_sha256(data).digest())


def hexdigest(data: bytes) -> str:
    return str(_sha256(data).hexdigest())
