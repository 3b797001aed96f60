"""Image archives: `save` (docker-archive, oci-archive, oci-dir), `load` and `import`.

`load` reads its input once, as a stream (stdin may be a pipe), spooling members under the
blob store's ingest dir; every image in the archive is verified (blob digests, layer diff IDs,
tags) before the first is registered, so a bad archive registers nothing. Image IDs survive
a save/load round trip: config bytes are copied exactly.
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import os
import re
import stat
import tarfile
import tempfile
from typing import IO, Any, cast

from barque.image import docker_archive, oci_archive
from barque.image import oci_layout as ol
from barque.image import reference as refs
from barque.image.archive_io import (
    STREAM_ERRORS,
    ArchiveError,
    Hashing,
    Member,
    Prefixed,
    Spool,
    Tap,
    TarWriter,
    adopt,
    compression_of,
    decompressor,
    read_head,
    stream_error,
)
from barque.image.config_changes import ChangeError, apply_changes
from barque.image.oci_archive import Pending, Selected
from barque.image.store import Image, ImageError, ImageNotFound, ImageStore, Prepared, tag_name
from barque.linux.locks import locked_dir

__all__ = ["ArchiveError", "FORMATS", "import_tarball", "load", "save", "select"]

FORMATS = ("docker-archive", "oci-archive", "oci-dir")
_BLOB_NAME_RE = re.compile(r"^blobs/sha256/([a-f0-9]{64})$")


# --- save --------------------------------------------------------------------------------

def _resolve_name(store: ImageStore, name: str) -> list[tuple[Image, refs.Reference | None]]:
    """The images `docker save NAME` writes and the tag each is saved under: a bare repository
    name means all its tags; an ID or a digest saves the image untagged."""
    ref = None
    if not refs.is_image_id(name):
        try:
            ref = refs.parse(name, default_tag=False)
        except refs.ReferenceError:
            ref = None
    if ref is not None and not ref.tag and not ref.digest:
        prefix = ref.repository + ":"
        tagged = [(image, refs.parse(tag)) for image in store.images() for tag in image.tags
                  if tag.startswith(prefix)]
        if tagged:
            return sorted(tagged, key=lambda pair: str(pair[1]))
    image = store.lookup(name)
    if image is None:  # dockerd 20.10's save: the name as given; a missing tag its own words
        raise ImageNotFound("reference does not exist" if ref is not None and ref.tag
                            else f"No such image: {name}")
    if ref is not None and not ref.digest:
        tag = refs.parse(name)
        if str(tag) in image.tags:
            return [(image, tag)]
    return [(image, None)]


def select(store: ImageStore, names: list[str]) -> list[Selected]:
    """The images and tags `names` denote, each image once (raises ImageNotFound)."""
    out: dict[str, Selected] = {}
    for name in names:
        for image, tag in _resolve_name(store, name):
            sel = out.setdefault(image.id, Selected(image))
            if tag is not None and tag not in sel.tags:
                sel.tags.append(tag)
    return list(out.values())


def _write_oci_archive(out: IO[bytes], store: ImageStore, selection: list[Selected]) -> None:
    tar = TarWriter(out)
    entries = oci_archive.write_stored_layout(tar, store, selection)
    tar.add_bytes("index.json", oci_archive.index_bytes(entries))
    tar.close()


def _ref_name(entry: dict[str, Any]) -> str | None:
    return (entry.get("annotations") or {}).get(ol.ANNOTATION_REF_NAME)


def _write_oci_dir(layout_dir: str, store: ImageStore, selection: list[Selected]) -> None:
    """Add the images to a layout dir; entries of the dir with other names are kept."""
    with locked_dir(layout_dir):
        ol.init_layout(layout_dir)
        entries = oci_archive.write_stored_layout(oci_archive.DirSink(layout_dir), store,
                                                  selection)
        names = {_ref_name(e) for e in entries} - {None}
        try:
            kept = [e for e in ol.read_index(layout_dir)["manifests"]
                    if _ref_name(e) not in names]
        except ol.LayoutError:
            kept = []
        ol.write_index(layout_dir, {"schemaVersion": 2, "mediaType": ol.MEDIA_INDEX,
                                    "manifests": [*kept, *entries]})


def save(store: ImageStore, names: list[str], out: IO[bytes] | str,
         fmt: str = "docker-archive") -> None:
    """`docker save`: write the images `names` denote to `out` (a stream, or a path written
    atomically; for "oci-dir" a layout directory)."""
    if fmt not in FORMATS:
        raise ArchiveError(f"unknown archive format {fmt!r} (use one of {', '.join(FORMATS)})")
    if not names:
        raise ArchiveError("no images to save")
    with store.writing():  # keeps the garbage collector off the blobs being read
        selection = select(store, names)
        if fmt == "oci-dir":
            if not isinstance(out, str):
                raise ArchiveError("oci-dir needs a directory path")
            _write_oci_dir(out, store, selection)
            return
        writer = docker_archive.write if fmt == "docker-archive" else _write_oci_archive
        if isinstance(out, str):
            with ol.atomic_writer(out) as f:
                writer(f, store, selection)
        else:
            writer(out, store, selection)


# --- load --------------------------------------------------------------------------------

def _check_blob_name(name: str, member: Member) -> None:
    """Blobs of an OCI layout must match their names: reject a bad one as soon as it ends."""
    match = _BLOB_NAME_RE.match(name)
    if match and member.digest != "sha256:" + match.group(1):
        raise ArchiveError(f"invalid archive: {name}: content does not match its digest "
                           f"(got {member.digest})")


def _read(spool: Spool, source: str | IO[bytes]) -> None:
    if not isinstance(source, str):
        spool.read_tar(source, _check_blob_name)
        return
    try:
        f = open(source, "rb")
    except OSError as e:
        raise ArchiveError(f"open {source}: {(e.strerror or str(e)).lower()}") from None
    with f:
        st = os.fstat(f.fileno())
        spool.read_tar(f, _check_blob_name, st.st_size if stat.S_ISREG(st.st_mode) else None)


def _familiar(name: str) -> str:
    return refs.parse(name).familiar


def _register(store: ImageStore, pending: list[Pending]) -> list[str]:
    """Every image made ready (blobs in the store, layers unpacked), then all recorded in one
    transaction: an image that fails leaves its predecessors unrecorded too, and what they
    stored is unreferenced, for the collector."""
    prepared: list[Prepared] = []
    try:
        for p in pending:
            for member in [*p.blobs, *p.extra]:
                adopt(member, store.blobs)
            manifest_digest = store.blobs.put(p.manifest)
            prepared.append(store.prepare(manifest_digest, tags=p.tags,
                                          extra_blobs=[m.digest for m in p.extra]))
        current = {tag: old.id for p in pending for tag in p.tags
                   if (old := store.lookup(tag)) is not None}
        store.commit(prepared)
    except ImageError as e:
        raise ArchiveError(str(e)) from None
    except OSError as e:
        raise ArchiveError(f"load: {os.strerror(e.errno).lower() if e.errno else e}") from None
    lines = []
    for image in prepared:
        for tag in image.tags:
            old_id = current.get(tag)
            if old_id is not None and old_id != image.id:
                lines.append(f"The image {_familiar(tag)} already exists, renaming the old one "
                             f"with ID {old_id} to empty string")
            current[tag] = image.id
            lines.append(f"Loaded image: {_familiar(tag)}")
        if not image.tags:
            lines.append(f"Loaded image ID: {image.id}")
    return lines


def load(store: ImageStore, source: str | IO[bytes]) -> list[str]:
    """`docker load` from a path or a stream (plain, gzip, bzip2, xz or zstd tar holding a
    docker-archive or an OCI layout); returns Docker's output lines."""
    with store.writing(), Spool(store.blobs.ingest_dir) as spool:
        _read(spool, source)
        if spool.find("manifest.json") is not None:
            pending = docker_archive.read_manifest(spool)
        elif spool.find("index.json") is not None:
            pending = oci_archive.read_layout(spool, store)
        else:
            raise ArchiveError("invalid archive: it holds neither manifest.json "
                               "(docker-archive) nor index.json (OCI layout)")
        return _register(store, pending)


