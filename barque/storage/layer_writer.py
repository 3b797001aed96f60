"""Write what a container changed as an OCI/Docker layer tar (for `commit`).

The tar is PAX format, in sorted order with each directory before its contents, with owners,
modes, mtimes (whole seconds, as Docker writes them) and xattrs (`SCHILY.xattr.*`, overlay's
own left out); no user or group names, so the same tree always gives the same bytes.
Whiteouts become `.wh.NAME` and opaque directories `DIR/.wh..wh..opq`; a file's second name
is a hard link to its first. The uncompressed stream is hashed as it is written: its digest
is the layer's diff_id.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from collections.abc import Callable, Iterable
from typing import IO

from barque.storage import tarsafe
from barque.storage.entries import (
    BLOCK,
    CHAR,
    DIR,
    FIFO,
    FILE,
    HARDLINK,
    OPAQUE,
    OPAQUE_MARKER,
    SYMLINK,
    WHITEOUT,
    WHITEOUT_PREFIX,
    Entry,
    LayerError,
    Path,
    dir_entries,
    dir_entry,
)
from barque.storage.overlay_diff import diff_dirs, visible
from barque.storage.tarsafe import Meta

_TYPES = {FILE: tarfile.REGTYPE, DIR: tarfile.DIRTYPE, SYMLINK: tarfile.SYMTYPE,
          HARDLINK: tarfile.LNKTYPE, CHAR: tarfile.CHRTYPE, BLOCK: tarfile.BLKTYPE,
          FIFO: tarfile.FIFOTYPE}
# An upper dir with these cannot be written as a tar (our mounts turn the features off).
_UNEXPORTABLE = ("trusted.overlay.redirect", "trusted.overlay.metacopy")


class _HashingWriter:
    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.out.write(data)
        return len(data)


def _header(name: str, kind: str, meta: Meta) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = _TYPES.get(kind, tarfile.REGTYPE)
    info.mode, info.uid, info.gid = meta.mode, meta.uid, meta.gid
    info.uname = info.gname = ""
    info.mtime = (meta.mtime_ns or 0) // 1_000_000_000
    pax = {}
    for key, value in sorted(meta.xattrs.items()):
        if key.startswith(_UNEXPORTABLE):
            raise LayerError(f"{name!r} has {key}: overlay features a layer cannot express")
        if not key.startswith(tarsafe.OVERLAY_XATTR_PREFIXES):
            pax["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape")
    info.pax_headers = pax
    return info


Owners = Callable[[int, int], tuple[int, int]]  # host ids -> the ids the tar gets


def _owned(entry: Entry, owners: Owners | None) -> Entry:
    if owners is None:
        return entry
    meta = entry.meta
    uid, gid = owners(meta.uid, meta.gid)
    entry.meta = Meta(uid, gid, meta.mode, meta.mtime_ns, meta.xattrs)
    return entry


def _add(tar: tarfile.TarFile, entry: Entry) -> None:
    name = "/".join(entry.parts)
    if entry.kind == WHITEOUT:
        hidden = entry.parts[-1]
        meta = Meta(entry.meta.uid, entry.meta.gid, 0o600, entry.meta.mtime_ns)
        tar.addfile(_header("/".join(entry.parts[:-1] + (WHITEOUT_PREFIX + hidden,)), FILE,
                            meta))
        return
    if entry.kind == OPAQUE:
        meta = Meta(entry.meta.uid, entry.meta.gid, entry.meta.mode & 0o777,
                    entry.meta.mtime_ns)
        tar.addfile(_header("/".join(entry.parts + (OPAQUE_MARKER,)), FILE, meta))
        return
    info = _header(name, entry.kind, entry.meta)
    if entry.kind == SYMLINK:
        info.linkname = entry.target
    elif entry.kind == HARDLINK:
        info.linkname = "/".join(entry.link)
    elif entry.kind in (CHAR, BLOCK):
        info.devmajor, info.devminor = os.major(entry.rdev), os.minor(entry.rdev)
    if entry.kind != FILE:
        tar.addfile(info)
        return
    assert entry.source is not None
    src = entry.source()
    with (os.fdopen(src, "rb") if isinstance(src, int) else src) as f:
        info.size = entry.size
        tar.addfile(info, f)


def write_entries(entries: Iterable[Entry], out: IO[bytes]) -> str:
    """Write `entries` as a layer tar to `out`; returns its diff_id."""
    writer = _HashingWriter(out)
    with tarfile.open(fileobj=writer, mode="w|",  # type: ignore[call-overload]
                      format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            _add(tar, entry)
    return "sha256:" + writer.sha.hexdigest()


def _upper_entries(upper: str, lowers: list[str]) -> Iterable[Entry]:
    for entry in dir_entries(upper):
        if entry.kind == WHITEOUT and visible(lowers, entry.parts) is None:
            continue  # hides nothing of this image: no need to carry it
        yield entry


def write_upper_as_layer(upper: str, lowers: list[str], out: IO[bytes],
                         owners: Owners | None = None) -> str:
    """Write an overlay upper dir over `lowers` (top-most first) as a layer tar to `out`;
    returns its diff_id. `owners`: the ids the layer gets for the host's (a user-namespaced
    container's upper dir holds its mapped ids)."""
    return write_entries((_owned(e, owners) for e in _upper_entries(upper, lowers)), out)


def write_rootfs_diff_as_layer(rootfs: str, lowers: list[str], out: IO[bytes],
                               owners: Owners | None = None) -> str:
    """Write what a copied rootfs changed over `lowers` as a layer tar (Docker's naive
    ExportChanges: deleted paths as whiteouts, added and changed ones as they are now);
    `owners` as write_upper_as_layer's."""
    writer = _HashingWriter(out)
    links: dict[tuple[int, int], Path] = {}
    root = tarsafe.open_root(rootfs)
    try:
        with tarfile.open(fileobj=writer, mode="w|",  # type: ignore[call-overload]
                          format=tarfile.PAX_FORMAT) as tar:
            for kind, path in diff_dirs(rootfs, lowers, owners):
                parts = tuple(path.strip("/").split("/"))
                if kind == "D":
                    _add(tar, Entry(path, parts, WHITEOUT, Meta(mtime_ns=0)))
                    continue
                fd = tarsafe.open_parent(root, parts)
                try:
                    st = tarsafe.lstat(fd, parts[-1])
                    if st is not None and not stat.S_ISSOCK(st.st_mode):
                        _add(tar, _owned(dir_entry(fd, parts[-1], parts, st, links),
                                         owners))
                finally:
                    os.close(fd)
    finally:
        os.close(root)
    return "sha256:" + writer.sha.hexdigest()
