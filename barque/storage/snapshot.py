"""A container's root filesystem: an overlay of its image's layers, or a copy of them.

A snapshot of a user-namespaced container (Docker's userns-remap) records its id maps in
`idmap`: its overlay's lowers are idmapped mounts of the shared layers (a file owned by 0 in
a layer shows as the mapped root's), its upper dir belongs to the mapped root, and its copy
(the fallback) has every owner shifted through the maps.

A snapshot dir holds either `upper/`, `work/` and `merged/` (the overlay, mounted on
`merged`), or `rootfs/` (the copy fallback for hosts where overlayfs is missing: the lowers
flattened into one plain dir). `prepare` makes and mounts one (or remounts it, after a
reboot), `remove` unmounts and deletes it; `diff` and `write_upper_as_layer` are what
`docker diff` and `docker commit` need. Every failure is a SnapshotError, and a failed
`prepare` of a new snapshot leaves neither the dir nor a mount behind.
"""

from __future__ import annotations

import json
import os
import shutil

from barque.storage.overlayfs import (
    OverlayError,
    is_mounted,
    mount_overlay,
    overlay_supported,
    unmount,
)

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import IO

__all__ = ["Snapshot", "SnapshotError", "diff", "diff_dirs", "flatten", "mount_overlay",
           "overlay_supported", "prepare", "remove", "unmount", "write_upper_as_layer"]

Change = tuple[str, str]  # (kind, "/abs/path"), as barque.storage.overlay_diff makes them
IdMap = list[tuple[int, int, int]]  # (inside, outside, count), as /proc/PID/uid_map
OVERFLOW_ID = 65534  # the kernel's overflowuid/overflowgid: an id the maps leave out
IDMAP_FILE = "idmap"  # {"uid": [[inside, outside, count], ...], "gid": [...]}


class SnapshotError(Exception):
    """A snapshot could not be made, mounted, read or removed."""


def _errors() -> tuple[type[Exception], ...]:
    """What a snapshot operation may raise. The layer code (and its LayerError) is imported
    only by the operations that read or write layers, not by mounting an overlay: that keeps
    tarfile and friends out of every container start."""
    from barque.storage.entries import LayerError

    return (OSError, OverlayError, LayerError)


def flatten(lowers: list[str], rootfs: str) -> None:
    """Copy overlay-format `lowers` (top-most first) into the existing dir `rootfs`, as an
    overlay of them shows them (whiteouts and opaque dirs applied)."""
    from barque.storage import tarsafe
    from barque.storage.apply import Applier
    from barque.storage.entries import dir_entries

    fd = tarsafe.open_root(rootfs)
    try:
        for lower in reversed(lowers):
            applier = Applier(fd, overlay=False)
            try:
                for entry in dir_entries(lower):
                    applier.apply(entry)
                applier.finish()
            finally:
                applier.close()
    finally:
        os.close(fd)