# --- import ------------------------------------------------------------------------------

class _Tee:
    """A read-only stream that copies what passes through it into `sink`."""

    def __init__(self, src: IO[bytes], sink: IO[bytes]) -> None:
        self._src, self._sink = src, sink

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._src.read(size)
        self._sink.write(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


class _HashingWriter:
    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self._raw.write(data)

    def flush(self) -> None:
        self._raw.flush()


def parse_platform(text: str | None) -> dict[str, str]:
    """`--platform` (`linux`, `amd64`, `linux/arm64`, `linux/arm/v7`) as an OCI platform."""
    host = ol.host_platform()
    if not text:
        return host
    parts = text.lower().split("/")
    if len(parts) == 1:
        parts = [parts[0]] if parts[0] == "linux" else ["linux", parts[0]]
    if parts[0] != "linux":
        raise ArchiveError(f"operating system is not supported: {parts[0]!r}")
    if len(parts) == 1:
        return host
    if len(parts) > 3 or not all(parts):
        raise ArchiveError(f'"{text}": unknown operating system or architecture: '
                           "invalid argument")
    arch = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386"}.get(
        parts[1], parts[1])
    plat = {"architecture": arch, "os": "linux"}
    if len(parts) == 3:
        plat["variant"] = parts[2]
    return plat


