"""save/load: docker-archive and OCI archives, read and written by skopeo and umoci too, and
hostile archives that must fail cleanly."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import subprocess
import tarfile
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import zstandard

from barque.image import default as default_image
from barque.image import oci_layout as ol
from barque.image.archive import ArchiveError, load, save
from barque.image.store import Image, ImageStore
from tests.support.marks import needs_busybox
from tests.support.tools import require

pytestmark = [
    pytest.mark.root,  # layers are unpacked with their owners
    needs_busybox,
]

BUSYBOX = "docker.io/library/busybox:latest"


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The default busybox image as an OCI layout (ref.name `latest`, containerd's name)."""
    path = str(tmp_path_factory.mktemp("layout") / "busybox")
    default_image.build_default_image(path)
    return path


def _store(root: str) -> ImageStore:
    return ImageStore(root)


@pytest.fixture
def store(tmp_path: Any, layout: str) -> Iterator[ImageStore]:
    s = _store(str(tmp_path / "src"))
    s.import_oci_layout(layout, "latest", "busybox")
    yield s
    s.close()


@pytest.fixture
def fresh(tmp_path: Any) -> Iterator[ImageStore]:
    s = _store(str(tmp_path / "dst"))
    yield s
    s.close()


def _image(store: ImageStore) -> Image:
    return store.resolve("busybox")


def _state(store: ImageStore) -> tuple[Any, ...]:
    """What a failed load must not change: images and tags, layer dirs, ingest leftovers
    (lock files aside: a command that finds the store idle removes the old ones)."""
    return ([(i.id, tuple(i.tags)) for i in store.images()],
            sorted(n for n in os.listdir(store.layer_dir) if not n.endswith(".lock")),
            sorted(n for n in os.listdir(store.blobs.ingest_dir) if not n.endswith(".lock")))


def _save(store: ImageStore, names: list[str], fmt: str = "docker-archive") -> bytes:
    buf = io.BytesIO()
    save(store, names, buf, fmt)
    return buf.getvalue()


def _members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def _read_member(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


# --- round trips ---------------------------------------------------------------------------

def test_docker_archive_round_trip_keeps_id_and_tags(store: ImageStore, fresh: ImageStore,
                                                     tmp_path: Any) -> None:
    image = _image(store)
    path = str(tmp_path / "busybox.tar")
    save(store, ["busybox"], path)
    assert load(fresh, path) == ["Loaded image: busybox:latest"]
    loaded = fresh.resolve("busybox:latest")
    assert loaded.id == image.id and loaded.tags == [BUSYBOX]
    assert [la.diff_id for la in loaded.layers] == [la.diff_id for la in image.layers]
    assert os.path.isfile(os.path.join(fresh.lowers(loaded)[0], "bin", "busybox"))
    # Loading again changes nothing and says the same.
    assert load(fresh, path) == ["Loaded image: busybox:latest"]
    assert len(fresh.images()) == 1


def test_docker_archive_layout(store: ImageStore) -> None:
    image = _image(store)
    data = _save(store, ["busybox"])
    members = _members(data)
    (item,) = json.loads(_read_member(data, "manifest.json"))
    assert item["Config"] == image.id.split(":")[1] + ".json"
    assert item["RepoTags"] == ["busybox:latest"]
    (layer_path,) = item["Layers"]
    layer_id = layer_path.split("/")[0]
    assert _read_member(data, f"{layer_id}/VERSION") == b"1.0"
    assert json.loads(_read_member(data, f"{layer_id}/json"))["id"] == layer_id
    layer = _read_member(data, layer_path)  # a symlink into blobs/: tarfile follows it
    assert "sha256:" + hashlib.sha256(layer).hexdigest() == image.layers[0].diff_id
    assert json.loads(_read_member(data, "repositories")) == {"busybox": {"latest": layer_id}}
    # The config's bytes are the store's (the image ID depends on them).
    assert _read_member(data, item["Config"]) == store.blobs.read(image.id)
    # The OCI half: the index names the image both ways.
    (entry,) = json.loads(_read_member(data, "index.json"))["manifests"]
    assert entry["annotations"] == {ol.ANNOTATION_CONTAINERD_NAME: BUSYBOX,
                                    ol.ANNOTATION_REF_NAME: "busybox:latest"}
    assert "oci-layout" in members
    # Deterministic headers: the same store saves the same bytes.
    assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in members.values())
    assert _save(store, ["busybox"]) == data


