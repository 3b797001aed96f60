"""Layer entries, read from a tar stream or from an overlay-format layer directory.

Both sources become the same `Entry` list, so one applier writes either of them and one tar
writer serializes either: a tar's `.wh.NAME` and an overlay dir's 0:0 character device both
become a WHITEOUT entry, `.wh..wh..opq` and the `trusted.overlay.opaque` xattr an OPAQUE one.
Tar names are checked here: absolute names, `..`, NUL bytes and whiteout prefixes in the
middle of a path are refused before anything touches the disk.
"""

from __future__ import annotations

import base64
import os
import stat
import tarfile
import urllib.parse
from collections.abc import Callable, Iterator
from typing import IO

from barque.storage import tarsafe
from barque.storage.tarsafe import Meta

FILE, DIR, SYMLINK, HARDLINK = "file", "dir", "symlink", "hardlink"
CHAR, BLOCK, FIFO = "char", "block", "fifo"
WHITEOUT, OPAQUE = "whiteout", "opaque"

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"

Path = tuple[str, ...]


class LayerError(Exception):
    """A layer is corrupt, unsupported, does not match its diff_id, or tries to escape."""


class Entry:
    """One thing a layer holds at `parts` (the components of its path in the layer)."""

    __slots__ = ("name", "parts", "kind", "meta", "size", "target", "link", "rdev", "source",
                 "st")

    def __init__(self, name: str, parts: Path, kind: str, meta: Meta, *, size: int = 0,
                 target: str = "", link: Path = (), rdev: int = 0,
                 source: Callable[[], IO[bytes] | int] | None = None,
                 st: os.stat_result | None = None) -> None:
        self.name = name  # as the tar (or directory) spells it, for messages
        self.parts, self.kind, self.meta = parts, kind, meta
        self.size = size  # regular files
        self.target = target  # symlinks: the target text, never resolved
        self.link = link  # hard links: the path linked to, within the layer
        self.rdev = rdev  # device nodes
        self.source = source  # regular files: their content (a stream, or a file's fd)
        self.st = st  # read from a directory: its lstat

    @property
    def opaque(self) -> bool:
        """A directory read from an overlay-format dir that hides the layers below."""
        return self.kind == DIR and self.meta.xattrs.get(OPAQUE_XATTR) == b"y"

    def __repr__(self) -> str:
        return f"Entry({self.kind} {'/'.join(self.parts)!r})"


def split_name(name: str, what: str = "layer entry") -> Path:
    """The components of a tar name; refuses names that could leave the layer."""
    if "\0" in name:
        raise LayerError(f"{what} {name!r} contains a NUL byte")
    if name.startswith("/"):
        raise LayerError(f"{what} {name!r} has an absolute path")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise LayerError(f"{what} {name!r} contains '..'")
    return parts


def _xattrs(member: tarfile.TarInfo) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for key, value in member.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            # tarfile decodes PAX values as UTF-8 with surrogateescape: this restores the bytes.
            out[key[len("SCHILY.xattr."):]] = value.encode("utf-8", "surrogateescape")
        elif key.startswith("LIBARCHIVE.xattr."):  # bsdtar: URL-encoded name, base64 value
            name = urllib.parse.unquote(key[len("LIBARCHIVE.xattr."):])
            out[name] = base64.b64decode(value + "=" * (-len(value) % 4))
    if any("\0" in k or not k for k in out):
        raise LayerError(f"layer entry {member.name!r} has a malformed xattr name")
    return out


def _mtime_ns(mtime: float) -> int:
    return int(mtime) * 1_000_000_000 if isinstance(mtime, int) else round(mtime * 1e9)


def _meta(member: tarfile.TarInfo) -> Meta:
    if member.uid < 0 or member.gid < 0:
        raise LayerError(f"layer entry {member.name!r} has a negative owner")
    return Meta(member.uid, member.gid, member.mode, _mtime_ns(member.mtime), _xattrs(member))


_TAR_KINDS = {tarfile.SYMTYPE: SYMLINK, tarfile.LNKTYPE: HARDLINK, tarfile.CHRTYPE: CHAR,
              tarfile.BLKTYPE: BLOCK, tarfile.FIFOTYPE: FIFO, tarfile.DIRTYPE: DIR}


