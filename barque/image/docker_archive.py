"""`docker save` archives: writing them (Docker's legacy layout and an OCI layout in one tar,
as Docker 25 does) and reading their `manifest.json` for `load`.

Written archive: `blobs/sha256/<hex>` holds each config, each UNCOMPRESSED layer (its digest is
its diff ID) and an OCI manifest per image; `index.json` and `oci-layout` make it an OCI
layout. The legacy part is `manifest.json`, `repositories`, `<config hex>.json` and one
`<v1 id>/{VERSION,json,layer.tar}` dir per layer, where the `.json` and `layer.tar` files are
symlinks into `blobs/` (Docker itself wrote duplicate layers as symlinks), so no layer is
stored twice. skopeo's `docker-archive:` reads manifest.json, `oci-archive:` index.json.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import IO, Any, cast

from barque.image import oci_layout as ol
from barque.image import reference as refs
from barque.image.archive_io import (
    STREAM_ERRORS,
    ArchiveError,
    Member,
    Spool,
    TarWriter,
    decompressor,
    layer_digest,
    open_uncompressed,
    stream_error,
    uncompressed_digest,
)
from barque.image.oci_archive import (
    MEDIA_DOCKER_CONFIG,
    MEDIA_DOCKER_LAYER,
    MEDIA_LAYER_ZSTD,
    Pending,
    Selected,
    blob_name,
    index_bytes,
    index_entries,
    platform_of,
)
from barque.image.store import ImageStore, LayerRef

# The container config Docker's legacy layer `json` files carry (all zero values).
_EMPTY_CONTAINER_CONFIG: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
    "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": None,
}
_V1_SKIP = ("rootfs", "history")  # image config keys that are not part of a v1 image json


# --- writing -----------------------------------------------------------------------------

def _layer_size(store: ImageStore, layer: LayerRef) -> int:
    """The uncompressed size of a stored layer, checking it against its diff ID on the way
    (a tar header needs the size before the data, and the output may be a pipe)."""
    path = store.blobs.path(layer.blob_digest)
    digest, size = uncompressed_digest(path)
    if digest != layer.diff_id:
        raise ArchiveError(f"layer {layer.blob_digest} in the store is corrupt: its content is "
                           f"{digest}, not {layer.diff_id}")
    return size


def v1_ids(config_digest: str, chains: list[str]) -> list[str]:
    """Legacy layer IDs: each a hash of its chain ID and parent, the top one also of the image
    (Docker's v1.CreateID has the same shape), so images sharing layers share dirs."""
    ids: list[str] = []
    for i, chain in enumerate(chains):
        seed: dict[str, str] = {"layer_id": chain, "parent": ids[-1] if ids else ""}
        if i == len(chains) - 1:
            seed["config"] = config_digest
        ids.append(hashlib.sha256(ol.canonical_json(seed)).hexdigest())
    return ids


def _v1_json(layer_id: str, parent: str, config: dict[str, Any] | None) -> bytes:
    if config is None:
        body: dict[str, Any] = {"created": "1970-01-01T00:00:00Z",
                                "container_config": _EMPTY_CONTAINER_CONFIG}
    else:
        body = {k: v for k, v in config.items() if k not in _V1_SKIP}
        body.setdefault("container_config", _EMPTY_CONTAINER_CONFIG)
    body["id"] = layer_id
    if parent:
        body["parent"] = parent
    return ol.canonical_json(body)


@dataclass
class _Written:
    """What an archive already holds: blob digests, legacy dirs, layer sizes by diff ID."""

    blobs: set[str] = field(default_factory=set)
    dirs: set[str] = field(default_factory=set)
    sizes: dict[str, int] = field(default_factory=dict)


def _write_image(tar: TarWriter, store: ImageStore, sel: Selected, done: _Written) -> tuple[
        dict[str, Any], list[dict[str, Any]]]:
    """One image's files; returns its manifest.json item and its index entries."""
    image = sel.image
    config_bytes = store.blobs.read(image.id)
    config = cast(dict[str, Any], store.config(image))
    config_hex = image.id.split(":", 1)[1]
    if image.id not in done.blobs:
        done.blobs.add(image.id)
        tar.add_bytes(blob_name(image.id), config_bytes)
        tar.add_symlink(f"{config_hex}.json", blob_name(image.id))
    layer_descs = []
    for layer in image.layers:
        if layer.diff_id not in done.sizes:
            size = done.sizes[layer.diff_id] = _layer_size(store, layer)
            with open_uncompressed(store.blobs.path(layer.blob_digest)) as src:
                tar.add_stream(blob_name(layer.diff_id), size, cast(IO[bytes], src))
        layer_descs.append({"mediaType": ol.MEDIA_LAYER, "digest": layer.diff_id,
                            "size": done.sizes[layer.diff_id]})
    ids = v1_ids(image.id, [la.chain_id for la in image.layers])
    for i, layer_id in enumerate(ids):
        if layer_id in done.dirs:
            continue
        done.dirs.add(layer_id)
        parent = ids[i - 1] if i else ""
        top = config if i == len(ids) - 1 else None
        tar.add_bytes(f"{layer_id}/VERSION", b"1.0")
        tar.add_bytes(f"{layer_id}/json", _v1_json(layer_id, parent, top))
        tar.add_symlink(f"{layer_id}/layer.tar", "../" + blob_name(image.layers[i].diff_id))
    manifest = ol.canonical_json({
        "schemaVersion": 2, "mediaType": ol.MEDIA_MANIFEST,
        "config": {"mediaType": ol.MEDIA_CONFIG, "digest": image.id, "size": len(config_bytes)},
        "layers": layer_descs})
    desc = ol.descriptor(ol.MEDIA_MANIFEST, manifest, platform=platform_of(config))
    if desc["digest"] not in done.blobs:
        done.blobs.add(desc["digest"])
        tar.add_bytes(blob_name(desc["digest"]), manifest)
    item = {"Config": f"{config_hex}.json",
            "RepoTags": [t.familiar for t in sel.tags] or None,
            "Layers": [f"{layer_id}/layer.tar" for layer_id in ids]}
    return item, index_entries(desc, sel.tags)


def write(out: IO[bytes], store: ImageStore, selection: list[Selected]) -> None:
    """The combined docker-archive + OCI layout tar of the selected images."""
    tar = TarWriter(out)
    done = _Written()
    tar.add_bytes("oci-layout", ol.canonical_json({"imageLayoutVersion": ol.LAYOUT_VERSION}))
    items, entries = [], []
    repositories: dict[str, dict[str, str]] = {}
    for sel in selection:
        item, image_entries = _write_image(tar, store, sel, done)
        items.append(item)
        entries += image_entries
        top = item["Layers"][-1].split("/", 1)[0] if item["Layers"] else ""
        for tag in sel.tags:
            repositories.setdefault(tag.familiar_repository, {})[str(tag.tag)] = top
    tar.add_bytes("index.json", index_bytes(entries))
    tar.add_bytes("manifest.json", _json(items))
    if repositories:
        tar.add_bytes("repositories", _json(repositories))
    tar.close()


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


# --- reading -----------------------------------------------------------------------------

_LAYER_MEDIA = {"": MEDIA_DOCKER_LAYER, "gzip": ol.MEDIA_DOCKER_LAYER_GZIP,
                "zstd": MEDIA_LAYER_ZSTD}
_OCI_LAYER_MEDIA = {"": ol.MEDIA_LAYER, "gzip": ol.MEDIA_LAYER_GZIP, "zstd": MEDIA_LAYER_ZSTD}


def _layer(spool: Spool, name: str) -> tuple[Member, str]:
    """A layer file as a storable blob and its diff ID. gzip and zstd layers stay as they
    are; bzip2 and xz ones (which have no layer media type) are stored decompressed."""
    member = spool.get(name, "layer")
    kind = member.compression
    if not kind:
        return member, member.digest
    if kind in ("gzip", "zstd"):
        return member, layer_digest(member.path, f"layer {name!r}")
    try:
        with open(member.path, "rb") as f:
            plain = spool.add_file(decompressor(f, kind))
    except STREAM_ERRORS as e:
        raise ArchiveError(f"invalid archive: layer {name!r}: {stream_error(e)}") from None
    return plain, plain.digest


def _str_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ArchiveError(f"invalid archive: manifest.json: {what} is not a list of strings")
    return list(value)


def _tags(names: list[str]) -> list[str]:
    out = []
    for name in names:
        try:
            ref = refs.parse(name)
        except refs.ReferenceError as e:
            raise ArchiveError(f"invalid tag {name!r} in manifest.json: {e}") from None
        if ref.digest:
            raise ArchiveError(f"invalid tag {name!r} in manifest.json: a digest is not a tag")
        out.append(str(ref))
    return out


def _manifest_for(config_bytes: bytes, layers: list[tuple[Member, str]]) -> bytes:
    """A manifest for the loaded blobs: Docker schema 2, or OCI when a layer is zstd (schema
    2 has no zstd type)."""
    kinds = [m.compression for m, _ in layers]
    oci = "zstd" in kinds
    media = _OCI_LAYER_MEDIA if oci else _LAYER_MEDIA
    return ol.canonical_json({
        "schemaVersion": 2,
        "mediaType": ol.MEDIA_MANIFEST if oci else ol.MEDIA_DOCKER_MANIFEST,
        "config": {"mediaType": ol.MEDIA_CONFIG if oci else MEDIA_DOCKER_CONFIG,
                   "digest": ol.sha256_digest(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": media[kind], "digest": m.digest, "size": m.size}
                   for (m, _), kind in zip(layers, kinds, strict=True)],
    })


def read_manifest(spool: Spool) -> list[Pending]:
    """The images a docker-archive's manifest.json lists, each checked: config present and
    JSON, every layer present and matching its diff ID in the config."""
    _, items = spool.read_json("manifest.json", "manifest")
    if not isinstance(items, list) or not items:
        raise ArchiveError("invalid archive: manifest.json lists no images")
    out = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("Config"), str):
            raise ArchiveError("invalid archive: manifest.json: an entry lacks its Config")
        layer_names = _str_list(item.get("Layers"), "Layers")
        tags = _tags(_str_list(item.get("RepoTags"), "RepoTags"))
        config_member = spool.get(item["Config"], "image config")
        config_bytes, config = spool.read_json(item["Config"], "image config")
        if not isinstance(config, dict):
            raise ArchiveError(f"invalid archive: image config {item['Config']!r} is not a "
                               "JSON object")
        rootfs = config.get("rootfs")
        diff_ids = (rootfs.get("diff_ids") if isinstance(rootfs, dict) else None) or []
        if not isinstance(diff_ids, list) or len(diff_ids) != len(layer_names):
            raise ArchiveError("invalid manifest, layers length mismatch: expected "
                               f"{len(diff_ids) if isinstance(diff_ids, list) else 0}, "
                               f"got {len(layer_names)}")
        layers = []
        for i, (name, want) in enumerate(zip(layer_names, diff_ids, strict=True)):
            member, diff_id = _layer(spool, name)
            if diff_id != want:
                raise ArchiveError(f"invalid diffID for layer {i}: expected {want!r}, "
                                   f"got {diff_id!r}")
            layers.append((member, diff_id))
        manifest = _manifest_for(config_bytes, layers)
        out.append(Pending(config_member.digest, manifest,
                           [config_member, *(m for m, _ in layers)], tags))
    return out
