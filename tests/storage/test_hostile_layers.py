"""Hostile layers: each must fail with LayerError, leave no dest and no temp dir, and leave
everything outside the layer untouched."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from collections.abc import Callable
from typing import Any

import pytest
import zstandard

from barque.storage.layers import LayerError, apply_layer_to_rootfs, unpack_layer
from tests.storage.util import (
    OCI_GZIP,
    OCI_TAR,
    OCI_ZSTD,
    diff_id,
    info,
    tar_bytes,
    temp_dirs,
    tree,
)

pytestmark = pytest.mark.root


class Sandbox:
    """A victim dir next to the layer store; `check` proves nothing outside dest changed."""

    def __init__(self, tmp_path: Any) -> None:
        self.root = str(tmp_path)
        self.victim = str(tmp_path / "victim")
        os.makedirs(self.victim)
        with open(os.path.join(self.victim, "passwd"), "w") as f:
            f.write("victim\n")
        self.store = str(tmp_path / "store" / "layers")
        os.makedirs(self.store)
        self.dest = os.path.join(self.store, "a" * 64)
        self.before = tree(self.root)

    def unpack(self, blob: bytes, media: str = OCI_TAR, **kw: Any) -> None:
        unpack_layer(io.BytesIO(blob), media, self.dest, **kw)

    def check(self) -> None:
        assert not os.path.lexists(self.dest)
        assert temp_dirs(self.store) == []
        assert tree(self.root) == self.before


@pytest.fixture
def sandbox(tmp_path: Any) -> Sandbox:
    return Sandbox(tmp_path)


def _fails(sandbox: Sandbox, blob: bytes, match: str, media: str = OCI_TAR, **kw: Any) -> None:
    with pytest.raises(LayerError, match=match):
        sandbox.unpack(blob, media, **kw)
    sandbox.check()


def test_dot_dot(sandbox: Sandbox) -> None:
    _fails(sandbox, tar_bytes([info("ok", data=b"1"), info("../../../victim/passwd",
                                                           data=b"pwned")]), "'..'")


def test_dot_dot_in_the_middle(sandbox: Sandbox) -> None:
    _fails(sandbox, tar_bytes([info("a/../../x", data=b"pwned")]), "'..'")


def test_absolute_path(sandbox: Sandbox) -> None:
    _fails(sandbox, tar_bytes([info(sandbox.victim + "/pwned", data=b"pwned")]), "absolute")


def test_symlink_dir_escape_absolute(sandbox: Sandbox) -> None:
    blob = tar_bytes([info("a", "symlink", target=sandbox.victim),
                      info("a/pwned", data=b"pwned")])
    _fails(sandbox, blob, "symlink")


def test_symlink_dir_escape_relative(sandbox: Sandbox) -> None:
    blob = tar_bytes([info("a", "symlink", target="../../../victim"),
                      info("a/passwd", data=b"pwned")])
    _fails(sandbox, blob, "symlink")


def test_symlink_escape_through_a_directory_entry(sandbox: Sandbox) -> None:
    blob = tar_bytes([info("a", "symlink", target=sandbox.victim), info("a/sub/", "dir")])
    _fails(sandbox, blob, "symlink")


def test_symlink_escape_through_a_whiteout(sandbox: Sandbox) -> None:
    blob = tar_bytes([info("a", "symlink", target=sandbox.victim), info("a/.wh.passwd")])
    _fails(sandbox, blob, "symlink")


def test_symlink_escape_through_an_opaque_marker(sandbox: Sandbox) -> None:
    blob = tar_bytes([info("a", "symlink", target=sandbox.victim), info("a/.wh..wh..opq")])
    _fails(sandbox, blob, "symlink")


def test_hardlink_escape_relative(sandbox: Sandbox) -> None:
    _fails(sandbox, tar_bytes([info("link", "hardlink", target="../../victim/passwd")]), "'..'")


def test_hardlink_escape_absolute(sandbox: Sandbox) -> None:
    blob = tar_bytes([info("link", "hardlink", target=sandbox.victim + "/passwd")])
    _fails(sandbox, blob, "absolute")


def test_hardlink_escape_through_a_symlink(sandbox: Sandbox) -> None:
    blob = tar_bytes([info("s", "symlink", target=sandbox.victim),
                      info("link", "hardlink", target="s/passwd")])
    _fails(sandbox, blob, "symlink")


def test_hardlink_to_a_missing_entry(sandbox: Sandbox) -> None:
    _fails(sandbox, tar_bytes([info("link", "hardlink", target="nothing")]), "missing")


def test_hardlink_to_a_directory(sandbox: Sandbox) -> None:
    _fails(sandbox, tar_bytes([info("d/", "dir"), info("link", "hardlink", target="d")]),
           "directory")


def test_hardlink_to_a_whiteout(sandbox: Sandbox) -> None:
    _fails(sandbox, tar_bytes([info(".wh.x"), info("link", "hardlink", target="x")]),
           "whiteout")


def test_writing_through_a_hardlinked_symlink_is_refused(sandbox: Sandbox) -> None:
    # A hard link to a symlink is the symlink itself: a dir under it is still refused.
    blob = tar_bytes([info("s", "symlink", target=sandbox.victim),
                      info("t", "hardlink", target="s"), info("t/pwned", data=b"x")])
    _fails(sandbox, blob, "symlink")


def test_device_nodes_when_not_allowed(sandbox: Sandbox) -> None:
    blob = tar_bytes([info("dev/sda", "block", dev=(8, 0))])
    _fails(sandbox, blob, "not allowed", allow_devices=False)
    blob = tar_bytes([info("dev/mem", "char", dev=(1, 1))])
    _fails(sandbox, blob, "not allowed", allow_devices=False)


def test_whiteouts_are_fine_without_devices(sandbox: Sandbox) -> None:
    sandbox.unpack(tar_bytes([info(".wh.x"), info("fifo", "fifo")]), allow_devices=False)
    assert os.path.exists(os.path.join(sandbox.dest, "x"))


def test_file_replacing_a_directory(sandbox: Sandbox) -> None:
    blob = tar_bytes([info("d/", "dir"), info("d/inner", data=b"1"), info("d", data=b"file")])
    _fails(sandbox, blob, "replaces a directory")


def test_file_replacing_an_implicit_directory(sandbox: Sandbox) -> None:
    blob = tar_bytes([info("d/inner", data=b"1"), info("d", "symlink", target=sandbox.victim),
                      info("d/x", data=b"x")])
    _fails(sandbox, blob, "replaces a directory")


def test_parent_is_a_file(sandbox: Sandbox) -> None:
    _fails(sandbox, tar_bytes([info("f", data=b"1"), info("f/g", data=b"2")]),
           "non-directory")


def test_nul_in_a_name(sandbox: Sandbox) -> None:
    blob = tar_bytes([info("x", data=b"1", pax={"path": "a\0/../../victim/passwd"})])
    _fails(sandbox, blob, "NUL")


def test_nul_in_a_symlink_target(sandbox: Sandbox) -> None:
    blob = tar_bytes([info("s", "symlink", target="x", pax={"linkpath": "a\0b"})])
    _fails(sandbox, blob, "NUL")


def test_whiteout_as_a_directory(sandbox: Sandbox) -> None:
    _fails(sandbox, tar_bytes([info(".wh.a/b", data=b"1")]), "whiteout")


def test_absurd_size(sandbox: Sandbox) -> None:
    ti, _ = info("big", pax={"size": str(10**15)})
    raw = tar_bytes([(ti, None)])  # a header claiming a petabyte, with no data at all
    _fails(sandbox, raw, "corrupt|truncated|unexpected end")


def test_negative_owner(sandbox: Sandbox) -> None:
    _fails(sandbox, tar_bytes([info("x", pax={"uid": "-1"})]), "negative")


def test_sparse_file(sandbox: Sandbox) -> None:
    ti = tarfile.TarInfo("sparse")
    ti.size = 0
    ti.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                      "GNU.sparse.name": "sparse", "GNU.sparse.realsize": str(10**12)}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        ti.size = 512
        tar.addfile(ti, io.BytesIO(b"0\n" + b"\0" * 510))
    _fails(sandbox, buf.getvalue(), "sparse")


def _layer() -> bytes:
    """Three members and exactly the two zero blocks that end an archive (no padding)."""
    raw = tar_bytes([info("a/", "dir"), info("a/file", data=os.urandom(3000)),
                     info("b", data=b"b" * 700)])
    last = tarfile.open(fileobj=io.BytesIO(raw)).getmembers()[-1]
    end = last.offset_data + -(-last.size // 512) * 512
    return raw[:end] + b"\0" * 1024


@pytest.mark.parametrize("cut", [100, 700, 1536, 2000, 4500, -1500, -700, -1])
def test_truncated_tar(sandbox: Sandbox, cut: int) -> None:
    _fails(sandbox, _layer()[:cut], "truncated|corrupt|unexpected end")


@pytest.mark.parametrize("cut", [512, -1024, -512])
def test_tar_cut_at_a_block_boundary(sandbox: Sandbox, cut: int) -> None:
    # Go's archive/tar (so Docker) takes these for complete archives: only the diff_id tells.
    raw = _layer()
    with pytest.raises(LayerError, match="diff_id"):
        sandbox.unpack(raw[:cut], diff_id=diff_id(raw))
    sandbox.check()
    sandbox.unpack(raw[:cut])


def test_garbage_tar(sandbox: Sandbox) -> None:
    _fails(sandbox, os.urandom(4096).replace(b"\x1f\x8b", b"xx").replace(b"\x28\xb5", b"yy"),
           "tar|corrupt")


def test_garbage_after_a_header(sandbox: Sandbox) -> None:
    raw = tar_bytes([info("a", data=b"1")])
    _fails(sandbox, raw[:1024] + b"\x01" * 512 + raw[1024:], "bad header")


def test_garbage_after_one_zero_block(sandbox: Sandbox) -> None:
    raw = tar_bytes([info("a", data=b"1")])
    _fails(sandbox, raw[:1024] + b"\0" * 512 + b"\x01" * 512, "after a zero block")


def test_garbage_gzip(sandbox: Sandbox) -> None:
    _fails(sandbox, b"\x1f\x8b\x08\x00" + os.urandom(2000), "gzip", OCI_GZIP)


def test_truncated_gzip(sandbox: Sandbox) -> None:
    blob = gzip.compress(_layer())
    for cut in (5, len(blob) // 2, len(blob) - 4):
        _fails(sandbox, blob[:cut], "gzip", OCI_GZIP)


def test_corrupt_gzip_checksum(sandbox: Sandbox) -> None:
    blob = bytearray(gzip.compress(_layer()))
    blob[-6] ^= 0xFF  # the CRC32
    _fails(sandbox, bytes(blob), "gzip", OCI_GZIP)


def test_garbage_after_gzip(sandbox: Sandbox) -> None:
    _fails(sandbox, gzip.compress(_layer()) + b"garbage!", "gzip", OCI_GZIP)


def test_garbage_zstd(sandbox: Sandbox) -> None:
    _fails(sandbox, b"\x28\xb5\x2f\xfd" + os.urandom(2000), "zstd", OCI_ZSTD)


def test_truncated_zstd(sandbox: Sandbox) -> None:
    blob = zstandard.ZstdCompressor().compress(_layer())
    for cut in (6, len(blob) // 2, len(blob) - 1):
        _fails(sandbox, blob[:cut], "zstd", OCI_ZSTD)


# --- the copy fallback: a lower layer's symlinks are replaced, never followed ----------------

Apply = Callable[[bytes], None]


def test_rootfs_mode_never_follows_lower_symlinks(tmp_path: Any) -> None:
    sandbox = Sandbox(tmp_path)
    rootfs = tmp_path / "store" / "rootfs"
    rootfs.mkdir()
    lower = tar_bytes([info("etc", "symlink", target=sandbox.victim),
                       info("rel", "symlink", target="../../victim"),
                       info("file", data=b"f")])
    apply_layer_to_rootfs(io.BytesIO(lower), OCI_TAR, str(rootfs))
    sandbox.before = tree(sandbox.victim)
    upper = tar_bytes([info("etc/passwd", data=b"pwned"), info("rel/.wh.passwd"),
                       info("file/x", data=b"x")])
    apply_layer_to_rootfs(io.BytesIO(upper), OCI_TAR, str(rootfs))
    # As overlayfs shows it: this layer's directories replace the lower symlinks and file.
    assert (rootfs / "etc" / "passwd").read_bytes() == b"pwned"
    assert not os.path.islink(rootfs / "etc") and not os.path.islink(rootfs / "rel")
    assert (rootfs / "file" / "x").read_bytes() == b"x"
    assert tree(sandbox.victim) == sandbox.before


def test_rootfs_mode_refuses_this_layers_symlinks(tmp_path: Any) -> None:
    sandbox = Sandbox(tmp_path)
    rootfs = tmp_path / "store" / "rootfs"
    rootfs.mkdir()
    sandbox.before = tree(sandbox.victim)
    blob = tar_bytes([info("a", "symlink", target=sandbox.victim), info("a/pwned", data=b"x")])
    with pytest.raises(LayerError, match="symlink"):
        apply_layer_to_rootfs(io.BytesIO(blob), OCI_TAR, str(rootfs))
    assert tree(sandbox.victim) == sandbox.before
