"""Unpacking layers into overlay lower dirs and onto plain rootfs dirs: formats, metadata,
whiteouts, and the same view through overlayfs as through the copy fallback."""

from __future__ import annotations

import io
import os
import stat
import struct
from typing import Any

import pytest

from barque.storage.layers import LayerError, apply_layer_to_rootfs, unpack_layer
from barque.storage.snapshot import Snapshot, flatten
from tests.storage.util import (
    DOCKER_GZIP,
    OCI_GZIP,
    OCI_TAR,
    OCI_ZSTD,
    compress,
    diff_id,
    info,
    require_overlay,
    tar_bytes,
    temp_dirs,
    tree,
    view,
)

pytestmark = pytest.mark.root  # owners, device nodes, trusted.* xattrs, mounts

# A file capability (cap_net_raw+ep), in the v2 format the kernel takes from root.
CAP_NET_RAW = struct.pack("<IIIII", 0x02000001, 1 << 13, 1 << 13, 0, 0)


def rich_layer() -> bytes:
    return tar_bytes([
        info("etc/", "dir", mode=0o755, mtime=1_500_000_000),
        info("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n", mode=0o644,
             mtime=1_500_000_001),
        info("etc/passwd-link", "hardlink", target="etc/passwd"),
        info("bin/", "dir", mode=0o755),
        info("bin/su", data=b"\x7fELF", mode=0o4755, uid=0, gid=0),
        info("bin/sg", data=b"sg", mode=0o2711, uid=1000, gid=50),
        info("bin/ping", data=b"ping", mode=0o755, xattrs={"security.capability": CAP_NET_RAW}),
        info("tmp/", "dir", mode=0o1777),
        info("home/user/", "dir", mode=0o700, uid=1000, gid=1000),
        info("home/user/notes", data=b"hi", uid=1000, gid=1000, mode=0o600,
             xattrs={"user.comment": b"\xff\x00binary", "trusted.note": b"t"}),
        info("lib", "symlink", target="usr/lib"),
        info("abs-link", "symlink", target="/etc/../../../nowhere"),
        info("dev/null", "char", dev=(1, 3), mode=0o666),
        info("dev/sda", "block", dev=(8, 0), mode=0o660, gid=6),
        info("dev/zero-zero", "char", dev=(0, 0), mode=0o600),
        info("run/fifo", "fifo", mode=0o620),
        info("deep/a/b/c/file", data=b"deep"),  # parents made implicitly
    ])


@pytest.mark.parametrize("how,media", [("plain", OCI_TAR), ("gzip", OCI_GZIP),
                                       ("zstd", OCI_ZSTD), ("gzip", DOCKER_GZIP),
                                       ("zstd", OCI_TAR), ("plain", OCI_GZIP)])
def test_round_trip_keeps_everything(tmp_path: Any, how: str, media: str) -> None:
    raw = rich_layer()
    dest = str(tmp_path / "layer")
    size = unpack_layer(io.BytesIO(compress(raw, how)), media, dest, diff_id(raw))
    # regular files' bytes and, as dockerd's overlay2 counts, each symlink's target length
    assert size == sum(len(d) for d in (b"root:x:0:0::/root:/bin/sh\n", b"\x7fELF", b"sg",
                                        b"ping", b"hi", b"deep",
                                        b"usr/lib", b"/etc/../../../nowhere"))
    t = tree(dest)
    assert t["etc/passwd"][:3] == ("-rw-r--r--", 0, 0)
    assert t["etc/passwd"][4] == 1_500_000_001 * 10**9
    assert os.stat(os.path.join(dest, "etc")).st_mtime == 1_500_000_000  # after its contents
    st1, st2 = os.stat(os.path.join(dest, "etc/passwd")), os.stat(
        os.path.join(dest, "etc/passwd-link"))
    assert st1.st_ino == st2.st_ino and st1.st_nlink == 2
    assert t["bin/su"][0] == "-rwsr-xr-x"
    assert t["bin/sg"][:3] == ("-rwx--s--x", 1000, 50)
    assert dict(t["bin/ping"][5])["security.capability"] == CAP_NET_RAW
    assert t["tmp"][0] == "drwxrwxrwt"
    assert t["home/user"][:3] == ("drwx------", 1000, 1000)
    assert dict(t["home/user/notes"][5]) == {"user.comment": b"\xff\x00binary",
                                             "trusted.note": b"t"}
    assert t["lib"][3] == "usr/lib" and t["abs-link"][3] == "/etc/../../../nowhere"
    assert t["dev/null"][0] == "crw-rw-rw-" and t["dev/null"][3] == (1, 3)
    assert t["dev/sda"][0] == "brw-rw----" and t["dev/sda"][2] == 6
    assert t["dev/zero-zero"][3] == (0, 0)  # a literal device from the tar is a device
    assert t["run/fifo"][0] == "prw--w----"
    assert t["deep/a/b/c"][0] == "drwxr-xr-x"
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o755
    assert temp_dirs(str(tmp_path)) == []