def layer_from_tar(stream: IO[bytes], path: str) -> tuple[str, Member]:
    """Read a rootfs tar (any compression) once: check it is a tar, and write it gzip-
    compressed to `path`; (diff ID, the compressed file)."""
    head = read_head(stream)
    if not head:
        raise ArchiveError("the archive is empty")
    plain = Hashing(decompressor(cast(IO[bytes], Prefixed(head, stream)), compression_of(head)))
    with open(path, "wb") as raw:
        hashed = _HashingWriter(cast(IO[bytes], raw))
        # mtime 0 and no file name: the same tar always gives the same layer blob.
        with gzip.GzipFile(filename="", mode="wb", fileobj=cast(IO[bytes], hashed),
                           mtime=0, compresslevel=6) as gz:
            tee = _Tee(cast(IO[bytes], plain), cast(IO[bytes], gz))
            tap = Tap(cast(IO[bytes], tee), window=4 << 20)
            try:
                with tarfile.open(fileobj=cast(IO[bytes], tap), mode="r|") as tar:
                    # Reading the headers validates the tar; file data is skipped.
                    while tar.next() is not None:
                        tar.members.clear()  # type: ignore[attr-defined]  # no index needed
                    tap.check_end(tar.offset)
            except tarfile.ReadError as e:
                # An archive of only end-of-archive blocks is a valid, empty tar.
                if str(e) != "empty file" or plain.size < 512:
                    raise
            tee.drain()  # the layer is the whole input, padding included
        raw.flush()
        os.fsync(raw.fileno())
    with open(path, "rb") as f:
        gz_head = f.read(8)
    return plain.digest, Member(path, "sha256:" + hashed.sha.hexdigest(), hashed.size, gz_head)


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def import_tarball(store: ImageStore, stream: IO[bytes], reference: str | None,
                   changes: list[str] | None = None, message: str | None = None,
                   platform: str | None = None, *, source: str = "-") -> Image:
    """`docker import`: a rootfs tar becomes a one-layer image (tagged `reference`)."""
    tags = []
    if reference:
        try:
            tags.append(tag_name(reference))
        except ImageError as e:
            raise ArchiveError(str(e)) from None
    try:
        container_config = apply_changes(None, list(changes or []))
    except ChangeError as e:
        raise ArchiveError(str(e)) from None
    plat = parse_platform(platform)
    with store.writing():
        fd, tmp = tempfile.mkstemp(prefix=".import-", dir=store.blobs.ingest_dir)
        os.close(fd)
        try:
            try:
                diff_id, layer = layer_from_tar(stream, tmp)
            except STREAM_ERRORS as e:
                raise ArchiveError(f"invalid tar archive: {stream_error(e)}") from None
            adopt(layer, store.blobs)
        finally:
            os.unlink(tmp)
        created = now_rfc3339()
        config: dict[str, Any] = {
            **plat,
            "created": created,
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            # Docker leaves created_by out of an imported image's history.
            "history": [{"created": created, "comment": message or f"Imported from {source}"}],
        }
        if container_config:
            config["config"] = container_config
        config_bytes = ol.canonical_json(config)
        store.blobs.put(config_bytes)
        manifest = ol.canonical_json({
            "schemaVersion": 2, "mediaType": ol.MEDIA_MANIFEST,
            "config": ol.descriptor(ol.MEDIA_CONFIG, config_bytes),
            "layers": [{"mediaType": ol.MEDIA_LAYER_GZIP, "digest": layer.digest,
                        "size": layer.size}],
        })
        try:
            return store.register(store.blobs.put(manifest), tags=tags)
        except ImageError as e:
            raise ArchiveError(str(e)) from None
