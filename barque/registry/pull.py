"""`docker pull` minus the image database: fetch an image's blobs into a BlobStore.

Order matters for crash safety: the config and layers are stored (each verified by the
BlobWriter) before the manifest, and the manifest before the index, so a stored manifest
always names complete content. Layers download in parallel threads; a per-digest lock in the
BlobStore makes concurrent pulls (threads or processes) fetch each blob once, and a killed
pull's partial ingest files are resumed with Range requests.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from barque.image.reference import Reference
from barque.registry import errors as err
from barque.registry.client import ProgressCallback, RegistryClient
from barque.registry.manifest import (
    INDEX_TYPES,
    Descriptor,
    Platform,
    decode,
    host_platform,
    image_parts,
    parse_platform,
    select_platform,
)
from barque.registry.progress import Progress
from barque.storage.blobs import BlobStore


class PullCancelled(err.RegistryError):
    """Another layer failed (or the pull was interrupted): this download stopped early."""


@dataclass
class PullResult:
    reference: Reference
    manifest_digest: str
    manifest_media_type: str
    config_digest: str
    layers: list[Descriptor]
    index_digest: str | None  # set when the reference named an image index
    repo_digest: str  # `docker.io/library/busybox@sha256:…` of what the reference named
    platform: Platform | None  # the image config's platform
    downloaded: list[str] = field(default_factory=list)  # blobs fetched by this pull

    @property
    def up_to_date(self) -> bool:
        """Nothing was downloaded (Docker's "Image is up to date" when the tag matches)."""
        return not self.downloaded


def _want(platform: str | Platform | None) -> Platform | None:
    if platform is None or isinstance(platform, Platform):
        return platform
    try:
        return parse_platform(platform)
    except ValueError as e:
        raise err.RegistryError(str(e)) from None


def pull(ref: Reference, blobs: BlobStore, *, platform: str | Platform | None = None,
         client: RegistryClient | None = None, progress: Progress | None = None,
         max_concurrent: int = 3) -> PullResult:
    """Fetch `ref` (for `platform`, default the host's when it names an index) into `blobs`.

    Raises RegistryError subclasses; whatever was stored before a failure is verified content.
    """
    want = _want(platform)
    own = client is None
    client = client or RegistryClient(ref.domain)
    progress = progress or Progress()
    try:
        return _Pull(ref, blobs, client, progress, max_concurrent).run(want)
    finally:
        if own:
            client.close()


class _Pull:
    def __init__(self, ref: Reference, blobs: BlobStore, client: RegistryClient,
                 progress: Progress, max_concurrent: int) -> None:
        self.ref, self.blobs, self.client, self.progress = ref, blobs, client, progress
        self.max_concurrent = max(1, max_concurrent)
        self.repo = ref.path
        self.downloaded: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self, want: Platform | None) -> PullResult:
        target = self.ref.digest or self.ref.tag or "latest"
        try:
            data, content_type, top_digest = self.client.get_manifest(self.repo, target)
        except err.UnauthorizedError as e:
            raise self._denied(e) from None
        obj, media = decode(data, content_type)
        index: tuple[bytes, str] | None = None
        manifest_digest = top_digest
        if media in INDEX_TYPES:
            index = (data, top_digest)
            chosen = select_platform(obj, want or host_platform())
            data, content_type, manifest_digest = self.client.get_manifest(self.repo,
                                                                           chosen.digest)
            obj, media = decode(data, content_type)
            if media in INDEX_TYPES:
                raise err.UnsupportedManifestError(
                    f"{self.ref.familiar}: nested image indexes are not supported")
        config_desc, layers = image_parts(obj)
        self.progress.pull_started(self.ref)  # Docker says "Pulling from" once resolved
        config = self._config(config_desc, len(layers))
        actual = Platform.from_dict(config)
        if want is not None and index is None and actual is not None and actual != want:
            raise err.NoMatchingPlatformError(
                f"image with reference {self.ref.familiar} was found but does not match the "
                f"specified platform: wanted {want}, actual: {actual}")
        self._layers(layers)
        # The manifest (then the index) last: it is the commit point for the image.
        self.blobs.put(data, manifest_digest)
        if index is not None:
            self.blobs.put(index[0], index[1])
        return PullResult(
            reference=self.ref, manifest_digest=manifest_digest, manifest_media_type=media,
            config_digest=config_desc.digest, layers=layers,
            index_digest=index[1] if index else None,
            repo_digest=f"{self.ref.repository}@{top_digest}", platform=actual,
            downloaded=list(self.downloaded))

    def _denied(self, e: err.UnauthorizedError) -> err.UnauthorizedError:
        """Docker's wording for a pull the registry refuses."""
        text = str(e)
        if text.startswith("denied:"):
            text = (f"pull access denied for {self.ref.familiar_repository}, repository does "
                    f"not exist or may require 'docker login': {text}")
        return err.UnauthorizedError(text)

    def _config(self, desc: Descriptor, layer_count: int) -> dict[str, object]:
        """Fetch the config (small, so first) and check that it matches the manifest."""
        self._fetch(desc)
        try:
            config = json.loads(self.blobs.read(desc.digest))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise err.UnsupportedManifestError(f"image config {desc.digest}: {e}") from None
        rootfs = config.get("rootfs") if isinstance(config, dict) else None
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        if not isinstance(diff_ids, list):
            raise err.UnsupportedManifestError(f"image config {desc.digest} has no "
                                               "rootfs.diff_ids")
        if len(diff_ids) != layer_count:
            raise err.UnsupportedManifestError(
                f"invalid image: the manifest lists {layer_count} layers but the config has "
                f"{len(diff_ids)} diff_ids")
        assert isinstance(config, dict)
        return config

    def _layers(self, layers: list[Descriptor]) -> None:
        todo: list[Descriptor] = []
        for layer in layers:
            if self.blobs.has(layer.digest):
                self.progress.layer_exists(layer.short_id)
            elif layer not in todo:
                self.progress.layer_started(layer.short_id, layer.size)
                todo.append(layer)
        if not todo:
            return
        pool = ThreadPoolExecutor(max_workers=self.max_concurrent,
                                  thread_name_prefix="barque-pull")
        try:
            futures = [pool.submit(self._fetch, la, True) for la in todo]
            reported = 0
            for future in as_completed(futures):
                future.result()  # the first failure stops the pull (and, below, the others)
                # Docker reports completion in layer order (its extraction order).
                while reported < len(todo) and futures[reported].done():
                    if futures[reported].result():  # False: another pull stored it
                        self.progress.layer_done(todo[reported].short_id)
                    reported += 1
        finally:
            self.stop.set()  # a failure or interrupt: running downloads stop at their next chunk
            pool.shutdown(wait=True, cancel_futures=True)

    def _fetch(self, desc: Descriptor, show: bool = False) -> bool:
        """Store one blob unless present; True if this call downloaded it."""
        for attempt in range(2):
            if self.blobs.has(desc.digest):  # before the writer, which makes ingest files
                if show:
                    self.progress.layer_exists(desc.short_id)
                return False
            with self.blobs.writer(desc.digest, desc.size) as writer:
                if writer.exists:  # another pull stored it while we waited for the lock
                    if show:
                        self.progress.layer_exists(desc.short_id)
                    return False
                resumed = writer.offset > 0
                try:
                    self.client.fetch_blob(self.repo, desc.digest, writer,
                                           self._on_progress(desc, show))
                except err.DigestMismatchError:
                    if not resumed or attempt:
                        raise
                    continue  # the leftover partial was bad (and is discarded): start over
            if show:
                self.progress.layer_verifying(desc.short_id)
            with self.lock:
                self.downloaded.append(desc.digest)
            return True
        return False

    def _on_progress(self, desc: Descriptor, show: bool) -> ProgressCallback:
        def report(done: int) -> None:
            if self.stop.is_set():
                raise PullCancelled(f"download of {desc.digest} cancelled")
            if show:
                self.progress.layer_progress(desc.short_id, done, desc.size)
        return report
