"""Layer unpacking: whiteouts, digest checks, and refusing entries that escape the rootfs."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from typing import Any

import pytest

from barque.image import oci_layout as ol
from barque.image.unpack import UnpackError, unpack_image

# (name, kind, payload): kind is "file" (payload = content), "dir", "symlink" or "hardlink"
# (payload = target); an optional 4th item is the mode.
Entry = tuple[Any, ...]


def _layer_tar(entries: list[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            name, kind, payload = entry[:3]
            info = tarfile.TarInfo(name)
            info.mode = entry[3] if len(entry) > 3 else (0o755 if kind == "dir" else 0o644)
            data = None
            if kind == "file":
                info.size = len(payload)
                data = io.BytesIO(payload)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, payload
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, payload
            tar.addfile(info, data)
    return buf.getvalue()


def make_layout(path: str, layers: list[list[Entry]], diff_ids: list[str] | None = None) -> str:
    ol.init_layout(path)
    descs, real_diff_ids = [], []
    for entries in layers:
        raw = _layer_tar(entries)
        gz = gzip.compress(raw)
        ol.write_blob(path, gz)
        descs.append(ol.descriptor(ol.MEDIA_LAYER_GZIP, gz))
        real_diff_ids.append(ol.sha256_digest(raw))
    config = ol.canonical_json(
        {
            **ol.host_platform(),
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids or real_diff_ids},
        }
    )
    ol.write_blob(path, config)
    manifest = ol.canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": ol.MEDIA_MANIFEST,
            "config": ol.descriptor(ol.MEDIA_CONFIG, config),
            "layers": descs,
        }
    )
    ol.write_blob(path, manifest)
    entry = ol.descriptor(ol.MEDIA_MANIFEST, manifest, annotations={ol.ANNOTATION_REF_NAME: "t"})
    ol.write_index(path, {"schemaVersion": 2, "manifests": [entry]})
    return path


def unpack(tmp_path: Any, layers: list[list[Entry]], **kw: Any) -> str:
    layout = make_layout(str(tmp_path / "layout"), layers, **kw)
    rootfs = str(tmp_path / "rootfs")
    manifest, config = ol.load_image(layout, "t")
    unpack_image(layout, manifest, config, rootfs)
    return rootfs


def test_layers_stack_and_whiteouts_hide_lower_files(tmp_path: Any) -> None:
    rootfs = unpack(
        tmp_path,
        [
            [
                ("etc", "dir", None),
                ("etc/keep", "file", b"k"),
                ("etc/gone", "file", b"g"),
                ("etc/over", "file", b"old"),
                ("opq", "dir", None),
                ("opq/lower", "file", b"l"),
                ("opq/sub", "dir", None),
                ("opq/sub/lower2", "file", b"l"),
            ],
            [
                ("etc/.wh.gone", "file", b""),
                ("etc/over", "file", b"new"),
                ("opq/upper", "file", b"u"),  # before the marker: order must not matter
                ("opq/.wh..wh..opq", "file", b""),
                ("opq/sub/upper2", "file", b"u"),
            ],
        ],
    )
    assert sorted(os.listdir(os.path.join(rootfs, "etc"))) == ["keep", "over"]
    with open(os.path.join(rootfs, "etc", "over"), "rb") as f:
        assert f.read() == b"new"
    assert sorted(os.listdir(os.path.join(rootfs, "opq"))) == ["sub", "upper"]
    assert os.listdir(os.path.join(rootfs, "opq", "sub")) == ["upper2"]


def test_modes_links_and_owners_are_kept(tmp_path: Any) -> None:
    rootfs = unpack(
        tmp_path,
        [
            [
                ("bin", "dir", None),
                ("bin/tool", "file", b"#!", 0o4755),
                ("bin/alias", "hardlink", "bin/tool"),
                ("bin/rel", "symlink", "tool"),
                ("bin/abs", "symlink", "/bin/tool"),
                ("tmp", "dir", None, 0o1777),
            ]
        ],
    )
    st = os.stat(os.path.join(rootfs, "bin", "tool"))
    assert st.st_mode & 0o7777 == 0o4755
    assert os.stat(os.path.join(rootfs, "bin", "alias")).st_ino == st.st_ino
    assert os.readlink(os.path.join(rootfs, "bin", "abs")) == "/bin/tool"
    assert os.stat(os.path.join(rootfs, "tmp")).st_mode & 0o7777 == 0o1777


@pytest.mark.parametrize("name", ["/etc/passwd", "../escape", "a/../../escape"])
def test_paths_leaving_the_rootfs_are_refused(tmp_path: Any, name: str) -> None:
    with pytest.raises(UnpackError):
        unpack(tmp_path, [[(name, "file", b"x")]])
    assert not os.path.exists(tmp_path / "escape")


def test_writing_through_a_symlinked_directory_is_refused(tmp_path: Any) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    with pytest.raises(UnpackError, match="symlink"):
        unpack(tmp_path, [[("evil", "symlink", str(outside))], [("evil/planted", "file", b"x")]])
    assert list(outside.iterdir()) == []


def test_a_file_replacing_a_symlink_does_not_write_through_it(tmp_path: Any) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"original")
    rootfs = unpack(tmp_path, [[("f", "symlink", str(victim))], [("f", "file", b"replaced")]])
    assert victim.read_bytes() == b"original"
    assert not os.path.islink(os.path.join(rootfs, "f"))


def test_hard_links_out_of_the_rootfs_are_refused(tmp_path: Any) -> None:
    with pytest.raises(UnpackError):
        unpack(tmp_path, [[("x", "hardlink", "../victim")]])


def test_a_layer_not_matching_its_diff_id_is_refused(tmp_path: Any) -> None:
    with pytest.raises(UnpackError, match="does not match"):
        unpack(tmp_path, [[("a", "file", b"x")]], diff_ids=["sha256:" + "0" * 64])


def test_a_corrupt_blob_is_refused(tmp_path: Any) -> None:
    layout = make_layout(str(tmp_path / "layout"), [[("a", "file", b"x" * 1000)]])
    manifest, config = ol.load_image(layout, "t")
    path = ol.blob_path(layout, manifest["layers"][0]["digest"])
    os.chmod(path, 0o644)
    data = bytearray(open(path, "rb").read())
    data[-9] ^= 0xFF  # inside the gzip trailer's CRC: decompression notices, or the digest does
    with open(path, "wb") as f:
        f.write(data)
    with pytest.raises(UnpackError):
        unpack_image(layout, manifest, config, str(tmp_path / "rootfs"))
