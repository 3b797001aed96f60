"""Barque's default offline image: Debian's static busybox as a single-layer OCI image.

Barque must run a container on a machine with no registry access, so `busybox` is built
locally from the host's `/bin/busybox` (package busybox-static) instead of being pulled.
The layer tar is byte-for-byte deterministic (sorted entries, mtime 0, uid/gid 0, ustar
headers only), so the same busybox binary always yields the same image ID (config digest).
"""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import tarfile
from dataclasses import dataclass
from typing import Any

from barque.image import oci_layout as ol
from barque.linux.locks import locked_dir

BUSYBOX = "/bin/busybox"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# containerd's `ctr images import` names an image after this annotation.
CONTAINERD_NAME = "docker.io/library/busybox"
# Reproducible builds use a fixed epoch; 0 keeps the image independent of when it was built.
EPOCH = 0
CREATED = "1970-01-01T00:00:00Z"

PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
# tty (5) is the group owning /dev/pts entries in the default runtime spec (gid=5).
GROUP = b"root:x:0:\ntty:x:5:\nnogroup:x:65534:\n"

# Directories of the rootfs (besides those holding applets) and their modes.
DIRS = {
    "bin": 0o755,
    "dev": 0o755,
    "etc": 0o755,
    "home": 0o755,
    "proc": 0o555,
    "root": 0o700,
    "sbin": 0o755,
    "sys": 0o555,
    "tmp": 0o1777,
    "usr": 0o755,
    "usr/bin": 0o755,
    "usr/sbin": 0o755,
    "var": 0o755,
    "var/tmp": 0o1777,
}


class DefaultImageError(Exception):
    """busybox is missing or unusable, so the default image cannot be built."""


@dataclass(frozen=True)
class _Entry:
    name: str
    type: bytes  # tarfile.REGTYPE / DIRTYPE / SYMTYPE
    mode: int
    data: bytes = b""
    linkname: str = ""


def default_image_dir(root: str) -> str:
    """Where Barque keeps its default image under a Barque root directory."""
    return os.path.join(root, "default-image")


def _run_busybox(busybox: str, *args: str) -> str:
    try:
        proc = subprocess.run(
            [busybox, *args], capture_output=True, check=False, timeout=30, env={}
        )
    except OSError as e:
        raise DefaultImageError(
            f"cannot run {busybox}: {e.strerror} (install Debian's busybox-static)"
        ) from None
    return proc.stdout.decode("utf-8", "replace")


def busybox_version(busybox: str = BUSYBOX) -> str:
    """The banner's version, e.g. 'BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1)'."""
    first = _run_busybox(busybox).splitlines()[:1]
    banner = first[0] if first else ""
    return banner.removesuffix(" multi-call binary.") or "BusyBox (unknown version)"


def _applets(busybox: str) -> list[str]:
    names = [n.strip().strip("/") for n in _run_busybox(busybox, "--list-full").splitlines()]
    applets = sorted({n for n in names if n and n != "bin/busybox"})
    if not applets:
        raise DefaultImageError(f"{busybox} --list-full listed no applets: not a busybox?")
    for name in applets:
        parts = name.split("/")
        if ".." in parts or "." in parts or "" in parts:
            raise DefaultImageError(f"{busybox}: odd applet path {name!r}")
    return applets


def _rootfs_entries(busybox: str) -> list[_Entry]:
    with open(busybox, "rb") as f:
        binary = f.read()
    entries: dict[str, _Entry] = {}

    def add_dirs(path: str) -> None:
        parent = os.path.dirname(path)
        while parent:
            entries.setdefault(parent, _Entry(parent, tarfile.DIRTYPE, DIRS.get(parent, 0o755)))
            parent = os.path.dirname(parent)

    for d, mode in DIRS.items():
        entries[d] = _Entry(d, tarfile.DIRTYPE, mode)
    entries["bin/busybox"] = _Entry("bin/busybox", tarfile.REGTYPE, 0o755, binary)
    entries["etc/passwd"] = _Entry("etc/passwd", tarfile.REGTYPE, 0o644, PASSWD)
    entries["etc/group"] = _Entry("etc/group", tarfile.REGTYPE, 0o644, GROUP)
    for applet in _applets(busybox):
        if applet in entries:
            continue
        add_dirs(applet)
        # Relative targets keep the links valid when the rootfs is inspected from the host.
        target = os.path.relpath("bin/busybox", os.path.dirname(applet))
        entries[applet] = _Entry(applet, tarfile.SYMTYPE, 0o777, linkname=target)
    # Component-wise order puts every directory before its contents.
    return [entries[k] for k in sorted(entries, key=lambda p: p.split("/"))]