def test_unpack_from_a_path_and_without_diff_id(tmp_path: Any) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(compress(tar_bytes([info("a", data=b"x")]), "gzip"))
    assert unpack_layer(str(blob), OCI_GZIP, str(tmp_path / "l")) == 1
    assert (tmp_path / "l" / "a").read_bytes() == b"x"


def test_whiteouts_become_overlay_format(tmp_path: Any) -> None:
    raw = tar_bytes([
        info("etc/", "dir"),
        info("etc/.wh.hosts", uid=7),
        info("opt/", "dir"),
        info("opt/.wh..wh..opq"),
        info("opt/new", data=b"n"),
        info("var/lib/.wh..wh..opq"),  # opaque dir not listed itself: made implicitly
        info(".wh..wh.plnk/123", data=b"aufs"),  # AUFS metadata: skipped
        info(".wh.gone", mode=0o600),
    ])
    dest = str(tmp_path / "layer")
    unpack_layer(io.BytesIO(raw), OCI_TAR, dest, diff_id(raw))
    t = tree(dest, times=False)
    assert t["etc/hosts"][0] == "c---------" and t["etc/hosts"][3] == (0, 0)
    assert t["etc/hosts"][1] == 7
    assert t["gone"][3] == (0, 0)
    assert os.getxattr(os.path.join(dest, "opt"), "trusted.overlay.opaque") == b"y"
    assert os.getxattr(os.path.join(dest, "var/lib"), "trusted.overlay.opaque") == b"y"
    assert sorted(t) == ["etc", "etc/hosts", "gone", "opt", "opt/new", "var", "var/lib"]


def test_overlay_xattrs_in_a_tar_are_not_trusted(tmp_path: Any) -> None:
    raw = tar_bytes([info("d/", "dir", xattrs={"trusted.overlay.opaque": b"y",
                                               "trusted.overlay.redirect": b"/etc"})])
    dest = str(tmp_path / "layer")
    unpack_layer(io.BytesIO(raw), OCI_TAR, dest)
    assert os.listxattr(os.path.join(dest, "d")) == []


def test_whiteout_then_directory_in_one_layer_is_opaque(tmp_path: Any) -> None:
    # Deleting a lower dir and making a new one in its place must not show the old contents.
    raw = tar_bytes([info(".wh.d"), info("d/", "dir"), info("d/new", data=b"1")])
    dest = str(tmp_path / "layer")
    unpack_layer(io.BytesIO(raw), OCI_TAR, dest)
    assert os.getxattr(os.path.join(dest, "d"), "trusted.overlay.opaque") == b"y"
    assert sorted(os.listdir(dest + "/d")) == ["new"]


def test_duplicate_entries_the_last_wins(tmp_path: Any) -> None:
    raw = tar_bytes([info("f", data=b"old"), info("f", data=b"new"),
                     info("d/", "dir", mode=0o700), info("d/", "dir", mode=0o750),
                     info("x", "symlink", target="f"), info("x", data=b"file now")])
    dest = str(tmp_path / "layer")
    unpack_layer(io.BytesIO(raw), OCI_TAR, dest)
    assert (tmp_path / "layer" / "f").read_bytes() == b"new"
    assert stat.S_IMODE(os.stat(dest + "/d").st_mode) == 0o750
    assert (tmp_path / "layer" / "x").read_bytes() == b"file now"


