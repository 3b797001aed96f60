"""SHA-256 of small strings without `hashlib`: importing hashlib loads OpenSSL's libcrypto
(~2 ms of every `run`, which hashes only a few names). CPython's own implementation gives the
same digests; hashlib stays the fallback where that module is missing."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any


def _constructor() -> Any:
    for name in ("_sha2", "_sha256"):  # 3.12 and later, 3.11
        try:
            return __import__(name).sha256
        except (ImportError, AttributeError):
            continue
    import hashlib

    return hashlib.sha256


_sha256 = _constructor()


def hexdigest(data: bytes) -> str:
    return str(_sha256(data).hexdigest())
