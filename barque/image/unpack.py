"""Unpack an OCI image's layers into a root filesystem directory.

Layers are applied in order with OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`). Extraction is
written for untrusted input even though milestone 1 only unpacks images Barque built itself:
entries with absolute paths or `..` are refused, as are entries whose parent directory is a
symlink (a layer could otherwise plant `a -> /etc` and then write `a/passwd` on the host),
and files are created with O_EXCL|O_NOFOLLOW so an existing symlink is never written through.
Each blob is checked against its digest and each layer against its diff_id while it is read.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import shutil
import stat
import tarfile
from typing import IO, Any, cast

from barque.image import oci_layout as ol

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
_GZIP_TYPES = frozenset({ol.MEDIA_LAYER_GZIP, ol.MEDIA_DOCKER_LAYER_GZIP})
_TAR_TYPES = frozenset({ol.MEDIA_LAYER})
_COPY_CHUNK = 1 << 20


class UnpackError(Exception):
    """A layer is corrupt, unsupported, or tries to escape the root filesystem."""


class _HashingReader:
    """A read-only stream that hashes what passes through it (a digest check in one pass)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.sha = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.sha.update(data)
        return data

    def drain(self) -> None:
        while self.read(_COPY_CHUNK):
            pass

    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


def _media_base(media_type: str) -> str:
    # "…layer.nondistributable.v1.tar+gzip" unpacks like "…layer.v1.tar+gzip".
    return media_type.replace(".nondistributable", "")


def _split(name: str) -> list[str]:
    """The components of an entry name; refuses names that could leave the rootfs."""
    if name.startswith("/"):
        raise UnpackError(f"layer entry {name!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnpackError(f"layer entry {name!r} contains '..'")
    return parts


def _parent_in_rootfs(rootfs: str, parts: list[str], name: str) -> str:
    """Return the parent directory of `parts`, creating missing ones, never via a symlink."""
    path = rootfs
    for part in parts[:-1]:
        path = os.path.join(path, part)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            os.mkdir(path, 0o755)
            continue
        if stat.S_ISLNK(st.st_mode):
            raise UnpackError(f"layer entry {name!r} goes through the symlink {part!r}")
        if not stat.S_ISDIR(st.st_mode):
            raise UnpackError(f"layer entry {name!r}: {part!r} is not a directory")
    return path


def _remove(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _set_xattrs(path: str, member: tarfile.TarInfo) -> None:
    for key, value in member.pax_headers.items():
        if not key.startswith("SCHILY.xattr."):
            continue
        try:
            raw = value.encode("utf-8", "surrogateescape")
            os.setxattr(path, key[len("SCHILY.xattr.") :], raw, follow_symlinks=False)
        except OSError as e:
            # Some filesystems (or namespaces) refuse some xattr classes; the file is still usable.
            if e.errno not in (errno.ENOTSUP, errno.EPERM):
                raise


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, rootfs: str, target: str) -> None:
    existing = None
    try:
        existing = os.lstat(target)
    except FileNotFoundError:
        pass
    if existing is not None and not (member.isdir() and stat.S_ISDIR(existing.st_mode)):
        _remove(target)  # an upper layer's entry replaces the lower one
    if member.isdir():
        if existing is None or not stat.S_ISDIR(existing.st_mode):
            os.mkdir(target, 0o700)
    elif member.isreg():
        src = tar.extractfile(member)
        if src is None:
            raise UnpackError(f"layer entry {member.name!r}: no file data")
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out, _COPY_CHUNK)
    elif member.issym():
        os.symlink(member.linkname, target)
    elif member.islnk():
        link_parts = _split(member.linkname)
        if not link_parts:
            raise UnpackError(f"hard link {member.name!r} to the root directory")
        link_dir = _parent_in_rootfs(rootfs, link_parts, member.linkname)
        source = os.path.join(link_dir, link_parts[-1])
        if not os.path.lexists(source):
            raise UnpackError(f"hard link {member.name!r} to missing {member.linkname!r}")
        os.link(source, target, follow_symlinks=False)
        return  # a hard link shares its inode's owner, mode and times: leave them be
    elif member.ischr() or member.isblk():
        kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
        os.mknod(target, kind | 0o600, os.makedev(member.devmajor, member.devminor))
    elif member.isfifo():
        os.mkfifo(target, 0o600)
    else:
        raise UnpackError(f"layer entry {member.name!r} has unsupported type {member.type!r}")
    # Owner before mode: chown clears set-id bits that the mode must then restore.
    os.chown(target, member.uid, member.gid, follow_symlinks=False)
    if not member.issym():
        os.chmod(target, member.mode & 0o7777)
    _set_xattrs(target, member)
    if not member.isdir():  # directories get their times once their contents are in
        os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)