class Snapshot:
    """The snapshot in `snap_dir`."""

    def __init__(self, snap_dir: str) -> None:
        self.dir = os.path.abspath(snap_dir)
        self.upper = os.path.join(self.dir, "upper")
        self.work = os.path.join(self.dir, "work")
        self.merged = os.path.join(self.dir, "merged")
        self.copy = os.path.join(self.dir, "rootfs")
        self.empty = os.path.join(self.dir, "empty")  # the lower of an image with no layers
        self.idmap_file = os.path.join(self.dir, IDMAP_FILE)

    @property
    def idmap(self) -> tuple[IdMap, IdMap] | None:
        """(uid map, gid map) of a user-namespaced container's snapshot; None: not one."""
        try:
            with open(self.idmap_file) as f:
                data = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise SnapshotError(f"reading {self.idmap_file}: {e}") from None
        return ([(int(a), int(b), int(c)) for a, b, c in data["uid"]],
                [(int(a), int(b), int(c)) for a, b, c in data["gid"]])

    def _write_idmap(self, ids: tuple[IdMap, IdMap]) -> None:
        from barque.storage.atomic import atomic_write

        text = json.dumps({"uid": [list(m) for m in ids[0]], "gid": [list(m) for m in ids[1]]})
        atomic_write(self.idmap_file, text.encode())

    @property
    def is_copy(self) -> bool:
        return os.path.isdir(self.copy)

    @property
    def rootfs(self) -> str:
        return self.copy if self.is_copy else self.merged

    def prepare(self, lowers: list[str], *, overlay: bool | None = None,
                ids: tuple[IdMap, IdMap] | None = None) -> str:
        """Make (or remount) the snapshot of `lowers` (top-most first); its rootfs path.

        `overlay` None probes whether overlayfs works here; False forces the copy. `ids`:
        the (uid, gid) maps of a new snapshot for a user namespace (a snapshot made keeps
        the maps it was made with).
        """
        created = not os.path.lexists(self.dir)
        try:
            if overlay is None and not self.is_copy:
                overlay = os.path.isdir(self.upper) or overlay_supported(
                    os.path.dirname(self.dir))
            os.makedirs(self.dir, mode=0o711, exist_ok=True)
            if created and ids is not None:
                self._write_idmap(ids)
            if overlay and not self.is_copy:
                return self._prepare_overlay(lowers)
            return self._prepare_copy(lowers)
        except BaseException as e:
            if created:
                self._remove_quietly()
            if isinstance(e, _errors()):  # (imports the layer code only on this error path)
                raise SnapshotError(f"preparing the snapshot {self.dir}: {e}") from None
            raise

    def _prepare_overlay(self, lowers: list[str]) -> str:
        ids = self.idmap
        for path, mode in ((self.upper, 0o755), (self.work, 0o700), (self.merged, 0o755)):
            if not os.path.isdir(path):
                os.mkdir(path, mode)
                os.chmod(path, mode)
                if path == self.upper and ids is not None:
                    os.chown(path, *_root_of(ids))  # the container's / is its root's
        if not lowers:
            os.makedirs(self.empty, mode=0o755, exist_ok=True)
            lowers = [self.empty]
        if not is_mounted(self.merged):
            if ids is None:
                mount_overlay(lowers, self.upper, self.work, self.merged)
            else:
                self._mount_idmapped(lowers, ids)
        return self.merged

    def _mount_idmapped(self, lowers: list[str], ids: tuple[IdMap, IdMap]) -> None:
        from barque.linux import idmap

        users_fd = idmap.userns_fd(*ids)
        try:
            mount_overlay(lowers, self.upper, self.work, self.merged, users_fd=users_fd)
        finally:
            os.close(users_fd)

    def _prepare_copy(self, lowers: list[str]) -> str:
        if self.is_copy:
            return self.copy
        tmp = os.path.join(self.dir, ".tmp-rootfs")
        shutil.rmtree(tmp, ignore_errors=True)
        os.mkdir(tmp, 0o755)
        os.chmod(tmp, 0o755)
        try:
            flatten(lowers, tmp)
            ids = self.idmap
            if ids is not None:
                _shift_owners(tmp, ids)
            os.rename(tmp, self.copy)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return self.copy

    def _remove_quietly(self) -> None:
        try:
            self.remove()
        except SnapshotError:
            pass

    def unmount(self) -> None:
        """Unmount the overlay (the snapshot stays, to be prepared again)."""
        try:
            if os.path.isdir(self.merged):
                unmount(self.merged)
        except OverlayError as e:
            raise SnapshotError(str(e)) from None

    def remove(self) -> None:
        """Unmount (if mounted) and delete the snapshot; nothing there is not an error."""
        self.unmount()
        if is_mounted(self.merged):
            raise SnapshotError(f"{self.merged} is still mounted: not deleting its upper dir")
        try:
            shutil.rmtree(self.dir)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise SnapshotError(f"removing the snapshot {self.dir}: {e}") from None

    def diff(self, lowers: list[str]) -> list[Change]:
        if self.is_copy:
            return diff_dirs(self.copy, lowers, self.owners_inside())
        return diff(self.upper, lowers)

    def owners_inside(self) -> Callable[[int, int], tuple[int, int]] | None:
        """For a user-namespaced container's snapshot: host (uid, gid) -> the container's
        (ids its maps leave out as the kernel's overflow id, 65534); None: no maps."""
        ids = self.idmap
        if ids is None:
            return None
        uids, gids = ids

        def inside(ident: int, mapping: IdMap) -> int:
            for start, outside, count in mapping:
                if outside <= ident < outside + count:
                    return start + ident - outside
            return OVERFLOW_ID

        return lambda uid, gid: (inside(uid, uids), inside(gid, gids))

    def write_layer(self, lowers: list[str], out: IO[bytes]) -> str:
        """The snapshot's changes as a layer tar written to `out`; returns its diff_id
        (with the container's own ids, as `docker commit` of a remapped container)."""
        if not self.is_copy:
            return write_upper_as_layer(self.upper, lowers, out, self.owners_inside())
        try:
            from barque.storage import layer_writer

            return layer_writer.write_rootfs_diff_as_layer(self.copy, lowers, out,
                                                           self.owners_inside())
        except _errors() as e:
            raise SnapshotError(f"writing {self.copy} as a layer: {e}") from None


