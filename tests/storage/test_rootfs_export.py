"""`export`: a root filesystem as a plain tar, read back by tar(1) and by `import`."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import tarfile
from collections.abc import Iterator
from typing import Any

import pytest

from barque.image.archive import import_tarball
from barque.image.store import ImageStore
from barque.storage.rootfs_export import ExportError, export_rootfs
from tests.support.tools import require

pytestmark = pytest.mark.root  # owners, device nodes, a tmpfs mount


@pytest.fixture
def rootfs(tmp_path: Any) -> Iterator[str]:
    root = str(tmp_path / "rootfs")
    os.makedirs(os.path.join(root, "etc"))
    os.makedirs(os.path.join(root, "proc"))
    os.makedirs(os.path.join(root, "home", "user"))
    with open(os.path.join(root, "etc", "hostname"), "w") as f:
        f.write("box\n")
    os.chown(os.path.join(root, "etc", "hostname"), 1000, 1001)
    with open(os.path.join(root, "suid"), "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(os.path.join(root, "suid"), 0o4755)
    os.link(os.path.join(root, "etc", "hostname"), os.path.join(root, "etc", "hostname2"))
    os.symlink("../etc/hostname", os.path.join(root, "home", "link"))
    os.mkfifo(os.path.join(root, "fifo"))
    os.mknod(os.path.join(root, "null"), 0o666 | 0o020000, os.makedev(1, 3))
    os.setxattr(os.path.join(root, "etc", "hostname"), "user.note", b"hi\xff")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(os.path.join(root, "sock"))
    sock.close()
    os.utime(os.path.join(root, "etc", "hostname"), (1_700_000_000.7, 1_700_000_000.7))
    yield root


def _export(root: str) -> bytes:
    buf = io.BytesIO()
    export_rootfs(root, buf)
    return buf.getvalue()


def test_export_keeps_what_docker_keeps(rootfs: str) -> None:
    with tarfile.open(fileobj=io.BytesIO(_export(rootfs))) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert tar.extractfile("etc/hostname").read() == b"box\n"  # type: ignore[union-attr]
    assert sorted(members) == ["etc", "etc/hostname", "etc/hostname2", "fifo", "home",
                               "home/link", "home/user", "null", "proc", "suid"]
    host = members["etc/hostname"]
    assert (host.uid, host.gid, host.uname, host.mtime) == (1000, 1001, "", 1_700_000_000)
    assert host.pax_headers["SCHILY.xattr.user.note"].encode("utf-8", "surrogateescape") == \
        b"hi\xff"
    assert members["etc/hostname2"].islnk() and members["etc/hostname2"].linkname == \
        "etc/hostname"
    assert members["home/link"].issym() and members["home/link"].linkname == "../etc/hostname"
    assert members["fifo"].isfifo()
    assert members["null"].ischr() and (members["null"].devmajor, members["null"].devminor) \
        == (1, 3)
    assert members["suid"].mode == 0o4755
    assert members["etc"].isdir()


def test_export_lists_with_tar(rootfs: str, tmp_path: Any) -> None:
    path = str(tmp_path / "out.tar")
    with open(path, "wb") as f:
        export_rootfs(rootfs, f)
    names = subprocess.run(["tar", "-tf", path], check=True, capture_output=True,
                           text=True).stdout.split()
    assert "etc/" in names and "etc/hostname" in names and "sock" not in names
    assert not any(n.startswith(("/", "./")) for n in names)


def test_export_does_not_enter_mounts(rootfs: str) -> None:
    proc = os.path.join(rootfs, "proc")
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", proc], check=True)
    try:
        with open(os.path.join(proc, "inside"), "w") as f:
            f.write("x")
        with tarfile.open(fileobj=io.BytesIO(_export(rootfs))) as tar:
            names = tar.getnames()
    finally:
        subprocess.run(["umount", proc], check=True)
    assert "proc" in names and "proc/inside" not in names


def test_export_round_trips_through_import(rootfs: str, tmp_path: Any) -> None:
    require("tar")
    store = ImageStore(str(tmp_path / "store"))
    try:
        image = import_tarball(store, io.BytesIO(_export(rootfs)), "exported", [], None, None)
        (lower,) = store.lowers(image)
        st = os.stat(os.path.join(lower, "etc", "hostname"))
        assert (st.st_uid, st.st_gid) == (1000, 1001)
        assert os.stat(os.path.join(lower, "etc", "hostname2")).st_ino == st.st_ino
        assert os.readlink(os.path.join(lower, "home", "link")) == "../etc/hostname"
        assert os.getxattr(os.path.join(lower, "etc", "hostname"), "user.note") == b"hi\xff"
        assert os.stat(os.path.join(lower, "suid")).st_mode & 0o7777 == 0o4755
    finally:
        store.close()


def test_export_of_a_missing_dir_is_clear(tmp_path: Any) -> None:
    with pytest.raises(ExportError, match="No such file"):
        export_rootfs(str(tmp_path / "nope"), io.BytesIO())
