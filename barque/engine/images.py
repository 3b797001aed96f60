"""The engine's image operations: what `barque images|pull|push|tag|rmi|save|load|…` and the
API call. It joins the image store, the registry client and the archive code, and turns their
results into Docker's shapes (inspect JSON, history rows)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from barque.engine import events
from barque.image import reference as refs
from barque.image.store import Image, ImageError, ImageNotFound, ImageStore
from barque.structs import dataclass

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import IO, Any

    from barque.engine.context import Engine
    from barque.engine.paths import Paths
    from barque.registry.auth import Credentials

# The built-in image: `busybox` resolves to it, built from the host's busybox-static, when
# the store has no busybox:latest (so the first `barque run busybox` works offline).
DEFAULT_IMAGE = "docker.io/library/busybox:latest"


def open_store(root: str) -> ImageStore:
    return ImageStore(root)


def ensure_default_image(store: ImageStore) -> Image:
    """busybox:latest, built from /bin/busybox into the store if the store lacks it."""
    found = store.lookup(DEFAULT_IMAGE)
    if found is not None:
        return found
    import shutil
    import tempfile

    from barque.image import default as default_image

    with store.writing():  # the scratch dir is a temporary: made only under this lock
        scratch = tempfile.mkdtemp(prefix=".default-", dir=store.root)
        try:
            default_image.build_default_image(scratch)
            return store.import_oci_layout(scratch, "latest", DEFAULT_IMAGE)
        except default_image.DefaultImageError as e:
            raise ImageError(str(e)) from None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def save_default_image(root: str, output: str) -> None:
    """`barque image save-default -o FILE`: the built-in busybox as an OCI archive (built into
    its layout dir under `root` on first use), for other engines or `barque load`."""
    from barque.image import default as default_image

    default_image.write_oci_archive(default_image.ensure_default_image(root), output)


def is_default_reference(text: str) -> bool:
    try:
        return str(refs.parse(text)) == DEFAULT_IMAGE
    except refs.ReferenceError:
        return False


@dataclass
class PullOutcome:
    image: Image
    reference: refs.Reference
    digest: str  # what the reference pointed to in the registry (index or manifest)
    fresh: bool  # False: the store already had this exact image ("Image is up to date")


def pull(store: ImageStore, text: str, *, platform: str | None = None,
         progress: Any = None, insecure: bool | None = None,
         credentials: Credentials | None = None, anonymous: bool = False) -> PullOutcome:
    """`docker pull`: fetch the image's blobs and register it under its tag and digest.
    `credentials` default to the Docker config's unless `anonymous` (the API's: a daemon
    uses only what the client sends)."""
    from barque.registry.client import RegistryClient
    from barque.registry.pull import pull as registry_pull

    ref = _parse(text)
    with store.writing(), RegistryClient(ref.domain, insecure=insecure, credentials=credentials,
                                         anonymous=anonymous) as client:
        before = store.lookup(str(ref))
        result = registry_pull(ref, store.blobs, platform=platform, client=client,
                               progress=progress)
        extra = [result.index_digest] if result.index_digest else []
        # As Docker: `name:tag@digest` records the digest only, never a tag with a digest.
        tags = [str(ref)] if ref.tag and not ref.digest else []
        image = store.register(result.manifest_digest, tags=tags,
                               repo_digests=[result.repo_digest], extra_blobs=extra)
    digest = result.repo_digest.split("@", 1)[1]
    events.emit_image(store, "pull", ref.familiar, ref.familiar_repository)
    return PullOutcome(image, ref, digest, fresh=before is None or before.id != image.id)


def find_or_pull(store: ImageStore, text: str, *, on_pull: Callable[[str], None] | None = None,
                 progress: Any = None, platform: str | None = None) -> Image:
    """The image `docker run` uses: the local one, the built-in busybox, or a pulled one."""
    found = store.lookup(text)
    if found is not None:
        return found
    if is_default_reference(text):
        return ensure_default_image(store)
    ref = _parse(text)
    if on_pull is not None:
        on_pull(ref.familiar)
    return pull_image(store, text, progress=progress, platform=platform)


def pull_image(store: ImageStore, text: str, *, progress: Any = None,
               platform: str | None = None) -> Image:
    """Pull `text` now (`run --pull always`), a registry's failure an ImageError."""
    from barque.registry.errors import RegistryError  # here: most runs find the image

    try:
        return pull(store, text, platform=platform, progress=progress).image
    except RegistryError as e:
        raise ImageError(str(e)) from None


def find_local(store: ImageStore, text: str) -> Image:
    """The image `text` names in the store (the built-in busybox counts as local), else
    ImageNotFound with dockerd's words: what the API's create answers instead of pulling."""
    found = store.lookup(text)
    if found is not None:
        return found
    if is_default_reference(text):
        return ensure_default_image(store)
    return store.resolve(text)


