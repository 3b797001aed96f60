"""`docker export`: a container's filesystem (its image plus its changes) as a tar."""

from __future__ import annotations

import os

from barque.engine import events
from barque.engine.context import Engine, EngineError
from barque.engine.create import lowers_of
from barque.image.store import ImageError
from barque.storage import snapshot

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import IO


def export_container(engine: Engine, ref: str, out: IO[bytes]) -> None:
    from barque.storage.rootfs_export import ExportError, export_rootfs

    record = engine.find(ref)
    store = engine.store
    snap = snapshot.Snapshot(engine.paths.snapshot_dir(record.id))
    if not os.path.isdir(snap.dir):
        raise EngineError(f"container {ref} has no filesystem (its snapshot is missing)", 1)
    try:
        image = store.get(record.image_id)
        was_mounted = os.path.ismount(snap.merged)
        rootfs = snap.prepare(lowers_of(engine, record.id, image))
        try:
            export_rootfs(rootfs, out, snap.owners_inside())
        finally:
            if not was_mounted and not engine.state(record)["Running"]:
                snap.unmount()
    except (ImageError, snapshot.SnapshotError, ExportError) as e:
        raise EngineError(str(e), 1) from None
    events.container(engine, record, "export")