def test_empty_layers(tmp_path: Any) -> None:
    # Docker's empty layer: just the end-of-archive blocks; an empty stream is one too.
    for i, raw in enumerate([b"\0" * 1024, b"", tar_bytes([])]):
        dest = str(tmp_path / f"l{i}")
        assert unpack_layer(io.BytesIO(compress(raw, "gzip")), OCI_GZIP, dest,
                            diff_id(raw)) == 0
        assert os.listdir(dest) == []


def test_data_after_the_end_marker_is_hashed(tmp_path: Any) -> None:
    raw = tar_bytes([info("a", data=b"x")]) + b"trailing junk"
    dest = str(tmp_path / "l")
    unpack_layer(io.BytesIO(raw), OCI_TAR, dest, diff_id(raw))
    with pytest.raises(LayerError, match="does not match its diff_id"):
        unpack_layer(io.BytesIO(raw), OCI_TAR, str(tmp_path / "l2"),
                     diff_id(raw[:-len(b"trailing junk")]))
    assert not os.path.exists(tmp_path / "l2")


def test_multi_member_gzip_and_multi_frame_zstd(tmp_path: Any) -> None:
    raw = tar_bytes([info("a", data=b"a" * 5000), info("b", data=b"b" * 70000)])
    half = len(raw) // 2
    import gzip

    import zstandard

    blobs = {"gz": gzip.compress(raw[:half]) + gzip.compress(raw[half:]) + b"\0" * 10,
             "zst": zstandard.ZstdCompressor().compress(raw[:half])
             + zstandard.ZstdCompressor().compress(raw[half:])}
    for name, blob in blobs.items():
        unpack_layer(io.BytesIO(blob), OCI_TAR, str(tmp_path / name), diff_id(raw))
        assert (tmp_path / name / "b").read_bytes() == b"b" * 70000


@pytest.mark.parametrize("how", ["plain", "gzip", "zstd"])
def test_diff_id_mismatch_leaves_nothing(tmp_path: Any, how: str) -> None:
    raw = rich_layer()
    dest = str(tmp_path / "layer")
    with pytest.raises(LayerError, match="diff_id"):
        unpack_layer(io.BytesIO(compress(raw, how)), OCI_TAR, dest, diff_id(raw + b"x"))
    assert os.listdir(tmp_path) == []


def test_bad_arguments(tmp_path: Any) -> None:
    raw = tar_bytes([info("a")])
    with pytest.raises(LayerError, match="malformed diff_id"):
        unpack_layer(io.BytesIO(raw), OCI_TAR, str(tmp_path / "l"), "md5:abc")
    with pytest.raises(LayerError, match="unsupported layer media type"):
        unpack_layer(io.BytesIO(raw), "application/vnd.oci.image.config.v1+json",
                     str(tmp_path / "l"))
    (tmp_path / "exists").mkdir()
    with pytest.raises(LayerError, match="already exists"):
        unpack_layer(io.BytesIO(raw), OCI_TAR, str(tmp_path / "exists"))
    with pytest.raises(LayerError, match="cannot open"):
        unpack_layer(str(tmp_path / "no-such-blob"), OCI_TAR, str(tmp_path / "l"))
    with pytest.raises(LayerError, match="xz-compressed"):
        unpack_layer(io.BytesIO(b"\xfd7zXZ\x00rest"), OCI_TAR, str(tmp_path / "l"))
    assert sorted(os.listdir(tmp_path)) == ["exists"]


def test_capability_that_cannot_be_set_is_an_error(tmp_path: Any) -> None:
    raw = tar_bytes([info("ping", data=b"p", xattrs={"security.capability": b"junk"})])
    with pytest.raises(LayerError, match="security.capability"):
        unpack_layer(io.BytesIO(raw), OCI_TAR, str(tmp_path / "l"))
    assert os.listdir(tmp_path) == []


