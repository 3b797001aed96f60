"""Write layer entries into a directory, in one of two formats.

Overlay format (`overlay=True`): the directory holds this layer only, as an overlayfs lower
dir; whiteouts become 0:0 character devices and opaque directories get the opaque xattr.

Rootfs format (`overlay=False`): the directory holds the lower layers already; whiteouts
delete from it and opaque directories lose what lower layers put in them. A lower layer's
symlink or file where this layer has a directory is replaced by a directory, as overlayfs
shows it; so the two formats give the same view.

In both, paths are resolved one component at a time from directory fds without following
symlinks (see tarsafe), and what this layer wrote itself is never written through: an entry
under this layer's own symlink, a hard link to a missing entry, or a file replacing a directory
this layer made is a LayerError.
"""

from __future__ import annotations

import errno
import os
import stat

from barque.storage import tarsafe
from barque.storage.entries import (
    BLOCK,
    CHAR,
    DIR,
    FIFO,
    FILE,
    HARDLINK,
    OPAQUE,
    OPAQUE_XATTR,
    SYMLINK,
    WHITEOUT,
    Entry,
    LayerError,
    Path,
)
from barque.storage.tarsafe import Meta

_NODE_TYPES = {CHAR: stat.S_IFCHR, BLOCK: stat.S_IFBLK, FIFO: stat.S_IFIFO}


def _label(parts: Path) -> str:
    return "/".join(parts) or "/"


