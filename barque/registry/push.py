"""`docker push` minus the image database: upload an image (or index) from a BlobStore.

Everything the manifest names is checked to be in the store before anything is sent. Each
blob is skipped when the repository has it, mounted from another repository of the same
registry when one of `from_repos` has it, else uploaded; the manifest goes last, under the
tag, so the tag never names an incomplete image. An index's child manifests are pushed by
digest before the index.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from barque.image.reference import Reference
from barque.registry import errors as err
from barque.registry.client import ProgressCallback, RegistryClient
from barque.registry.manifest import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    Descriptor,
    decode,
    image_parts,
    index_entries,
)
from barque.registry.progress import Progress, short_id
from barque.storage.blobs import BlobError, BlobStore, sha256_digest

_MAX_DEPTH = 3


@dataclass
class _Manifest:
    """One manifest or index to push: its bytes and, for an image, the blobs it needs."""

    digest: str
    data: bytes
    media_type: str
    config: Descriptor | None = None
    layers: tuple[tuple[Descriptor, str], ...] = ()  # (descriptor, id shown)


def push(ref: Reference, blobs: BlobStore, manifest_bytes: bytes, manifest_media_type: str, *,
         client: RegistryClient | None = None, progress: Progress | None = None,
         from_repos: tuple[str, ...] | list[str] = (), max_concurrent: int = 3,
         chunk_size: int | None = None) -> str:
    """Push the image or index `manifest_bytes` to `ref`; returns the manifest's digest.

    `from_repos` are repository paths on the same registry (`library/busybox`) to try
    cross-repository mounts from. `chunk_size` makes uploads chunked (PATCH) above it.
    """
    obj, media = decode(manifest_bytes, manifest_media_type)
    *children, top = _plan(blobs, obj, media, manifest_bytes, 0)
    own = client is None
    client = client or RegistryClient(ref.domain)
    progress = progress or Progress()
    try:
        pusher = _Push(ref, blobs, client, progress, from_repos, max_concurrent, chunk_size)
        progress.push_started(ref)
        for child in children:
            pusher.push_blobs(child)
            client.put_manifest(ref.path, child.digest, child.data, child.media_type)
        pusher.push_blobs(top)
        digest = client.put_manifest(ref.path, ref.tag or ref.digest or "latest",
                                     manifest_bytes, media)
        progress.push_finished(ref, digest, len(manifest_bytes))
        return digest
    finally:
        if own:
            client.close()


def _read(blobs: BlobStore, digest: str, what: str) -> bytes:
    try:
        return blobs.read(digest)
    except BlobError:
        raise err.RegistryError(f"cannot push: {what} {digest} is not in the store") from None


def _plan(blobs: BlobStore, obj: dict[str, Any], media: str, data: bytes,
          depth: int) -> list[_Manifest]:
    """The manifests to push, children before their index, checking every blob is present."""
    if media in INDEX_TYPES:
        if depth >= _MAX_DEPTH:
            raise err.UnsupportedManifestError("image indexes nested too deeply")
        out: list[_Manifest] = []
        for desc, _ in index_entries(obj):
            if desc.media_type not in MANIFEST_TYPES | INDEX_TYPES:
                raise err.UnsupportedManifestError(
                    f"cannot push index entry of type {desc.media_type!r}")
            child = _read(blobs, desc.digest, "manifest")
            child_obj, child_media = decode(child, desc.media_type)
            out += _plan(blobs, child_obj, child_media, child, depth + 1)
        return [*out, _Manifest(sha256_digest(data), data, media)]
    config, layers = image_parts(obj)
    for desc in [config, *layers]:
        if not blobs.has(desc.digest):
            raise err.RegistryError(f"cannot push: blob {desc.digest} is not in the store")
        if blobs.size(desc.digest) != desc.size:
            raise err.RegistryError(f"cannot push: blob {desc.digest} is "
                                    f"{blobs.size(desc.digest)} bytes, the manifest says "
                                    f"{desc.size}")
    ids = _layer_ids(blobs, config, layers)
    return [_Manifest(sha256_digest(data), data, media, config,
                      tuple(zip(layers, ids, strict=True)))]


def _layer_ids(blobs: BlobStore, config: Descriptor, layers: list[Descriptor]) -> list[str]:
    """Docker names pushed layers by their diff_id; the blob digest when that is unknown."""
    try:
        diff_ids = json.loads(blobs.read(config.digest))["rootfs"]["diff_ids"]
    except (ValueError, KeyError, TypeError):
        diff_ids = None
    if isinstance(diff_ids, list) and len(diff_ids) == len(layers) and \
            all(isinstance(d, str) for d in diff_ids):
        return [short_id(d) for d in diff_ids]
    return [la.short_id for la in layers]


class _Push:
    def __init__(self, ref: Reference, blobs: BlobStore, client: RegistryClient,
                 progress: Progress, from_repos: tuple[str, ...] | list[str],
                 max_concurrent: int, chunk_size: int | None) -> None:
        self.ref, self.blobs, self.client, self.progress = ref, blobs, client, progress
        self.repo = ref.path
        self.from_repos = [r for r in from_repos if r != self.repo]
        self.max_concurrent = max(1, max_concurrent)
        self.chunk_size = chunk_size
        self.done: set[str] = set()

    def push_blobs(self, image: _Manifest) -> None:
        if image.config is None:
            return
        layers = [(d, i) for d, i in image.layers if d.digest not in self.done]
        unique = list({d.digest: (d, i) for d, i in layers}.values())
        for _, shown in unique:
            self.progress.layer_started(shown, None)
        with ThreadPoolExecutor(max_workers=self.max_concurrent,
                                thread_name_prefix="barque-push") as pool:
            futures = [pool.submit(self._blob, d, i) for d, i in unique]
            try:
                for f in futures:
                    f.result()
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        if image.config.digest not in self.done:
            self._blob(image.config, None)  # Docker does not show the config
        self.done.update(d.digest for d, _ in unique)
        self.done.add(image.config.digest)

    def _blob(self, desc: Descriptor, shown: str | None) -> None:
        if self.client.blob_exists(self.repo, desc.digest) is not None:
            if shown:
                self.progress.layer_exists(shown)
            return
        for source in self.from_repos:
            try:
                mounted = self.client.mount_blob(self.repo, desc.digest, source)
            except err.UnauthorizedError:
                mounted = False  # no pull access to the source: upload instead
            if mounted:
                if shown:
                    self.progress.layer_mounted(shown, source)
                return
        with self.blobs.open(desc.digest) as f:
            self.client.upload_blob(self.repo, desc.digest, f, desc.size,
                                    chunk_size=self.chunk_size,
                                    on_progress=self._on_progress(shown, desc.size))
        if shown:
            self.progress.layer_done(shown)

    def _on_progress(self, shown: str | None, total: int) -> ProgressCallback | None:
        if shown is None:
            return None
        layer = shown

        def report(done: int) -> None:
            self.progress.layer_progress(layer, done, total)
        return report
