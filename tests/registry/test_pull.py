"""Pulling from a real registry: skopeo-pushed busybox, multi-arch indexes, zstd layers, a
pull killed half-way and resumed, two pulls at once."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest
import zstandard

from barque.cli.registry_progress import PlainProgress
from barque.image import oci_layout
from barque.image.default import image_id
from barque.image.reference import parse
from barque.registry import manifest as mt
from barque.registry.errors import NoMatchingPlatformError
from barque.registry.manifest import host_platform
from barque.registry.pull import pull
from barque.registry.push import push
from barque.storage.blobs import BlobStore, sha256_digest
from tests.registry.images import (
    BuiltImage,
    busybox_layer,
    random_layer,
    store_image,
    store_index,
    verify_store,
)
from tests.support.registry import Registry, skopeo_copy, skopeo_inspect

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Pulls `argv[1]` into the BlobStore `argv[2]`, sleeping $SLOW s per 64 KiB chunk so that a
# test can catch it mid-download; waits for $GO_FILE first when set (a start barrier).
PULL_SCRIPT = r"""
import json, os, sys, time
from barque.image.reference import parse
from barque.registry.progress import Progress
from barque.registry.pull import pull
from barque.storage.blobs import BlobStore

class Slow(Progress):
    def layer_progress(self, layer, done, total):
        time.sleep(float(os.environ["SLOW"]))

go = os.environ.get("GO_FILE")
while go and not os.path.exists(go):
    time.sleep(0.005)
