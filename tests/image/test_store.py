"""The image store: records, tags, Docker's rmi rules, holds, prune and garbage collection."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

from barque.engine import images as eng
from barque.image.store import ImageConflict, ImageError, ImageNotFound, ImageStore, chain_ids
from tests.support.marks import needs_busybox

pytestmark = [
    pytest.mark.root,  # layers keep owners and overlay whiteouts are device nodes
    needs_busybox,
]


@pytest.fixture
def store(tmp_path: Any) -> Iterator[ImageStore]:
    s = ImageStore(str(tmp_path / "root"))
    yield s
    s.close()


def _layer_dirs(store: ImageStore) -> list[str]:
    return sorted(n for n in os.listdir(store.layer_dir)
                  if not n.startswith(".") and os.path.isdir(os.path.join(store.layer_dir, n)))


def test_chain_ids_follow_the_image_spec() -> None:
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    want = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    assert chain_ids([a, b]) == [a, want]


def test_default_image_is_a_real_store_image(store: ImageStore) -> None:
    image = eng.ensure_default_image(store)
    assert image.tags == ["docker.io/library/busybox:latest"]
    assert store.resolve("busybox").id == image.id
    assert store.resolve(image.short_id).id == image.id
    assert store.resolve(image.id.split(":")[1]).id == image.id
    lowers = store.lowers(image)
    assert len(lowers) == 1 and os.path.isfile(os.path.join(lowers[0], "bin", "busybox"))
    assert image.size > 500_000
    assert eng.ensure_default_image(store).id == image.id  # built once


def test_missing_image_is_docker_worded(store: ImageStore) -> None:
    with pytest.raises(ImageNotFound, match=r"No such image: nothere:latest"):
        store.resolve("nothere")


def test_tag_and_untag(store: ImageStore) -> None:
    image = eng.ensure_default_image(store)
    assert store.tag(image, "localhost:5000/mine:v1") == "localhost:5000/mine:v1"
    assert store.resolve("localhost:5000/mine:v1").id == image.id
    # Removing one of two tags only untags.
    assert store.remove("localhost:5000/mine:v1") == [("Untagged", "localhost:5000/mine:v1")]
    assert store.resolve("busybox").id == image.id
    with pytest.raises(ImageError, match="invalid reference format"):
        store.tag(image, "UPPER:case")


def test_rmi_by_id_with_two_repositories_needs_force(store: ImageStore) -> None:
    image = eng.ensure_default_image(store)
    store.tag(image, "other")
    with pytest.raises(ImageConflict, match="referenced in multiple repositories"):
        store.remove(image.short_id)
    out = store.remove(image.short_id, force=True)
    assert ("Untagged", "busybox:latest") in out and ("Untagged", "other:latest") in out
    assert ("Deleted", image.id) in out
    assert store.images() == [] and _layer_dirs(store) == []
    assert list(store.blobs.digests()) == []


def test_held_image_is_not_deleted(store: ImageStore) -> None:
    image = eng.ensure_default_image(store)
    store.hold("c0ffee" * 10 + "abcd", image)
    with pytest.raises(ImageConflict, match="must force.*container c0ffeec0ffee"):
        store.remove("busybox")
    with pytest.raises(ImageConflict, match="being used by running container"):
        store.remove(image.short_id, is_running=lambda _: True)
    # Forced: untagged, but the image and its layer stay for the container.
    assert store.remove("busybox", force=True) == [("Untagged", "busybox:latest")]
    assert store.get(image.id).tags == []
    assert store.prune(all_images=True)[0] == []
    assert _layer_dirs(store)
    store.release("c0ffee" * 10 + "abcd")
    lines, reclaimed = store.prune()
    assert ("deleted", image.id) in lines and reclaimed > 0
    assert _layer_dirs(store) == []


def test_prune_keeps_tagged_images_unless_all(store: ImageStore) -> None:
    image = eng.ensure_default_image(store)
    assert store.prune() == ([], 0)
    lines, _ = store.prune(all_images=True)
    assert ("untagged", "busybox:latest") in lines and ("deleted", image.id) in lines


def test_garbage_collection_removes_crash_leftovers(store: ImageStore) -> None:
    image = eng.ensure_default_image(store)
    os.mkdir(os.path.join(store.layer_dir, ".tmp-crashed"))
    orphan = store.blobs.put(b"an orphan blob")
    store.collect_garbage()
    assert not os.path.exists(os.path.join(store.layer_dir, ".tmp-crashed"))
    assert not store.blobs.has(orphan)
    assert store.blobs.has(image.manifest_digest) and store.blobs.has(image.id)


def test_a_second_store_sees_the_same_state(store: ImageStore) -> None:
    image = eng.ensure_default_image(store)
    other = ImageStore(store.root)
    try:
        assert other.resolve("busybox:latest").id == image.id
    finally:
        other.close()


def test_a_hostile_layer_fails_registration_and_changes_nothing(store: ImageStore) -> None:
    import io
    import json
    import tarfile

    from barque.image import oci_layout as ol

    before = eng.ensure_default_image(store)
    layers_before = _layer_dirs(store)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../escaped")
        data = b"outside"
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    layer = buf.getvalue()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers",
                                    "diff_ids": [ol.sha256_digest(layer)]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": ol.MEDIA_MANIFEST,
                           "config": ol.descriptor(ol.MEDIA_CONFIG, config),
                           "layers": [ol.descriptor(ol.MEDIA_LAYER, layer)]}).encode()
    for blob in (layer, config, manifest):
        store.blobs.put(blob)
    with pytest.raises(ImageError, match=r"\.\./escaped"):
        store.register(ol.sha256_digest(manifest), tags=["docker.io/library/hostile:latest"])
    assert [i.id for i in store.images()] == [before.id]
    assert _layer_dirs(store) == layers_before
    assert not os.path.exists(os.path.join(os.path.dirname(store.layer_dir), "escaped"))
    assert not os.path.exists(os.path.join(store.layer_dir, "..", "escaped"))
