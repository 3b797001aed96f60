"""Snapshots: overlay mounts of many layers, `docker diff`, `commit`'s layer tar and the copy
fallback, on the real kernel."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import struct
from typing import Any

import pytest

from barque.storage import snapshot as snaps
from barque.storage.layers import unpack_layer
from barque.storage.snapshot import Snapshot, SnapshotError
from tests.storage.util import OCI_TAR, info, mounted_under, require_overlay, tar_bytes, tree

pytestmark = pytest.mark.root

CAP_NET_RAW = struct.pack("<IIIII", 0x02000001, 1 << 13, 1 << 13, 0, 0)

BASE = [
    info("etc/", "dir"),
    info("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n"),
    info("etc/hosts", data=b"127.0.0.1 localhost\n"),
    info("etc/motd", data=b"hi\n"),
    info("var/log/a", data=b"a"),
    info("var/log/b", data=b"b"),
    info("opt/app/x", data=b"x"),
    info("opt/app/y", data=b"y"),
    info("usr/bin/tool", data=b"tool", mode=0o755),
    info("home/user/", "dir", uid=1000, gid=1000),
    info("home/user/.profile", data=b"p", uid=1000, gid=1000),
]
SECOND = [info("etc/.wh.motd"), info("etc/issue", data=b"barque\n")]


@pytest.fixture
def need_overlay(tmp_path: Any) -> None:
    require_overlay(str(tmp_path))


def make_lowers(tmp_path: Any, layers: list[bytes]) -> list[str]:
    os.makedirs(tmp_path / "layers", exist_ok=True)
    dirs = []
    for raw in layers:
        dest = str(tmp_path / "layers" / hashlib.sha256(raw).hexdigest())
        unpack_layer(io.BytesIO(raw), OCI_TAR, dest)
        dirs.append(dest)
    return dirs[::-1]  # top-most first


def change_things(root: str) -> None:
    """What a container does, through its rootfs."""
    def path(p: str) -> str:
        return os.path.join(root, p)

    with open(path("new.txt"), "w") as f:
        f.write("new")
    os.setxattr(path("new.txt"), "user.origin", b"container")
    os.link(path("new.txt"), path("new-link"))
    with open(path("etc/hosts"), "a") as f:
        f.write("10.0.0.2 db\n")
    os.unlink(path("etc/passwd"))
    shutil.rmtree(path("var/log"))
    shutil.rmtree(path("opt/app"))
    os.mkdir(path("opt/app"))
    with open(path("opt/app/z"), "w") as f:
        f.write("z")
    os.makedirs(path("srv/data"))
    os.symlink("/etc/hosts", path("sym"))
    os.chmod(path("usr/bin/tool"), 0o700)
    with open(path("home/user/new"), "w") as f:
        f.write("n")
    with open(path("ping"), "w") as f:
        f.write("ping")
    os.setxattr(path("ping"), "security.capability", CAP_NET_RAW)
    os.mkfifo(path("fifo"))


def test_overlay_is_supported_here(tmp_path: Any) -> None:
    assert snaps.overlay_supported(str(tmp_path))
    assert os.listdir(tmp_path) == []  # the probe cleaned up


@pytest.mark.usefixtures("need_overlay")
def test_diff_and_commit_round_trip(tmp_path: Any) -> None:
    lowers = make_lowers(tmp_path, [tar_bytes(BASE), tar_bytes(SECOND)])
    snap = Snapshot(str(tmp_path / "snap"))
    merged = snap.prepare(lowers)
    try:
        assert merged == snap.merged and not snap.is_copy
        assert sorted(os.listdir(os.path.join(merged, "etc"))) == ["hosts", "issue", "passwd"]
        change_things(merged)
        assert snap.diff(lowers) == [
            ("C", "/etc"), ("C", "/etc/hosts"), ("D", "/etc/passwd"),
            ("A", "/fifo"),
            ("C", "/home"), ("C", "/home/user"), ("A", "/home/user/new"),
            ("A", "/new-link"), ("A", "/new.txt"),
            ("C", "/opt"), ("D", "/opt/app"), ("A", "/opt/app/z"),
            ("A", "/ping"),
            ("A", "/srv"), ("A", "/srv/data"),
            ("A", "/sym"),
            ("C", "/usr/bin"), ("C", "/usr/bin/tool"),  # a change's parent, as dockerd
            ("C", "/var"), ("D", "/var/log"),
        ]
        out = io.BytesIO()
        layer_diff_id = snaps.write_upper_as_layer(snap.upper, lowers, out)
        blob = out.getvalue()
        assert layer_diff_id == "sha256:" + hashlib.sha256(blob).hexdigest()
        again = io.BytesIO()
        assert snaps.write_upper_as_layer(snap.upper, lowers, again) == layer_diff_id
        assert again.getvalue() == blob  # deterministic
        container_view = tree(merged, times=False)
    finally:
        snap.remove()
    assert mounted_under(str(tmp_path)) == []
    assert not os.path.exists(tmp_path / "snap")

    # The committed layer on top of the image shows what the container saw.
    committed = str(tmp_path / "layers" / ("c" * 64))
    unpack_layer(io.BytesIO(blob), OCI_TAR, committed, layer_diff_id)
    image = Snapshot(str(tmp_path / "image"))
    try:
        view = tree(image.prepare([committed] + lowers), times=False)
        assert view == container_view
        assert dict(view["ping"][5])["security.capability"] == CAP_NET_RAW
        assert dict(view["new.txt"][5]) == {"user.origin": b"container"}
        st1, st2 = (os.stat(os.path.join(image.merged, n)) for n in ("new.txt", "new-link"))
        assert st1.st_ino == st2.st_ino
    finally:
        image.remove()
    # So does the copy fallback.
    copy = Snapshot(str(tmp_path / "copy"))
    assert tree(copy.prepare([committed] + lowers, overlay=False), times=False) == container_view
    copy.remove()


@pytest.mark.usefixtures("need_overlay")
def test_copy_fallback_diff_and_commit(tmp_path: Any) -> None:
    lowers = make_lowers(tmp_path, [tar_bytes(BASE), tar_bytes(SECOND)])
    snap = Snapshot(str(tmp_path / "snap"))
    rootfs = snap.prepare(lowers, overlay=False)
    assert rootfs == snap.copy and snap.is_copy
    overlay = Snapshot(str(tmp_path / "overlay"))
    try:
        assert tree(rootfs) == tree(overlay.prepare(lowers))
    finally:
        overlay.remove()
    change_things(rootfs)
    # Docker's naive diff: directories are listed when something in them changed.
    assert snap.diff(lowers) == [
        ("C", "/etc"), ("C", "/etc/hosts"), ("D", "/etc/passwd"),
        ("A", "/fifo"),
        ("C", "/home"), ("C", "/home/user"), ("A", "/home/user/new"),
        ("A", "/new-link"), ("A", "/new.txt"),
        ("C", "/opt"), ("C", "/opt/app"), ("D", "/opt/app/x"), ("D", "/opt/app/y"),
        ("A", "/opt/app/z"),
        ("A", "/ping"),
        ("A", "/srv"), ("A", "/srv/data"),
        ("A", "/sym"),
        ("C", "/usr"), ("C", "/usr/bin"), ("C", "/usr/bin/tool"),
        ("C", "/var"), ("D", "/var/log"),
    ]
    out = io.BytesIO()
    layer_diff_id = snap.write_layer(lowers, out)
    container_view = tree(rootfs, times=False)
    snap.remove()
    committed = str(tmp_path / "layers" / ("c" * 64))
    unpack_layer(io.BytesIO(out.getvalue()), OCI_TAR, committed, layer_diff_id)
    image = Snapshot(str(tmp_path / "image"))
    try:
        view = tree(image.prepare([committed] + lowers), times=False)
        # Directories the naive diff lists as changed carry their current mode and owner,
        # which is what the container had.
        assert view == container_view
    finally:
        image.remove()


@pytest.mark.usefixtures("need_overlay")
def test_one_hundred_long_lowers(tmp_path: Any) -> None:
    lowers = []
    for i in range(100):
        layer = tmp_path / "layers" / hashlib.sha256(str(i).encode()).hexdigest()
        os.makedirs(layer / "files")
        (layer / "files" / f"f{i}").write_text(str(i))
        (layer / "shared").write_text(str(i))
        lowers.append(str(layer))
    lowers.reverse()  # layer 99 is the top-most
    assert len(":".join(lowers)) > 4096  # the plain mount data would not fit in a page
    snap = Snapshot(str(tmp_path / "snap"))
    merged = snap.prepare(lowers)
    try:
        assert len(os.listdir(os.path.join(merged, "files"))) == 100
        with open(os.path.join(merged, "shared")) as f:
            assert f.read() == "99"
        assert mounted_under(merged) == [merged]
    finally:
        snap.remove()
    assert mounted_under(str(tmp_path)) == []
    assert not os.path.exists(tmp_path / "snap")


@pytest.mark.usefixtures("need_overlay")
def test_prepare_again_remounts_and_keeps_the_upper(tmp_path: Any) -> None:
    lowers = make_lowers(tmp_path, [tar_bytes(BASE)])
    snap = Snapshot(str(tmp_path / "snap"))
    merged = snap.prepare(lowers)
    try:
        with open(os.path.join(merged, "kept"), "w") as f:
            f.write("k")
        assert snaps.prepare(snap.dir, lowers) == merged  # mounted already: nothing to do
        assert mounted_under(merged) == [merged]
        snap.unmount()  # as after a reboot
        assert mounted_under(merged) == []
        assert snaps.prepare(snap.dir, lowers) == merged
        with open(os.path.join(merged, "kept")) as f:
            assert f.read() == "k"
    finally:
        snaps.remove(snap.dir)
    assert mounted_under(str(tmp_path)) == [] and not os.path.exists(snap.dir)
    snaps.remove(snap.dir)  # removing what is gone is fine


@pytest.mark.usefixtures("need_overlay")
def test_remove_while_busy_detaches(tmp_path: Any) -> None:
    lowers = make_lowers(tmp_path, [tar_bytes(BASE)])
    snap = Snapshot(str(tmp_path / "snap"))
    merged = snap.prepare(lowers)
    cwd = os.getcwd()
    os.chdir(merged)  # busy: a plain umount fails with EBUSY
    try:
        snap.remove()
    finally:
        os.chdir(cwd)
    assert mounted_under(str(tmp_path)) == [] and not os.path.exists(snap.dir)


@pytest.mark.usefixtures("need_overlay")
def test_image_without_layers(tmp_path: Any) -> None:
    snap = Snapshot(str(tmp_path / "snap"))
    merged = snap.prepare([])
    try:
        assert os.listdir(merged) == []
    finally:
        snap.remove()


def test_failed_prepare_leaves_nothing(tmp_path: Any) -> None:
    with pytest.raises(SnapshotError, match="preparing"):
        snaps.prepare(str(tmp_path / "snap"), [str(tmp_path / "no-such-layer")], overlay=True)
    with pytest.raises(SnapshotError, match="preparing"):
        snaps.prepare(str(tmp_path / "snap"), [str(tmp_path / "no-such-layer")], overlay=False)
    assert os.listdir(tmp_path) == []
    assert mounted_under(str(tmp_path)) == []


def test_upper_with_redirects_cannot_be_committed(tmp_path: Any) -> None:
    upper = tmp_path / "upper"
    (upper / "d").mkdir(parents=True)
    os.setxattr(upper / "d", "trusted.overlay.redirect", b"/elsewhere")
    with pytest.raises(SnapshotError, match="redirect"):
        snaps.write_upper_as_layer(str(upper), [], io.BytesIO())


@pytest.mark.usefixtures("need_overlay")
def test_whiteouts_and_opaque_dirs_in_the_layer_tar(tmp_path: Any) -> None:
    import tarfile

    lowers = make_lowers(tmp_path, [tar_bytes(BASE)])
    snap = Snapshot(str(tmp_path / "snap"))
    merged = snap.prepare(lowers)
    try:
        os.unlink(os.path.join(merged, "etc/motd"))
        shutil.rmtree(os.path.join(merged, "opt/app"))
        os.mkdir(os.path.join(merged, "opt/app"))
        # Made and deleted in the container: overlay leaves no whiteout, or one we drop.
        open(os.path.join(merged, "tmpfile"), "w").close()
        os.unlink(os.path.join(merged, "tmpfile"))
        out = io.BytesIO()
        snaps.write_upper_as_layer(snap.upper, lowers, out)
    finally:
        snap.remove()
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == ["etc", "etc/.wh.motd", "opt", "opt/app",
                               "opt/app/.wh..wh..opq"]
    assert members["etc/.wh.motd"].isreg() and members["etc/.wh.motd"].size == 0
    assert members["opt/app"].isdir()
    assert all(m.uname == "" and "SCHILY.xattr.trusted.overlay.opaque" not in m.pax_headers
               for m in members.values())


IDS = ([(0, 300000, 65536)], [(0, 300000, 65536)])  # a user namespace's maps


def _owners(root: str) -> dict[str, tuple[int, int]]:
    found = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(top, name)
            st = os.lstat(path)
            found[os.path.relpath(path, root)] = (st.st_uid, st.st_gid)
    return found


@pytest.mark.parametrize("overlay", [True, False], ids=["idmapped-overlay", "shifted-copy"])
@pytest.mark.usefixtures("need_overlay")
def test_a_user_namespaced_snapshot_shows_the_mapped_ids(tmp_path: Any, overlay: bool) -> None:
    """The rootfs shows every owner shifted through the maps, the layers keep theirs; what
    the container writes is the mapped root's; diff and commit speak the image's ids."""
    lowers = make_lowers(tmp_path, [tar_bytes(BASE), tar_bytes(SECOND)])
    before = {lower: _owners(lower) for lower in lowers}
    snap = Snapshot(str(tmp_path / "snap"))
    rootfs = snap.prepare(lowers, overlay=overlay, ids=IDS)
    try:
        assert snap.idmap == IDS and snap.is_copy is not overlay
        owners = _owners(rootfs)
        assert owners["etc/hosts"] == (300000, 300000)
        assert owners["home/user/.profile"] == (301000, 301000)
        st = os.lstat(rootfs)
        assert (st.st_uid, st.st_gid) == (300000, 300000)
        assert {lower: _owners(lower) for lower in lowers} == before
        with open(os.path.join(rootfs, "new.txt"), "w") as f:
            f.write("new")
        os.chown(os.path.join(rootfs, "new.txt"), 300000, 300000)
        with open(os.path.join(rootfs, "etc/hosts"), "a") as f:  # a copy-up
            f.write("10.0.0.2 db\n")
        if overlay:
            assert os.lstat(os.path.join(snap.upper, "etc/hosts")).st_uid == 300000
        assert snap.diff(lowers) == [("C", "/etc"), ("C", "/etc/hosts"), ("A", "/new.txt")]
        out = io.BytesIO()
        snap.write_layer(lowers, out)
        import tarfile

        with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
            layer = {m.name: (m.uid, m.gid) for m in tar.getmembers()}
        assert layer == {"etc": (0, 0), "etc/hosts": (0, 0), "new.txt": (0, 0)}
    finally:
        snap.remove()
    # Prepared again (a restart), the maps recorded with it still apply.
    again = Snapshot(str(tmp_path / "again"))
    again.prepare(lowers, overlay=overlay, ids=IDS)
    try:
        again.unmount()
        rootfs = again.prepare(lowers)
        assert _owners(rootfs)["etc/passwd"] == (300000, 300000)
    finally:
        again.remove()