result = pull(parse(sys.argv[1]), BlobStore(sys.argv[2]), progress=Slow(), max_concurrent=1)
print(json.dumps(result.downloaded))
"""


def _pull_process(ref: str, root: str, slow: float, go_file: str = "") -> subprocess.Popen[str]:
    env = {**os.environ, "SLOW": str(slow), "GO_FILE": go_file,
           "PYTHONPATH": REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-c", PULL_SCRIPT, ref, root], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _blob_path(repo: str, digest: str) -> str:
    return f"/v2/{repo}/blobs/{digest}"


def test_pull_image_pushed_by_skopeo(registry: Registry, seeded: str, busybox_layout: str,
                                     store: BlobStore) -> None:
    ref = parse(seeded)
    manifest_digest = oci_layout.resolve_manifest(busybox_layout, "latest")["digest"]
    config_digest = image_id(busybox_layout)
    out = io.StringIO()
    result = pull(ref, store, progress=PlainProgress(out))

    assert result.reference == ref
    assert result.manifest_digest == manifest_digest
    assert result.manifest_media_type == mt.OCI_MANIFEST
    assert result.config_digest == config_digest
    assert result.index_digest is None
    assert result.repo_digest == f"{registry.host}/busybox@{manifest_digest}"
    assert result.platform == host_platform()
    assert len(result.layers) == 1
    layer = result.layers[0]
    assert layer.media_type == mt.OCI_LAYER_GZIP
    assert sorted(store.digests()) == sorted({manifest_digest, config_digest, layer.digest})
    assert store.size(layer.digest) == layer.size
    verify_store(store)
    assert sorted(result.downloaded) == sorted([config_digest, layer.digest])
    short = layer.digest[7:19]
    assert out.getvalue().splitlines() == [
        "latest: Pulling from busybox", f"{short}: Pulling fs layer",
        f"{short}: Verifying Checksum", f"{short}: Download complete",
        f"{short}: Pull complete"]

    gets = registry.count("GET", _blob_path("busybox", layer.digest))
    out = io.StringIO()
    progress = PlainProgress(out)
    again = pull(ref, store, progress=progress)
    progress.pull_finished(ref, again.repo_digest.split("@")[1], again.up_to_date)
    assert again.downloaded == [] and again.up_to_date
    assert again.manifest_digest == manifest_digest
    assert registry.count("GET", _blob_path("busybox", layer.digest)) == gets
    assert out.getvalue().splitlines() == [
        "latest: Pulling from busybox", f"{short}: Already exists",
        f"Digest: {manifest_digest}",
        f"Status: Image is up to date for {registry.host}/busybox:latest",
        f"{registry.host}/busybox:latest"]


def test_pull_by_digest(registry: Registry, seeded: str, busybox_layout: str,
                        store: BlobStore) -> None:
    digest = oci_layout.resolve_manifest(busybox_layout, "latest")["digest"]
    result = pull(parse(f"{registry.host}/busybox@{digest}"), store)
    assert result.manifest_digest == digest
    assert result.repo_digest == f"{registry.host}/busybox@{digest}"
    assert store.has(digest) and store.has(result.config_digest)


def _multi_arch(registry: Registry, source: BlobStore) -> tuple[BuiltImage, BuiltImage,
                                                                 BuiltImage]:
    host = host_platform()
    layer = busybox_layer()
    native = store_image(source, [layer], arch=host.architecture, variant=host.variant)
    other_arch = "arm64" if host.architecture != "arm64" else "amd64"
    other = store_image(source, [layer], arch=other_arch,
                        variant="v8" if other_arch == "arm64" else "")
    index = store_index(source, [
        (native, host.to_dict()),
        (other, {"os": "linux", "architecture": other_arch,
                 **({"variant": "v8"} if other_arch == "arm64" else {})})])
    push(parse(f"{registry.host}/multi:latest"), source, index.manifest, index.media_type)
    return native, other, index


def test_multi_arch_index(registry: Registry, tmp_path: os.PathLike[str]) -> None:
    native, other, index = _multi_arch(registry, BlobStore(os.path.join(tmp_path, "src")))
    ref = parse(f"{registry.host}/multi:latest")
    raw = skopeo_inspect(f"docker://{ref}", "--raw")
    assert [m["digest"] for m in raw["manifests"]] == [native.digest, other.digest]

    host_store = BlobStore(os.path.join(tmp_path, "host"))
    result = pull(ref, host_store)
    assert result.manifest_digest == native.digest
    assert result.config_digest == native.config_digest
    assert result.index_digest == index.digest
    assert result.repo_digest == f"{registry.host}/multi@{index.digest}"
    assert host_store.has(index.digest) and host_store.has(native.digest)
    assert not host_store.has(other.digest)

    other_arch = json.loads(BlobStore(os.path.join(tmp_path, "src")).read(
        other.config_digest))["architecture"]
    for spelling in (f"linux/{other_arch}", f"linux/{other_arch}/v8" if other_arch == "arm64"
                     else f"linux/{other_arch}"):
        other_store = BlobStore(os.path.join(tmp_path, spelling.replace("/", "-")))
        result = pull(ref, other_store, platform=spelling)
        assert result.manifest_digest == other.digest
        assert result.config_digest == other.config_digest
        assert json.loads(other_store.read(other.config_digest))["architecture"] == other_arch

    empty = BlobStore(os.path.join(tmp_path, "s390x"))
    with pytest.raises(NoMatchingPlatformError) as e:
        pull(ref, empty, platform="linux/s390x")
    assert str(e.value) == "no matching manifest for linux/s390x in the manifest list entries"
    assert list(empty.digests()) == []


def test_platform_of_single_manifest_is_checked(seeded: str, busybox_layout: str,
                                                store: BlobStore) -> None:
    host = host_platform()
    with pytest.raises(NoMatchingPlatformError) as e:
        pull(parse(seeded), store, platform="linux/s390x")
    assert str(e.value) == (f"image with reference {seeded} was found but does not match the "
                            f"specified platform: wanted linux/s390x, actual: {host}")
    # Only the (verified) config was stored: no manifest names missing layers.
    assert list(store.digests()) == [image_id(busybox_layout)]


def test_zstd_layer(registry: Registry, tmp_path: os.PathLike[str], store: BlobStore) -> None:
    source = BlobStore(os.path.join(tmp_path, "src"))
    blob, tar, media = busybox_layer("zstd")
    image = store_image(source, [(blob, tar, media)])
    ref = parse(f"{registry.host}/zstd:latest")
    push(ref, source, image.manifest, image.media_type)
    assert skopeo_inspect(f"docker://{ref}", "--raw")["layers"][0]["mediaType"] == \
        mt.OCI_LAYER_ZSTD

    result = pull(ref, store)
    assert [la.media_type for la in result.layers] == [mt.OCI_LAYER_ZSTD]
    pulled = store.read(result.layers[0].digest)
    assert sha256_digest(zstandard.ZstdDecompressor().decompress(pulled)) == \
        sha256_digest(tar)
    verify_store(store)


def test_killed_pull_resumes_with_range(registry: Registry, tmp_path: os.PathLike[str],
                                        caplog: pytest.LogCaptureFixture) -> None:
    source = BlobStore(os.path.join(tmp_path, "src"))
    image = store_image(source, [random_layer(30 << 20)])
    ref = parse(f"{registry.host}/big:latest")
    push(ref, source, image.manifest, image.media_type)
    layer = image.layer_digests[0]

    root = os.path.join(tmp_path, "store")
    proc = _pull_process(str(ref), root, slow=0.01)
    partial = os.path.join(root, "ingest", layer.split(":")[1])
    try:
        deadline = time.monotonic() + 30
        while not (os.path.exists(partial) and os.path.getsize(partial) > 4 << 20):
            assert proc.poll() is None, f"the pull ended before it was killed: " \
                                        f"{proc.communicate()}"
            assert time.monotonic() < deadline, "the pull never got 4 MB in"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    left = os.path.getsize(partial)
    assert 0 < left < 30 << 20

    store = BlobStore(root)
    with caplog.at_level(logging.DEBUG, logger="barque.registry"):
        result = pull(ref, store)
    assert result.manifest_digest == image.digest
    assert f"Range: bytes={left}-" in caplog.text
    assert registry.count("GET", _blob_path("big", layer), status=206) == 1
    assert store.has(layer) and not os.path.exists(partial)
    verify_store(store)


def test_concurrent_pulls_fetch_each_blob_once(registry: Registry, busybox_layout: str,
                                               tmp_path: os.PathLike[str]) -> None:
    ref = f"{registry.host}/conc/busybox:latest"
    skopeo_copy(f"oci:{busybox_layout}:latest", f"docker://{ref}")
    root = os.path.join(tmp_path, "store")
    go = os.path.join(tmp_path, "go")
    procs = [_pull_process(ref, root, slow=0.02, go_file=go) for _ in range(2)]
    try:
        time.sleep(0.5)  # both are past their imports and polling for the barrier
        open(go, "w").close()
        outputs = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    for p, (_, stderr) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, stderr
    downloaded = [json.loads(stdout) for stdout, _ in outputs]
    store = BlobStore(root)
    manifest_digest = oci_layout.resolve_manifest(busybox_layout, "latest")["digest"]
    manifest = json.loads(store.read(manifest_digest))
    blobs = [manifest["config"]["digest"]] + [la["digest"] for la in manifest["layers"]]
    for digest in blobs:
        assert registry.count("GET", _blob_path("conc/busybox", digest)) == 1, digest
    assert sorted(downloaded[0] + downloaded[1]) == sorted(blobs)
    verify_store(store)
    # The pull that waited left no (empty) ingest file behind.
    assert [n for n in os.listdir(store.ingest_dir) if not n.endswith(".lock")] == []