def test_unsettable_xattr_classes_are_skipped(tmp_path: Any) -> None:
    # user.* xattrs cannot be set on symlinks (EPERM): skipped, the layer still unpacks.
    raw = tar_bytes([info("s", "symlink", target="x", xattrs={"user.a": b"1"})])
    unpack_layer(io.BytesIO(raw), OCI_TAR, str(tmp_path / "l"))
    assert os.readlink(tmp_path / "l" / "s") == "x"


# --- two layers: overlayfs and the copy fallback show the same ------------------------------

LOWER = [
    info("etc/", "dir"),
    info("etc/hosts", data=b"127.0.0.1 localhost\n"),
    info("etc/motd", data=b"hello\n"),
    info("opt/", "dir"),
    info("opt/app/", "dir"),
    info("opt/app/old", data=b"old"),
    info("opt/keep", data=b"k"),
    info("lib", "symlink", target="usr/lib"),
    info("usr/lib/libc.so", data=b"libc"),
    info("data/", "dir"),
    info("data/x", data=b"x"),
]
UPPER = [
    info("etc/", "dir", mode=0o750),
    info("etc/.wh.motd"),
    info("etc/hosts", data=b"10.0.0.1 db\n", mode=0o600),
    info("opt/", "dir"),
    info("opt/.wh..wh..opq"),
    info("opt/fresh", data=b"fresh"),
    info("lib/", "dir"),  # a directory where the lower layer has a symlink
    info("lib/own", data=b"own"),
    info("data/.wh.x"),
    info("data/x/", "dir"),  # whited out and remade as a dir in the same layer
    info("data/x/y", data=b"y"),
]
EXPECTED = {"etc", "etc/hosts", "opt", "opt/fresh", "lib", "lib/own", "usr", "usr/lib",
            "usr/lib/libc.so", "data", "data/x", "data/x/y"}


def two_layers(tmp_path: Any) -> tuple[list[str], list[bytes]]:
    raws = [tar_bytes(LOWER), tar_bytes(UPPER)]
    dirs = []
    for i, raw in enumerate(raws):
        dest = str(tmp_path / "layers" / f"{i:064x}")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        unpack_layer(io.BytesIO(compress(raw, "gzip")), OCI_GZIP, dest, diff_id(raw))
        dirs.append(dest)
    return dirs[::-1], raws  # top-most first


def test_two_layers_through_overlayfs(tmp_path: Any) -> None:
    require_overlay(str(tmp_path))
    lowers, _ = two_layers(tmp_path)
    snap = Snapshot(str(tmp_path / "snap"))
    merged = snap.prepare(lowers, overlay=True)
    try:
        seen = view(merged)
        assert set(seen) == EXPECTED
        assert (tmp_path / "snap/merged/etc/hosts").read_bytes() == b"10.0.0.1 db\n"
        assert seen["etc/hosts"][0] == "-rw-------"
        assert seen["etc"][0] == "drwxr-x---"
    finally:
        snap.remove()


def test_copy_fallbacks_match_overlayfs(tmp_path: Any) -> None:
    require_overlay(str(tmp_path))
    lowers, raws = two_layers(tmp_path)
    snap = Snapshot(str(tmp_path / "snap"))
    overlay_view = view(snap.prepare(lowers, overlay=True))
    snap.remove()
    # Flattening the overlay-format layer dirs...
    copy = Snapshot(str(tmp_path / "copy"))
    assert view(copy.prepare(lowers, overlay=False)) == overlay_view
    # ...and applying the layer tars one by one to a plain dir.
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    for raw in raws:
        apply_layer_to_rootfs(io.BytesIO(compress(raw, "zstd")), OCI_ZSTD, str(rootfs),
                              diff_id(raw))
    assert view(str(rootfs)) == overlay_view
    copy.remove()


