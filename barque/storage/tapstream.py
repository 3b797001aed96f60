"""A tar stream read through a tap that counts, optionally hashes, and keeps its latest bytes,
so that what follows the last member tarfile returned can be checked: tarfile stops quietly
at a cut-off or corrupt header, where Go's archive/tar (so Docker) fails."""

from __future__ import annotations

import hashlib
from collections import deque
from typing import IO

BLOCK = 512
_CHUNK = 1 << 20
_MAX_EMPTY_READS = 64  # reads at the end of the stream; tarfile's own need a few


class TarEndError(Exception):
    """What follows the last member is neither the stream's end nor the end marker."""


class Tap:
    def __init__(self, raw: IO[bytes], *, window: int = 1 << 20, hashed: bool = False) -> None:
        self._raw = raw
        self._window = window
        self.sha = hashlib.sha256() if hashed else None
        self.pos = 0
        self._chunks: deque[tuple[int, bytes]] = deque()  # (offset, data), the last ~window
        self._kept = 0
        self._empty_reads = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if not data and size != 0:
            # tarfile skips a member's data by reading it, and does not stop at the end of
            # the stream: a header claiming exabytes would spin it forever.
            self._empty_reads += 1
            if self._empty_reads > _MAX_EMPTY_READS:
                raise EOFError("unexpected end of data: a member claims more data than the "
                               "stream holds")
        if data:
            self._empty_reads = 0
            if self.sha is not None:
                self.sha.update(data)
            self._chunks.append((self.pos, data))
            self._kept += len(data)
            while self._kept - len(self._chunks[0][1]) >= self._window:
                self._kept -= len(self._chunks.popleft()[1])
            self.pos += len(data)
        return data

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass

    @property
    def digest(self) -> str:
        assert self.sha is not None, "a Tap made without hashed=True"
        return "sha256:" + self.sha.hexdigest()

    def bytes_at(self, offset: int, size: int) -> bytes:
        """Up to `size` bytes of the stream from `offset` (fewer at its end)."""
        while self.pos < offset + size and self.read(offset + size - self.pos):
            pass
        if self._chunks and offset < self._chunks[0][0]:
            # tarfile read further ahead than the window keeps.
            raise TarEndError("tar stream position lost")
        out = b"".join(data[max(0, offset - start):] for start, data in self._chunks
                       if start + len(data) > offset)
        return out[:size]

    def check_end(self, offset: int) -> None:
        """After the last member, ending at `offset`: the end of the stream (accepted, as
        Docker does) or the end-of-archive marker (two zero blocks)."""
        rest = self.bytes_at(offset, 2 * BLOCK)
        if not rest:
            return
        if any(rest[:BLOCK]):
            raise TarEndError(f"corrupt or truncated tar: bad header at offset {offset}")
        if len(rest) == BLOCK or (len(rest) == 2 * BLOCK and not any(rest[BLOCK:])):
            return
        if len(rest) < 2 * BLOCK:
            raise TarEndError(f"truncated tar: it ends inside its end-of-archive marker at "
                              f"{offset}")
        raise TarEndError(f"corrupt tar: data after a zero block at offset {offset}")
