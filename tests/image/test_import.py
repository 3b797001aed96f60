"""`import`: a rootfs tar becomes a one-layer image; `--change` as Docker applies it."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from barque.image import oci_layout as ol
from barque.image.archive import ArchiveError, import_tarball, parse_platform
from barque.image.store import ImageStore

ROOT = pytest.mark.root  # unpacking a layer keeps its owners


@pytest.fixture
def store(tmp_path: Any) -> Iterator[ImageStore]:
    s = ImageStore(str(tmp_path / "root"))
    yield s
    s.close()


def _rootfs_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("etc/hostname", b"imported\n"), ("bin/tool", b"#!/bin/sh\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid = len(data), 0o755, 1234
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("bin/alias")
        link.type, link.linkname = tarfile.SYMTYPE, "tool"
        tar.addfile(link)
    return buf.getvalue()


def _state(store: ImageStore) -> tuple[Any, ...]:
    return ([i.id for i in store.images()], sorted(os.listdir(store.layer_dir)),
            sorted(os.listdir(store.blobs.ingest_dir)))


@ROOT
def test_import_with_changes(store: ImageStore) -> None:
    image = import_tarball(store, io.BytesIO(_rootfs_tar()), "mine:v1",
                           ['CMD ["/bin/sh"]', "ENV A=b", "WORKDIR /w"], None, None)
    assert image.tags == ["docker.io/library/mine:v1"]
    config = store.config(image)
    assert config["config"] == {"Cmd": ["/bin/sh"], "Env": ["A=b"], "WorkingDir": "/w"}
    assert config["os"] == "linux"
    assert config["architecture"] == ol.host_platform()["architecture"]
    (history,) = config["history"]
    assert history["comment"] == "Imported from -" and "created_by" not in history
    assert history["created"] == config["created"]
    (layer,) = image.layers
    assert layer.media_type == ol.MEDIA_LAYER_GZIP
    assert config["rootfs"]["diff_ids"] == [ol.sha256_digest(_rootfs_tar())]
    (lower,) = store.lowers(image)
    with open(os.path.join(lower, "etc", "hostname"), "rb") as f:
        assert f.read() == b"imported\n"
    assert os.stat(os.path.join(lower, "bin", "tool")).st_uid == 1234
    assert os.readlink(os.path.join(lower, "bin", "alias")) == "tool"


@ROOT
def test_import_compressed_from_a_pipe_with_message(store: ImageStore) -> None:
    data = gzip.compress(_rootfs_tar())
    r, w = os.pipe()

    def writer() -> None:
        with os.fdopen(w, "wb") as f:
            f.write(data)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with os.fdopen(r, "rb", buffering=0) as pipe:
            image = import_tarball(store, pipe, None, [], "from a pipe", "linux/arm64")
    finally:
        thread.join()
    assert image.tags == []
    config = store.config(image)
    assert config["history"][0]["comment"] == "from a pipe"
    assert config["architecture"] == "arm64" and "config" not in config
    # The layer is the uncompressed tar's: the diff ID does not depend on how it came.
    assert config["rootfs"]["diff_ids"] == [ol.sha256_digest(_rootfs_tar())]


def test_bad_change_is_refused_before_reading(store: ImageStore) -> None:
    before = _state(store)
    with pytest.raises(ArchiveError, match="^run is not a valid change command$"):
        import_tarball(store, io.BytesIO(_rootfs_tar()), "x", ["RUN echo hi"], None, None)
    with pytest.raises(ArchiveError, match="ENV names can not be blank"):
        import_tarball(store, io.BytesIO(_rootfs_tar()), "x", ["ENV =b"], None, None)
    assert _state(store) == before


def test_garbage_is_refused(store: ImageStore) -> None:
    before = _state(store)
    with pytest.raises(ArchiveError, match="invalid tar archive"):
        import_tarball(store, io.BytesIO(os.urandom(5000)), "x", [], None, None)
    with pytest.raises(ArchiveError, match="truncated"):
        import_tarball(store, io.BytesIO(_rootfs_tar()[:700]), "x", [], None, None)
    with pytest.raises(ArchiveError, match="empty"):
        import_tarball(store, io.BytesIO(b""), "x", [], None, None)
    assert _state(store) == before
    assert list(store.blobs.digests()) == []


def test_bad_reference_and_platform(store: ImageStore) -> None:
    with pytest.raises(ArchiveError, match="invalid reference format"):
        import_tarball(store, io.BytesIO(_rootfs_tar()), "UPPER", [], None, None)
    with pytest.raises(ArchiveError, match="operating system is not supported"):
        parse_platform("windows/amd64")
    assert parse_platform("linux/arm/v7") == {"architecture": "arm", "os": "linux",
                                              "variant": "v7"}
    assert parse_platform("amd64") == {"architecture": "amd64", "os": "linux"}
