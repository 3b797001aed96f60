"""Reading and writing OCI image layout directories (image-spec `image-layout.md`).

A layout is `oci-layout`, `index.json` and content-addressed `blobs/<alg>/<hex>`. Writers here
are crash-safe: every file is written to a temporary name, fsynced and renamed, and
`index.json` is written last, so a reader never sees an index naming a missing blob.
"""

from __future__ import annotations

import json
import os
import re

from barque.storage.atomic import atomic_write
from barque.storage.atomic import atomic_writer as atomic_writer  # for ol.atomic_writer users

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

LAYOUT_VERSION = "1.0.0"

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
# Docker's schema 2 types can appear in layouts written by other tools; they are read alike.
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

INDEX_TYPES = frozenset({MEDIA_INDEX, MEDIA_DOCKER_LIST})
MANIFEST_TYPES = frozenset({MEDIA_MANIFEST, MEDIA_DOCKER_MANIFEST})

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
# containerd's `ctr images import` names images from this annotation.
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"

_DIGEST_RE = r"^sha256:[a-f0-9]{64}$"  # compiled on first use (re caches it)

# uname -m → the GOARCH names OCI configs use (image-spec config.md, "architecture").
_GOARCH = {
    "x86_64": ("amd64", None),
    "amd64": ("amd64", None),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", None),
    "i686": ("386", None),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
}


class LayoutError(Exception):
    """The layout is malformed, incomplete, or does not hold the requested image."""


def host_platform() -> dict[str, str]:
    """The host as an OCI platform object: {"architecture", "os"[, "variant"]}."""
    machine = os.uname().machine
    arch, variant = _GOARCH.get(machine, (machine, None))
    result = {"architecture": arch, "os": "linux"}
    if variant and arch != "arm64":
        # arm64's v8 is implied and usually omitted (containerd normalises it away).
        result["variant"] = variant
    return result


