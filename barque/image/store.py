"""The image store: blobs by digest, image records and tags in the state DB, layers unpacked
once each (keyed by chain ID) and shared by every image that has them.

On disk, under the root dir: `blobs/sha256/<hex>` (manifests, configs, compressed layers),
`layers/<chain-id hex>/` (a layer unpacked in overlayfs lower-dir format), `barque.db`.
Writers (register, pull) hold `images.lock` shared, the garbage collector exclusive, so the
collector never deletes a blob or layer that a pull has fetched but not yet registered.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from barque.image import oci_layout as ol
from barque.image import reference as refs
from barque.sha256 import hexdigest
from barque.storage import db
from barque.storage.blobs import BlobError, BlobStore, check_digest, remove_tree
from barque.structs import dataclass, field

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

_DIGEST_RE = r"^sha256:[a-f0-9]{64}\Z"  # compiled on first use (re caches it)
MANIFEST_TYPES = ol.MANIFEST_TYPES
INDEX_TYPES = ol.INDEX_TYPES
# Temporaries made in the layer dir (a layer being unpacked) and the root (the default
# image's scratch layout), each only under `writing`.
TEMP_PREFIXES = (".tmp-", ".default-")


class ImageError(Exception):
    """A request the store cannot satisfy; the message is Docker's wording where it has one."""


class ImageNotFound(ImageError):
    pass


class ImageConflict(ImageError):
    pass


@dataclass(frozen=True)
class LayerRef:
    chain_id: str
    diff_id: str
    blob_digest: str
    media_type: str
    blob_size: int


@dataclass
class Image:
    id: str
    manifest_digest: str
    manifest_media_type: str
    created: str
    size: int
    added: float
    layers: list[LayerRef] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)  # full names: docker.io/library/busybox:latest
    repo_digests: list[str] = field(default_factory=list)

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[1][:12]


