"""Plumbing shared by image save, load and import: compression sniffing, deterministic tar
writing, and the spool that reads an archive in one streaming pass.

The spool copies every regular member of a (possibly compressed) tar into a private dir under
the blob store's ingest area, hashing each while it is written, so nothing is held in memory
and a pipe is read once. Links are recorded, never created on disk; members are looked up by
name afterwards. Verified members become blobs by a hard link (no second copy).
"""

from __future__ import annotations

import bz2
import errno
import hashlib
import json
import lzma
import os
import posixpath
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, cast

from barque.storage.blobs import BlobStore, fsync_dir
from barque.storage.compression import GZIP_MAGIC, ZSTD_MAGIC, DecompressError
from barque.storage.compression import decompressed as decompressed_layer
from barque.storage.tapstream import Tap, TarEndError

CHUNK = 1 << 20
JSON_LIMIT = 16 << 20  # manifests, configs, index.json: small; bounds a hostile archive
_MAX_LINK_HOPS = 8

_BZIP2_BLOCK = b"\x31\x41\x59\x26\x53\x59"  # after "BZh<level>": a plain tar may begin "BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_HEAD = 10
_BLOCK = 512
_WINDOW = 4 << 20  # how much of a tar stream the end-of-archive check can look back
# A compressed archive may yield at most this much more than its own size: real images
# compress 2-5:1, a decompression bomb (a few KiB of zstd for 1 GiB of zeros) far beyond.
BOMB_FLOOR = 64 << 20
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
BOMB_RATIO = 128

# Errors the decompressors and tarfile raise on corrupt or truncated input.
STREAM_ERRORS: tuple[type[BaseException], ...] = (
    tarfile.TarError, DecompressError, EOFError, zlib.error, lzma.LZMAError, OSError,
    ValueError, TarEndError)


class ArchiveError(Exception):
    """An archive that cannot be saved, loaded or imported; nothing was registered."""


def compression_of(head: bytes) -> str:
    """"gzip", "zstd", "bzip2", "xz" or "" (plain) from a stream's first 10 bytes."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head[:3] == b"BZh" and head[4:10] == _BZIP2_BLOCK:
        return "bzip2"
    if head.startswith(_XZ_MAGIC):
        return "xz"
    return ""


class Prefixed:
    """A read-only stream: `head` (bytes already read to sniff the format), then `raw`."""

    def __init__(self, head: bytes, raw: IO[bytes]) -> None:
        self._head, self._raw = head, raw

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size < 0:
                data, self._head = self._head + self._raw.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._raw.read(size)


class Hashing:
    """A read-only stream that hashes and counts what passes through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.sha.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


def read_head(stream: IO[bytes], size: int = _HEAD) -> bytes:
    """Up to `size` bytes, looping: a pipe may return fewer than asked before its end."""
    head = b""
    while len(head) < size:
        chunk = stream.read(size - len(head))
        if not chunk:
            break
        head += chunk
    return head


def decompressed(stream: IO[bytes]) -> tuple[IO[bytes], str]:
    """`stream` decompressed by its magic, and the compression found ("" for none)."""
    head = read_head(stream)
    kind = compression_of(head)
    src = cast(IO[bytes], Prefixed(head, stream))
    return decompressor(src, kind), kind


def decompressor(src: IO[bytes], kind: str) -> IO[bytes]:
    """`src` decompressed. gzip and zstd go through the layer decompressor, which (unlike
    zstandard's stream reader) refuses a truncated stream; bz2 and lzma raise EOFError."""
    if kind == "bzip2":
        return cast(IO[bytes], bz2.BZ2File(src))
    if kind == "xz":
        return cast(IO[bytes], lzma.LZMAFile(src))
    return decompressed_layer(src, "")


def open_uncompressed(path: str) -> IO[bytes]:
    """A file's content, decompressed when it is gzip/zstd/bzip2/xz (sniffed)."""
    f = open(path, "rb")
    try:
        stream, _ = decompressed(f)
    except BaseException:
        f.close()
        raise
    return cast(IO[bytes], _Closing(stream, f))


class _Closing:
    """A stream that also closes the file beneath it. Reads are whole (`size` bytes unless
    at the end), as tarfile's copy expects; decompressors may return less."""

    def __init__(self, stream: IO[bytes], file: IO[bytes]) -> None:
        self._stream, self._file = stream, file

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self._stream.read()
        parts, left = [], size
        while left > 0 and (chunk := self._stream.read(left)):
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> _Closing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def uncompressed_digest(path: str) -> tuple[str, int]:
    """(sha256 digest, size) of a file's decompressed content: a layer's diff ID."""
    with open_uncompressed(path) as src:
        hashing = Hashing(cast(IO[bytes], src))
        hashing.drain()
    return hashing.digest, hashing.size


def layer_digest(path: str, what: str) -> str:
    """`uncompressed_digest` of an archive's layer: a corrupt stream is the archive's fault."""
    try:
        return uncompressed_digest(path)[0]
    except STREAM_ERRORS as e:
        raise ArchiveError(f"invalid archive: {what}: {stream_error(e)}") from None


# --- writing -----------------------------------------------------------------------------