def canonical_json(obj: Any) -> bytes:
    """Stable JSON bytes: sorted keys, no whitespace, so equal objects hash equally."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    import hashlib  # here: OpenSSL's start-up costs ~2 ms that most commands never need

    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob_path(layout_dir: str, digest: str) -> str:
    if not re.match(_DIGEST_RE, digest):
        # Refuse anything but sha256 hex: the digest becomes a path component.
        raise LayoutError(f"unsupported or malformed digest {digest!r}")
    alg, hexpart = digest.split(":", 1)
    return os.path.join(layout_dir, "blobs", alg, hexpart)


def write_blob(layout_dir: str, data: bytes) -> str:
    """Store `data` under its digest (a no-op when already present) and return the digest."""
    digest = sha256_digest(data)
    path = blob_path(layout_dir, digest)
    if not os.path.exists(path):
        atomic_write(path, data, 0o444)
    return digest


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data), **extra}


def init_layout(layout_dir: str) -> None:
    os.makedirs(os.path.join(layout_dir, "blobs", "sha256"), exist_ok=True)
    marker = os.path.join(layout_dir, "oci-layout")
    if not os.path.exists(marker):
        atomic_write(marker, canonical_json({"imageLayoutVersion": LAYOUT_VERSION}))


def read_index(layout_dir: str) -> dict[str, Any]:
    path = os.path.join(layout_dir, "index.json")
    try:
        with open(path, "rb") as f:
            index = json.load(f)
    except FileNotFoundError:
        raise LayoutError(f"{layout_dir}: not an OCI image layout (no index.json)") from None
    except json.JSONDecodeError as e:
        raise LayoutError(f"{path}: {e}") from None
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise LayoutError(f"{path}: not an image index")
    return index


def write_index(layout_dir: str, index: dict[str, Any]) -> None:
    """Replace index.json; the commit point of every layout update."""
    atomic_write(os.path.join(layout_dir, "index.json"), canonical_json(index))


def read_blob(layout_dir: str, desc: dict[str, Any], limit: int | None = None) -> bytes:
    """Read a blob named by a descriptor, checking its size and digest."""
    digest = desc.get("digest", "")
    size = desc.get("size")
    if limit is not None and isinstance(size, int) and size > limit:
        raise LayoutError(f"blob {digest} is too large ({size} bytes)")
    try:
        with open(blob_path(layout_dir, digest), "rb") as f:
            data = f.read() if limit is None else f.read(limit + 1)
    except FileNotFoundError:
        raise LayoutError(f"{layout_dir}: missing blob {digest}") from None
    if isinstance(size, int) and len(data) != size:
        raise LayoutError(f"blob {digest}: size {len(data)} != descriptor size {size}")
    if sha256_digest(data) != digest:
        raise LayoutError(f"blob {digest}: content does not match its digest")
    return data


def read_json_blob(layout_dir: str, desc: dict[str, Any]) -> dict[str, Any]:
    # Manifests and configs are small; 4 MiB bounds what a hostile layout can make us load.
    data = read_blob(layout_dir, desc, limit=4 << 20)
    try:
        obj = json.loads(data)
    except json.JSONDecodeError as e:
        raise LayoutError(f"blob {desc.get('digest')}: {e}") from None
    if not isinstance(obj, dict):
        raise LayoutError(f"blob {desc.get('digest')}: not a JSON object")
    return obj


def platform_matches(desc: dict[str, Any], want: dict[str, str]) -> bool:
    plat = desc.get("platform")
    if not isinstance(plat, dict):
        return False
    if plat.get("os") != want["os"] or plat.get("architecture") != want["architecture"]:
        return False
    return "variant" not in want or plat.get("variant") in (None, want["variant"])


def _pick_from_index(
    layout_dir: str, index: dict[str, Any], ref: str | None, depth: int
) -> dict[str, Any]:
    if depth > 4:
        raise LayoutError("image indexes nested too deeply")
    manifests = [m for m in index.get("manifests", []) if isinstance(m, dict)]
    if ref is not None:
        manifests = [
            m for m in manifests if m.get("annotations", {}).get(ANNOTATION_REF_NAME) == ref
        ]
        if not manifests:
            raise LayoutError(f"{layout_dir}: no image tagged {ref!r}")
    if not manifests:
        raise LayoutError(f"{layout_dir}: the index lists no images")
    if len(manifests) > 1:
        # A multi-platform list: the host's own platform wins, as with `docker pull`.
        want = host_platform()
        matching = [m for m in manifests if platform_matches(m, want)]
        if not matching:
            raise LayoutError(
                f"{layout_dir}: no image for {want['os']}/{want['architecture']}"
                + ("" if ref is not None else "; name one with LAYOUT:TAG")
            )
        manifests = matching
    chosen = manifests[0]
    media = chosen.get("mediaType")
    if media in INDEX_TYPES:
        return _pick_from_index(layout_dir, read_json_blob(layout_dir, chosen), None, depth + 1)
    if media not in MANIFEST_TYPES:
        raise LayoutError(f"{layout_dir}: unsupported manifest media type {media!r}")
    return chosen


def resolve_manifest(layout_dir: str, ref: str | None = None) -> dict[str, Any]:
    """The descriptor of the image manifest tagged `ref` (or the only / host-platform one)."""
    return _pick_from_index(layout_dir, read_index(layout_dir), ref, 0)


def load_image(layout_dir: str, ref: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest, config) of an image in a layout, both digest-checked."""
    manifest = read_json_blob(layout_dir, resolve_manifest(layout_dir, ref))
    config_desc = manifest.get("config")
    if not isinstance(config_desc, dict):
        raise LayoutError(f"{layout_dir}: manifest has no config descriptor")
    config = read_json_blob(layout_dir, config_desc)
    layers = manifest.get("layers")
    diff_ids = config.get("rootfs", {}).get("diff_ids")
    if not isinstance(layers, list) or not isinstance(diff_ids, list):
        raise LayoutError(f"{layout_dir}: manifest or config lacks its layer list")
    if len(layers) != len(diff_ids):
        raise LayoutError(f"{layout_dir}: {len(layers)} layers but {len(diff_ids)} diff_ids")
    return manifest, config
