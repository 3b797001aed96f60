"""Manifest media types, decoding and checks, and platform selection in image indexes.

Platform names are normalised as containerd does (`platforms.Normalize`): `x86_64` is
`amd64`, `aarch64` is `arm64` whose default variant `v8` is dropped, `arm` defaults to `v7`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from barque.image import oci_layout
from barque.registry.errors import NoMatchingPlatformError, UnsupportedManifestError
from barque.storage.blobs import BlobError, check_digest

# The types an OCI layout holds are named once, in oci_layout.
OCI_INDEX = oci_layout.MEDIA_INDEX
OCI_MANIFEST = oci_layout.MEDIA_MANIFEST
OCI_CONFIG = oci_layout.MEDIA_CONFIG
OCI_LAYER = oci_layout.MEDIA_LAYER
OCI_LAYER_GZIP = oci_layout.MEDIA_LAYER_GZIP
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_ND = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_ND_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_ND_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
DOCKER_LIST = oci_layout.MEDIA_DOCKER_LIST
DOCKER_MANIFEST = oci_layout.MEDIA_DOCKER_MANIFEST
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = oci_layout.MEDIA_DOCKER_LAYER_GZIP
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

INDEX_TYPES = oci_layout.INDEX_TYPES
MANIFEST_TYPES = oci_layout.MANIFEST_TYPES
CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})
LAYER_TYPES = frozenset({OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_LAYER_ND,
                         OCI_LAYER_ND_GZIP, OCI_LAYER_ND_ZSTD, DOCKER_LAYER_GZIP,
                         DOCKER_FOREIGN_LAYER})
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})
# What a pull accepts, best first (the registry converts nothing; it only picks a stored type).
ACCEPT = (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
# Manifests and indexes are small; the bound keeps a hostile registry from filling memory.
MAX_MANIFEST_SIZE = 4 << 20

_GENERIC_TYPES = frozenset({"", "application/json", "text/plain", "application/octet-stream"})
SCHEMA1_MESSAGE = ("unsupported manifest format: Docker Image manifest version 2, schema 1 is "
                   "deprecated and not supported; push the image again with a current tool")


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor (image-spec descriptor.md): what a manifest says about a blob."""

    media_type: str
    digest: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}

    @property
    def short_id(self) -> str:
        """The 12 hex digits Docker prints for a layer."""
        return self.digest.split(":", 1)[1][:12]


def parse_descriptor(obj: Any, what: str) -> Descriptor:
    """A descriptor from JSON, refusing a digest Barque cannot store or a bad size."""
    if not isinstance(obj, dict):
        raise UnsupportedManifestError(f"{what}: not a descriptor object")
    media, digest, size = obj.get("mediaType"), obj.get("digest"), obj.get("size")
    if not isinstance(media, str) or not media:
        raise UnsupportedManifestError(f"{what}: descriptor without a mediaType")
    try:
        check_digest(digest)  # type: ignore[arg-type]
    except BlobError as e:
        raise UnsupportedManifestError(f"{what}: {e}") from None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise UnsupportedManifestError(f"{what}: descriptor size {size!r} is not a byte count")
    return Descriptor(media, str(digest), size)


