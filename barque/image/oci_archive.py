"""OCI image layouts in archives: writing the store's images as a layout (tar or dir) and
reading the images of a spooled layout for `load`.

Written indexes name each tag twice, as Docker 25 does: `io.containerd.image.name` (the full
reference, what containerd and Docker read) and `org.opencontainers.image.ref.name` (here the
familiar `busybox:latest`, what `skopeo … oci-archive:FILE:busybox:latest` selects).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from barque.image import oci_layout as ol
from barque.image import reference as refs
from barque.image.archive_io import ArchiveError, Member, Spool, layer_digest
from barque.image.store import Image, ImageStore

MEDIA_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
MEDIA_DOCKER_FOREIGN_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
MEDIA_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

# Docker schema 2 media types and their OCI equivalents (what `skopeo copy … oci:` writes).
_TO_OCI = {
    MEDIA_DOCKER_CONFIG: ol.MEDIA_CONFIG,
    MEDIA_DOCKER_LAYER: ol.MEDIA_LAYER,
    ol.MEDIA_DOCKER_LAYER_GZIP: ol.MEDIA_LAYER_GZIP,
    MEDIA_DOCKER_FOREIGN_GZIP: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
}
LAYER_TYPES = frozenset({
    ol.MEDIA_LAYER, ol.MEDIA_LAYER_GZIP, MEDIA_LAYER_ZSTD, MEDIA_DOCKER_LAYER,
    ol.MEDIA_DOCKER_LAYER_GZIP,
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
})
_MAX_INDEX_DEPTH = 4


class Sink(Protocol):
    """Where archive files go: a tar (archive_io.TarWriter) or a directory (DirSink)."""

    def add_bytes(self, name: str, data: bytes) -> None: ...

    def add_stream(self, name: str, size: int, stream: IO[bytes]) -> None: ...


class DirSink:
    """Files of an OCI layout directory, each written atomically; blobs only when missing."""

    def __init__(self, root: str) -> None:
        self.root = root

    def add_bytes(self, name: str, data: bytes) -> None:
        path = os.path.join(self.root, name)
        if not (name.startswith("blobs/") and os.path.exists(path)):
            ol.atomic_write(path, data, 0o444 if name.startswith("blobs/") else 0o644)

    def add_stream(self, name: str, size: int, stream: IO[bytes]) -> None:
        path = os.path.join(self.root, name)
        if os.path.exists(path):
            return
        with ol.atomic_writer(path, 0o444) as out:
            while chunk := stream.read(1 << 20):
                out.write(chunk)


@dataclass
class Selected:
    """An image to save and the tags it is saved under (full references)."""

    image: Image
    tags: list[refs.Reference] = field(default_factory=list)


def blob_name(digest: str) -> str:
    return "blobs/" + digest.replace(":", "/", 1)


def platform_of(config: dict[str, Any]) -> dict[str, str]:
    plat = {"architecture": str(config.get("architecture", "")), "os": str(config.get("os", ""))}
    if config.get("variant"):
        plat["variant"] = str(config["variant"])
    return plat


def index_entries(desc: dict[str, Any], tags: list[refs.Reference]) -> list[dict[str, Any]]:
    """One index entry per tag (an untagged image gets one without names)."""
    if not tags:
        return [dict(desc)]
    return [{**desc, "annotations": {ol.ANNOTATION_CONTAINERD_NAME: str(tag),
                                     ol.ANNOTATION_REF_NAME: tag.familiar}} for tag in tags]


def to_oci_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """A Docker schema 2 manifest as the equivalent OCI manifest (same blobs)."""
    out = {**manifest, "mediaType": ol.MEDIA_MANIFEST}
    out["config"] = {**manifest["config"],
                     "mediaType": _TO_OCI.get(manifest["config"].get("mediaType"), ol.MEDIA_CONFIG)}
    out["layers"] = [{**la, "mediaType": _TO_OCI.get(la.get("mediaType"), la.get("mediaType"))}
                     for la in manifest.get("layers", [])]
    return out


def write_stored_layout(sink: Sink, store: ImageStore, selection: list[Selected]) -> list[
        dict[str, Any]]:
    """The selected images' blobs as stored (Docker manifests become OCI ones); returns the
    index entries, which the caller writes last as index.json."""
    sink.add_bytes("oci-layout", ol.canonical_json({"imageLayoutVersion": ol.LAYOUT_VERSION}))
    written: set[str] = set()
    entries: list[dict[str, Any]] = []
    for sel in selection:
        manifest = store.manifest(sel.image)
        for digest in [manifest["config"]["digest"], *(la["digest"] for la in manifest["layers"])]:
            if digest not in written:
                written.add(digest)
                with store.blobs.open(digest) as f:
                    sink.add_stream(blob_name(digest), store.blobs.size(digest), f)
        if sel.image.manifest_media_type == ol.MEDIA_MANIFEST:
            manifest_bytes = store.blobs.read(sel.image.manifest_digest)
        else:
            manifest_bytes = ol.canonical_json(to_oci_manifest(manifest))
        desc = ol.descriptor(ol.MEDIA_MANIFEST, manifest_bytes,
                             platform=platform_of(store.config(sel.image)))
        if desc["digest"] not in written:
            written.add(desc["digest"])
            sink.add_bytes(blob_name(desc["digest"]), manifest_bytes)
        entries += index_entries(desc, sel.tags)
    return entries


def index_bytes(entries: list[dict[str, Any]]) -> bytes:
    return ol.canonical_json({"schemaVersion": 2, "mediaType": ol.MEDIA_INDEX,
                              "manifests": entries})


# --- reading -----------------------------------------------------------------------------

@dataclass
class Pending:
    """An image read from an archive and fully verified, waiting to be registered."""

    image_id: str
    manifest: bytes
    blobs: list[Member]
    tags: list[str] = field(default_factory=list)  # full references
    extra: list[Member] = field(default_factory=list)  # indexes it came through


def _descriptor(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("size"), int) or \
            not isinstance(value.get("mediaType", ""), str):
        raise ArchiveError(f"invalid archive: malformed {what} descriptor")
    try:
        ol.blob_path("", str(value.get("digest", "")))
    except ol.LayoutError as e:
        raise ArchiveError(f"invalid archive: {what}: {e}") from None
    return value


def _descriptors(value: Any, what: str) -> list[dict[str, Any]]:
    """A list of descriptors (absent: none)."""
    if value is not None and not isinstance(value, list):
        raise ArchiveError(f"invalid archive: the {what} descriptors are not a list")
    return [_descriptor(v, what) for v in value or []]


def _blob(spool: Spool, desc: dict[str, Any], what: str) -> Member:
    """The spooled blob a descriptor names, checked against its digest and size."""
    member = spool.get(blob_name(desc["digest"]), what)
    if member.digest != desc["digest"]:
        raise ArchiveError(f"invalid archive: {what} {desc['digest']}: content does not match "
                           f"its digest (got {member.digest})")
    if member.size != desc["size"]:
        raise ArchiveError(f"invalid archive: {what} {desc['digest']}: size {member.size} does "
                           f"not match the descriptor's {desc['size']}")
    return member


def _json(spool: Spool, desc: dict[str, Any], what: str) -> tuple[Member, bytes, dict[str, Any]]:
    member = _blob(spool, desc, what)
    data, value = spool.read_json(blob_name(desc["digest"]), what)
    if not isinstance(value, dict):
        raise ArchiveError(f"invalid archive: {what} {desc['digest']} is not a JSON object")
    return member, data, value


def _host_manifest(spool: Spool, desc: dict[str, Any], extra: list[Member],
                   depth: int = 0) -> dict[str, Any]:
    """Follow (nested) indexes to the host platform's manifest descriptor."""
    if desc.get("mediaType") not in ol.INDEX_TYPES:
        return desc
    if depth >= _MAX_INDEX_DEPTH:
        raise ArchiveError("invalid archive: image indexes nested too deeply")
    member, _, index = _json(spool, desc, "image index")
    extra.append(member)
    entries = _descriptors(index.get("manifests"), "manifest")
    want = ol.host_platform()
    matching = [m for m in entries if ol.platform_matches(m, want)] or \
        [m for m in entries if m.get("mediaType") in ol.INDEX_TYPES and "platform" not in m]
    if not matching:
        raise ArchiveError(f"no match for platform in manifest {desc['digest']}: "
                           f"{want['os']}/{want['architecture']} not found")
    return _host_manifest(spool, matching[0], extra, depth + 1)


