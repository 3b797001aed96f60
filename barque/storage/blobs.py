"""Content-addressed blobs: `<root>/blobs/sha256/<hex>`, each verified before it is visible.

A blob is written to `<root>/ingest/<hex>` first, hashed while it is written, and renamed into
`blobs/` only when its digest (and size, when known) match. An ingest file outlives a killed
writer, so the next writer of the same digest resumes from it (the registry client asks for
the rest with a Range request); a per-digest lock makes two concurrent writers of one digest
take turns, and the second then finds the blob present and writes nothing. Partial downloads,
the `.`-named temporaries of load/import/commit and lock files are all made under the image
store's lock: the store sweeps the temporaries when it finds that lock free (their writers are
dead), and prune sweeps the partial downloads too (`sweep_ingest`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import IO, Any

_DIGEST_RE = r"^sha256:[a-f0-9]{64}\Z"  # compiled on first use (re caches it)
_CHUNK = 1 << 20


class BlobError(Exception):
    """A malformed digest, or content that does not match its digest or size."""



def _sha256(data: bytes = b"") -> Any:
    """hashlib's sha256, imported on first use: OpenSSL's start-up costs ~2.5 ms, which a
    command that only reads the store (`run` of a local image) need not pay."""
    import hashlib

    return hashlib.sha256(data)

def sha256_digest(data: bytes) -> str:
    return "sha256:" + _sha256(data).hexdigest()


def check_digest(digest: str) -> str:
    """`digest` if it is a well-formed sha256 digest; it becomes a path component."""
    if not isinstance(digest, str) or not re.match(_DIGEST_RE, digest):
        raise BlobError(f"unsupported or malformed digest {digest!r}")
    return digest


def remove_tree(path: str) -> int:
    """Remove a file or a directory tree (never following a symlink); the bytes freed."""
    import shutil
    import stat

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    if not stat.S_ISDIR(st.st_mode):
        try:
            os.unlink(path)
        except FileNotFoundError:
            return 0
        return st.st_blocks * 512
    freed = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            try:
                freed += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    shutil.rmtree(path, ignore_errors=True)
    return freed


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobWriter:
    """Appends to an ingest file for one expected digest; `commit` publishes it.

    `offset` is how much a previous, interrupted writer left: the caller continues from there
    (or calls `restart` to begin again). Use as a context manager: leaving the block without
    `commit` keeps the partial content for a later resume, unless `discard` was called.
    """

    def __init__(self, store: BlobStore, digest: str, size: int | None) -> None:
        self.store, self.digest, self.size = store, check_digest(digest), size
        hexpart = digest.split(":", 1)[1]
        self.ingest_path = os.path.join(store.ingest_dir, hexpart)
        from barque.linux import locks  # here: `run` imports this module, never writes a blob

        self._lock = locks.open_file(self.ingest_path + ".lock")
        locks.lock(self._lock)
        self._sha = _sha256()
        self.offset = 0
        self.committed = False
        # Published (by someone else) while we waited for the lock: nothing to write.
        self.exists = store.has(digest)
        self._file: IO[bytes] | None = None
        if not self.exists:
            self._open()
            if size is not None and self.offset > size:
                self.restart()

    def _open(self) -> None:
        self._file = open(self.ingest_path, "ab+")
        self._sha = _sha256()
        self._file.seek(0)
        while chunk := self._file.read(_CHUNK):
            self._sha.update(chunk)
        self.offset = self._file.tell()

    def _handle(self) -> IO[bytes]:
        if self._file is None:
            if self.exists:
                raise BlobError(f"{self.digest} is already in the store: nothing to write")
            self._open()  # after discard: a new, empty ingest file
        assert self._file is not None
        return self._file

    def restart(self) -> None:
        f = self._handle()
        f.seek(0)
        f.truncate()
        self._sha = _sha256()
        self.offset = 0

    def write(self, data: bytes) -> None:
        self._handle().write(data)
        self._sha.update(data)
        self.offset += len(data)
        if self.size is not None and self.offset > self.size:
            self.discard()
            raise BlobError(f"{self.digest}: more data than the expected {self.size} bytes")

    def commit(self) -> str:
        if self.committed:
            return self.digest
        got = "sha256:" + self._sha.hexdigest()
        if self.size is not None and self.offset != self.size:
            self.discard()
            raise BlobError(f"{self.digest}: got {self.offset} bytes, expected {self.size}")
        if got != self.digest:
            self.discard()
            raise BlobError(f"content does not match its digest: expected {self.digest}, "
                            f"got {got}")
        f = self._handle()
        f.flush()
        os.fsync(f.fileno())
        os.chmod(self.ingest_path, 0o444)
        os.rename(self.ingest_path, self.store.path(self.digest))
        fsync_dir(os.path.dirname(self.store.path(self.digest)))
        self.committed = True
        return self.digest

    def discard(self) -> None:
        """Drop what was written; a later write starts a new, empty ingest file."""
        if self._file is not None:
            self._file.close()
            self._file = None
        try:
            os.unlink(self.ingest_path)
        except FileNotFoundError:
            pass
        self._sha = _sha256()
        self.offset = 0

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        # The lock file stays: unlinking it would let a waiter and a newcomer lock two
        # different files. The collector removes lock files while no writer can run.
        os.close(self._lock)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BlobStore:
    def __init__(self, root: str) -> None:
        self.root = root
        self.blob_dir = os.path.join(root, "blobs", "sha256")
        self.ingest_dir = os.path.join(root, "ingest")
        os.makedirs(self.blob_dir, mode=0o700, exist_ok=True)
        os.makedirs(self.ingest_dir, mode=0o700, exist_ok=True)

    def path(self, digest: str) -> str:
        return os.path.join(self.blob_dir, check_digest(digest).split(":", 1)[1])

    def has(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def size(self, digest: str) -> int:
        return os.stat(self.path(digest)).st_size

    def open(self, digest: str) -> IO[bytes]:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise BlobError(f"blob {digest} is not in the store") from None

    def read(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def writer(self, digest: str, size: int | None = None) -> BlobWriter:
        """A locked writer for `digest` (see BlobWriter). Check `.exists` first."""
        return BlobWriter(self, digest, size)

    def put(self, data: bytes, digest: str | None = None) -> str:
        """Store `data` (verified against `digest` when given) and return its digest."""
        digest = digest or sha256_digest(data)
        if self.has(digest):
            return digest
        with self.writer(digest, len(data)) as w:
            if w.exists:
                return digest
            if w.offset:
                w.restart()
            w.write(data)
            return w.commit()

    def put_stream(self, stream: IO[bytes], digest: str | None = None) -> tuple[str, int]:
        """Store a stream whose digest may be unknown until its end; (digest, size)."""
        if digest is not None:
            with self.writer(digest) as w:
                if not w.exists:
                    w.restart()
                    while chunk := stream.read(_CHUNK):
                        w.write(chunk)
                    w.commit()
                return digest, self.size(digest)
        import tempfile

        fd, tmp = tempfile.mkstemp(prefix=".stream-", dir=self.ingest_dir)
        sha, size = _sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(_CHUNK):
                    sha.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = "sha256:" + sha.hexdigest()
            if not self.has(digest):
                os.chmod(tmp, 0o444)
                os.rename(tmp, self.path(digest))
                fsync_dir(self.blob_dir)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return digest, size

    def sweep_ingest(self, *, partials: bool) -> int:
        """Remove what dead writers left in the ingest dir: temporary files and dirs (names
        starting with "."), lock files and, with `partials`, the partial downloads a later
        pull could resume. Only while no writer can run (the store's exclusive lock).
        Returns the bytes freed."""
        freed = 0
        for name in os.listdir(self.ingest_dir):
            if name.startswith(".") or name.endswith(".lock") or partials:
                freed += remove_tree(os.path.join(self.ingest_dir, name))
        return freed

    def delete(self, digest: str) -> None:
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            pass

    def digests(self) -> Iterator[str]:
        for name in os.listdir(self.blob_dir):
            if len(name) == 64:
                yield "sha256:" + name
