"""`docker commit`: a new image from a container's image plus its changes as one layer."""

from __future__ import annotations

import os
import tempfile

from barque.engine import events
from barque.engine.context import Engine, EngineError
from barque.engine.create import lowers_of
from barque.image.store import Image, ImageError
from barque.storage import snapshot

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any


def _history_command(record_config: dict[str, Any]) -> str:
    return " ".join(list(record_config.get("Entrypoint") or []) +
                    list(record_config.get("Cmd") or []))


def commit(engine: Engine, ref: str, reference: str | None, *, author: str = "",
           message: str = "", changes: list[str] | None = None, pause: bool = True) -> Image:
    """A new image: the container's image plus one layer of the container's changes, with
    the container's config (and `changes`, Dockerfile instructions) as its config."""
    from barque.engine import lifecycle
    from barque.image.config_changes import ChangeError, apply_changes

    record = engine.find(ref)
    store = engine.store
    try:
        image = store.get(record.image_id)
        container_config = apply_changes(_image_config_of(record.config), list(changes or []))
    except ImageError as e:
        raise EngineError(str(e), 1) from None
    except ChangeError as e:
        raise EngineError(str(e), 1, 400) from None
    # The changes' tar is a temporary of the store: made and used only under its lock.
    with store.writing():
        paused = False
        if pause and engine.state(record)["Status"] == "running":
            lifecycle.pause(engine, record.id)
            paused = True
        try:
            layer_tar = _write_changes(engine, record.id, image)
        finally:
            if paused:
                lifecycle.unpause(engine, record.id)
        try:
            made = _register(store, image, layer_tar, container_config, reference, author,
                             message, _history_command(record.config))
            events.container(engine, record, "commit", comment=message, imageID=made.id,
                             imageRef=reference or "")
            return made
        except OSError as e:  # a full disk, mostly: Docker's words, the command's exit 1
            raise EngineError(_os_error("commit", e), 1) from None
        finally:
            os.unlink(layer_tar)


def _os_error(op: str, e: OSError) -> str:
    what = os.strerror(e.errno).lower() if e.errno else str(e)
    return f"{op}: write {e.filename}: {what}" if e.filename else f"{op}: {what}"


def _image_config_of(config: dict[str, Any]) -> dict[str, Any]:
    """The container's Config as an image config's "config" (Docker's commit keeps these)."""
    keys = ("User", "ExposedPorts", "Env", "Cmd", "Healthcheck", "Volumes", "WorkingDir",
            "Entrypoint", "OnBuild", "Labels", "StopSignal", "ArgsEscaped", "Shell")
    return {k: config[k] for k in keys if config.get(k) not in (None, "", [], {})}


def _write_changes(engine: Engine, container_id: str, image: Image) -> str:
    store = engine.store
    snap = snapshot.Snapshot(engine.paths.snapshot_dir(container_id))
    fd, path = tempfile.mkstemp(prefix=".commit-", dir=store.blobs.ingest_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            snap.write_layer(lowers_of(engine, container_id, image), out)
    except BaseException as e:
        os.unlink(path)
        if isinstance(e, snapshot.SnapshotError):
            raise EngineError(str(e), 1) from None
        if isinstance(e, OSError):
            raise EngineError(_os_error("commit", e), 1) from None
        raise
    return path


def _register(store: Any, parent: Image, layer_tar: str, container_config: dict[str, Any],
              reference: str | None, author: str, message: str, command: str) -> Image:
    from barque.image import archive
    from barque.image import oci_layout as ol
    from barque.image.archive_io import adopt
    from barque.image.store import tag_name

    tags = []
    if reference:
        try:
            tags.append(tag_name(reference))
        except ImageError as e:
            raise EngineError(str(e), 1, 400) from None
    parent_config = store.config(parent)
    with store.writing():
        fd, tmp = tempfile.mkstemp(prefix=".commit-gz-", dir=store.blobs.ingest_dir)
        os.close(fd)
        try:
            with open(layer_tar, "rb") as f:
                diff_id, layer = archive.layer_from_tar(f, tmp)
            adopt(layer, store.blobs)
        finally:
            os.unlink(tmp)
        created = archive.now_rfc3339()
        config = dict(parent_config)
        config["created"] = created
        config["config"] = container_config
        if author:
            config["author"] = author
        rootfs = dict(config.get("rootfs") or {"type": "layers", "diff_ids": []})
        rootfs["diff_ids"] = [*rootfs.get("diff_ids", []), diff_id]
        config["rootfs"] = rootfs
        entry: dict[str, Any] = {"created": created, "created_by": command}
        if author:
            entry["author"] = author
        if message:
            entry["comment"] = message
        config["history"] = [*(config.get("history") or []), entry]
        config_bytes = ol.canonical_json(config)
        store.blobs.put(config_bytes)
        layers = [{"mediaType": layer_info.media_type, "digest": layer_info.blob_digest,
                   "size": layer_info.blob_size} for layer_info in parent.layers]
        layers.append({"mediaType": ol.MEDIA_LAYER_GZIP, "digest": layer.digest,
                       "size": layer.size})
        manifest = ol.canonical_json({
            "schemaVersion": 2, "mediaType": ol.MEDIA_MANIFEST,
            "config": ol.descriptor(ol.MEDIA_CONFIG, config_bytes), "layers": layers,
        })
        try:
            return store.register(store.blobs.put(manifest), tags=tags)
        except ImageError as e:
            raise EngineError(str(e), 1) from None
