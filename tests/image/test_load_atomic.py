"""`load` is all or nothing, and a small archive cannot make it write a big file: a sparse
member, or one whose size is far beyond what the archive holds, is refused before any byte of
it is written."""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import signal
import subprocess
import sys
import tarfile
from typing import Any

import pytest
import zstandard

from barque.image import oci_layout as ol
from barque.image.archive import ArchiveError, load
from barque.image.store import ImageStore

pytestmark = pytest.mark.root  # layers are unpacked with their owners

_FSIZE_LIMIT = 16 << 20  # the loads below run with this file-size limit: a leak is bounded


@pytest.fixture
def store(tmp_path: Any) -> Any:
    s = ImageStore(str(tmp_path / "root"))
    yield s
    s.close()


def _tar(members: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tar.addfile(m)
                continue
            info = tarfile.TarInfo(m[0])
            info.size = len(m[1])
            tar.addfile(info, io.BytesIO(m[1]))
    return buf.getvalue()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _two_images(second_layer: bytes) -> bytes:
    """A docker-archive of a good image (good:latest) and a second one (bad:latest)."""
    files: list[tarfile.TarInfo | tuple[str, bytes]] = []
    items = []
    for name, layer in (("good", _tar([("hello.txt", b"hello\n")])), ("bad", second_layer)):
        config = ol.canonical_json({"architecture": "amd64", "os": "linux", "created": name,
                                    "rootfs": {"type": "layers",
                                               "diff_ids": [_digest(layer)]}})
        files += [(f"{name}.json", config), (f"{name}/layer.tar", layer)]
        items.append({"Config": f"{name}.json", "RepoTags": [f"{name}:latest"],
                      "Layers": [f"{name}/layer.tar"]})
    return _tar([("manifest.json", json.dumps(items).encode()), *files])


def _visible(store: ImageStore) -> list[Any]:
    return [(i.id, i.tags) for i in store.images()]


def test_bad_second_image_registers_nothing(store: ImageStore) -> None:
    # The second image's layer passes the archive checks (its diff ID matches) but holds an
    # entry that leaves the rootfs: unpacking it fails after the first image is ready.
    hostile = _tar([("../escape", b"x")])
    with pytest.raises(ArchiveError, match="escape|\\.\\."):
        load(store, io.BytesIO(_two_images(hostile)))
    assert _visible(store) == []
    assert store.lookup("good") is None
    # What was written for it is unreferenced: the collector leaves nothing.
    store.collect_garbage()
    assert list(store.blobs.digests()) == []
    assert os.listdir(store.layer_dir) == []
    assert os.listdir(store.blobs.ingest_dir) == []


def test_good_archive_of_two_images_registers_both(store: ImageStore) -> None:
    both = _two_images(_tar([("other.txt", b"other\n")]))
    assert load(store, io.BytesIO(both)) == ["Loaded image: good:latest",
                                            "Loaded image: bad:latest"]
    assert {t for _, tags in _visible(store) for t in tags} == {
        "docker.io/library/good:latest", "docker.io/library/bad:latest"}


def _sparse_member(size: int) -> bytes:
    """A tar whose one member is a PAX 1.0 sparse file of `size` bytes: a single byte of data
    at its end, the rest a hole (tar writes it in ~1 KiB)."""
    sparse_map = f"1\n{size - 1}\n1\n".encode()
    data = sparse_map.ljust(512, b"\0") + b"x"
    info = tarfile.TarInfo("GNUSparseFile.0/big")
    info.size = len(data)
    info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                        "GNU.sparse.name": "big", "GNU.sparse.realsize": str(size)}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _bounded_load(store: ImageStore, path: str) -> subprocess.CompletedProcess[str]:
    """load in a child limited to 16 MiB files: before the fix it died of SIGXFSZ (or
    EFBIG), having written as much as the limit let it."""
    code = ("import sys\nfrom barque.image.archive import load, ArchiveError\n"
            "from barque.image.store import ImageStore\n"
            "try:\n    load(ImageStore(sys.argv[1]), sys.argv[2])\n"
            "except ArchiveError as e:\n    print(e, file=sys.stderr); sys.exit(1)\n")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (_FSIZE_LIMIT, _FSIZE_LIMIT))
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)

    return subprocess.run([sys.executable, "-c", code, store.root, path], capture_output=True,
                          text=True, timeout=120, preexec_fn=limit)


def _ingest_bytes(store: ImageStore) -> int:
    total = 0
    for dirpath, _, names in os.walk(store.blobs.ingest_dir):
        total += sum(os.lstat(os.path.join(dirpath, n)).st_size for n in names)
    return total


def test_sparse_member_is_refused_unwritten(store: ImageStore, tmp_path: Any) -> None:
    data = _sparse_member(1 << 30)
    assert len(data) <= 10 << 10  # a 10 KiB archive, a 1 GiB member
    path = str(tmp_path / "sparse.tar")
    with open(path, "wb") as f:
        f.write(data)
    result = _bounded_load(store, path)
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "sparse" in result.stderr
    assert _ingest_bytes(store) == 0 and _visible(store) == []


def test_member_far_beyond_the_archive_is_refused(store: ImageStore, tmp_path: Any) -> None:
    # 256 MiB of zeros in a zstd archive of a few KiB (a decompression bomb).
    info = tarfile.TarInfo("zeros")
    info.size = 256 << 20
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, _Zeros(info.size))
    data = zstandard.ZstdCompressor().compress(raw.getvalue())
    assert len(data) < 64 << 10
    path = str(tmp_path / "bomb.tar.zst")
    with open(path, "wb") as f:
        f.write(data)
    result = _bounded_load(store, path)
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "compression ratio" in result.stderr or "larger than" in result.stderr
    assert _ingest_bytes(store) == 0 and _visible(store) == []


def test_plain_member_declaring_more_than_the_file_holds(store: ImageStore,
                                                          tmp_path: Any) -> None:
    info = tarfile.TarInfo("big")
    info.size = 1 << 30
    header = info.tobuf(tarfile.PAX_FORMAT)
    path = str(tmp_path / "short.tar")
    with open(path, "wb") as f:
        f.write(header + b"\0" * 4096)
    with pytest.raises(ArchiveError, match="larger than|truncated"):
        load(store, path)
    assert _ingest_bytes(store) == 0


class _Zeros:
    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)