def _clear_opaque(directory: str, keep: set[str]) -> None:
    """Delete what lower layers put under an opaque directory, keeping this layer's entries."""
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if path not in keep:
            _remove(path)
        elif os.path.isdir(path) and not os.path.islink(path):
            _clear_opaque(path, keep)


def _apply_layer(stream: IO[bytes], rootfs: str) -> None:
    added: set[str] = set()  # paths this layer wrote, and their ancestors
    opaque: list[str] = []
    dir_times: list[tuple[str, int]] = []
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            parts = _split(member.name)
            if not parts:
                continue  # "./": the rootfs itself keeps the bundle's ownership and mode
            parent = _parent_in_rootfs(rootfs, parts, member.name)
            target = os.path.join(parent, parts[-1])
            for i in range(1, len(parts) + 1):
                added.add(os.path.join(rootfs, *parts[:i]))
            base = parts[-1]
            if base == OPAQUE_WHITEOUT:
                opaque.append(parent)
                continue
            if base.startswith(WHITEOUT_PREFIX):
                hidden = os.path.join(parent, base[len(WHITEOUT_PREFIX) :])
                if hidden not in added:  # whiteouts only hide lower layers' files
                    _remove(hidden)
                continue
            _extract(tar, member, rootfs, target)
            if member.isdir():
                dir_times.append((target, int(member.mtime)))
    for directory in opaque:
        _clear_opaque(directory, added)
    for path, mtime in reversed(dir_times):
        if os.path.isdir(path) and not os.path.islink(path):
            os.utime(path, (mtime, mtime), follow_symlinks=False)


def unpack_layer(layout_dir: str, layer: dict[str, Any], diff_id: str, rootfs: str) -> None:
    """Apply one layer (a manifest's layer descriptor) on top of `rootfs`."""
    media = _media_base(str(layer.get("mediaType", "")))
    if media not in _GZIP_TYPES and media not in _TAR_TYPES:
        raise UnpackError(f"unsupported layer media type {layer.get('mediaType')!r}")
    digest = str(layer.get("digest", ""))
    try:
        blob = open(ol.blob_path(layout_dir, digest), "rb")
    except FileNotFoundError:
        raise UnpackError(f"{layout_dir}: missing layer blob {digest}") from None
    with blob:
        compressed = _HashingReader(blob)
        if media in _GZIP_TYPES:
            gz = gzip.GzipFile(fileobj=cast(IO[bytes], compressed), mode="rb")
            uncompressed = _HashingReader(cast(IO[bytes], gz))
        else:
            uncompressed = compressed
        try:
            _apply_layer(cast(IO[bytes], uncompressed), rootfs)
            # tarfile stops at the end-of-archive marker; the digests cover the whole blob.
            uncompressed.drain()
            compressed.drain()
        except (tarfile.TarError, EOFError, gzip.BadGzipFile) as e:
            raise UnpackError(f"layer {digest}: {e}") from None
    if compressed.digest() != digest:
        raise UnpackError(f"layer {digest}: content does not match its digest")
    if uncompressed.digest() != diff_id:
        raise UnpackError(f"layer {digest}: uncompressed content does not match {diff_id}")


def unpack_image(
    layout_dir: str, manifest: dict[str, Any], config: dict[str, Any], rootfs: str
) -> None:
    """Unpack every layer of an image (as returned by `oci_layout.load_image`) into `rootfs`."""
    os.makedirs(rootfs, mode=0o755, exist_ok=True)
    for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True):
        unpack_layer(layout_dir, layer, diff_id, rootfs)