def _strip_params(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode(data: bytes, content_type: str | None) -> tuple[dict[str, Any], str]:
    """(JSON object, media type) of a manifest or index the registry served.

    The `mediaType` field wins over the Content-Type header, which some registries send as
    plain `application/json`; schema 1 and unknown kinds are refused.
    """
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UnsupportedManifestError(f"manifest is not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise UnsupportedManifestError("manifest is not a JSON object")
    header = _strip_params(content_type)
    declared = obj.get("mediaType")
    if obj.get("schemaVersion") == 1 or header in SCHEMA1_TYPES or declared in SCHEMA1_TYPES:
        raise UnsupportedManifestError(SCHEMA1_MESSAGE)
    if isinstance(declared, str) and declared:
        media = declared
    elif header not in _GENERIC_TYPES:
        media = header
    else:  # OCI allows mediaType to be absent; the shape tells.
        media = OCI_INDEX if "manifests" in obj else OCI_MANIFEST
    if media not in INDEX_TYPES | MANIFEST_TYPES:
        raise UnsupportedManifestError(f"unsupported manifest media type {media!r}")
    return obj, media


def image_parts(manifest: dict[str, Any]) -> tuple[Descriptor, list[Descriptor]]:
    """(config, layers) of an image manifest; refuses non-image artifacts."""
    config = parse_descriptor(manifest.get("config"), "manifest config")
    if config.media_type not in CONFIG_TYPES:
        raise UnsupportedManifestError(
            f"unsupported config media type {config.media_type!r}: not a container image")
    raw = manifest.get("layers")
    if not isinstance(raw, list):
        raise UnsupportedManifestError("manifest has no layers list")
    layers = [parse_descriptor(d, f"layer {i}") for i, d in enumerate(raw)]
    for layer in layers:
        if layer.media_type not in LAYER_TYPES:
            raise UnsupportedManifestError(
                f"unsupported layer media type {layer.media_type!r} ({layer.digest})")
    return config, layers


def index_entries(index: dict[str, Any]) -> list[tuple[Descriptor, dict[str, Any]]]:
    """(descriptor, raw entry) for each manifest an index lists."""
    raw = index.get("manifests")
    if not isinstance(raw, list):
        raise UnsupportedManifestError("image index has no manifests list")
    return [(parse_descriptor(e, f"index entry {i}"), e) for i, e in enumerate(raw)]


# --- platforms -----------------------------------------------------------------------------

_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386"}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def to_dict(self) -> dict[str, str]:
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out

    @classmethod
    def of(cls, os_name: str, arch: str, variant: str = "") -> Platform:
        """A normalised platform (see the module docstring)."""
        os_name, arch, variant = os_name.lower(), arch.lower(), variant.lower()
        if os_name == "macos":
            os_name = "darwin"
        arch = _ARCH_ALIASES.get(arch, arch)
        if arch == "armhf":
            arch, variant = "arm", "v7"
        elif arch == "armel":
            arch, variant = "arm", "v6"
        if arch == "amd64" and variant == "v1":
            variant = ""
        elif arch == "arm64" and variant in ("8", "v8", "v8.0"):
            variant = ""
        elif arch == "arm" and variant in ("", "7"):
            variant = "v7"
        elif arch in ("arm", "arm64", "amd64") and variant.isdigit():
            variant = "v" + variant
        if arch == "386":
            variant = ""
        return cls(os_name, arch, variant)

    @classmethod
    def from_dict(cls, obj: Any) -> Platform | None:
        if not isinstance(obj, dict):
            return None
        os_name, arch = obj.get("os"), obj.get("architecture")
        if not isinstance(os_name, str) or not isinstance(arch, str):
            return None
        variant = obj.get("variant")
        return cls.of(os_name, arch, variant if isinstance(variant, str) else "")


def parse_platform(text: str) -> Platform:
    """`linux/arm64/v8`, `linux/amd64`, `arm64` (os defaults to linux) → a Platform."""
    parts = text.strip().split("/") if isinstance(text, str) else []
    if not parts or not 1 <= len(parts) <= 3 or not all(parts):
        raise ValueError(f"invalid platform {text!r}: expected os[/arch[/variant]]")
    if len(parts) == 1:
        # A lone word is an OS if it is one Docker knows, else an architecture on linux.
        if parts[0].lower() in ("linux", "windows", "darwin", "freebsd"):
            return Platform.of(parts[0], host_platform().architecture)
        return Platform.of("linux", parts[0])
    return Platform.of(*parts)


def host_platform() -> Platform:
    plat = Platform.from_dict(oci_layout.host_platform())
    assert plat is not None
    return plat


def _variant_preference(want: Platform) -> list[str]:
    """Variants a machine of `want` runs, best first (containerd's `platforms.Only`)."""
    v = want.variant
    if want.architecture == "arm" and v in ("v5", "v6", "v7", "v8"):
        return [f"v{n}" for n in range(int(v[1]), 4, -1)]
    if want.architecture == "amd64" and v in ("v2", "v3", "v4"):
        return [f"v{n}" for n in range(int(v[1]), 1, -1)] + [""]
    if want.architecture == "arm64" and v.startswith("v9"):
        return [v, "v9", ""]
    return [v]


def select_platform(index: dict[str, Any], want: Platform) -> Descriptor:
    """The index entry for `want` (best variant first), or NoMatchingPlatformError."""
    candidates: list[tuple[Descriptor, Platform]] = []
    for desc, raw in index_entries(index):
        plat = Platform.from_dict(raw.get("platform"))
        if plat is not None and desc.media_type in MANIFEST_TYPES | INDEX_TYPES:
            candidates.append((desc, plat))
    for variant in _variant_preference(want):
        for desc, plat in candidates:
            if (plat.os, plat.architecture, plat.variant) == (want.os, want.architecture,
                                                              variant):
                return desc
    raise NoMatchingPlatformError(
        f"no matching manifest for {want} in the manifest list entries")