def test_oci_archive_round_trip(store: ImageStore, fresh: ImageStore) -> None:
    image = _image(store)
    data = _save(store, ["busybox"], "oci-archive")
    members = _members(data)
    assert "manifest.json" not in members
    # Blobs as stored: the compressed layer and the stored manifest.
    assert "blobs/sha256/" + image.layers[0].blob_digest.split(":")[1] in members
    (entry,) = json.loads(_read_member(data, "index.json"))["manifests"]
    assert entry["digest"] == image.manifest_digest
    assert load(fresh, io.BytesIO(data)) == ["Loaded image: busybox:latest"]
    assert fresh.resolve("busybox").id == image.id
    assert fresh.resolve("busybox").manifest_digest == image.manifest_digest


def test_oci_dir_is_a_layout_umoci_unpacks(store: ImageStore, tmp_path: Any) -> None:
    require("umoci")
    layout_dir = str(tmp_path / "layout")
    save(store, ["busybox"], layout_dir, "oci-dir")
    manifest, config = ol.load_image(layout_dir, "busybox:latest")
    assert manifest["config"]["digest"] == _image(store).id
    bundle = str(tmp_path / "bundle")
    subprocess.run(["umoci", "unpack", "--image", f"{layout_dir}:busybox:latest", bundle],
                   check=True, capture_output=True)
    assert os.path.isfile(os.path.join(bundle, "rootfs", "bin", "busybox"))


def test_several_images_share_layers(store: ImageStore, fresh: ImageStore) -> None:
    image = _image(store)
    other = _variant(store, image, "localhost:5000/other:v1")
    data = _save(store, ["busybox", "localhost:5000/other:v1"])
    names = [m.name for m in tarfile.open(fileobj=io.BytesIO(data)).getmembers()]
    layer_blob = "blobs/sha256/" + image.layers[0].diff_id.split(":")[1]
    assert names.count(layer_blob) == 1
    items = json.loads(_read_member(data, "manifest.json"))
    assert [i["RepoTags"] for i in items] == [["busybox:latest"], ["localhost:5000/other:v1"]]
    assert load(fresh, io.BytesIO(data)) == ["Loaded image: busybox:latest",
                                             "Loaded image: localhost:5000/other:v1"]
    assert {i.id for i in fresh.images()} == {image.id, other.id}


def _variant(store: ImageStore, image: Image, tag: str) -> Image:
    """Another image on the same layer (a different config)."""
    config = store.config(image)
    config["config"] = {**config.get("config", {}), "Labels": {"variant": "1"}}
    config_bytes = ol.canonical_json(config)
    manifest = store.manifest(image)
    manifest["config"] = ol.descriptor(ol.MEDIA_CONFIG, config_bytes)
    store.blobs.put(config_bytes)
    with store.writing():
        return store.register(store.blobs.put(ol.canonical_json(manifest)), tags=[tag])


def test_save_by_id_is_untagged(store: ImageStore, fresh: ImageStore) -> None:
    image = _image(store)
    data = _save(store, [image.short_id])
    assert json.loads(_read_member(data, "manifest.json"))[0]["RepoTags"] is None
    assert load(fresh, io.BytesIO(data)) == [f"Loaded image ID: {image.id}"]
    assert fresh.get(image.id).tags == []


def test_save_repository_saves_all_its_tags(store: ImageStore) -> None:
    image = _image(store)
    store.tag(image, "busybox:other")
    (item,) = json.loads(_read_member(_save(store, ["busybox"]), "manifest.json"))
    assert item["RepoTags"] == ["busybox:latest", "busybox:other"]


def test_load_moves_a_tag_as_docker_says(store: ImageStore, fresh: ImageStore) -> None:
    image = _image(store)
    other = _variant(store, image, "localhost:5000/other:v1")
    fresh_data = _save(store, ["busybox"])
    load(fresh, io.BytesIO(fresh_data))
    store.tag(other, "busybox:latest")
    lines = load(fresh, io.BytesIO(_save(store, ["busybox:latest"])))
    assert lines == [f"The image busybox:latest already exists, renaming the old one with ID "
                     f"{image.id} to empty string", "Loaded image: busybox:latest"]