def _root_of(ids: tuple[IdMap, IdMap]) -> tuple[int, int]:
    """The host's (uid, gid) of the container's root under these maps."""
    from barque.linux.idmap import shift

    uid, gid = shift(0, ids[0]), shift(0, ids[1])
    if uid is None or gid is None:
        raise OSError("the id maps leave the container's root unmapped")
    return uid, gid


def _shift_owners(tree: str, ids: tuple[IdMap, IdMap]) -> None:
    """Every owner in `tree` (a copy of the image, ours: nothing else writes it yet) as the
    maps make it on the host: what an idmapped mount shows, made on disk (ids the maps leave
    out stay as they are: the container sees them as its overflow id)."""
    from barque.linux.idmap import shift

    def chown(path: str) -> None:
        st = os.lstat(path)
        uid, gid = shift(st.st_uid, ids[0]), shift(st.st_gid, ids[1])
        mode = st.st_mode
        os.chown(path, st.st_uid if uid is None else uid, st.st_gid if gid is None else gid,
                 follow_symlinks=False)
        if not os.path.islink(path) and mode & 0o6000:
            os.chmod(path, mode & 0o7777)  # chown clears setuid/setgid bits: restored

    chown(tree)
    for top, dirs, files in os.walk(tree):
        for name in dirs + files:
            chown(os.path.join(top, name))


def prepare(snap_dir: str, lowers: list[str], *, overlay: bool | None = None) -> str:
    """Make (or remount) the snapshot `snap_dir` of `lowers` (top-most first); its rootfs."""
    return Snapshot(snap_dir).prepare(lowers, overlay=overlay)


def remove(snap_dir: str) -> None:
    """Unmount (if mounted) and delete the snapshot `snap_dir`."""
    Snapshot(snap_dir).remove()


def diff(upper: str, lowers: list[str]) -> list[Change]:
    """`docker diff` of an overlay upper dir over `lowers` (top-most first): (kind, path)."""
    try:
        from barque.storage import overlay_diff

        return overlay_diff.diff(upper, lowers)
    except _errors() as e:
        raise SnapshotError(f"reading the changes in {upper}: {e}") from None


def diff_dirs(rootfs: str, lowers: list[str],
              owners: Callable[[int, int], tuple[int, int]] | None = None) -> list[Change]:
    """`docker diff` of a copied rootfs (the copy fallback) over `lowers`."""
    try:
        from barque.storage import overlay_diff

        return overlay_diff.diff_dirs(rootfs, lowers, owners)
    except _errors() as e:
        raise SnapshotError(f"reading the changes in {rootfs}: {e}") from None


def write_upper_as_layer(upper: str, lowers: list[str], out: IO[bytes],
                         owners: Callable[[int, int], tuple[int, int]] | None = None) -> str:
    """Write an overlay upper dir as a layer tar to `out`; returns its diff_id."""
    try:
        from barque.storage import layer_writer

        return layer_writer.write_upper_as_layer(upper, lowers, out, owners)
    except _errors() as e:
        raise SnapshotError(f"writing {upper} as a layer: {e}") from None