class Applier:
    def __init__(self, root_fd: int, *, overlay: bool, allow_devices: bool = True) -> None:
        self.root = root_fd
        self.overlay = overlay
        self.allow_devices = allow_devices
        self.size = 0  # bytes of regular files and symlinks written, as dockerd counts
        self.added: set[Path] = set()  # what this layer wrote, and every parent of it
        self.whiteouts: set[Path] = set()  # overlay format: the whiteout devices made
        self.opaque: list[Path] = []  # rootfs format: dirs to empty of lower entries at the end
        self.dir_times: dict[Path, int] = {}
        self._cache: tuple[Path, int] | None = None  # the last parent dir looked up, open

    # --- paths ---------------------------------------------------------------------------
    def close(self) -> None:
        self._drop_cache()

    def _drop_cache(self) -> None:
        if self._cache is not None:
            os.close(self._cache[1])
            self._cache = None

    def _mark(self, parts: Path) -> None:
        for i in range(len(parts), 0, -1):
            if parts[:i] in self.added:
                return  # its parents were marked with it
            self.added.add(parts[:i])

    def _remove(self, dir_fd: int, name: str, parts: Path) -> None:
        if self._cache is not None and self._cache[0][: len(parts)] == parts:
            self._drop_cache()  # the cached directory is inside what goes
        tarsafe.remove(dir_fd, name)

    def _replaceable(self, parts: Path) -> bool:
        """May a non-directory at `parts` become a directory?"""
        return parts in self.whiteouts if self.overlay else parts not in self.added

    def _set_opaque(self, dir_fd: int) -> None:
        os.setxattr(dir_fd, OPAQUE_XATTR, b"y")

    @staticmethod
    def _implicit_dir(fd: int, name: str) -> int:
        """A parent directory the layer does not list: root's, mode 0755 (Docker's too)."""
        tarsafe.make_dir(fd, name, None, exist_ok=True)
        dfd = tarsafe.open_dir(fd, name)
        try:
            os.fchmod(dfd, 0o755)  # not left to the umask
        except BaseException:
            os.close(dfd)
            raise
        return dfd

    def _step(self, fd: int, parts: Path, entry: Entry, create: bool) -> int:
        """Open the component `parts[-1]` in `fd` (the dir `parts[:-1]`) as a directory."""
        name = parts[-1]
        try:
            return tarsafe.open_dir(fd, name)
        except FileNotFoundError:
            if not create:
                raise LayerError(f"{entry.kind} {entry.name!r}: {_label(parts)} does not exist"
                                 ) from None
            dfd = self._implicit_dir(fd, name)
            self._mark(parts)
            return dfd
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
        st = tarsafe.lstat(fd, name)
        link = st is not None and stat.S_ISLNK(st.st_mode)
        if not create or not self._replaceable(parts):
            what = "goes through the symlink" if link else "goes through the non-directory"
            raise LayerError(f"{entry.kind} {entry.name!r} {what} {_label(parts)!r}")
        # A lower layer's non-directory (or, in overlay format, this layer's whiteout) where
        # this layer has a directory: overlayfs shows this layer's (new, so opaque) directory.
        self._remove(fd, name, parts)
        dfd = self._implicit_dir(fd, name)
        if self.overlay:
            self._set_opaque(dfd)
            self.whiteouts.discard(parts)
        self._mark(parts)
        return dfd

    def _open(self, parts: Path, entry: Entry, *, create: bool) -> int:
        """An fd (the caller's to close) of the directory `parts`."""
        fd = os.dup(self.root)
        try:
            for i in range(1, len(parts) + 1):
                nfd = self._step(fd, parts[:i], entry, create)
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _parent(self, entry: Entry) -> int:
        """The (cached, borrowed) fd of the directory `entry` goes in, created if missing."""
        parts = entry.parts[:-1]
        if self._cache is not None and self._cache[0] == parts:
            return self._cache[1]
        fd = self._open(parts, entry, create=True)
        self._drop_cache()
        self._cache = (parts, fd)
        return fd

    # --- entries -------------------------------------------------------------------------
    def apply(self, entry: Entry) -> None:
        if entry.kind == OPAQUE:
            self._apply_opaque(entry)
        elif not entry.parts:
            return
        elif entry.kind == WHITEOUT:
            self._apply_whiteout(entry)
        elif entry.kind == DIR:
            self._apply_dir(entry)
        else:
            self._apply_other(entry)
        self._mark(entry.parts)

    def _apply_opaque(self, entry: Entry) -> None:
        if not self.overlay:
            self.opaque.append(entry.parts)
        fd = self._open(entry.parts, entry, create=True)
        try:
            if self.overlay:
                self._set_opaque(fd)
        finally:
            os.close(fd)

    def _apply_whiteout(self, entry: Entry) -> None:
        if entry.parts in self.added:
            return  # a whiteout hides lower layers' entries, never this layer's own
        pfd = self._parent(entry)
        name = entry.parts[-1]
        existing = tarsafe.lstat(pfd, name)
        if self.overlay:
            if existing is None:
                tarsafe.make_whiteout(pfd, name, entry.meta)
                self.whiteouts.add(entry.parts)
        elif existing is not None:
            self._remove(pfd, name, entry.parts)

    def _apply_dir(self, entry: Entry) -> None:
        pfd = self._parent(entry)
        name = entry.parts[-1]
        existing = tarsafe.lstat(pfd, name)
        opaque = False
        if existing is not None and not stat.S_ISDIR(existing.st_mode):
            opaque = self.overlay and entry.parts in self.whiteouts
            self._remove(pfd, name, entry.parts)
            self.whiteouts.discard(entry.parts)
        tarsafe.make_dir(pfd, name, entry.meta, exist_ok=True)
        if opaque:  # replaces a lower entry this layer whited out: lower contents stay hidden
            fd = tarsafe.open_dir(pfd, name)
            try:
                self._set_opaque(fd)
            finally:
                os.close(fd)
        if entry.meta.mtime_ns is not None:
            self.dir_times[entry.parts] = entry.meta.mtime_ns

    def _link_source(self, entry: Entry) -> int:
        """An fd of the directory holding the hard link's target, checked."""
        if entry.link in self.whiteouts:
            raise LayerError(f"hard link {entry.name!r} to a whiteout")
        fd = self._open(entry.link[:-1], entry, create=False)
        st = tarsafe.lstat(fd, entry.link[-1])
        if st is None or stat.S_ISDIR(st.st_mode):
            os.close(fd)
            what = "missing" if st is None else "the directory"
            raise LayerError(f"hard link {entry.name!r} to {what} {_label(entry.link)!r}")
        return fd

    def _apply_other(self, entry: Entry) -> None:
        if entry.kind in (CHAR, BLOCK) and not self.allow_devices:
            raise LayerError(f"device node {entry.name!r} is not allowed here")
        link_fd = self._link_source(entry) if entry.kind == HARDLINK else -1
        try:
            pfd = self._parent(entry)
            name = entry.parts[-1]
            existing = tarsafe.lstat(pfd, name)
            if existing is not None:
                if stat.S_ISDIR(existing.st_mode) and (self.overlay or entry.parts in self.added):
                    raise LayerError(f"{entry.kind} {entry.name!r} replaces a directory of "
                                     "the same layer")
                self._remove(pfd, name, entry.parts)
                self.whiteouts.discard(entry.parts)
            self._create(pfd, name, entry, link_fd)
        finally:
            if link_fd >= 0:
                os.close(link_fd)

    def _create(self, pfd: int, name: str, entry: Entry, link_fd: int) -> None:
        if entry.kind == FILE:
            assert entry.source is not None
            src = entry.source()
            try:
                self.size += tarsafe.write_file(pfd, name, src, entry.meta)
            finally:
                if isinstance(src, int):
                    os.close(src)
        elif entry.kind == HARDLINK:
            tarsafe.make_link(link_fd, entry.link[-1], pfd, name)
        elif entry.kind == SYMLINK:
            tarsafe.make_symlink(pfd, name, entry.target, entry.meta)
            # dockerd's layer size counts a symlink's own bytes (its target's length) too
            self.size += len(os.fsencode(entry.target))
        elif entry.kind in _NODE_TYPES:
            tarsafe.make_node(pfd, name, _NODE_TYPES[entry.kind], entry.rdev, entry.meta)
        else:
            raise LayerError(f"layer entry {entry.name!r} has unsupported kind {entry.kind}")

    # --- the end -------------------------------------------------------------------------
    def _clear_lower(self, fd: int, parts: Path) -> None:
        for name in os.listdir(fd):
            child = parts + (name,)
            if child not in self.added:
                self._remove(fd, name, child)
                continue
            st = tarsafe.lstat(fd, name)
            if st is not None and stat.S_ISDIR(st.st_mode):
                sub = tarsafe.open_dir(fd, name)
                try:
                    self._clear_lower(sub, child)
                finally:
                    os.close(sub)

    def _try_open(self, parts: Path) -> int | None:
        try:
            return self._open(parts, Entry("", parts, DIR, Meta()), create=False)
        except (LayerError, OSError):
            return None  # replaced by a later entry of the layer

    def finish(self) -> None:
        """Empty opaque dirs of lower entries, then set directory times (deepest first)."""
        self._drop_cache()
        for parts in self.opaque:
            fd = self._try_open(parts)
            if fd is not None:
                try:
                    self._clear_lower(fd, parts)
                finally:
                    os.close(fd)
        for parts, mtime_ns in sorted(self.dir_times.items(), key=lambda kv: -len(kv[0])):
            fd = self._try_open(parts)
            if fd is not None:
                try:
                    tarsafe.set_dir_mtime(fd, mtime_ns)
                finally:
                    os.close(fd)