# --- skopeo and umoci ----------------------------------------------------------------------

def test_skopeo_reads_docker_archive(store: ImageStore, tmp_path: Any) -> None:
    require("skopeo")
    image = _image(store)
    path = str(tmp_path / "busybox.tar")
    save(store, ["busybox"], path)
    out = json.loads(subprocess.run(["skopeo", "inspect", f"docker-archive:{path}"],
                                    check=True, capture_output=True, text=True).stdout)
    assert out["Layers"] == [image.layers[0].diff_id]
    raw = subprocess.run(["skopeo", "inspect", "--config", "--raw", f"docker-archive:{path}"],
                         check=True, capture_output=True).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == image.id


@pytest.mark.parametrize("fmt", ["oci-archive", "docker-archive"])
def test_skopeo_and_umoci_read_the_oci_form(store: ImageStore, tmp_path: Any, fmt: str) -> None:
    require("skopeo", "umoci")
    image = _image(store)
    path = str(tmp_path / "busybox.tar")
    save(store, ["busybox"], path, fmt)
    out = json.loads(subprocess.run(["skopeo", "inspect", f"oci-archive:{path}:busybox:latest"],
                                    check=True, capture_output=True, text=True).stdout)
    assert out["Architecture"] == ol.host_platform()["architecture"]
    copy = str(tmp_path / "copy")
    subprocess.run(["skopeo", "copy", f"oci-archive:{path}:busybox:latest", f"oci:{copy}:x"],
                   check=True, capture_output=True)
    assert ol.load_image(copy, "x")[0]["config"]["digest"] == image.id
    bundle = str(tmp_path / "bundle")
    subprocess.run(["umoci", "unpack", "--image", f"{copy}:x", bundle], check=True,
                   capture_output=True)
    assert os.path.isfile(os.path.join(bundle, "rootfs", "bin", "busybox"))


def test_load_what_skopeo_writes(layout: str, fresh: ImageStore, tmp_path: Any) -> None:
    require("skopeo")
    path = str(tmp_path / "skopeo.tar")
    subprocess.run(["skopeo", "copy", f"oci:{layout}:latest",
                    f"docker-archive:{path}:busybox:latest"], check=True, capture_output=True)
    assert load(fresh, path) == ["Loaded image: busybox:latest"]
    assert fresh.resolve("busybox").id == default_image.image_id(layout)


def test_docker_schema2_image_saves_as_oci(layout: str, fresh: ImageStore,
                                          tmp_path: Any) -> None:
    """An image loaded from a docker-archive (a Docker manifest over uncompressed layers)
    saves as an OCI archive umoci unpacks, and as a docker-archive, keeping its ID."""
    require("skopeo", "umoci")
    path = str(tmp_path / "skopeo.tar")
    subprocess.run(["skopeo", "copy", f"oci:{layout}:latest",
                    f"docker-archive:{path}:busybox:latest"], check=True, capture_output=True)
    load(fresh, path)
    image = fresh.resolve("busybox")
    assert image.manifest_media_type == ol.MEDIA_DOCKER_MANIFEST
    oci_tar = str(tmp_path / "oci.tar")
    save(fresh, ["busybox"], oci_tar, "oci-archive")
    extracted = str(tmp_path / "extracted")
    os.mkdir(extracted)
    with tarfile.open(oci_tar) as tar:
        tar.extractall(extracted, filter="data")
    bundle = str(tmp_path / "bundle")
    subprocess.run(["umoci", "unpack", "--image", f"{extracted}:busybox:latest", bundle],
                   check=True, capture_output=True)
    again = _store(str(tmp_path / "again"))
    try:
        load(again, oci_tar)
        load(again, io.BytesIO(_save(fresh, ["busybox"])))
        assert [i.id for i in again.images()] == [image.id]
    finally:
        again.close()


