"""BuildKit's `registry` cache backend for `barque build`: `--cache-to type=registry,ref=R`
pushes a cache manifest of its own to R (build/cache_local.py's manifest and config: an OCI
image manifest whose config is Barque's records), and `--cache-from type=registry,ref=R`
reads one back, each layer fetched only when a step needs it. (A --cache-from that names an
image reads the image's inline records instead: engine/build.py's _cache_image.)

The builder calls these through the engine (build.py hands them over): it never talks to a
registry itself.
"""

from __future__ import annotations

import functools

from barque.build import cache_local
from barque.image import reference as refs

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from barque.build.cache import Imported
    from barque.image.store import ImageStore, LayerRef

MAX_CONFIG = 4 << 20  # bytes of a cache config read from a registry


def _reference(text: str) -> refs.Reference:
    from barque.image.store import ImageError

    try:
        return refs.parse(text)
    except refs.ReferenceError as e:
        raise ImageError(str(e)) from None


def push(store: ImageStore, text: str, config: bytes, manifest: bytes,
         layers: list[LayerRef]) -> str:
    """Push a cache manifest (cache_local.cache_manifest's) to `text`; its digest. Each
    layer is skipped when the repository has it; the manifest goes last, under the tag."""
    from barque.image.oci_layout import MEDIA_MANIFEST
    from barque.registry.client import RegistryClient
    from barque.sha256 import hexdigest

    ref = _reference(text)
    config_digest = "sha256:" + hexdigest(config)
    with RegistryClient(ref.domain) as client:
        blobs = [(la.blob_digest, la.blob_size) for la in layers]
        for digest, size in dict(blobs).items():
            if client.blob_exists(ref.path, digest) is None:
                with store.blobs.open(digest) as f:
                    client.upload_blob(ref.path, digest, f, size)
        if client.blob_exists(ref.path, config_digest) is None:
            import io

            client.upload_blob(ref.path, config_digest, io.BytesIO(config), len(config))
        return client.put_manifest(ref.path, ref.tag or ref.digest or "latest", manifest,
                                   MEDIA_MANIFEST)


def load(store: ImageStore, text: str) -> dict[str, Imported]:
    """The records of the cache manifest `text` names (cache_local.CacheError when it is
    not one: an image, say); its layers are fetched later, by the records' `fetch`. The
    config is downloaded into the store's blobs (checked against its digest; the collector
    removes it with the rest no image or cache entry names)."""
    import json

    from barque.registry.client import RegistryClient
    from barque.registry.manifest import decode

    ref = _reference(text)
    with RegistryClient(ref.domain) as client:
        data, media, _ = client.get_manifest(ref.path, ref.digest or ref.tag or "latest")
        manifest, _ = decode(data, media)
        desc = cache_local.cache_config_descriptor(manifest, text)
        digest, size = str(desc.get("digest", "")), desc.get("size")
        if not isinstance(size, int) or not 0 <= size <= MAX_CONFIG:
            raise cache_local.CacheError(f"{text}: cache config of {size!r} bytes")
        if not store.blobs.has(digest):
            with store.blobs.writer(digest, size) as writer:
                if not writer.exists:
                    client.fetch_blob(ref.path, digest, writer)
    try:
        config = json.loads(store.blobs.read(digest))
    except ValueError as e:
        raise cache_local.CacheError(f"{text}: cache config: {e}") from None
    if not isinstance(config, dict):
        raise cache_local.CacheError(f"{text}: cache config is not a JSON object")
    return cache_local.parse_config(config, text, functools.partial(fetch, ref=str(ref)))


def fetch(store: ImageStore, layers: list[LayerRef], *, ref: str) -> None:
    """Bring `layers` of the cache `ref` into the store: each blob downloaded (checked
    against its digest and size), then unpacked (checked against its diff ID)."""
    from barque.registry.client import RegistryClient

    parsed = _reference(ref)
    with RegistryClient(parsed.domain) as client:
        for la in layers:
            if not store.blobs.has(la.blob_digest):
                with store.blobs.writer(la.blob_digest, la.blob_size) as writer:
                    if not writer.exists:
                        client.fetch_blob(parsed.path, la.blob_digest, writer)
            store.ensure_layer(la)