@dataclass
class Prepared:
    """An image checked and unpacked by `ImageStore.prepare`, not yet recorded."""

    id: str  # the config digest
    manifest_digest: str
    media_type: str
    created: str
    size: int
    layers: list[LayerRef]
    tags: list[str]
    repo_digests: list[str]
    extra_blobs: list[str]


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The image spec's ChainID of each layer: the bottom one's diff ID, then
    sha256(parent chain + " " + diff ID)."""
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + hexdigest(f"{out[-1]} {diff_id}".encode()))
    return out


def _json_blob(blobs: BlobStore, digest: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(blobs.read(digest))
    except (BlobError, ValueError) as e:
        raise ImageError(f"{what} {digest}: {e}") from None
    if not isinstance(value, dict):
        raise ImageError(f"{what} {digest} is not a JSON object")
    return value


class ImageStore:
    def __init__(self, root: str, conn: sqlite3.Connection | None = None) -> None:
        """`conn`: the caller's connection to root's state DB, to share (the caller closes
        it); else the store opens its own."""
        self.root = root
        self.blobs = BlobStore(root)
        self.layer_dir = os.path.join(root, "layers")
        os.makedirs(self.layer_dir, mode=0o700, exist_ok=True)
        self._own_conn = conn is None
        self.conn = db.connect(root) if conn is None else conn
        self._lock_path = os.path.join(root, "images.lock")

    def close(self) -> None:
        if self._own_conn:
            self.conn.close()

    # --- locking -------------------------------------------------------------------------
    @contextmanager
    def writing(self) -> Iterator[None]:
        """Held (shared) while blobs are fetched and registered: keeps the collector out.

        Every temporary file or dir of the store is made under this lock, so when no one
        else holds it (an exclusive try succeeds), every temporary left is a dead writer's
        (a kill -9): it is reclaimed here, before this writer makes its own."""
        from barque.linux import locks  # here: `run` reads the store, never locks it

        fd = locks.open_file(self._lock_path)
        try:
            if locks.try_lock(fd):
                self.reclaim_temporaries(partials=False)
            locks.lock(fd, shared=True)  # converts the exclusive lock if we took it
            yield
        finally:
            os.close(fd)

    def reclaim_temporaries(self, *, partials: bool) -> int:
        """Remove what killed writers left: ingest temporaries (and, with `partials`,
        resumable downloads), half-unpacked layer dirs, scratch dirs. Only under the
        exclusive lock. Returns the bytes freed."""
        freed = self.blobs.sweep_ingest(partials=partials)
        for parent in (self.layer_dir, self.root):
            for name in os.listdir(parent):
                if name.startswith(TEMP_PREFIXES):
                    freed += remove_tree(os.path.join(parent, name))
        return freed

    # --- layers ----------------------------------------------------------------------------
    def layer_path(self, chain_id: str) -> str:
        # The chain ID becomes a path component: nothing but sha256 hex may get there.
        return os.path.join(self.layer_dir, check_digest(chain_id).split(":", 1)[1])

    def lowers(self, image: Image) -> list[str]:
        """The image's layer dirs, top-most first, as overlayfs takes them."""
        return [self.layer_path(layer.chain_id) for layer in reversed(image.layers)]

    def _ensure_layer(self, layer: LayerRef) -> int:
        row = self.conn.execute("SELECT size FROM layers WHERE chain_id = ?",
                                (layer.chain_id,)).fetchone()
        if row is not None and os.path.isdir(self.layer_path(layer.chain_id)):
            return int(row["size"])

        def unpack(dest: str) -> int:
            # (here: a registered layer, the usual case, needs no tarfile)
            from barque.storage.layers import LayerError, unpack_layer

            try:
                return unpack_layer(self.blobs.path(layer.blob_digest), layer.media_type,
                                    dest, layer.diff_id)
            except LayerError as e:
                raise ImageError(f"failed to register layer: {e}") from None

        return self._place_layer(layer, unpack)[0]

    def ensure_layer(self, layer: LayerRef) -> int:
        """Unpack `layer` from its blob (in the store) unless it is there; its size."""
        return self._ensure_layer(layer)

    def adopt_layer(self, layer: LayerRef, unpacked: str, size: int) -> bool:
        """Make the directory `unpacked` (in overlayfs lower-dir format, on the store's file
        system, its content that of `layer`'s blob: a build step's upper dir) the layer dir
        of `layer.chain_id`, instead of unpacking the blob again. False when the store
        already had that layer (`unpacked` is then left to the caller)."""

        def move(dest: str) -> int:
            os.chmod(unpacked, 0o755)
            os.rename(unpacked, dest)
            return size

        return self._place_layer(layer, move)[1]

    def _place_layer(self, layer: LayerRef, make: Callable[[str], int]) -> tuple[int, bool]:
        """Under the layer's lock: (its size, False) when the store has it (recorded, its dir
        there); else `make(dir)` puts its dir there and it is recorded: (size, True)."""
        from barque.linux import locks

        dest = self.layer_path(layer.chain_id)
        lock = locks.open_file(dest + ".lock")
        try:
            locks.lock(lock)
            row = self.conn.execute("SELECT size FROM layers WHERE chain_id = ?",
                                    (layer.chain_id,)).fetchone()
            if row is not None and os.path.isdir(dest):
                return int(row["size"]), False
            if os.path.isdir(dest):  # made, but the record was lost: redo it cleanly
                shutil.rmtree(dest)
            size = make(dest)
            with db.transaction(self.conn):
                self.conn.execute("INSERT OR REPLACE INTO layers VALUES (?, ?, ?)",
                                  (layer.chain_id, layer.diff_id, size))
            return size, True
        finally:
            # The lock file stays (see BlobWriter.close); the collector removes it.
            os.close(lock)

    # --- registering -----------------------------------------------------------------------
    def register(self, manifest_digest: str, *, tags: list[str] | tuple[str, ...] = (),
                 repo_digests: list[str] | tuple[str, ...] = (),
                 extra_blobs: list[str] | tuple[str, ...] = ()) -> Image:
        """Record the image whose manifest (and config and layer blobs) are in the blob
        store, unpacking its missing layers; `tags` move here from any image that had them."""
        prepared = self.prepare(manifest_digest, tags=tags, repo_digests=repo_digests,
                                extra_blobs=extra_blobs)
        return self.commit([prepared])[0]

    def prepare(self, manifest_digest: str, *, tags: list[str] | tuple[str, ...] = (),
                repo_digests: list[str] | tuple[str, ...] = (),
                extra_blobs: list[str] | tuple[str, ...] = ()) -> Prepared:
        """Check an image and unpack its missing layers, recording nothing that names it:
        until `commit`, what it unpacked is unreferenced (the collector's to remove)."""
        manifest = _json_blob(self.blobs, manifest_digest, "manifest")
        media_type = str(manifest.get("mediaType") or ol.MEDIA_MANIFEST)
        if media_type not in MANIFEST_TYPES:
            raise ImageError(f"manifest {manifest_digest}: unsupported media type {media_type}")
        config_desc = manifest.get("config") or {}
        config_digest = str(config_desc.get("digest", ""))
        config = _json_blob(self.blobs, config_digest, "image config")
        rootfs = config.get("rootfs")
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        if not isinstance(diff_ids, list) or not all(
                isinstance(d, str) and re.match(_DIGEST_RE, d) for d in diff_ids):
            raise ImageError(f"image config {config_digest}: rootfs.diff_ids must be a list "
                             "of sha256 digests")
        descs = manifest.get("layers") or []
        if not isinstance(descs, list) or len(descs) != len(diff_ids):
            raise ImageError(f"manifest {manifest_digest}: {len(descs)} layers but the config "
                             f"lists {len(diff_ids)} diff IDs")
        layers = []
        for desc, diff_id, chain in zip(descs, diff_ids, chain_ids(diff_ids), strict=True):
            if not self.blobs.has(str(desc.get("digest", ""))):
                raise ImageError(f"layer {desc.get('digest')} is missing from the store")
            layers.append(LayerRef(chain, str(diff_id), str(desc["digest"]),
                                   str(desc.get("mediaType", ol.MEDIA_LAYER_GZIP)),
                                   int(desc.get("size", 0))))
        size = sum(self._ensure_layer(layer) for layer in layers)
        created = str(config.get("created") or "1970-01-01T00:00:00Z")
        return Prepared(config_digest, manifest_digest, media_type, created, size, layers,
                        list(tags), list(repo_digests), list(extra_blobs))

    def commit(self, prepared: list[Prepared]) -> list[Image]:
        """Record prepared images, their tags and digests, in one transaction: all or none."""
        with db.transaction(self.conn):
            for p in prepared:
                self._record(p)
        return [self.get(p.id) for p in prepared]

    def _record(self, p: Prepared) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO images VALUES (?, ?, ?, ?, ?, ?)",
            (p.id, p.manifest_digest, p.media_type, p.created, p.size, time.time()))
        # The same config may come with another manifest (other compression): the
        # manifest kept must be the one whose layers are recorded below.
        self.conn.execute(
            "UPDATE images SET manifest_digest = ?, manifest_media_type = ?, size = ? "
            "WHERE id = ?", (p.manifest_digest, p.media_type, p.size, p.id))
        self.conn.execute("DELETE FROM image_layers WHERE image_id = ?", (p.id,))
        self.conn.executemany(
            "INSERT INTO image_layers VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(p.id, i, lay.chain_id, lay.diff_id, lay.blob_digest, lay.media_type,
              lay.blob_size) for i, lay in enumerate(p.layers)])
        self.conn.executemany("INSERT OR IGNORE INTO image_blobs VALUES (?, ?)",
                              [(p.id, d) for d in p.extra_blobs])
        self.conn.executemany("INSERT OR REPLACE INTO tags VALUES (?, ?)",
                              [(t, p.id) for t in p.tags])
        self.conn.executemany("INSERT OR REPLACE INTO repo_digests VALUES (?, ?)",
                              [(d, p.id) for d in p.repo_digests])

    # --- reading ---------------------------------------------------------------------------
    def _load(self, row: sqlite3.Row) -> Image:
        image = Image(row["id"], row["manifest_digest"], row["manifest_media_type"],
                      row["created"], int(row["size"]), float(row["added"]))
        image.layers = [
            LayerRef(r["chain_id"], r["diff_id"], r["blob_digest"], r["media_type"],
                     int(r["blob_size"]))
            for r in self.conn.execute(
                "SELECT * FROM image_layers WHERE image_id = ? ORDER BY position", (image.id,))]
        image.tags = [r[0] for r in self.conn.execute(
            "SELECT name FROM tags WHERE image_id = ? ORDER BY name", (image.id,))]
        image.repo_digests = [r[0] for r in self.conn.execute(
            "SELECT name FROM repo_digests WHERE image_id = ? ORDER BY name", (image.id,))]
        return image

    def get(self, image_id: str) -> Image:
        row = self.conn.execute("SELECT * FROM images WHERE id = ?", (image_id,)).fetchone()
        if row is None:
            raise ImageNotFound(f"No such image: {image_id}")
        return self._load(row)

    def images(self) -> list[Image]:
        rows = self.conn.execute("SELECT * FROM images ORDER BY created DESC, added DESC")
        return [self._load(r) for r in rows.fetchall()]

    def layer_sizes(self, image: Image) -> list[int]:
        """The unpacked size of each of the image's layers, bottom first."""
        sizes = dict(self.conn.execute(
            "SELECT l.chain_id, l.size FROM layers l JOIN image_layers i "
            "ON i.chain_id = l.chain_id WHERE i.image_id = ?", (image.id,)).fetchall())
        return [int(sizes.get(layer.chain_id, 0)) for layer in image.layers]

    def config(self, image: Image) -> dict[str, Any]:
        return _json_blob(self.blobs, image.id, "image config")

    def manifest(self, image: Image) -> dict[str, Any]:
        return _json_blob(self.blobs, image.manifest_digest, "manifest")

    def lookup(self, text: str) -> Image | None:
        """An image by reference (`busybox`, `x:tag`, `x@sha256:…`), full ID or ID prefix."""
        if refs.is_image_id(text):
            full = text if text.startswith("sha256:") else "sha256:" + text
            row = self.conn.execute("SELECT * FROM images WHERE id = ?", (full,)).fetchone()
            return self._load(row) if row is not None else None
        try:
            ref = refs.parse(text)
        except refs.ReferenceError:
            ref = None
        if ref is not None:
            table = "repo_digests" if ref.digest else "tags"
            key = f"{ref.repository}@{ref.digest}" if ref.digest else str(ref)
            row = self.conn.execute(f"SELECT image_id FROM {table} WHERE name = ?",
                                    (key,)).fetchone()
            if row is not None:
                return self.get(row[0])
            if ref.digest:  # a digest names the manifest too
                row = self.conn.execute("SELECT * FROM images WHERE manifest_digest = ?",
                                        (ref.digest,)).fetchone()
                if row is not None:
                    return self._load(row)
        prefix = text.removeprefix("sha256:")
        if prefix and all(c in "0123456789abcdef" for c in prefix) and len(prefix) < 64:
            rows = self.conn.execute("SELECT * FROM images WHERE id LIKE ?",
                                     (f"sha256:{prefix}%",)).fetchall()
            if len(rows) == 1:
                return self._load(rows[0])
            if len(rows) > 1:
                raise ImageError(f"image ID prefix {prefix!r} is ambiguous")
        return None

    def resolve(self, text: str) -> Image:
        image = self.lookup(text)
        if image is None:
            raise ImageNotFound(f"No such image: {_display(text)}")
        return image

    # --- tags ------------------------------------------------------------------------------
    def tag(self, image: Image, target: str) -> str:
        """Point `target` (a reference; `:latest` added) at `image`; returns the full name."""
        name = tag_name(target)
        with db.transaction(self.conn):
            self.conn.execute("INSERT OR REPLACE INTO tags VALUES (?, ?)", (name, image.id))
        return name

    # --- holds (containers) ----------------------------------------------------------------
    def hold(self, holder: str, image: Image) -> None:
        """Record that `holder` uses `image`; fails if the image went away meanwhile."""
        with db.transaction(self.conn):
            if self.conn.execute("SELECT 1 FROM images WHERE id = ?",
                                 (image.id,)).fetchone() is None:
                raise ImageNotFound(f"No such image: {image.id}")
            self.conn.execute("INSERT OR REPLACE INTO image_holds VALUES (?, ?)",
                              (holder, image.id))

    def release(self, holder: str) -> None:
        with db.transaction(self.conn):
            self.conn.execute("DELETE FROM image_holds WHERE holder = ?", (holder,))

    def holders(self, image: Image) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT holder FROM image_holds WHERE image_id = ? ORDER BY holder", (image.id,))]

    # --- removing --------------------------------------------------------------------------
    def remove(self, text: str, *, force: bool = False,
               is_running: Callable[[str], bool] = lambda _: False) -> list[tuple[str, str]]:
        """`docker rmi`: [("Untagged", name) | ("Deleted", digest)], as Docker prints them."""
        image = self.resolve(text)
        by_id = self._names_image_by_id(text, image)
        holders = self.holders(image)
        running = [h for h in holders if is_running(h)]
        out: list[tuple[str, str]] = []
        if not by_id:
            name = self._reference_name(text)
            others = [t for t in image.tags if t != name]
            if holders and not others and not force:
                raise ImageConflict(
                    f'conflict: unable to remove repository reference "{text}" '
                    f"(must force) - container {holders[0][:12]} is using its referenced "
                    f"image {image.short_id}")
            out += self._untag(image, name)
            image = self.get(image.id)
            if image.tags or holders:
                return out
        else:
            if running:
                raise ImageConflict(
                    f"conflict: unable to delete {image.short_id} (cannot be forced) - image is "
                    f"being used by running container {running[0][:12]}")
            if holders and not force:
                raise ImageConflict(
                    f"conflict: unable to delete {image.short_id} (must be forced) - image is "
                    f"being used by stopped container {holders[0][:12]}")
            repos = {t.rsplit(":", 1)[0] for t in image.tags}
            if len(repos) > 1 and not force:
                raise ImageConflict(
                    f"conflict: unable to delete {image.short_id} (must be forced) - image is "
                    "referenced in multiple repositories")
            for name in image.tags + image.repo_digests:
                out += self._untag(image, name)
            if holders:
                return out
        out += self._delete(image)
        return out

    def _names_image_by_id(self, text: str, image: Image) -> bool:
        return image.id.removeprefix("sha256:").startswith(text.removeprefix("sha256:")) and \
            self._reference_name(text) not in image.tags + image.repo_digests

    @staticmethod
    def _reference_name(text: str) -> str:
        try:
            ref = refs.parse(text)
        except refs.ReferenceError:
            return text
        return f"{ref.repository}@{ref.digest}" if ref.digest else str(ref)

    def _untag(self, image: Image, name: str) -> list[tuple[str, str]]:
        out = []
        with db.transaction(self.conn):
            for table in ("tags", "repo_digests"):
                if self.conn.execute(f"DELETE FROM {table} WHERE name = ? AND image_id = ?",
                                     (name, image.id)).rowcount:
                    out.append(("Untagged", _familiar(name)))
            # The last tag of a repository takes that repository's digests with it, as Docker.
            repo = name.split("@", 1)[0].rsplit(":", 1)[0] if "@" not in name else None
            if repo and not self.conn.execute(
                    "SELECT 1 FROM tags WHERE image_id = ? AND substr(name, 1, ?) = ?",
                    (image.id, len(repo) + 1, repo + ":")).fetchone():
                for (digest_name,) in self.conn.execute(
                        "SELECT name FROM repo_digests WHERE image_id = ? "
                        "AND substr(name, 1, ?) = ?",
                        (image.id, len(repo) + 1, repo + "@")).fetchall():
                    self.conn.execute("DELETE FROM repo_digests WHERE name = ?", (digest_name,))
                    out.append(("Untagged", _familiar(digest_name)))
        return out

    def _delete(self, image: Image) -> list[tuple[str, str]]:
        with db.transaction(self.conn):
            self.conn.execute("DELETE FROM images WHERE id = ?", (image.id,))
        out = [("Deleted", image.id)]
        out += [("Deleted", chain) for chain in self.collect_garbage()]
        return out

    def prune(self, *, all_images: bool = False, only: Callable[[Image], bool] | None = None
              ) -> tuple[list[tuple[str, str]], int]:
        """`docker image prune [-a]`: unused dangling (or all unused) images that `only`
        accepts; (lines, bytes)."""
        before = self.disk_usage()
        out: list[tuple[str, str]] = []
        for image in self.images():
            if self.holders(image) or (image.tags and not all_images):
                continue
            if only is not None and not only(image):
                continue
            for name in image.tags + image.repo_digests:
                out += [("untagged", n) for _, n in self._untag(image, name)]
            with db.transaction(self.conn):
                self.conn.execute("DELETE FROM images WHERE id = ?", (image.id,))
            out.append(("deleted", image.id))
        out += [("deleted", chain) for chain in self.collect_garbage()]
        return out, max(0, before - self.disk_usage())

    # --- garbage collection ----------------------------------------------------------------
    def collect_garbage(self) -> list[str]:
        """Delete layers and blobs no image uses; returns the chain IDs of removed layers."""
        removed: list[str] = []
        from barque.linux import locks

        with locks.locked_file(self._lock_path):
            used_chains = {r[0] for r in self.conn.execute(
                "SELECT DISTINCT chain_id FROM image_layers")}
            cached = self._build_cache_layers()
            used_chains |= {c[0] for c in cached}
            for (chain,) in self.conn.execute("SELECT chain_id FROM layers").fetchall():
                if chain not in used_chains:
                    shutil.rmtree(self.layer_path(chain), ignore_errors=True)
                    with db.transaction(self.conn):
                        self.conn.execute("DELETE FROM layers WHERE chain_id = ?", (chain,))
                    removed.append(chain)
            known = {r[0] for r in self.conn.execute("SELECT chain_id FROM layers")}
            for name in os.listdir(self.layer_dir):
                # Leftovers of a crash: temporary dirs, locks, dirs with no record.
                if "sha256:" + name not in known:
                    path = os.path.join(self.layer_dir, name)
                    if os.path.isdir(path) and not os.path.islink(path):
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        os.unlink(path)
            used_blobs = {r[0] for r in self.conn.execute(
                "SELECT id FROM images UNION SELECT manifest_digest FROM images "
                "UNION SELECT blob_digest FROM image_layers UNION SELECT digest FROM image_blobs")}
            used_blobs |= {c[1] for c in cached}
            for digest in list(self.blobs.digests()):
                if digest not in used_blobs:
                    self.blobs.delete(digest)
            self.reclaim_temporaries(partials=True)
        return removed

    def _build_cache_layers(self) -> set[tuple[str, str]]:
        """(chain ID, blob digest) of every layer the build cache refers to: kept until
        `builder prune` drops the cache entries (barque/build/cache.py)."""
        rows = self.conn.execute(
            "SELECT DISTINCT json_extract(l.value, '$[0]'), json_extract(l.value, '$[2]') "
            "FROM build_cache, json_each(build_cache.layers) AS l")
        return {(str(r[0]), str(r[1])) for r in rows}

    def disk_usage(self) -> int:
        (layers,) = self.conn.execute("SELECT COALESCE(SUM(size), 0) FROM layers").fetchone()
        blobs = sum(self.blobs.size(d) for d in self.blobs.digests())
        return int(layers) + blobs

    # --- importing -------------------------------------------------------------------------
    def import_oci_layout(self, layout_dir: str, tag: str, name: str) -> Image:
        """Copy the image `tag` of an OCI layout into the store, tagged `name`."""
        manifest, _ = ol.load_image(layout_dir, tag)
        with self.writing():
            digests = [manifest["config"]["digest"], *(la["digest"] for la in manifest["layers"])]
            for digest in digests:
                if not self.blobs.has(digest):
                    with open(ol.blob_path(layout_dir, digest), "rb") as f:
                        self.blobs.put_stream(f, digest)
            manifest_digest = self._copy_manifest(layout_dir, tag)
            return self.register(manifest_digest, tags=[str(refs.parse(name))])

    def _copy_manifest(self, layout_dir: str, tag: str) -> str:
        for entry in ol.read_index(layout_dir)["manifests"]:
            if (entry.get("annotations") or {}).get(ol.ANNOTATION_REF_NAME) == tag:
                digest = str(entry["digest"])
                with open(ol.blob_path(layout_dir, digest), "rb") as f:
                    self.blobs.put_stream(f, digest)
                return digest
        raise ImageError(f"{layout_dir}: no image tagged {tag!r}")


def tag_name(target: str) -> str:
    """The full tag name `target` denotes (`x` -> `docker.io/library/x:latest`); a digest
    reference cannot be a tag."""
    try:
        ref = refs.parse(target)
    except refs.ReferenceError as e:
        raise ImageError(str(e)) from None
    if ref.digest:
        raise ImageError("refusing to create a tag with a digest reference")
    return str(ref)


def _familiar(name: str) -> str:
    try:
        return refs.parse(name, default_tag=False).familiar
    except refs.ReferenceError:
        return name


def _display(text: str) -> str:
    """How Docker names a missing image in its error: references get their `:latest`."""
    try:
        return refs.parse(text).familiar
    except refs.ReferenceError:
        return text
