"""BuildKit's `local` cache backend: a build's step records and their layers in a directory
(`--cache-to type=local,dest=DIR[,mode=min|max]`), read back by a build on another root
(`--cache-from type=local,src=DIR`), as CI jobs keep a cache between runs.

The directory is an OCI image layout, as BuildKit's: `oci-layout`, `index.json` naming one
manifest tagged `latest`, `blobs/sha256/...`. The manifest is an OCI image manifest (as
BuildKit's `image-manifest=true`) whose layers are every layer a record names and whose
config is Barque's cache config (MEDIA_CACHE_CONFIG), not BuildKit's
`application/vnd.buildkit.cacheconfig.v0`: BuildKit's records are keyed by the digests of
its LLB operations, linked into a graph, which Barque's builder never computes; a directory
in its format would only mislead BuildKit (and one of BuildKit's would be useless here).
The config holds the same records as the inline cache (cache.CONFIG_FIELD), each with the
layer chain of its result:

    {"layers": [{"blob": DIGEST, "diffID": DIGEST, "mediaType": TYPE, "size": N}, ...],
     "records": [{"key": KEY, "layers": [INDEX, ...], "created": RFC3339}, ...]}

An export is written in a new directory beside DEST (locked while written) and swapped in
with one renameat2(RENAME_EXCHANGE): a crash leaves the old cache or the new one, never half
of one, and the dir a killed export left is removed by the next export to DEST. A directory
being read is hostile: digests must be sha256 hex (they become paths), only regular files
are read and only as many bytes as they may hold, every blob is checked against its digest
when it is copied into the store and every layer against its diff ID when unpacked. The
same manifest and config also go to a registry (engine/build_cache.py).
"""

from __future__ import annotations

import os

from barque.build.cache import Imported
from barque.image import oci_layout as ol

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

    from barque.image.store import ImageStore, LayerRef

MEDIA_CACHE_CONFIG = "application/vnd.barque.build.cache.v0+json"
TAG = "latest"  # BuildKit's default tag in a local cache's index.json
LAYER_TYPES = frozenset({ol.MEDIA_LAYER, ol.MEDIA_LAYER_GZIP, ol.MEDIA_DOCKER_LAYER_GZIP,
                         "application/vnd.oci.image.layer.v1.tar+zstd"})
TEMP_PREFIX = ".barque-cache-"
MAX_JSON = 4 << 20  # bytes of index.json, a manifest or a config read from a cache dir


class CacheError(Exception):
    """A cache directory that cannot be written or read."""


# --- export --------------------------------------------------------------------------------
def export(store: ImageStore, dest: str, stages: list[tuple[list[list[Any]], list[LayerRef]]]
           ) -> str:
    """Write the records of `stages` (each a stage's cache.CONFIG_FIELD records and its
    layers: a record's count is a prefix of them) as a cache layout at `dest`, replacing
    what a previous export left there. Returns the manifest's digest."""
    import shutil
    import tempfile

    from barque.linux import locks

    dest = os.path.abspath(dest)
    _check_dest(dest)
    parent = os.path.dirname(dest)
    os.makedirs(parent, exist_ok=True)
    prefix = f".{os.path.basename(dest)}{TEMP_PREFIX}"
    reclaim(parent, prefix)
    tmp = tempfile.mkdtemp(prefix=prefix, dir=parent)
    fd = locks.open_dir(tmp)  # held while it is written: `reclaim` leaves it alone
    locks.lock(fd)
    try:
        digest = _write_layout(store, tmp, stages)
        _sync(tmp)
        os.chmod(tmp, 0o755)  # (mkdtemp's is 0700)
        _swap_in(tmp, dest)
        return digest
    finally:
        os.close(fd)
        # the new dir if the export failed, else the old cache, swapped out
        shutil.rmtree(tmp, ignore_errors=True)


def reclaim(parent: str, prefix: str) -> None:
    """What exports killed mid-way left in `parent` (their dirs no longer locked)."""
    import shutil

    from barque.linux import locks

    for name in os.listdir(parent):
        if not name.startswith(prefix):
            continue
        path = os.path.join(parent, name)
        try:
            fd = locks.open_dir(path, nofollow=True)
        except OSError:
            continue
        try:
            if locks.try_lock(fd):
                shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(fd)


def _check_dest(dest: str) -> None:
    """Missing, an empty directory or a cache layout: anything else is the user's and is
    never replaced."""
    if not os.path.lexists(dest):
        return
    if os.path.islink(dest) or not os.path.isdir(dest):
        raise CacheError(f"cache destination {dest} exists and is not a directory")
    names = set(os.listdir(dest))
    if names and not ({"index.json", "oci-layout"} & names and names <= {
            "index.json", "oci-layout", "blobs", "ingest"}):
        raise CacheError(f"cache destination {dest} is not empty and not a cache "
                         "directory (an OCI layout)")