def entry_name(annotations: Any) -> str | None:
    """The image name an index entry carries: containerd's annotation, else a ref.name that
    is a whole reference (a bare tag like `latest` names no repository)."""
    if not isinstance(annotations, dict):
        return None
    for key in (ol.ANNOTATION_CONTAINERD_NAME, ol.ANNOTATION_REF_NAME):
        name = annotations.get(key)
        if not isinstance(name, str) or not name:
            continue
        if key == ol.ANNOTATION_REF_NAME and ":" not in name and "/" not in name:
            continue
        try:
            ref = refs.parse(name, default_tag=False)
        except refs.ReferenceError:
            continue
        if ref.tag:
            return str(ref.with_tag(ref.tag))
    return None


def _verify_layers(spool: Spool, store: ImageStore, manifest: dict[str, Any],
                   config: dict[str, Any], digest: str) -> list[Member]:
    descs = _descriptors(manifest.get("layers"), "layer")
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(
            isinstance(d, str) and re.fullmatch(r"sha256:[a-f0-9]{64}", d) for d in diff_ids):
        raise ArchiveError(f"invalid archive: config of {digest}: rootfs.diff_ids must be a "
                           "list of sha256 digests")
    if len(diff_ids) != len(descs):
        raise ArchiveError(f"invalid archive: manifest {digest} has {len(descs)} layers but its "
                           f"config lists {len(diff_ids or [])} diff IDs")
    members = []
    for i, (desc, diff_id) in enumerate(zip(descs, diff_ids, strict=True)):
        if desc.get("mediaType") not in LAYER_TYPES:
            raise ArchiveError(f"invalid archive: layer {desc['digest']}: unsupported media "
                               f"type {desc.get('mediaType')!r}")
        member = _blob(spool, desc, "layer")
        # Every blob, even of a layer the store has unpacked: the blob is kept and would be
        # saved or pushed as that layer. A bad layer fails the load before any registration.
        got = member.digest if not member.compression else \
            layer_digest(member.path, f"layer {desc['digest']}")
        if got != diff_id:
            raise ArchiveError(f"invalid diffID for layer {i}: expected {diff_id!r}, "
                               f"got {got!r}")
        members.append(member)
    return members