def tar_entry(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Entry | None:
    """The entry a tar member stands for; None for the root and AUFS metadata."""
    name = member.name
    parts = split_name(name)
    if not parts:
        return None  # "./": the layer root keeps the mode its store gives it
    if parts[0].startswith(WHITEOUT_META_PREFIX) and parts[0] != OPAQUE_MARKER:
        return None  # AUFS's own metadata (.wh..wh.plnk, .wh..wh.aufs): never a file
    if any(p.startswith(WHITEOUT_PREFIX) for p in parts[:-1]):
        raise LayerError(f"layer entry {name!r}: a whiteout cannot be a directory")
    base = parts[-1]
    meta = _meta(member)
    if base == OPAQUE_MARKER:
        return Entry(name, parts[:-1], OPAQUE, meta)
    if base.startswith(WHITEOUT_META_PREFIX):
        return None
    if base.startswith(WHITEOUT_PREFIX):
        hidden = base[len(WHITEOUT_PREFIX):]
        if hidden in ("", ".", ".."):
            raise LayerError(f"layer entry {name!r} is a whiteout of nothing")
        return Entry(name, parts[:-1] + (hidden,), WHITEOUT, meta)
    if member.isreg():
        if member.size < 0:
            raise LayerError(f"layer entry {name!r} has a negative size")

        def source() -> IO[bytes]:
            data = tar.extractfile(member)
            if data is None:
                raise LayerError(f"layer entry {name!r} has no data")
            return data

        return Entry(name, parts, FILE, meta, size=member.size, source=source)
    kind = _TAR_KINDS.get(member.type)
    if kind is None:
        raise LayerError(f"layer entry {name!r} has unsupported type {member.type!r}")
    if kind == SYMLINK:
        if "\0" in member.linkname:
            raise LayerError(f"symlink {name!r} has a target with a NUL byte")
        return Entry(name, parts, kind, meta, target=member.linkname)
    if kind == HARDLINK:
        link = split_name(member.linkname, f"hard link {name!r} to")
        if not link:
            raise LayerError(f"hard link {name!r} to the layer root")
        return Entry(name, parts, kind, meta, link=link)
    if kind in (CHAR, BLOCK):
        if member.devmajor < 0 or member.devminor < 0:
            raise LayerError(f"device {name!r} has a negative number")
        return Entry(name, parts, kind, meta, rdev=os.makedev(member.devmajor, member.devminor))
    return Entry(name, parts, kind, meta)


# --- overlay-format directories -------------------------------------------------------------

_NODE_KINDS = {stat.S_IFCHR: CHAR, stat.S_IFBLK: BLOCK, stat.S_IFIFO: FIFO}


def dir_entry(dir_fd: int, name: str, parts: Path, st: os.stat_result,
              links: dict[tuple[int, int], Path] | None = None) -> Entry:
    """The entry for `name` in the directory `dir_fd` (`st` its lstat). `links` maps inodes
    seen to their first path: a later name of one becomes a hard link to it."""
    where = tarsafe.proc_path(dir_fd, name)
    meta = Meta(st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), st.st_mtime_ns,
                tarsafe.read_xattrs(where))
    label = "/".join(parts)
    fmt = stat.S_IFMT(st.st_mode)
    if tarsafe.is_whiteout(st):
        return Entry(label, parts, WHITEOUT, meta, st=st)
    if fmt == stat.S_IFDIR:
        return Entry(label, parts, DIR, meta, st=st)
    if st.st_nlink > 1 and links is not None:
        first = links.setdefault((st.st_dev, st.st_ino), parts)
        if first != parts:
            return Entry(label, parts, HARDLINK, meta, link=first, st=st)
    if fmt == stat.S_IFREG:
        def source() -> int:
            return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)

        return Entry(label, parts, FILE, meta, size=st.st_size, source=source, st=st)
    if fmt == stat.S_IFLNK:
        return Entry(label, parts, SYMLINK, meta, target=os.readlink(name, dir_fd=dir_fd), st=st)
    if fmt not in _NODE_KINDS:
        raise LayerError(f"{label!r} is a socket or of an unknown file type")
    return Entry(label, parts, _NODE_KINDS[fmt], meta, rdev=st.st_rdev, st=st)


def _walk(dir_fd: int, prefix: Path, links: dict[tuple[int, int], Path]) -> Iterator[Entry]:
    for name in sorted(os.listdir(dir_fd)):
        st = tarsafe.lstat(dir_fd, name)
        if st is None or stat.S_IFMT(st.st_mode) == stat.S_IFSOCK:
            continue  # gone since listed; sockets cannot be in a layer (Docker skips them too)
        parts = prefix + (name,)
        entry = dir_entry(dir_fd, name, parts, st, links)
        yield entry
        if entry.kind != DIR:
            continue
        sub = tarsafe.open_dir(dir_fd, name)
        try:
            if entry.opaque:
                yield Entry(entry.name, parts, OPAQUE, entry.meta)
            yield from _walk(sub, parts, links)
        finally:
            os.close(sub)


def dir_entries(root: str) -> Iterator[Entry]:
    """The entries of an overlay-format directory (a layer, or an upper dir), sorted, parents
    first; a file's content must be read before the next entry is taken."""
    fd = tarsafe.open_root(root)
    try:
        yield from _walk(fd, (), {})
    finally:
        os.close(fd)