def _swap_in(tmp: str, dest: str) -> None:
    from barque.linux import files

    try:
        if not os.path.isdir(dest):
            files.rename_noreplace(tmp, dest)
            return
    except FileExistsError:
        pass  # another export's, made since: replaced as any old cache
    files.rename_exchange(tmp, dest)


def _sync(path: str) -> None:
    from barque.linux import files

    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        files.syncfs(fd)
    finally:
        os.close(fd)


def cache_config(stages: list[tuple[list[list[Any]], list[LayerRef]]]
                 ) -> tuple[dict[str, Any], list[LayerRef]]:
    """The config of `stages`' records (the first record of a key wins) and its layers."""
    layers: list[LayerRef] = []
    index: dict[str, int] = {}
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    for stage_records, stage_layers in stages:
        for key, count, created in stage_records:
            if key in seen:
                continue
            seen.add(key)
            chain = []
            for la in stage_layers[:count]:
                if la.blob_digest not in index:
                    index[la.blob_digest] = len(layers)
                    layers.append(la)
                chain.append(index[la.blob_digest])
            records.append({"key": key, "layers": chain, "created": created})
    config = {"layers": [{"blob": la.blob_digest, "diffID": la.diff_id,
                          "mediaType": la.media_type, "size": la.blob_size} for la in layers],
              "records": records}
    return config, layers


def cache_manifest(stages: list[tuple[list[list[Any]], list[LayerRef]]]
                   ) -> tuple[bytes, bytes, list[LayerRef]]:
    """(config, manifest, layers) of `stages`' records: what a directory or a registry
    holds."""
    config, layers = cache_config(stages)
    config_bytes = ol.canonical_json(config)
    manifest = ol.canonical_json({
        "schemaVersion": 2, "mediaType": ol.MEDIA_MANIFEST,
        "config": ol.descriptor(MEDIA_CACHE_CONFIG, config_bytes),
        "layers": [{"mediaType": la.media_type, "digest": la.blob_digest,
                    "size": la.blob_size} for la in layers]})
    return config_bytes, manifest, layers


def _write_layout(store: ImageStore, layout: str,
                  stages: list[tuple[list[list[Any]], list[LayerRef]]]) -> str:
    config_bytes, manifest, layers = cache_manifest(stages)
    ol.init_layout(layout)
    for la in layers:
        _copy_blob(store.blobs.path(la.blob_digest), ol.blob_path(layout, la.blob_digest))
    ol.write_blob(layout, config_bytes)
    digest = ol.write_blob(layout, manifest)
    ol.write_index(layout, {
        "schemaVersion": 2, "mediaType": ol.MEDIA_INDEX,
        "manifests": [ol.descriptor(ol.MEDIA_MANIFEST, manifest,
                                    annotations={ol.ANNOTATION_REF_NAME: TAG})]})
    return digest


def _copy_blob(src: str, dst: str) -> None:
    import shutil

    shutil.copyfile(src, dst)
    os.chmod(dst, 0o444)


# --- import --------------------------------------------------------------------------------
def load(src: str) -> dict[str, Imported]:
    """The records of the cache layout `src` by key. Raises CacheError (or ol.LayoutError)
    for a directory that is not one; records that do not add up are skipped."""
    index = _read_index(src)
    manifests = [m for m in index["manifests"] if isinstance(m, dict)]
    tagged = [m for m in manifests
              if (m.get("annotations") or {}).get(ol.ANNOTATION_REF_NAME) == TAG]
    if not (tagged or len(manifests) == 1):
        raise CacheError(f"{src}: no cache manifest tagged {TAG!r}")
    manifest = _read_json_blob(src, (tagged or manifests)[0])
    config_desc = cache_config_descriptor(manifest, src)
    import functools

    return parse_config(_read_json_blob(src, config_desc), f"local:{src}",
                        functools.partial(fetch, src=src))


def cache_config_descriptor(manifest: dict[str, Any], where: str) -> dict[str, Any]:
    """The manifest's config descriptor, if it is a cache Barque wrote (else CacheError)."""
    desc = manifest.get("config")
    if not isinstance(desc, dict) or desc.get("mediaType") != MEDIA_CACHE_CONFIG:
        raise CacheError(f"{where}: not a cache Barque wrote (its config is not "
                         f"{MEDIA_CACHE_CONFIG})")
    return desc