def repository_tags(store: ImageStore, repository: str) -> list[str]:
    """The store's tags of `repository` (`docker push NAME` without a tag pushes them all)."""
    ref = _parse(repository)
    if ref.digest:
        raise ImageError("cannot push a digest reference")
    return sorted(t for image in store.images() for t in image.tags
                  if t.rsplit(":", 1)[0] == ref.repository)


def push(store: ImageStore, text: str, *, progress: Any = None,
         insecure: bool | None = None, credentials: Credentials | None = None,
         anonymous: bool = False) -> str:
    """`docker push NAME[:TAG]`: returns the pushed manifest's digest."""
    from barque.registry.client import RegistryClient
    from barque.registry.push import push as registry_push

    ref = _parse(text)
    image = store.lookup(str(ref))
    if image is None:
        raise ImageNotFound("An image does not exist locally with the tag: "
                            f"{ref.familiar_repository}")
    # Cross-repository mounts: other repositories of the same registry that have this image.
    names = [refs.parse(n, default_tag=False) for n in image.tags + image.repo_digests]
    from_repos = sorted({n.path for n in names
                         if n.domain == ref.domain and n.path != ref.path})
    # Shared lock: the collector must not delete blobs while they are being sent.
    with store.writing(), RegistryClient(ref.domain, insecure=insecure, credentials=credentials,
                                         anonymous=anonymous) as client:
        manifest = store.blobs.read(image.manifest_digest)
        digest = registry_push(ref, store.blobs, manifest, image.manifest_media_type,
                               client=client, progress=progress, from_repos=from_repos)
        store.register(image.manifest_digest, repo_digests=[f"{ref.repository}@{digest}"])
    events.emit_image(store, "push", ref.familiar, ref.familiar_repository)
    return str(digest)


def tag(store: ImageStore, source: str, target: str) -> str:
    """`docker tag SOURCE TARGET`: returns the full name now pointing at SOURCE's image."""
    image = store.resolve(source)
    name = store.tag(image, target)
    events.emit_image(store, "tag", image.id, refs.parse(name).familiar)
    return name


def remove(store: ImageStore, name: str, *, force: bool = False,
           paths: Paths | None = None) -> list[dict[str, str]]:
    """`docker rmi NAME`: what was done, as the Engine API's ImageDeleteResponseItems
    ([{"Untagged": name} | {"Deleted": id}]). An image a running container uses cannot be
    deleted, even forced: the containers of `paths` are asked (only if the image has any)."""
    engine: Engine | None = None

    def is_running(container_id: str) -> bool:
        nonlocal engine
        if paths is None:
            return False
        from barque.engine.context import Engine
        from barque.engine.errors import EngineError

        if engine is None:
            engine = Engine(paths)
        try:
            return bool(engine.state(engine.find(container_id))["Running"])
        except EngineError:
            return False

    image = store.lookup(name)
    try:
        done = [{verb: what} for verb, what in store.remove(name, force=force,
                                                            is_running=is_running)]
    finally:
        if engine is not None:
            engine.close()
    for verb, what in ((v, w) for item in done for v, w in item.items()):
        if verb == "Untagged" and image is not None:
            events.emit_image(store, "untag", image.id, image.id)
        elif verb == "Deleted":
            events.emit_image(store, "delete", what, what)
    return done


def prune(store: ImageStore, *, all_images: bool = False,
          filters: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """`docker image prune [-a] [--filter ...]`: unused dangling (or all unused) images, as
    the Engine API's ImagePruneResponse ({"ImagesDeleted": [...], "SpaceReclaimed": bytes}).
    Filters as dockerd's: dangling=false is -a; label=K[=V] / label!=K[=V]; until=TIME."""
    from barque.engine.image_prune import prune_selector

    all_images, only = prune_selector(store, all_images, filters or {})
    lines, reclaimed = store.prune(all_images=all_images, only=only)
    for verb, what in lines:
        if verb.lower() == "deleted":
            events.emit_image(store, "delete", what, what)
    events.emit_in(store.root, "image", "prune", "", {"reclaimed": str(reclaimed)})
    return {"ImagesDeleted": [{verb.capitalize(): what} for verb, what in lines],
            "SpaceReclaimed": reclaimed}


def _parse(text: str) -> refs.Reference:
    try:
        return refs.parse(text)
    except refs.ReferenceError as e:
        raise ImageError(str(e)) from None


# --- Docker's shapes ---------------------------------------------------------------------

_CONFIG_DEFAULTS: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
    "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": None,
}


def empty_config() -> dict[str, Any]:
    """An image Config with nothing set, as Docker prints one."""
    return dict(_CONFIG_DEFAULTS)


def inspect_named(store: ImageStore, name: str) -> dict[str, Any]:
    """`docker image inspect NAME`; ImageNotFound when there is no such image."""
    return inspect(store, store.resolve(name))