def _tar_info(entry: _Entry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.name + "/" if entry.type == tarfile.DIRTYPE else entry.name)
    info.type = entry.type
    info.mode = entry.mode
    info.size = len(entry.data)
    info.linkname = entry.linkname
    info.mtime = EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def build_layer_tar(busybox: str = BUSYBOX) -> bytes:
    """The uncompressed, deterministic layer tar of the busybox rootfs."""
    buf = io.BytesIO()
    # USTAR: fixed headers only, no pax records carrying atime/ctime or other host detail.
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for entry in _rootfs_entries(busybox):
            tar.addfile(_tar_info(entry), io.BytesIO(entry.data) if entry.data else None)
    return buf.getvalue()


def gzip_deterministic(data: bytes) -> bytes:
    buf = io.BytesIO()
    # mtime=0 and an empty file name keep the gzip header free of build-time detail.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return buf.getvalue()


def build_default_image(layout_dir: str, tag: str = "latest", *, busybox: str = BUSYBOX) -> str:
    """Build the busybox image into the OCI layout `layout_dir`, tagged `tag`.

    Other tags already in the layout are kept. Returns the manifest digest; the image ID
    (config digest) is `image_id(layout_dir, tag)`.
    """
    if not os.path.isfile(busybox):
        raise DefaultImageError(
            f"{busybox} not found: install it with `apt-get install -y busybox-static`"
        )
    layer_tar = build_layer_tar(busybox)
    layer_gz = gzip_deterministic(layer_tar)
    plat = ol.host_platform()
    version = busybox_version(busybox)
    config: dict[str, Any] = {
        "created": CREATED,
        **plat,
        "config": {"Env": [f"PATH={DEFAULT_PATH}"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [ol.sha256_digest(layer_tar)]},
        "history": [
            {
                "created": CREATED,
                "created_by": f"barque image build-default: {version} from {BUSYBOX}",
                "comment": "busybox-static with one symlink per applet",
            }
        ],
    }
    config_bytes = ol.canonical_json(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": ol.MEDIA_MANIFEST,
        "config": ol.descriptor(ol.MEDIA_CONFIG, config_bytes),
        "layers": [ol.descriptor(ol.MEDIA_LAYER_GZIP, layer_gz)],
    }
    manifest_bytes = ol.canonical_json(manifest)
    with locked_dir(layout_dir):
        ol.init_layout(layout_dir)
        # Blobs first, index last: the index only ever names complete blobs.
        ol.write_blob(layout_dir, layer_gz)
        ol.write_blob(layout_dir, config_bytes)
        manifest_digest = ol.write_blob(layout_dir, manifest_bytes)
        try:
            kept = [
                m
                for m in ol.read_index(layout_dir)["manifests"]
                if m.get("annotations", {}).get(ol.ANNOTATION_REF_NAME) != tag
            ]
        except ol.LayoutError:
            kept = []
        entry = ol.descriptor(
            ol.MEDIA_MANIFEST,
            manifest_bytes,
            platform=plat,
            annotations={
                ol.ANNOTATION_REF_NAME: tag,
                ol.ANNOTATION_CONTAINERD_NAME: f"{CONTAINERD_NAME}:{tag}",
            },
        )
        index = {"schemaVersion": 2, "mediaType": ol.MEDIA_INDEX, "manifests": [*kept, entry]}
        ol.write_index(layout_dir, index)
    return manifest_digest


def image_id(layout_dir: str, tag: str = "latest") -> str:
    """The image ID (config digest) of `tag` in a layout, as `docker images --no-trunc`."""
    manifest, _ = ol.load_image(layout_dir, tag)
    return str(manifest["config"]["digest"])


def ensure_default_image(root: str, tag: str = "latest") -> str:
    """The default image's layout dir under `root`, built on first use."""
    layout = default_image_dir(root)
    try:
        ol.load_image(layout, tag)
    except ol.LayoutError:
        build_default_image(layout, tag)
    return layout


def _archive_info(name: str, st: os.stat_result | None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    if st is None:
        info.type, info.mode, info.size = tarfile.DIRTYPE, 0o755, 0
    else:
        info.type, info.mode, info.size = tarfile.REGTYPE, 0o644, st.st_size
    info.mtime = EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_oci_archive(layout_dir: str, tar_path: str) -> None:
    """Write the layout as an OCI archive (what `skopeo copy oci-archive:` and
    `ctr images import` read): the layout's files at the root of a plain tar."""
    ol.read_index(layout_dir)  # fail early, with a clear message, on a non-layout
    blob_root = os.path.join(layout_dir, "blobs")
    dirs = ["blobs/"]
    blobs: list[str] = []
    for alg in sorted(os.listdir(blob_root)):
        dirs.append(f"blobs/{alg}/")
        for h in sorted(os.listdir(os.path.join(blob_root, alg))):
            if not h.startswith(".tmp-"):  # a crashed writer's leftover, never a blob
                blobs.append(f"blobs/{alg}/{h}")
    with locked_dir(layout_dir), ol.atomic_writer(tar_path) as out:
        with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for d in dirs:
                tar.addfile(_archive_info(d, None))
            for name in ["oci-layout", "index.json", *blobs]:
                with open(os.path.join(layout_dir, name), "rb") as f:
                    tar.addfile(_archive_info(name, os.fstat(f.fileno())), f)
