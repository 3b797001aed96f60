"""`docker diff`: a container's filesystem changes against its image."""

from __future__ import annotations

from barque.engine.context import Engine, EngineError
from barque.engine.create import lowers_of
from barque.image.store import ImageError
from barque.storage import snapshot


def container_changes(engine: Engine, ref: str) -> list[tuple[str, str]]:
    """(kind, path) for every change: "A" added, "C" changed, "D" deleted, as Docker sorts
    them (by path)."""
    record = engine.find(ref)
    try:
        image = engine.store.get(record.image_id)
        snap = snapshot.Snapshot(engine.paths.snapshot_dir(record.id))
        changes = snap.diff(lowers_of(engine, record.id, image))
    except (ImageError, snapshot.SnapshotError) as e:
        raise EngineError(str(e), 1) from None
    return sorted(changes, key=lambda c: c[1])