def parse_config(config: dict[str, Any], source: str, fetcher: Any) -> dict[str, Imported]:
    """A cache config's records by key (the first of a key wins), each with `fetcher`
    (store, layers) to bring its layers into a store."""
    from barque.image.store import chain_ids

    layers = _layers(config.get("layers"))
    out: dict[str, Imported] = {}
    records = config.get("records")
    for rec in records if isinstance(records, list) else []:
        chain = _chain(rec, len(layers))
        if chain is None:
            continue
        picked = [layers[i] for i in chain]
        refs = _refs(picked, chain_ids([la[1] for la in picked]))
        out.setdefault(rec["key"], Imported(refs, len(refs), rec["created"], source,
                                            fetch=fetcher))
    return out


def _read_index(src: str) -> dict[str, Any]:
    path = os.path.join(src, "index.json")
    try:
        index = _json(_read_regular(path), path)
    except FileNotFoundError:
        raise CacheError(f"{src}: not a cache directory (no index.json)") from None
    if not isinstance(index.get("manifests"), list):
        raise CacheError(f"{path}: not an image index")
    return index


def _read_json_blob(src: str, desc: dict[str, Any]) -> dict[str, Any]:
    """A manifest or config of the cache dir, checked against its descriptor."""
    digest = str(desc.get("digest", ""))
    data = _read_regular(ol.blob_path(src, digest))
    if ol.sha256_digest(data) != digest or len(data) != desc.get("size"):
        raise CacheError(f"{src}: blob {digest} does not match its descriptor")
    return _json(data, digest)


def _read_regular(path: str) -> bytes:
    """At most MAX_JSON bytes of the regular file `path` (a FIFO or a device there would
    stall or never end)."""
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CacheError(f"{path}: not a regular file")
        data = f.read(MAX_JSON + 1)
    if len(data) > MAX_JSON:
        raise CacheError(f"{path}: larger than {MAX_JSON} bytes")
    return data


def _json(data: bytes, what: str) -> dict[str, Any]:
    import json

    try:
        obj = json.loads(data)
    except ValueError as e:
        raise CacheError(f"{what}: {e}") from None
    if not isinstance(obj, dict):
        raise CacheError(f"{what}: not a JSON object")
    return obj


def _layers(value: object) -> list[tuple[str, str, str, int]]:
    """The config's layers: (blob, diff ID, media type, size), each checked."""
    import re

    if not isinstance(value, list):
        raise CacheError("cache config: no layers")
    out = []
    for la in value:
        if not (isinstance(la, dict) and all(isinstance(la.get(k), str) and re.fullmatch(
                r"sha256:[0-9a-f]{64}", la[k]) for k in ("blob", "diffID"))
                and la.get("mediaType") in LAYER_TYPES
                and type(la.get("size")) is int and la["size"] >= 0):
            raise CacheError(f"cache config: malformed layer {la!r:.200}")
        out.append((la["blob"], la["diffID"], la["mediaType"], la["size"]))
    return out


def _chain(rec: object, n: int) -> list[int] | None:
    if not (isinstance(rec, dict) and isinstance(rec.get("key"), str)
            and rec["key"].startswith("sha256:") and isinstance(rec.get("created"), str)
            and isinstance(rec.get("layers"), list)):
        return None
    chain = rec["layers"]
    if not all(type(i) is int and 0 <= i < n for i in chain):
        return None
    return chain


def _refs(picked: list[tuple[str, str, str, int]], chains: list[str]) -> list[LayerRef]:
    from barque.image.store import LayerRef

    return [LayerRef(chain, diff_id, blob, media_type, size)
            for (blob, diff_id, media_type, size), chain in zip(picked, chains, strict=True)]


def fetch(store: ImageStore, layers: list[LayerRef], *, src: str) -> None:
    """Bring `layers` from the cache layout `src` into the store: each blob copied in
    (checked against its digest and size), then unpacked (checked against its diff ID).
    The caller holds the store's writer lock."""
    from barque.image.store import ImageError

    for la in layers:
        if not store.blobs.has(la.blob_digest):
            _copy_in(store, ol.blob_path(src, la.blob_digest), la.blob_digest, la.blob_size)
        if store.blobs.size(la.blob_digest) != la.blob_size:
            raise ImageError(f"{src}: blob {la.blob_digest} is not {la.blob_size} bytes")
        store.ensure_layer(la)


def _copy_in(store: ImageStore, path: str, digest: str, size: int) -> None:
    """A blob file of a cache dir into the store: a regular file, at most `size` bytes read
    (a FIFO or /dev/zero in its place never stalls the build), checked on commit."""
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CacheError(f"{path}: not a regular file")
        with store.blobs.writer(digest, size) as writer:
            if writer.exists:
                return
            writer.restart()
            left = size
            while left > 0 and (chunk := f.read(min(left, 1 << 20))):
                writer.write(chunk)
                left -= len(chunk)
            writer.commit()