def test_load_oci_archive_with_bare_tag_uses_containerd_name(layout: str, fresh: ImageStore,
                                                             tmp_path: Any) -> None:
    path = str(tmp_path / "default.tar")
    default_image.write_oci_archive(layout, path)  # ref.name "latest" + containerd's name
    assert load(fresh, path) == ["Loaded image: busybox:latest"]
    assert fresh.resolve("busybox").id == default_image.image_id(layout)


def test_load_oci_archive_with_only_a_bare_tag_is_untagged(layout: str, fresh: ImageStore,
                                                           tmp_path: Any) -> None:
    index = ol.read_index(layout)
    for entry in index["manifests"]:
        entry["annotations"] = {ol.ANNOTATION_REF_NAME: "latest"}
    data = _tar_of_layout(layout, index)
    assert load(fresh, io.BytesIO(data)) == [f"Loaded image ID: {default_image.image_id(layout)}"]


def _tar_of_layout(layout_dir: str, index: dict[str, Any]) -> bytes:
    files = {"oci-layout": ol.canonical_json({"imageLayoutVersion": "1.0.0"}),
             "index.json": ol.canonical_json(index)}
    for name in os.listdir(os.path.join(layout_dir, "blobs", "sha256")):
        with open(os.path.join(layout_dir, "blobs", "sha256", name), "rb") as f:
            files[f"blobs/sha256/{name}"] = f.read()
    return _tar(files)


# --- compression and streams ---------------------------------------------------------------

def test_load_gzip_from_a_pipe(store: ImageStore, fresh: ImageStore) -> None:
    data = gzip.compress(_save(store, ["busybox"]))
    r, w = os.pipe()

    def writer() -> None:
        with os.fdopen(w, "wb") as f:
            for i in range(0, len(data), 65536):
                f.write(data[i:i + 65536])

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with os.fdopen(r, "rb", buffering=0) as pipe:
            assert load(fresh, pipe) == ["Loaded image: busybox:latest"]
    finally:
        thread.join()
    assert fresh.resolve("busybox").id == _image(store).id


@pytest.mark.parametrize("compress", [bz2.compress, lzma.compress,
                                      zstandard.ZstdCompressor().compress],
                         ids=["bzip2", "xz", "zstd"])
def test_load_compressed(store: ImageStore, fresh: ImageStore, compress: Any) -> None:
    data = compress(_save(store, ["busybox"], "oci-archive"))
    assert load(fresh, io.BytesIO(data)) == ["Loaded image: busybox:latest"]


# --- hostile archives ----------------------------------------------------------------------

