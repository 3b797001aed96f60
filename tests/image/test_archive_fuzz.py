"""Fuzz `load` and `import` (hypothesis; the atheris harnesses are fuzz/archive_load.py and
fuzz/image_import.py, whose property checks these share): docker-archives and OCI layouts
with hostile layers, JSON of the wrong types, links and names that try to leave the archive;
rootfs tars with hostile entries, --change lines and platforms. Only ArchiveError, ImageError
or BlobError may come out, and nothing outside the store's root may change."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from barque.image.archive import ArchiveError, load
from fuzz import _driver, archive_load, image_import
from tests.support.fuzzing import fuzz_settings

pytestmark = pytest.mark.root  # layers are unpacked with their owners


@pytest.fixture(scope="module", autouse=True)
def own_store(run_prefix: str) -> Iterator[None]:
    """The harnesses' store and canary, in this run's sandbox; closed and removed after."""
    import shutil
    import tempfile

    sandbox = tempfile.mkdtemp(prefix=f"{run_prefix}-archivefuzz-")
    _driver._SANDBOX[:] = [sandbox]
    archive_load._STORE.clear()
    yield
    for s in archive_load._STORE:
        s.close()
    archive_load._STORE.clear()
    _driver._SANDBOX.clear()
    shutil.rmtree(sandbox)


@fuzz_settings(100)
@given(data=st.binary(min_size=16, max_size=2048))
def test_load_fails_cleanly_and_stays_inside(data: bytes) -> None:
    archive_load.target(data)


@fuzz_settings(150)
@given(data=st.binary(min_size=8, max_size=2048))
def test_import_fails_cleanly_and_stays_inside(data: bytes) -> None:
    image_import.target(data)


def _archive(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_load_of_a_corrupt_gzip_layer_is_an_archive_error() -> None:
    """Found by fuzzing: a docker-archive layer with gzip's magic but a corrupt stream raised
    DecompressError (a traceback) instead of ArchiveError."""
    layer = bytearray(gzip.compress(b"\0" * 4096))
    layer[12] ^= 0xFF
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}})
    manifest = json.dumps([{"Config": "c.json", "RepoTags": [], "Layers": ["l.tar"]}])
    archive = _archive({"c.json": config.encode(), "l.tar": bytes(layer),
                        "manifest.json": manifest.encode()})
    with pytest.raises(ArchiveError, match="layer"):
        load(archive_load.store(), io.BytesIO(archive))


@pytest.mark.parametrize("index", [
    {"manifests": [{"mediaType": [], "digest": "sha256:" + "0" * 64, "size": 1}]},
    {"manifests": [{"mediaType": {}, "digest": "sha256:" + "0" * 64, "size": 1}]},
])
def test_load_of_a_descriptor_of_the_wrong_type_is_an_archive_error(
        index: dict[str, object]) -> None:
    """Found by fuzzing: a descriptor whose mediaType is a list raised TypeError."""
    archive = _archive({"index.json": json.dumps(index).encode()})
    with pytest.raises(ArchiveError, match="malformed manifest descriptor"):
        load(archive_load.store(), io.BytesIO(archive))


def test_import_of_a_member_claiming_exabytes_fails_at_once() -> None:
    """Found by fuzzing: `import` of a 1.5 KiB tar whose one member claims 4 EiB spun forever
    (tarfile skips member data by reading, past the stream's end)."""
    import signal

    from barque.image.archive import import_tarball

    info = tarfile.TarInfo("big")
    info.size = 1 << 62

    def hung(signum: int, frame: object) -> None:
        raise TimeoutError("import spins on a member claiming 4 EiB")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        with pytest.raises(ArchiveError, match="unexpected end of data"):
            import_tarball(archive_load.store(), io.BytesIO(info.tobuf(tarfile.PAX_FORMAT)),
                           "fuzz:exabytes")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