def test_flatten_keeps_hard_links_and_metadata(tmp_path: Any) -> None:
    raw = rich_layer()
    layer = str(tmp_path / "layer")
    unpack_layer(io.BytesIO(raw), OCI_TAR, layer)
    out = tmp_path / "out"
    out.mkdir()
    flatten([layer], str(out))
    want = {k: v for k, v in tree(layer).items() if k != "dev/zero-zero"}
    got = tree(str(out))
    assert {k: v for k, v in got.items() if k not in ("etc", "bin", "deep")} == {
        k: v for k, v in want.items() if k not in ("etc", "bin", "deep")}
    assert os.stat(out / "etc/passwd").st_ino == os.stat(out / "etc/passwd-link").st_ino


def test_rootfs_mode_whiteouts_and_opaque_dirs(tmp_path: Any) -> None:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    apply_layer_to_rootfs(io.BytesIO(tar_bytes(LOWER)), OCI_TAR, str(rootfs))
    raw = tar_bytes([info("opt/.wh..wh..opq"), info("opt/app/new", data=b"n"),
                     info(".wh.data"), info("etc/.wh.nothing-there")])
    apply_layer_to_rootfs(io.BytesIO(raw), OCI_TAR, str(rootfs))
    assert sorted(os.listdir(rootfs / "opt")) == ["app"]
    assert os.listdir(rootfs / "opt/app") == ["new"]  # the lower opt/app/old is gone too
    assert not os.path.lexists(rootfs / "data")


def test_rootfs_mode_opaque_marker_order_and_nested_lower_dirs(tmp_path: Any) -> None:
    # This layer's entries before the opaque marker survive it, and lower entries in
    # subdirectories of the opaque dir go even where this layer adds to that subdirectory.
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    apply_layer_to_rootfs(io.BytesIO(tar_bytes([
        info("opq/", "dir"), info("opq/lower", data=b"l"), info("opq/sub/", "dir"),
        info("opq/sub/lower2", data=b"l")])), OCI_TAR, str(rootfs))
    apply_layer_to_rootfs(io.BytesIO(tar_bytes([
        info("opq/upper", data=b"u"), info("opq/.wh..wh..opq"),
        info("opq/sub/upper2", data=b"u")])), OCI_TAR, str(rootfs))
    assert sorted(os.listdir(rootfs / "opq")) == ["sub", "upper"]
    assert os.listdir(rootfs / "opq/sub") == ["upper2"]


def test_rootfs_mode_a_file_replacing_a_lower_symlink_does_not_write_through(
        tmp_path: Any) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"original")
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    apply_layer_to_rootfs(io.BytesIO(tar_bytes([info("f", "symlink", target=str(victim))])),
                          OCI_TAR, str(rootfs))
    apply_layer_to_rootfs(io.BytesIO(tar_bytes([info("f", data=b"replaced")])), OCI_TAR,
                          str(rootfs))
    assert victim.read_bytes() == b"original"
    assert not os.path.islink(rootfs / "f") and (rootfs / "f").read_bytes() == b"replaced"


def test_rootfs_mode_keeps_this_layers_entries_under_its_whiteouts(tmp_path: Any) -> None:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    raw = tar_bytes([info("a", data=b"mine"), info(".wh.a")])
    apply_layer_to_rootfs(io.BytesIO(raw), OCI_TAR, str(rootfs))
    assert (rootfs / "a").read_bytes() == b"mine"
    dest = str(tmp_path / "layer")
    unpack_layer(io.BytesIO(raw), OCI_TAR, dest)
    assert (tmp_path / "layer" / "a").read_bytes() == b"mine"


@pytest.mark.parametrize("media", [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "",  # a `docker save` tarball says nothing: sniffed
])
def test_layer_media_types(tmp_path: Any, media: str) -> None:
    raw = tar_bytes([info("a", data=b"x")])
    for how in ("plain", "gzip", "zstd"):  # whatever the type claims
        dest = str(tmp_path / how)
        unpack_layer(io.BytesIO(compress(raw, how)), media, dest, diff_id(raw))
        assert os.listdir(dest) == ["a"]