def _tar(files: Mapping[str, bytes | tuple[str, str]]) -> bytes:
    """A tar of regular files (bytes) and links (("sym"|"hard", target))."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            if isinstance(content, tuple):
                info.type = tarfile.SYMTYPE if content[0] == "sym" else tarfile.LNKTYPE
                info.linkname = content[1]
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def _layer_tar() -> bytes:
    return _tar({"hello.txt": b"hello\n"})


def _docker_archive(layer: bytes, diff_id: str | None = None,
                    extra: dict[str, bytes | tuple[str, str]] | None = None,
                    layer_name: str = "abc/layer.tar") -> bytes:
    config = ol.canonical_json({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers",
                   "diff_ids": [diff_id or "sha256:" + hashlib.sha256(layer).hexdigest()]}})
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["evil:latest"],
                            "Layers": ["abc/layer.tar"]}]).encode()
    return _tar({"manifest.json": manifest, "config.json": config, layer_name: layer,
                 **(extra or {})})


def _refused(store: ImageStore, data: bytes, match: str) -> None:
    before = _state(store)
    with pytest.raises(ArchiveError, match=match):
        load(store, io.BytesIO(data))
    assert _state(store) == before


def test_crafted_archive_loads(store: ImageStore) -> None:
    # The helper builds a valid archive: the hostile variants below differ in one thing.
    assert load(store, io.BytesIO(_docker_archive(_layer_tar()))) == [
        "Loaded image: evil:latest"]


@pytest.mark.parametrize("compress", [gzip.compress, lzma.compress], ids=["gzip", "xz"])
def test_docker_archive_with_compressed_layer(fresh: ImageStore, compress: Any) -> None:
    # containerd's exporter writes compressed layers; the diff ID is still the plain tar's.
    layer = _layer_tar()
    data = _docker_archive(compress(layer), diff_id=ol.sha256_digest(layer))
    assert load(fresh, io.BytesIO(data)) == ["Loaded image: evil:latest"]
    (lower,) = fresh.lowers(fresh.resolve("evil"))
    assert os.path.isfile(os.path.join(lower, "hello.txt"))


def test_refuses_dotdot_member(store: ImageStore) -> None:
    _refused(store, _docker_archive(_layer_tar(), extra={"../escape": b"x"}),
             "path escapes the archive")


def test_refuses_absolute_member(store: ImageStore) -> None:
    _refused(store, _docker_archive(_layer_tar(), extra={"/etc/evil": b"x"}), "absolute path")


def test_refuses_symlink_out_of_the_archive(store: ImageStore) -> None:
    data = _docker_archive(_layer_tar(), layer_name="real.tar",
                           extra={"abc/layer.tar": ("sym", "../../../etc/passwd")})
    _refused(store, data, "path escapes the archive")


def test_refuses_layer_not_matching_its_diff_id(store: ImageStore) -> None:
    _refused(store, _docker_archive(_layer_tar(), diff_id="sha256:" + "0" * 64),
             "invalid diffID for layer 0")


def test_refuses_manifest_naming_a_missing_file(store: ImageStore) -> None:
    _refused(store, _docker_archive(_layer_tar(), layer_name="elsewhere.tar"),
             "layer 'abc/layer.tar' is missing from the archive")


def test_refuses_truncated_archive(store: ImageStore) -> None:
    data = _save(store, ["busybox"])
    # dockerd's words (Go's archive/tar in its untar child)
    _refused(store, data[:len(data) // 2], r"Error processing tar file\(exit status 1\): "
             "unexpected EOF")


def test_refuses_truncated_at_a_header(store: ImageStore) -> None:
    data = _save(store, ["busybox"])
    offsets = [m.offset for m in tarfile.open(fileobj=io.BytesIO(data)).getmembers()]
    _refused(store, data[:offsets[-1] + 100], "truncated")


def test_refuses_truncated_gzip(store: ImageStore) -> None:
    data = gzip.compress(_save(store, ["busybox"]))
    _refused(store, data[:-20], "invalid archive")


def test_refuses_garbage(store: ImageStore) -> None:
    _refused(store, os.urandom(4096), "archive/tar: invalid tar header")
    _refused(store, b"", "empty")


def test_refuses_oci_blob_not_matching_its_digest(store: ImageStore, layout: str) -> None:
    index = ol.read_index(layout)
    data = bytearray(_tar_of_layout(layout, index))
    # Flip one byte inside the (largest) layer blob.
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tar:
        member = max(tar.getmembers(), key=lambda m: m.size)
    data[member.offset_data + 1000] ^= 0xFF
    _refused(store, bytes(data), "does not match its digest")


def test_refuses_oci_layer_not_matching_its_diff_id(fresh: ImageStore, tmp_path: Any) -> None:
    layer = gzip.compress(_layer_tar())
    config = ol.canonical_json({"architecture": "amd64", "os": "linux",
                                "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]}})
    manifest = ol.canonical_json({
        "schemaVersion": 2, "mediaType": ol.MEDIA_MANIFEST,
        "config": ol.descriptor(ol.MEDIA_CONFIG, config),
        "layers": [ol.descriptor(ol.MEDIA_LAYER_GZIP, layer)]})
    index = {"schemaVersion": 2, "manifests": [ol.descriptor(
        ol.MEDIA_MANIFEST, manifest, annotations={ol.ANNOTATION_REF_NAME: "x:1"})]}
    files: dict[str, bytes | tuple[str, str]] = {"index.json": ol.canonical_json(index)}
    for blob in (layer, config, manifest):
        files["blobs/" + ol.sha256_digest(blob).replace(":", "/")] = blob
    _refused(fresh, _tar(files), "invalid diffID for layer 0")


def test_refuses_archive_without_an_image(store: ImageStore) -> None:
    _refused(store, _tar({"hello": b"x"}), "neither manifest.json")


def test_load_missing_file_is_clear(store: ImageStore, tmp_path: Any) -> None:
    with pytest.raises(ArchiveError, match="no such file"):
        load(store, str(tmp_path / "nope.tar"))
