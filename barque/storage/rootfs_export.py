"""`docker export`: a container's root filesystem (its merged view) as a plain tar, streamed.

Names are relative (`bin/`, `bin/sh`; the root itself is left out, as Docker does), owners
numeric with no user names, mtimes in whole seconds, hard links as links to the first name,
devices and fifos kept, sockets skipped (Docker skips them too), and the `security.capability`
and `user.*` extended attributes as PAX `SCHILY.xattr.` records. The walk never follows a
symlink (every open is relative to its parent's fd with O_NOFOLLOW), so a container that
swaps a directory for a symlink cannot make the export read host files; it does not descend
into another filesystem mounted inside the rootfs (Docker's own mount of it shows none).

(Layer tars for `commit`, with whiteouts, are barque.storage.layer_writer's job.)
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Callable
from typing import IO, cast

_CHUNK = 1 << 20
_XATTR_PREFIXES = ("security.capability", "user.")
_XATTR_SKIP = ("user.overlay.",)  # overlayfs's own metadata on a userxattr mount


class ExportError(Exception):
    """The root filesystem cannot be read."""


class _Exact:
    """Exactly `size` bytes of a file: zero padding if it shrank while being read, the first
    `size` bytes if it grew (the header was already written)."""

    def __init__(self, fd: int, size: int) -> None:
        self._fd, self._left = fd, size

    def read(self, size: int = -1) -> bytes:
        want = self._left if size < 0 else min(size, self._left)
        if want <= 0:
            return b""
        data = b""
        while len(data) < want:  # tarfile's copy wants whole reads
            chunk = os.read(self._fd, min(want - len(data), _CHUNK))
            if not chunk:
                data += b"\0" * (want - len(data))
                break
            data += chunk
        self._left -= len(data)
        return data


def _xattrs(dfd: int, name: str) -> dict[str, str]:
    path = f"/proc/self/fd/{dfd}/{name}"
    out = {}
    try:
        keys = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    for key in sorted(keys):
        if not key.startswith(_XATTR_PREFIXES) or key.startswith(_XATTR_SKIP):
            continue
        try:
            value = os.getxattr(path, key, follow_symlinks=False)
        except OSError:
            continue
        # surrogateescape keeps binary values (capabilities) byte-exact in the PAX record.
        out["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape")
    return out


def _info(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = int(st.st_mtime)
    return info


class _Exporter:
    def __init__(self, tar: tarfile.TarFile, root_dev: int,
                 skip_devs: frozenset[int] | None = None,
                 owners: Callable[[int, int], tuple[int, int]] | None = None) -> None:
        """`skip_devs` None: stay on `root_dev`'s filesystem; else descend into any
        filesystem but those (a container's /proc, /sys, /dev for `cp`). `owners`: the ids
        the tar gets for the host's (a user-namespaced container's own view)."""
        self.owners = owners
        self.tar = tar
        self.root_dev = root_dev
        self.skip_devs = skip_devs
        self.links: dict[tuple[int, int], str] = {}

    def descends(self, st: os.stat_result) -> bool:
        if self.skip_devs is None:
            return st.st_dev == self.root_dev
        return st.st_dev not in self.skip_devs

    def walk(self, dfd: int, prefix: str) -> None:
        with os.scandir(dfd) as it:
            names = sorted(entry.name for entry in it)
        for name in names:
            try:
                self.entry(dfd, name, prefix + name)
            except FileNotFoundError:
                continue  # removed while we walked: as if it had never been there

    def entry(self, dfd: int, name: str, path: str) -> None:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        mode = st.st_mode
        if stat.S_ISSOCK(mode):
            return
        info = _info(path, st)
        if self.owners is not None:
            info.uid, info.gid = self.owners(st.st_uid, st.st_gid)
        info.pax_headers = _xattrs(dfd, name)
        if stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
            self.tar.addfile(info)
            if self.descends(st):
                self.directory(dfd, name, path)
        elif stat.S_ISLNK(mode):
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(name, dir_fd=dfd)
            self.tar.addfile(info)
        elif stat.S_ISREG(mode):
            self.regular(dfd, name, info, st)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self.tar.addfile(info)
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
            self.tar.addfile(info)

    def directory(self, dfd: int, name: str, path: str) -> None:
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        sub = os.open(name, flags, dir_fd=dfd)
        try:
            self.walk(sub, path + "/")
        finally:
            os.close(sub)

    def regular(self, dfd: int, name: str, info: tarfile.TarInfo, st: os.stat_result) -> None:
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self.links:
            info.type, info.linkname = tarfile.LNKTYPE, self.links[key]
            self.tar.addfile(info)
            return
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        fd = os.open(name, flags, dir_fd=dfd)
        try:
            fst = os.fstat(fd)
            if not stat.S_ISREG(fst.st_mode) or fst.st_ino != st.st_ino:
                return  # replaced between stat and open: skip rather than guess
            info.type, info.size = tarfile.REGTYPE, fst.st_size
            self.tar.addfile(info, cast(IO[bytes], _Exact(fd, fst.st_size)))
        finally:
            os.close(fd)
        if st.st_nlink > 1:
            self.links[key] = info.name


def export_rootfs(rootfs: str, out: IO[bytes],
                  owners: Callable[[int, int], tuple[int, int]] | None = None) -> None:
    """Write `rootfs` (a directory or a mounted container root) to `out` as a plain tar;
    `owners` as _Exporter's."""
    try:
        root = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise ExportError(f"{rootfs}: {e.strerror}") from None
    try:
        tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT,
                           encoding="utf-8", errors="surrogateescape")
        try:
            _Exporter(tar, os.fstat(root).st_dev, owners=owners).walk(root, "")
        except OSError as e:
            raise ExportError(f"exporting {rootfs}: {e.strerror or e}"
                              + (f": {e.filename}" if e.filename else "")) from None
        tar.close()
    finally:
        os.close(root)


def export_entry(dir_fd: int, name: str, tar_name: str, out: IO[bytes],
                 skip_devs: frozenset[int] = frozenset(),
                 owners: Callable[[int, int], tuple[int, int]] | None = None) -> None:
    """Write the entry `name` of the directory `dir_fd` (and, for a directory, everything
    below it, descending into other filesystems but `skip_devs`) to `out` as a plain tar,
    named `tar_name` and `tar_name/...` (`docker cp`'s archive), `owners` as _Exporter's.
    Nothing is followed."""
    tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT,
                       encoding="utf-8", errors="surrogateescape")
    _Exporter(tar, os.fstat(dir_fd).st_dev, skip_devs, owners).entry(dir_fd, name, tar_name)
    tar.close()
