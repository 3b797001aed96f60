"""Pushing to a real registry: skopeo reads what Barque pushed, the result validates against
the OCI schemas, existing blobs are skipped, blobs are mounted across repositories, chunked
uploads, Docker schema 2 and indexes."""

from __future__ import annotations

import io
import json
import os

import pytest

from barque.cli.registry_progress import PlainProgress
from barque.image import oci_layout
from barque.image.reference import parse
from barque.registry import manifest as mt
from barque.registry.errors import RegistryError
from barque.registry.pull import pull
from barque.registry.push import push
from barque.storage.blobs import BlobStore, sha256_digest
from tests.registry.images import busybox_layer, store_image, store_index, verify_store
from tests.registry.oci_schema import validate
from tests.support.registry import Registry, skopeo_copy, skopeo_inspect


def _lines(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


def test_push_is_read_by_skopeo_and_valid_oci(registry: Registry, store: BlobStore,
                                              tmp_path: os.PathLike[str]) -> None:
    blob, tar, media = busybox_layer()
    image = store_image(store, [(blob, tar, media)])
    ref = parse(f"{registry.host}/pushed/busybox:latest")
    out = io.StringIO()
    digest = push(ref, store, image.manifest, image.media_type, progress=PlainProgress(out))
    assert digest == image.digest
    shown = sha256_digest(tar)[7:19]  # Docker names pushed layers by diff_id
    assert _lines(out) == [
        f"The push refers to repository [{registry.host}/pushed/busybox]",
        f"{shown}: Preparing", f"{shown}: Pushed",
        f"latest: digest: {digest} size: {len(image.manifest)}"]

    info = skopeo_inspect(f"docker://{ref}")
    assert info["Digest"] == digest
    assert info["Layers"] == image.layer_digests
    assert info["Architecture"] == "amd64" and info["Os"] == "linux"
    raw = skopeo_inspect(f"docker://{ref}", "--raw")
    validate(raw, "image-manifest-schema.json")
    validate(skopeo_inspect(f"docker://{ref}", "--config", "--raw"), "config-schema.json")

    layout = os.path.join(tmp_path, "copy")
    skopeo_copy(f"docker://{ref}", f"oci:{layout}:latest")
    manifest, config = oci_layout.load_image(layout, "latest")
    assert oci_layout.resolve_manifest(layout, "latest")["digest"] == digest
    assert config["rootfs"]["diff_ids"] == [sha256_digest(tar)]

    out = io.StringIO()
    assert push(ref, store, image.manifest, image.media_type,
                progress=PlainProgress(out)) == digest
    assert _lines(out)[1:3] == [f"{shown}: Preparing", f"{shown}: Layer already exists"]


def test_cross_repository_mount(registry: Registry, store: BlobStore) -> None:
    image = store_image(store, [busybox_layer()])
    push(parse(f"{registry.host}/mount/source:v1"), store, image.manifest, image.media_type)
    out = io.StringIO()
    target = parse(f"{registry.host}/mount/target:v1")
    push(target, store, image.manifest, image.media_type, progress=PlainProgress(out),
         from_repos=["mount/source"])
    layer = image.layer_digests[0]
    assert any(line.endswith(": Mounted from mount/source") for line in _lines(out))
    assert registry.count("POST", "/v2/mount/target/blobs/uploads/", status=201) == 2
    assert registry.count("PATCH", "/v2/mount/target/blobs/uploads/") == 0
    assert registry.count("PUT", "/v2/mount/target/manifests/v1", status=201) == 1
    assert skopeo_inspect(f"docker://{target}")["Layers"] == [layer]


def test_chunked_upload_and_docker_schema2(registry: Registry, store: BlobStore,
                                           tmp_path: os.PathLike[str]) -> None:
    blob, tar, _ = busybox_layer()
    image = store_image(store, [(blob, tar, mt.DOCKER_LAYER_GZIP)], docker=True)
    ref = parse(f"{registry.host}/chunked:latest")
    push(ref, store, image.manifest, image.media_type, chunk_size=256 << 10)
    patches = [p for m, p, s in registry.access_log()
               if m == "PATCH" and p.startswith("/v2/chunked/") and s == 202]
    assert len(patches) == -(-len(blob) // (256 << 10))
    raw = skopeo_inspect(f"docker://{ref}", "--raw")
    assert raw["mediaType"] == mt.DOCKER_MANIFEST

    fresh = BlobStore(os.path.join(tmp_path, "fresh"))
    result = pull(ref, fresh)
    assert result.manifest_media_type == mt.DOCKER_MANIFEST
    assert fresh.read(image.layer_digests[0]) == blob
    verify_store(fresh)


def test_push_index_with_children(registry: Registry, store: BlobStore) -> None:
    layer = busybox_layer()
    amd = store_image(store, [layer], arch="amd64")
    arm = store_image(store, [layer], arch="arm64")
    index = store_index(store, [(amd, {"os": "linux", "architecture": "amd64"}),
                                (arm, {"os": "linux", "architecture": "arm64"})])
    ref = parse(f"{registry.host}/indexed:v1")
    out = io.StringIO()
    assert push(ref, store, index.manifest, index.media_type,
                progress=PlainProgress(out)) == index.digest
    assert _lines(out)[-1] == f"v1: digest: {index.digest} size: {len(index.manifest)}"
    raw = skopeo_inspect(f"docker://{ref}", "--raw")
    validate(raw, "image-index-schema.json")
    for child in (amd, arm):
        by_digest = skopeo_inspect(f"docker://{registry.host}/indexed@{child.digest}", "--raw")
        validate(by_digest, "image-manifest-schema.json")
    # The shared layer was uploaded once.
    assert registry.count("PUT", "/v2/indexed/manifests/v1") == 1
    assert sum(1 for m, p, s in registry.access_log()
               if m == "PUT" and p.startswith("/v2/indexed/blobs/uploads/")) == 3


def test_push_with_missing_blob_sends_nothing(registry: Registry, store: BlobStore) -> None:
    image = store_image(store, [busybox_layer()])
    store.delete(image.layer_digests[0])
    with pytest.raises(RegistryError, match="is not in the store"):
        push(parse(f"{registry.host}/incomplete:latest"), store, image.manifest,
             image.media_type)
    assert not [p for _, p, _ in registry.access_log() if p.startswith("/v2/incomplete/")]


def test_push_refuses_schema1(registry: Registry, store: BlobStore) -> None:
    schema1 = json.dumps({"schemaVersion": 1, "name": "x", "tag": "latest",
                          "fsLayers": [], "history": []}).encode()
    with pytest.raises(RegistryError, match="schema 1"):
        push(parse(f"{registry.host}/old:latest"), store, schema1, mt.DOCKER_SCHEMA1_SIGNED)
