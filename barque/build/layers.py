"""A build step's filesystem, and how its changes become a layer of the image store.

A step gets a snapshot of its parent's layers with a fresh upper dir, mounted (the copy
fallback where overlayfs is missing). After the step the overlay is unmounted and the upper
is the layer: written as a tar (entries sorted, mtimes clamped to SOURCE_DATE_EPOCH when it
is set, no atime/ctime: tar's PAX headers carry only whole-second mtimes), stored
uncompressed as its blob (the blob digest is the diff ID, as Docker's classic builder keeps
local layers), and the upper dir itself moved into the store as the unpacked layer (it is in
overlayfs lower-dir format already). A step that changed nothing makes no layer.

Every step's snapshot lives under the build's own temporary dir, locked while the build
runs; a build that finds another's dir unlocked (its builder was killed) unmounts and
removes it (`reclaim`).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile

from barque.image.store import ImageStore, LayerRef
from barque.sha256 import hexdigest
from barque.storage import snapshot
from barque.storage.claimed import ClaimedDir
from barque.storage.overlayfs import unmount

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Any

    from barque.storage.entries import Entry

MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
WORKSPACE_PREFIX = "b-"
_KEEP_XATTRS = ("trusted.overlay.opaque",)  # what a lower dir needs of overlay's own


class LayerError(Exception):
    """A step's filesystem could not be made, or its changes not stored."""


def build_tmp(root: str) -> str:
    return os.path.join(root, "build", "tmp")


class Workspace:
    """A build's temporary dir under the root (same file system as the layers, so an upper
    dir is moved into the store, not copied), locked for the build's life."""

    def __init__(self, root: str) -> None:
        parent = build_tmp(root)
        reclaim(parent)
        self._claim = ClaimedDir(parent, WORKSPACE_PREFIX + os.urandom(8).hex())
        self.dir = self._claim.path
        self._n = itertools.count(1)  # next() is atomic: stage threads share it

    def new_dir(self) -> str:
        return os.path.join(self.dir, str(next(self._n)))

    def close(self) -> None:
        removed = False
        try:
            _remove_dir(self.dir)
            removed = True
        finally:
            self._claim.release(keep_lock=not removed)  # not removed: the next build retries


def _mounts_under(path: str) -> list[str]:
    from barque.linux.mountinfo import unescape

    prefix = path.rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        found = [unescape(line.split(" ", 5)[4]) for line in f]
    return sorted((m for m in found if m.startswith(prefix)), reverse=True)


def _remove_dir(path: str) -> None:
    for mount in _mounts_under(path):  # deepest first
        try:
            unmount(mount)
        except Exception:  # noqa: BLE001 — reported below: rmtree must not cross a mount
            pass
    if _mounts_under(path):
        raise LayerError(f"{path}: still mounted, not removed")
    shutil.rmtree(path, ignore_errors=True)


def reclaim(parent: str) -> None:
    """Remove what killed builds left in `parent` (workspaces no live build claims)."""
    from barque.storage import claimed

    claimed.reclaim(parent, _remove_dir, prefix=WORKSPACE_PREFIX)


def chain_of(parent_chain: str | None, diff_id: str) -> str:
    if parent_chain is None:
        return diff_id
    return "sha256:" + hexdigest(f"{parent_chain} {diff_id}".encode())


class StepFS:
    """The root filesystem of one step over `layers` (bottom first)."""

    def __init__(self, store: ImageStore, workspace: Workspace, layers: list[LayerRef], *,
                 lowers: list[str] | None = None) -> None:
        """`lowers`: other directories to show instead of layers (a view, never committed)."""
        self.store = store
        self.layers = layers
        self.snap = snapshot.Snapshot(workspace.new_dir())
        self.lowers = lowers if lowers is not None else [
            store.layer_path(layer.chain_id) for layer in reversed(layers)]
        self.rootfs = ""

    def mount(self) -> str:
        try:
            self.rootfs = self.snap.prepare(self.lowers)
        except snapshot.SnapshotError as e:
            raise LayerError(str(e)) from None
        return self.rootfs

    def close(self) -> None:
        """Unmount and delete the snapshot (whatever state the step left it in)."""
        try:
            self.snap.remove()
        except snapshot.SnapshotError as e:
            raise LayerError(str(e)) from None

    def __enter__(self) -> StepFS:
        self.mount()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def commit(self, epoch: int | None, db_lock: Any) -> tuple[LayerRef, int] | None:
        """The step's changes as a new layer in the store (its blob and its unpacked dir);
        (layer, unpacked bytes), or None when the step changed nothing. `db_lock` is held
        only around the store's records (the tar is written while other stages run)."""
        try:
            self.snap.unmount()
        except snapshot.SnapshotError as e:
            raise LayerError(str(e)) from None
        if not self.snap.is_copy and not os.listdir(self.snap.upper):
            return None
        blobs = self.store.blobs
        fd, tmp = tempfile.mkstemp(prefix=".build-", dir=blobs.ingest_dir)
        sizes = [0]
        try:
            with os.fdopen(fd, "wb") as out:
                diff_id = self._write_tar(out, epoch, sizes)
                out.flush()
                os.fsync(out.fileno())
            blob_size = os.stat(tmp).st_size
            if blob_size <= 10240 and _only_end_blocks(tmp):
                return None  # only whiteouts of nothing: no change an image would see
            dest = blobs.path(diff_id)
            if not os.path.exists(dest):
                os.chmod(tmp, 0o444)
                os.rename(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        parent = self.layers[-1].chain_id if self.layers else None
        layer = LayerRef(chain_of(parent, diff_id), diff_id, diff_id, MEDIA_LAYER, blob_size)
        if not self.snap.is_copy:
            _strip_overlay_xattrs(self.snap.upper)
        with db_lock:
            if self.snap.is_copy:
                self.store._ensure_layer(layer)  # the copy fallback: unpack the blob
            else:
                self.store.adopt_layer(layer, self.snap.upper, sizes[0])
        return layer, sizes[0]

    def _write_tar(self, out: object, epoch: int | None, sizes: list[int]) -> str:
        from barque.storage import layer_writer

        if self.snap.is_copy:
            return self.snap.write_layer(self.lowers, out)  # type: ignore[arg-type]
        entries = layer_writer._upper_entries(self.snap.upper, self.lowers)
        return layer_writer.write_entries(_clamped(entries, epoch, sizes), out)  # type: ignore[arg-type]


def _clamped(entries: Iterable[Entry], epoch: int | None, sizes: list[int]) -> Iterator[Entry]:
    limit = None if epoch is None else epoch * 1_000_000_000
    for entry in entries:
        sizes[0] += entry.size
        if limit is not None and (entry.meta.mtime_ns or 0) > limit:
            entry.meta.mtime_ns = limit
        yield entry


def _only_end_blocks(path: str) -> bool:
    with open(path, "rb") as f:
        return not f.read().strip(b"\0")


def _strip_overlay_xattrs(upper: str) -> None:
    """Overlay's bookkeeping in an upper dir (origin, impure, ...) means nothing in a lower
    dir of other mounts: keep only what a layer dir needs (opaque)."""
    for dirpath, dirnames, filenames in os.walk(upper):
        for name in [None, *dirnames, *filenames]:
            path = dirpath if name is None else os.path.join(dirpath, name)
            try:
                keys = os.listxattr(path, follow_symlinks=False)
            except OSError:
                continue
            for key in keys:
                if key.startswith("trusted.overlay.") and key not in _KEEP_XATTRS:
                    try:
                        os.removexattr(path, key, follow_symlinks=False)
                    except OSError:
                        pass
