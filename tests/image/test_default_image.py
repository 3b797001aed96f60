"""The default busybox image: valid OCI, deterministic, readable by skopeo, umoci, containerd."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

from barque.image import default as default_image
from barque.image import oci_layout as ol
from tests.support.containerd import private_containerd
from tests.support.marks import needs_busybox

# The OCI image schemas vendored for the registry tests (README there).
SCHEMA_DIR = os.path.join(os.path.dirname(__file__), "..", "registry", "schemas")

pytestmark = needs_busybox


@pytest.fixture
def layout(tmp_path: Any) -> str:
    path = str(tmp_path / "layout")
    default_image.build_default_image(path)
    return path


def _read_json(layout: str, digest: str) -> dict[str, Any]:
    with open(ol.blob_path(layout, digest), "rb") as f:
        result: dict[str, Any] = json.load(f)
    return result


def _index(layout: str) -> dict[str, Any]:
    with open(os.path.join(layout, "index.json"), "rb") as f:
        result: dict[str, Any] = json.load(f)
    return result


def _validator(entry: str) -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    referencing = pytest.importorskip("referencing")
    from referencing.jsonschema import DRAFT4

    resources = []
    for name in (n for n in os.listdir(SCHEMA_DIR) if n.endswith(".json")):
        with open(os.path.join(SCHEMA_DIR, name)) as f:
            resource = referencing.Resource.from_contents(json.load(f), DRAFT4)
        # The schemas' ids put some files under /schema/ and some under /schema/image/, and
        # their relative $refs resolve against both; register every file at both places.
        for base in (
            "https://opencontainers.org/schema/",
            "https://opencontainers.org/schema/image/",
        ):
            resources.append((base + name, resource))
    registry = referencing.Registry().with_resources(resources)
    with open(os.path.join(SCHEMA_DIR, entry)) as f:
        schema = json.load(f)
    return jsonschema.Draft4Validator(schema, registry=registry)


def test_index_manifest_config_match_the_oci_schemas(layout: str) -> None:
    index = _index(layout)
    _validator("image-index-schema.json").validate(index)
    [desc] = index["manifests"]
    manifest = _read_json(layout, desc["digest"])
    _validator("image-manifest-schema.json").validate(manifest)
    config = _read_json(layout, manifest["config"]["digest"])
    _validator("config-schema.json").validate(config)
    with open(os.path.join(layout, "oci-layout")) as f:
        _validator("image-layout-schema.json").validate(json.load(f))


def test_the_validator_really_checks(layout: str) -> None:
    """Guard against a schema setup that accepts anything: the error is behind a $ref."""
    jsonschema = pytest.importorskip("jsonschema")
    [desc] = _index(layout)["manifests"]
    bad = _read_json(layout, desc["digest"])
    bad["config"]["mediaType"] = "not a media type"
    with pytest.raises(jsonschema.ValidationError, match="does not match"):
        _validator("image-manifest-schema.json").validate(bad)


def test_index_names_the_image_for_oci_tools_and_containerd(layout: str) -> None:
    [desc] = _index(layout)["manifests"]
    assert desc["mediaType"] == ol.MEDIA_MANIFEST
    assert desc["annotations"] == {
        "org.opencontainers.image.ref.name": "latest",
        "io.containerd.image.name": "docker.io/library/busybox:latest",
    }
    assert desc["platform"] == ol.host_platform()


def test_config_describes_the_layer_and_host(layout: str) -> None:
    manifest, config = ol.load_image(layout, "latest")
    plat = ol.host_platform()
    assert config["architecture"] == plat["architecture"]
    assert config["os"] == "linux"
    assert config["config"]["Cmd"] == ["sh"]
    assert config["config"]["Env"] == [f"PATH={default_image.DEFAULT_PATH}"]
    [layer] = manifest["layers"]
    assert layer["mediaType"] == ol.MEDIA_LAYER_GZIP
    with open(ol.blob_path(layout, layer["digest"]), "rb") as f:
        raw = gzip.decompress(f.read())
    assert config["rootfs"] == {"type": "layers", "diff_ids": [ol.sha256_digest(raw)]}
    assert len(config["history"]) == 1 and "BusyBox" in config["history"][0]["created_by"]


def test_same_busybox_gives_same_digests(tmp_path: Any) -> None:
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    first = default_image.build_default_image(a)
    time.sleep(1.1)  # a timestamp leaking into the image would now differ
    second = default_image.build_default_image(b)
    assert first == second
    assert default_image.image_id(a) == default_image.image_id(b)
    assert sorted(os.listdir(os.path.join(a, "blobs", "sha256"))) == sorted(
        os.listdir(os.path.join(b, "blobs", "sha256"))
    )
    # Rebuilding in place is a no-op.
    assert default_image.build_default_image(a) == first
    assert len(_index(a)["manifests"]) == 1


def test_layer_tar_is_clean_and_complete(layout: str) -> None:
    manifest, _ = ol.load_image(layout, "latest")
    with open(ol.blob_path(layout, manifest["layers"][0]["digest"]), "rb") as f:
        data = f.read()
    assert data[4:8] == b"\0\0\0\0"  # gzip header mtime
    raw = gzip.decompress(data)
    names = []
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        members = {m.name: m for m in tar}
        for m in tar.getmembers():
            names.append(m.name)
            assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "")
            assert not m.pax_headers
            assert m.type in (tarfile.DIRTYPE, tarfile.REGTYPE, tarfile.SYMTYPE)
        passwd = tar.extractfile("etc/passwd")
        assert passwd is not None
        passwd_text = passwd.read().decode()
    assert b"PaxHeader" not in raw and b"ustar" in raw[:512]
    # Directories precede their contents, entries in a stable order.
    assert names == sorted(names, key=lambda n: n.split("/"))
    assert members["bin/busybox"].isreg() and members["bin/busybox"].mode == 0o755
    assert members["bin/sh"].issym() and members["bin/sh"].linkname == "busybox"
    assert members["usr/bin/env"].linkname == "../../bin/busybox"
    assert members["tmp"].isdir() and members["tmp"].mode == 0o1777
    assert members["root"].mode == 0o700
    for d in ("proc", "sys", "dev", "etc", "root", "tmp"):
        assert members[d].isdir()
    assert "root:x:0:0:" in passwd_text and ":65534:65534:" in passwd_text
    with open(default_image.BUSYBOX, "rb") as f:
        assert members["bin/busybox"].size == len(f.read())


def test_other_tags_are_kept(layout: str) -> None:
    default_image.build_default_image(layout, "other")
    refs = sorted(m["annotations"][ol.ANNOTATION_REF_NAME] for m in _index(layout)["manifests"])
    assert refs == ["latest", "other"]
    assert ol.load_image(layout, "other")[1] == ol.load_image(layout, "latest")[1]


def test_archive_is_deterministic_and_holds_the_layout(layout: str, tmp_path: Any) -> None:
    a, b = str(tmp_path / "a.tar"), str(tmp_path / "b.tar")
    default_image.write_oci_archive(layout, a)
    default_image.write_oci_archive(layout, b)
    with open(a, "rb") as fa, open(b, "rb") as fb:
        assert fa.read() == fb.read()
    with tarfile.open(a) as tar:
        names = set(tar.getnames())
    blobs = {f"blobs/sha256/{h}" for h in os.listdir(os.path.join(layout, "blobs", "sha256"))}
    assert {"oci-layout", "index.json"} | blobs <= names
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]


def test_default_image_dir_and_ensure(tmp_path: Any) -> None:
    root = str(tmp_path)
    assert default_image.default_image_dir(root) == os.path.join(root, "default-image")
    layout = default_image.ensure_default_image(root)
    assert layout == default_image.default_image_dir(root)
    before = os.stat(os.path.join(layout, "index.json")).st_mtime_ns
    assert default_image.ensure_default_image(root) == layout
    assert os.stat(os.path.join(layout, "index.json")).st_mtime_ns == before  # not rebuilt


def test_missing_busybox_is_a_clear_error(tmp_path: Any) -> None:
    with pytest.raises(default_image.DefaultImageError, match="busybox-static"):
        default_image.build_default_image(str(tmp_path / "l"), busybox=str(tmp_path / "nope"))


@pytest.mark.skipif(not shutil.which("skopeo"), reason="skopeo is not installed")
def test_skopeo_reads_layout_and_archive(layout: str, tmp_path: Any) -> None:
    archive = str(tmp_path / "busybox.tar")
    default_image.write_oci_archive(layout, archive)
    manifest_digest = _index(layout)["manifests"][0]["digest"]
    for ref in (f"oci:{layout}:latest", f"oci-archive:{archive}:latest"):
        out = subprocess.run(
            ["skopeo", "inspect", ref], capture_output=True, text=True, check=True
        ).stdout
        info = json.loads(out)
        assert info["Digest"] == manifest_digest
        assert info["Architecture"] == ol.host_platform()["architecture"]
        assert info["Os"] == "linux"
    # A full copy re-reads and re-verifies every blob.
    subprocess.run(
        ["skopeo", "copy", "--quiet", f"oci-archive:{archive}:latest", f"oci:{tmp_path}/copy:x"],
        check=True,
    )


@pytest.mark.skipif(not shutil.which("umoci"), reason="umoci is not installed")
def test_umoci_unpacks_a_runnable_rootfs(layout: str, tmp_path: Any) -> None:
    bundle = str(tmp_path / "bundle")
    cmd = ["umoci", "unpack", "--image", f"{layout}:latest", bundle]
    if os.geteuid() != 0:
        cmd.insert(2, "--rootless")
    subprocess.run(cmd, check=True, capture_output=True)
    rootfs = os.path.join(bundle, "rootfs")
    assert os.readlink(os.path.join(rootfs, "bin", "sh")) == "busybox"
    out = subprocess.run(
        [os.path.join(rootfs, "usr", "bin", "env"), "echo", "hi"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == "hi\n"


# containerd, started privately (own root, state, socket) just for this test.


@pytest.fixture
def containerd() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("containerd needs root")
    with private_containerd("bqimg") as sock:
        yield sock


@pytest.mark.containerd
@pytest.mark.root
def test_ctr_imports_the_archive_by_name(layout: str, tmp_path: Any, containerd: str) -> None:
    archive = str(tmp_path / "busybox.tar")
    default_image.write_oci_archive(layout, archive)
    ctr = ["ctr", "--address", containerd]
    subprocess.run([*ctr, "images", "import", archive], check=True, capture_output=True)
    out = subprocess.run(
        [*ctr, "images", "ls", "-q"], check=True, capture_output=True, text=True
    ).stdout.split()
    assert out == ["docker.io/library/busybox:latest"]