def _info(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    # Fixed owner, time and no names: the same images always give the same archive bytes.
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.linkname = kind, mode, size, link
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class TarWriter:
    """A streaming (`w|`) tar with deterministic headers; directories are added on demand."""

    def __init__(self, out: IO[bytes]) -> None:
        self._tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
        self._dirs: set[str] = set()

    def _parents(self, name: str) -> None:
        parent = posixpath.dirname(name)
        if parent and parent not in self._dirs:
            self._parents(parent)
            self._dirs.add(parent)
            self._tar.addfile(_info(parent + "/", tarfile.DIRTYPE, 0o755))

    def add_bytes(self, name: str, data: bytes) -> None:
        import io

        self._parents(name)
        self._tar.addfile(_info(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))

    def add_stream(self, name: str, size: int, stream: IO[bytes]) -> None:
        self._parents(name)
        self._tar.addfile(_info(name, tarfile.REGTYPE, 0o644, size), stream)

    def add_symlink(self, name: str, target: str) -> None:
        self._parents(name)
        self._tar.addfile(_info(name, tarfile.SYMTYPE, 0o777, link=target))

    def close(self) -> None:
        self._tar.close()


# --- the spool ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Member:
    """A spooled regular file: where it is, its digest and size, and its first bytes."""

    path: str
    digest: str
    size: int
    head: bytes

    @property
    def compression(self) -> str:
        return compression_of(self.head)


Verify = Callable[[str, Member], None]


def clean_name(name: str) -> str:
    """An archive member's name relative to the archive root; "" for the root itself."""
    if name.startswith("/"):
        raise ArchiveError(f"invalid archive member {name!r}: absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"invalid archive member {name!r}: path escapes the archive")
    return "/".join(parts)


class Spool:
    """An archive's members on disk, by name. Use as a context manager: the dir goes away."""

    def __init__(self, parent: str) -> None:
        os.makedirs(parent, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix=".load-", dir=parent)
        self.files: dict[str, Member] = {}
        self.links: dict[str, str] = {}  # name -> target name (archive-root relative)
        self._count = 0
        self._compressed = False
        self._input_size: int | None = None  # the archive's size, when it is a file

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    # reading the archive
    def read_tar(self, stream: IO[bytes], verify: Verify | None = None,
                 size: int | None = None) -> None:
        """Spool every member of the (possibly compressed) tar `stream` in one pass.

        `verify(name, member)` is called as each file completes (to reject a bad blob early).
        `size`, the stream's length when known, lets a member that claims more than the
        archive can hold be refused before any byte of it is written.
        """
        head = read_head(stream)
        if not head:
            raise ArchiveError("the archive is empty")
        kind = compression_of(head)
        self._compressed, self._input_size = bool(kind), size
        try:
            counted = _Counting(cast(IO[bytes], Prefixed(head, stream)))
            src = decompressor(cast(IO[bytes], counted), kind)
            if kind:
                src = cast(IO[bytes], _BombGuard(src, counted))
            tap = Tap(src, window=_WINDOW)
            with tarfile.open(fileobj=cast(IO[bytes], tap), mode="r|") as tar:
                while (info := tar.next()) is not None:
                    tar.members.clear()  # type: ignore[attr-defined]  # no index needed
                    self._add(tar, info, verify)
                tap.check_end(tar.offset)
            # To the end: a compressed stream's trailer (CRC, size) is checked there.
            while tap.read(CHUNK):
                pass
        except ArchiveError:
            raise
        except OSError as e:
            if e.errno in _WRITE_ERRNOS:  # the disk, not the archive
                raise ArchiveError(f"write {self.dir}: {os.strerror(e.errno).lower()}") from None
            raise ArchiveError(f"invalid archive: {stream_error(e)}") from None
        except tarfile.ReadError as e:
            raise ArchiveError(docker_tar_error(str(e))
                               or f"invalid archive: {stream_error(e)}") from None
        except STREAM_ERRORS as e:
            raise ArchiveError(f"invalid archive: {stream_error(e)}") from None

    def _add(self, tar: tarfile.TarFile, info: tarfile.TarInfo, verify: Verify | None) -> None:
        name = clean_name(info.name)
        if not name or info.isdir():
            return
        self.files.pop(name, None)
        self.links.pop(name, None)
        if info.issym():
            target = info.linkname
            if target.startswith("/"):
                raise ArchiveError(f"invalid archive member {info.name!r}: absolute link target")
            self.links[name] = clean_name(
                posixpath.normpath(posixpath.join(posixpath.dirname(name), target)))
        elif info.islnk():
            self.links[name] = clean_name(info.linkname)
        elif info.isfile():
            self._check_size(name, info)
            src = tar.extractfile(info)
            assert src is not None
            member = self._write(src)
            self.files[name] = member
            if verify is not None:
                verify(name, member)
        else:
            raise ArchiveError(f"unexpected archive member {info.name!r} (not a file, "
                               "directory or link)")

    def _check_size(self, name: str, info: tarfile.TarInfo) -> None:
        """Refuse, before writing it, a member that would write more than the archive holds:
        a sparse file (its holes would be written as zeros), one declaring more bytes than
        the archive has (or than its compression can plausibly give), one the disk lacks
        room for."""
        if info.sparse is not None:
            raise ArchiveError(f"invalid archive member {info.name!r}: sparse files are not "
                               "supported (their holes would be written out in full)")
        end = info.offset_data + info.size
        total = self._input_size
        if total is not None and not self._compressed and end > total:
            raise ArchiveError(f"invalid archive member {info.name!r}: its {info.size} bytes "
                               f"are larger than the archive ({total} bytes): truncated")
        if total is not None and self._compressed and end > BOMB_FLOOR + BOMB_RATIO * total:
            raise ArchiveError(f"invalid archive member {info.name!r}: its {info.size} bytes "
                               f"are larger than a {total}-byte archive can hold (compression "
                               f"ratio over {BOMB_RATIO}:1)")
        st = os.statvfs(self.dir)
        if info.size > st.f_bavail * st.f_frsize:
            raise ArchiveError(f"write {name}: no space left on device ({info.size} bytes "
                               f"needed, {st.f_bavail * st.f_frsize} free)")

    def _write(self, src: IO[bytes]) -> Member:
        self._count += 1
        path = os.path.join(self.dir, str(self._count))
        sha, size, head = hashlib.sha256(), 0, b""
        with open(path, "wb") as out:
            while chunk := src.read(CHUNK):
                if len(head) < _HEAD:
                    head += chunk[:_HEAD - len(head)]
                sha.update(chunk)
                size += len(chunk)
                out.write(chunk)
        return Member(path, "sha256:" + sha.hexdigest(), size, head)

    def add_file(self, src: IO[bytes]) -> Member:
        """Spool a derived file (a decompressed layer) that has no archive name."""
        return self._write(src)

    # looking members up
    def find(self, name: str) -> Member | None:
        name = clean_name(name)
        for _ in range(_MAX_LINK_HOPS):
            if name in self.files:
                return self.files[name]
            if name not in self.links:
                return None
            name = self.links[name]
        raise ArchiveError(f"too many levels of links resolving {name!r}")

    def get(self, name: str, what: str) -> Member:
        member = self.find(name)
        if member is None:
            raise ArchiveError(f"invalid archive: {what} {name!r} is missing from the archive")
        return member

    def read_json(self, name: str, what: str) -> tuple[bytes, Any]:
        """(exact bytes, parsed value) of a JSON member."""
        member = self.get(name, what)
        if member.size > JSON_LIMIT:
            raise ArchiveError(f"invalid archive: {what} {name!r} is too large")
        with open(member.path, "rb") as f:
            data = f.read()
        try:
            return data, json.loads(data)
        except ValueError as e:
            raise ArchiveError(f"invalid archive: {what} {name!r}: {e}") from None



class _Counting:
    """A read-only stream that counts the bytes read from it (an archive's compressed side)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.size += len(data)
        return data


class _BombGuard(_Counting):
    """Decompressed data, cut off with an ArchiveError once it outgrows what its compressed
    input (read so far) can plausibly give: bounds a stream whose size is unknown."""

    def __init__(self, raw: IO[bytes], compressed: _Counting) -> None:
        super().__init__(raw)
        self._compressed = compressed

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        if self.size > BOMB_FLOOR + BOMB_RATIO * self._compressed.size:
            raise ArchiveError(f"invalid archive: {self.size} bytes from {self._compressed.size} "
                               f"compressed is larger than a compression ratio of "
                               f"{BOMB_RATIO}:1 allows")
        return data


def adopt(member: Member, blobs: BlobStore) -> str:
    """Make a verified file the blob of its digest by a hard link (no copy); the file must be
    on the store's filesystem (the spool and import temp files are under its ingest dir)."""
    dest = blobs.path(member.digest)
    if os.path.exists(dest):
        return member.digest
    with open(member.path, "rb") as f:
        os.fsync(f.fileno())
    os.chmod(member.path, 0o444)
    try:
        os.link(member.path, dest)
    except FileExistsError:
        return member.digest
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        with open(member.path, "rb") as f:
            blobs.put_stream(f, member.digest)
        return member.digest
    fsync_dir(os.path.dirname(dest))
    return member.digest


# Python's tarfile errors for a stream that is no tar, as Go's archive/tar reports them.
_GO_TAR_WORDS = {"truncated header": "unexpected EOF", "unexpected end of data": "unexpected EOF",
                 "invalid header": "archive/tar: invalid tar header",
                 "bad checksum": "archive/tar: invalid tar header"}


def docker_tar_error(text: str) -> str | None:
    """dockerd's words for an input that is not a tar (its chrooted untar child's), or None
    for other errors: "Error processing tar file(exit status 1): unexpected EOF"."""
    words = _GO_TAR_WORDS.get(text)
    return f"Error processing tar file(exit status 1): {words}" if words else None


def stream_error(e: BaseException) -> str:
    """A decompressor's or tarfile's error, worded for a person."""
    text = str(e) or type(e).__name__
    if isinstance(e, EOFError) or "unexpected end" in text:
        return "unexpected end of data: the archive is truncated"
    return text