def read_layout(spool: Spool, store: ImageStore) -> list[Pending]:
    """Every image an archived OCI layout's index.json names (host platform of each index)."""
    if spool.find("oci-layout") is not None:
        _, layout = spool.read_json("oci-layout", "oci-layout")
        version = layout.get("imageLayoutVersion") if isinstance(layout, dict) else None
        if version != ol.LAYOUT_VERSION:
            raise ArchiveError(f"invalid archive: unsupported OCI layout version {version!r}")
    _, index = spool.read_json("index.json", "index")
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise ArchiveError("invalid archive: index.json is not an image index")
    by_manifest: dict[str, Pending] = {}
    for raw in index["manifests"]:
        top = _descriptor(raw, "manifest")
        extra: list[Member] = []
        desc = _host_manifest(spool, top, extra)
        if desc.get("mediaType") not in ol.MANIFEST_TYPES:
            raise ArchiveError(f"invalid archive: unsupported manifest media type "
                               f"{desc.get('mediaType')!r}")
        pending = by_manifest.get(desc["digest"])
        if pending is None:
            member, data, manifest = _json(spool, desc, "manifest")
            config_desc = _descriptor(manifest.get("config"), "config")
            config_member, _, config = _json(spool, config_desc, "image config")
            layers = _verify_layers(spool, store, manifest, config, desc["digest"])
            pending = Pending(config_member.digest, data, [config_member, *layers, member],
                              extra=extra)
            by_manifest[desc["digest"]] = pending
        name = entry_name(top.get("annotations"))
        if name and name not in pending.tags:
            pending.tags.append(name)
    if not by_manifest:
        raise ArchiveError("invalid archive: index.json names no images")
    return list(by_manifest.values())
