"""Decompress a layer blob as a stream: gzip or zstd by its magic bytes, else plain tar.

The media type only says which types are layers at all: the compression is sniffed, because
`docker save` tarballs and some registries label layers wrongly. A truncated or corrupt stream
raises `DecompressError`, never a zlib/zstandard/EOF error: a stream that simply stops is not
taken for a complete one (zstandard's own stream reader would return the partial data).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import IO, Protocol

import zstandard

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# Refused with a clear message; bzip2 needs its block magic too, since a plain tar begins
# with its first entry's name, which may well be "BZh…".
_BZIP2_BLOCK = b"\x31\x41\x59\x26\x53\x59"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_CHUNK = 1 << 16  # compressed bytes read at once
_MIN_FEED = 64  # compressed bytes fed at once, at the least
_TARGET_OUT = 1 << 20  # decompressed bytes wanted per call
# The most compressed bytes fed at once, from the worst expansion per input byte: deflate
# stops near 1032:1 (64 KiB in -> ~64 MiB out); a zstd RLE block packs 128 KiB in 4 bytes
# (2 KiB in -> 64 MiB out). Past the first call the feed adapts to the real ratio.
_MAX_FEED = {"gzip": _CHUNK, "zstd": 2048}

_OCI = "application/vnd.oci.image.layer.v1."
_DOCKER = "application/vnd.docker.image.rootfs."
# Media types of layers (".nondistributable" dropped first), all sniffed alike.
LAYER_MEDIA_TYPES = frozenset({
    _OCI + "tar", _OCI + "tar+gzip", _OCI + "tar+zstd",
    _DOCKER + "diff.tar", _DOCKER + "diff.tar.gzip", _DOCKER + "diff.tar.zstd",
    _DOCKER + "foreign.diff.tar", _DOCKER + "foreign.diff.tar.gzip",
    "",  # unknown, as in a `docker save` tarball's manifest.json: sniff
})


class DecompressError(Exception):
    """The blob is not a supported layer, or its compressed stream is corrupt or truncated."""


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes) -> bytes: ...


def check_media_type(media_type: str) -> None:
    if media_type.replace(".nondistributable", "") not in LAYER_MEDIA_TYPES:
        raise DecompressError(f"unsupported layer media type {media_type!r}")


class _Decoding:
    """A read-only stream of the decompressed data of every member/frame of `raw`.

    Input is fed in pieces sized so that one call's output stays around a megabyte: a layer
    holding a huge run of zeros (zstd packs 128 KiB of them in 4 bytes) is decompressed in
    bounded memory, not all at once.
    """

    def __init__(self, raw: IO[bytes], head: bytes, factory: Callable[[], _Decompressor],
                 kind: str) -> None:
        self._raw, self._pending, self._factory, self._kind = raw, head, factory, kind
        self._obj = factory()
        self._buf = bytearray()
        self._done = False
        self._max_feed = _MAX_FEED.get(kind, _MIN_FEED)
        self._feed = min(_MIN_FEED * 16, self._max_feed)

    def _next_input(self) -> bytes:
        if not self._pending:
            self._pending = self._raw.read(_CHUNK)
        data, self._pending = self._pending[:self._feed], self._pending[self._feed:]
        return data

    def _start_next_member(self) -> bool:
        """After a member's end: False at the end of the blob, else True with a new member."""
        rest, self._pending = self._obj.unused_data + self._pending, b""
        if not rest:
            rest = self._raw.read(_CHUNK)
        while self._kind == "gzip" and rest and not rest.strip(b"\0"):
            rest = self._raw.read(_CHUNK)  # gzip(1) accepts zero padding after a member
        if self._kind == "gzip":
            rest = rest.lstrip(b"\0")
        if not rest:
            return False
        self._obj, self._pending = self._factory(), rest
        return True

    def _fill(self) -> None:
        while not self._buf and not self._done:
            if self._obj.eof and not self._start_next_member():
                self._done = True
                return
            data = self._next_input()
            if not data:
                raise DecompressError(f"truncated {self._kind} stream")
            try:
                out = self._obj.decompress(data)
            except (zlib.error, zstandard.ZstdError) as e:
                raise DecompressError(f"corrupt {self._kind} stream: {e}") from None
            if len(out) > _TARGET_OUT:
                self._feed = max(_MIN_FEED, self._feed // 4)
            elif len(out) < _TARGET_OUT // 4:
                self._feed = min(self._max_feed, self._feed * 2)
            self._buf += out

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            chunks = []
            while chunk := self.read(_CHUNK * 16):
                chunks.append(chunk)
            return b"".join(chunks)
        self._fill()
        out = bytes(self._buf[:size])
        del self._buf[:size]
        return out


class _Plain:
    """The blob itself, with the sniffed head put back in front."""

    def __init__(self, raw: IO[bytes], head: bytes) -> None:
        self._raw, self._head = raw, head

    def read(self, size: int = -1) -> bytes:
        if self._head:
            out, self._head = self._head, b""
            if size is None or size < 0:
                return out + self._raw.read()
            if len(out) > size:
                out, self._head = out[:size], out[size:]
            return out
        return self._raw.read(size)


def _gzip() -> _Decompressor:
    return zlib.decompressobj(wbits=31)  # 31: gzip header and trailer (CRC, size) checked


def _zstd() -> _Decompressor:
    return zstandard.ZstdDecompressor().decompressobj()


def decompressed(raw: IO[bytes], media_type: str) -> IO[bytes]:
    """The uncompressed tar stream of a layer blob (gzip, zstd or none, by magic bytes)."""
    check_media_type(media_type)
    head = b""
    while len(head) < 10 and (more := raw.read(10 - len(head))):
        head += more
    reader: object
    if head.startswith(GZIP_MAGIC):
        reader = _Decoding(raw, head, _gzip, "gzip")
    elif head.startswith(ZSTD_MAGIC):
        reader = _Decoding(raw, head, _zstd, "zstd")
    elif head.startswith(_XZ_MAGIC):
        raise DecompressError("xz-compressed layers are not supported")
    elif head[:3] == b"BZh" and head[4:10] == _BZIP2_BLOCK:
        raise DecompressError("bzip2-compressed layers are not supported")
    else:
        reader = _Plain(raw, head)
    return reader  # type: ignore[return-value]
