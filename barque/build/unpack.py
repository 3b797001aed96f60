"""ADD's local tar auto-extract: a file that is a tar archive (plain, gzip, bzip2, xz or zstd,
told by its content, never its name) is unpacked into the destination directory, as `tar -x`
would: merged with what is there, conflicts resolved in favour of the archive.

The archive is hostile (it comes from the context or another stage's root). Entries are
resolved as BuildKit's chrooted untar resolves them: inside the destination directory, which
acts as their root (openat2 RESOLVE_IN_ROOT, see barque/linux/paths.py), so neither `..` in a
name nor a symlink the archive made first can lead a later entry out of it; the last component
of each entry is never followed (created O_EXCL|O_NOFOLLOW through tarsafe)."""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
from typing import IO

from barque.linux import paths
from barque.storage import tar_members, tarsafe

_GZIP, _BZIP2, _XZ, _ZSTD = b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd"


class UnpackError(Exception):
    """The archive cannot be unpacked (corrupt, truncated, or an entry tries to escape)."""


def _stream(fd: int) -> IO[bytes]:
    """The decompressed content of the regular file `fd` (read from its start)."""
    raw = open(paths.proc_path(fd), "rb")  # a new open file: its own offset
    head = raw.read(6)
    raw.seek(0)
    if head.startswith(_GZIP):
        import gzip

        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if head.startswith(_BZIP2):
        import bz2

        return bz2.BZ2File(raw)
    if head.startswith(_XZ):
        import lzma

        return lzma.LZMAFile(raw)
    if head.startswith(_ZSTD):
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw)
    return raw


def is_archive(fd: int) -> bool:
    """Docker's isArchivePath: the (decompressed) content starts with a valid tar header."""
    try:
        with _stream(fd) as data, tarfile.open(fileobj=data, mode="r|") as tar:
            return tar.next() is not None
    except Exception:  # anything unreadable as a tar is a plain file to copy
        return False


def _clean(name: str, what: str) -> str:
    """An entry name relative to the destination; Docker's breakout check for `..`."""
    if "\0" in name:
        raise UnpackError(f"{what} {name!r} contains a NUL byte")
    rel = posixpath.normpath(name.lstrip("/") or ".")
    if rel == ".." or rel.startswith("../"):
        raise UnpackError(f"{name!r} is outside of the destination")
    return rel


class _Extractor:
    def __init__(self, root_fd: int, owner: tuple[int, int] | None) -> None:
        self.root = root_fd  # the destination directory, the entries' "/"
        self.owner = owner
        self.dir_times: list[tuple[str, int]] = []

    def meta(self, member: tarfile.TarInfo) -> tarsafe.Meta:
        uid, gid = self.owner or (member.uid, member.gid)
        return tarsafe.Meta(uid, gid, member.mode, int(member.mtime) * 10**9,
                            tar_members.pax_xattrs(member))

    def add(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        rel = _clean(member.name, "entry")
        if rel == ".":
            return  # the destination itself keeps its own metadata
        parent_rel, name = posixpath.split(rel)
        parent = paths.mkdir_all(self.root, parent_rel or "/")
        try:
            existing = tarsafe.lstat(parent, name)
            if existing is not None and not (stat.S_ISDIR(existing.st_mode) and member.isdir()):
                tarsafe.remove(parent, name)
            self._create(tar, member, parent, name, rel)
        finally:
            os.close(parent)

    def _create(self, tar: tarfile.TarFile, member: tarfile.TarInfo, parent: int, name: str,
                rel: str) -> None:
        meta = self.meta(member)
        if not tar_members.make(tar, member, parent, name, meta, devices=True,
                                link=lambda at, as_name: self._link(member, at, as_name)):
            raise UnpackError(f"entry {member.name!r} has unsupported type {member.type!r}")
        if member.isdir():
            self.dir_times.append((rel, meta.mtime_ns or 0))

    def _link(self, member: tarfile.TarInfo, parent: int, name: str) -> None:
        target = _clean(member.linkname, "hard link")
        if target == ".":
            raise UnpackError(f"hard link {member.name!r} to the destination itself")
        tdir, tname = posixpath.split(target)
        tfd = paths.open_in_root(self.root, tdir or "/")
        try:
            tarsafe.make_link(tfd, tname, parent, name)
        finally:
            os.close(tfd)

    def finish(self) -> None:
        for rel, mtime in sorted(self.dir_times, key=lambda t: -t[0].count("/")):
            try:
                fd = paths.open_in_root(self.root, rel, os.O_PATH | os.O_NOFOLLOW)
            except OSError:
                continue  # replaced by a later entry
            try:
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    os.utime(paths.proc_path(fd), ns=(mtime, mtime))
            finally:
                os.close(fd)


def extract(fd: int, into_fd: int, owner: tuple[int, int] | None = None) -> None:
    """Unpack the archive file `fd` into the directory `into_fd` (an fd, the archive's root);
    `owner` replaces the entries' own uid/gid (--chown)."""
    import lzma

    import zstandard

    ex = _Extractor(into_fd, owner)
    try:
        with _stream(fd) as data, tarfile.open(fileobj=data, mode="r|",
                                               errors="surrogateescape") as tar:
            while (member := tar.next()) is not None:
                tar.members.clear()  # type: ignore[attr-defined]
                if member.sparse is not None:
                    raise UnpackError(f"entry {member.name!r} is a sparse file (unsupported)")
                ex.add(tar, member)
        ex.finish()
    except UnpackError:
        raise
    except (OSError, EOFError, ValueError, tarfile.TarError, lzma.LZMAError,
            zstandard.ZstdError) as e:
        raise UnpackError(f"unpacking the archive: {e}") from None