def inspect(store: ImageStore, image: Image) -> dict[str, Any]:
    """`docker image inspect`'s object for one image."""
    config = store.config(image)
    cfg = {**_CONFIG_DEFAULTS, **(config.get("config") or {})}
    top = store.lowers(image)
    return {
        "Id": image.id,
        "RepoTags": [refs.parse(t).familiar for t in image.tags],
        "RepoDigests": [refs.parse(d, default_tag=False).familiar for d in image.repo_digests],
        "Parent": "",
        "Comment": _last_comment(config),
        "Created": config.get("created", image.created),
        # the legacy fields dockerd shows up to API 1.43 (20.10 prints them always)
        "Container": config.get("container", ""),
        "ContainerConfig": {**_CONFIG_DEFAULTS, **(config.get("container_config") or {})},
        "DockerVersion": config.get("docker_version", ""),
        "Author": config.get("author", ""),
        "Config": cfg,
        "Architecture": config.get("architecture", ""),
        **({"Variant": config["variant"]} if config.get("variant") else {}),
        "Os": config.get("os", ""),
        "Size": image.size,
        "VirtualSize": image.size,
        "GraphDriver": {
            "Data": {"LowerDir": ":".join(top)} if top else {},
            "Name": "overlay2",
        },
        "RootFS": {"Type": "layers", "Layers": [la.diff_id for la in image.layers]},
        "Metadata": {"LastTagTime": _iso(image.added)},
    }


def _last_comment(config: dict[str, Any]) -> str:
    history = config.get("history") or []
    return str(history[-1].get("comment", "")) if history else ""


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e9):09d}Z"


@dataclass
class HistoryRow:
    id: str
    created: str
    created_by: str
    size: int
    comment: str
    tags: list[str]


def history(store: ImageStore, name: str) -> list[HistoryRow]:
    """`docker history NAME`: newest first; only the top row carries the image ID."""
    image = store.resolve(name)
    config = store.config(image)
    entries = config.get("history") or [{} for _ in image.layers]
    sizes = iter(store.layer_sizes(image))
    rows: list[HistoryRow] = []
    for entry in entries:
        size = 0 if entry.get("empty_layer") else next(sizes, 0)
        rows.append(HistoryRow("<missing>", str(entry.get("created", "")),
                               str(entry.get("created_by", "")), size,
                               str(entry.get("comment", "")), []))
    rows.reverse()
    if rows:
        rows[0].id = image.id
        rows[0].tags = [refs.parse(t).familiar for t in image.tags]
    return rows


# --- archives ----------------------------------------------------------------------------

def save(store: ImageStore, names: list[str], out: IO[bytes] | str,
         fmt: str = "docker-archive") -> None:
    """`docker save` (fmt: docker-archive, oci-archive, or oci-dir with `out` a directory).
    `out` a path: the archive appears there whole or not at all, and not when an image is
    missing."""
    from barque.image.archive import save as archive_save

    archive_save(store, names, out, fmt)
    for name in names:
        image = store.lookup(name)
        if image is not None:
            events.emit_image(store, "save", image.id, image.id)


def import_image(store: ImageStore, source: str | IO[bytes], reference: str | None = None,
                 changes: list[str] | None = None, message: str | None = None,
                 platform: str | None = None) -> Image:
    """`docker import`: a rootfs tarball (a path or a stream) becomes a one-layer image."""
    from barque.image.archive import import_tarball

    if not isinstance(source, str):
        image = import_tarball(store, source, reference, changes, message, platform)
    else:
        with open(source, "rb") as f:
            image = import_tarball(store, f, reference, changes, message, platform)
    events.emit_image(store, "import", image.id, image.id)
    return image


def load(store: ImageStore, source: str | IO[bytes]) -> list[str]:
    """`docker load` from an archive (path or stream) or an OCI layout directory."""
    from barque.image.archive import load as archive_load

    if isinstance(source, str) and os.path.isdir(source):
        lines = _load_directory(store, source)
    else:
        lines = archive_load(store, source)
    for line in lines:
        loaded = store.lookup(line.split(": ", 1)[-1].strip())
        if loaded is not None:
            events.emit_image(store, "load", loaded.id, loaded.id)
    return lines


def _load_directory(store: ImageStore, directory: str) -> list[str]:
    """A layout directory goes through the archive reader as a tar streamed from a thread."""
    import tarfile
    import threading

    from barque.image.archive import load as archive_load

    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            with os.fdopen(write_fd, "wb") as sink, \
                    tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for name in sorted(os.listdir(directory)):
                    tar.add(os.path.join(directory, name), arcname=name)
        except BaseException as e:  # reported after the reader is done
            failure.append(e)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    try:
        with os.fdopen(read_fd, "rb") as source:
            lines = archive_load(store, source)
    finally:
        producer.join()
    if failure and not isinstance(failure[0], BrokenPipeError):
        raise ImageError(f"reading {directory}: {failure[0]}")
    return lines
