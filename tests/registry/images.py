"""Test images written straight into a BlobStore: busybox (gzip or zstd), a big random layer,
other-architecture variants and indexes over them."""

from __future__ import annotations

import io
import os
import tarfile
from dataclasses import dataclass
from typing import Any

from barque.image import default
from barque.image.oci_layout import canonical_json
from barque.registry import manifest as mt
from barque.storage.blobs import BlobStore, sha256_digest


@dataclass
class BuiltImage:
    manifest: bytes
    media_type: str
    config_digest: str
    layer_digests: list[str]

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)


def store_image(blobs: BlobStore, layers: list[tuple[bytes, bytes, str]], *,
                arch: str = "amd64", variant: str = "", os_name: str = "linux",
                docker: bool = False) -> BuiltImage:
    """An image of `layers` ((blob, uncompressed tar, media type) each) in `blobs`."""
    config: dict[str, Any] = {
        "architecture": arch, "os": os_name,
        "config": {"Cmd": ["sh"], "Env": [f"PATH={default.DEFAULT_PATH}"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar) for _, tar, _ in layers]},
        "history": [{"created_by": "barque tests"} for _ in layers],
    }
    if variant:
        config["variant"] = variant
    config_bytes = canonical_json(config)
    blobs.put(config_bytes)
    descs: list[dict[str, Any]] = []
    for blob, _, media in layers:
        blobs.put(blob)
        descs.append({"mediaType": media, "digest": sha256_digest(blob), "size": len(blob)})
    media_type = mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST
    manifest = {
        "schemaVersion": 2, "mediaType": media_type,
        "config": {"mediaType": mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG,
                   "digest": sha256_digest(config_bytes), "size": len(config_bytes)},
        "layers": descs,
    }
    data = canonical_json(manifest)
    blobs.put(data)
    return BuiltImage(data, media_type, sha256_digest(config_bytes),
                     [d["digest"] for d in descs])


def busybox_layer(compression: str = "gzip") -> tuple[bytes, bytes, str]:
    tar = default.build_layer_tar()
    if compression == "gzip":
        return default.gzip_deterministic(tar), tar, mt.OCI_LAYER_GZIP
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=3).compress(tar), tar, mt.OCI_LAYER_ZSTD
    return tar, tar, mt.OCI_LAYER


def random_layer(size: int) -> tuple[bytes, bytes, str]:
    """An uncompressed layer holding one file of `size` random bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("random.bin")
        info.size = size
        tar.addfile(info, io.BytesIO(os.urandom(size)))
    data = buf.getvalue()
    return data, data, mt.OCI_LAYER


def store_index(blobs: BlobStore, images: list[tuple[BuiltImage, dict[str, str]]]) -> BuiltImage:
    """An OCI index over `images` ((image, platform) each)."""
    index = {
        "schemaVersion": 2, "mediaType": mt.OCI_INDEX,
        "manifests": [{"mediaType": img.media_type, "digest": img.digest,
                       "size": len(img.manifest), "platform": plat} for img, plat in images],
    }
    data = canonical_json(index)
    blobs.put(data)
    return BuiltImage(data, mt.OCI_INDEX, "", [])


def verify_store(blobs: BlobStore) -> None:
    """Every blob's content hashes to its name (nothing corrupt was published)."""
    for digest in blobs.digests():
        assert sha256_digest(blobs.read(digest)) == digest, f"corrupt blob {digest}"
