"""barque.linux.paths and fdtree: resolving, making and copying inside a root through fds. The
kernel's openat2 path and the component walk (its fallback, and what makes missing parts) are
both checked against the same escapes: `..`, absolute and relative symlinks, dangling symlinks,
magic links."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

import pytest

from barque.linux import fdtree, paths


@pytest.fixture
def root(tmp_path: object) -> Iterator[tuple[str, str, int]]:
    """(the root, a dir beside it standing for the host, an fd of the root)."""
    base = str(tmp_path)
    rootfs, host = os.path.join(base, "root"), os.path.join(base, "host")
    os.makedirs(os.path.join(rootfs, "etc"))
    os.makedirs(host)
    os.symlink(host, os.path.join(rootfs, "abs"))  # absolute: the host dir, seen from the host
    os.symlink("../../../../..", os.path.join(rootfs, "up"))
    os.symlink("/nowhere/deep", os.path.join(rootfs, "dangling"))
    fd = paths.open_root(rootfs)
    try:
        yield rootfs, host, fd
    finally:
        os.close(fd)


ESCAPES = ["/../../../../x", "/abs/x", "/up/up/x", "/etc/../../x", "/dangling/x"]


@pytest.mark.parametrize("path", ESCAPES)
def test_mkdir_all_stays_inside(root: tuple[str, str, int], path: str) -> None:
    rootfs, host, fd = root
    made = paths.mkdir_all(fd, path)
    try:
        assert paths.fd_path(made).startswith(rootfs + "/")
        assert stat.S_ISDIR(os.fstat(made).st_mode)
    finally:
        os.close(made)
    assert os.listdir(host) == []
    assert not os.path.exists(os.path.join(os.path.dirname(rootfs), "x"))


@pytest.mark.parametrize("path", ESCAPES)
def test_component_walk_stays_inside(root: tuple[str, str, int], path: str) -> None:
    rootfs, host, fd = root
    made = paths._walk(fd, path + "/file", "file", 0o644)
    try:
        assert paths.fd_path(made).startswith(rootfs + "/")
        assert stat.S_ISREG(os.fstat(made).st_mode)
    finally:
        os.close(made)
    assert os.listdir(host) == []


def test_symlinks_are_followed_within_the_root(root: tuple[str, str, int]) -> None:
    rootfs, _, fd = root
    made = paths.mkdir_all(fd, "/abs/sub")
    os.close(made)
    assert os.path.isdir(os.path.join(rootfs, root[1].lstrip("/"), "sub"))
    made = paths.ensure(fd, "/dangling", is_dir=False)
    os.close(made)
    assert os.path.isfile(os.path.join(rootfs, "nowhere", "deep"))


def test_open_in_root_refuses_magic_links_and_missing_paths(root: tuple[str, str, int]) -> None:
    rootfs, host, fd = root
    os.makedirs(os.path.join(rootfs, "proc"))
    host_fd = os.open(host, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with paths.rooted("/") as real_root:
            with pytest.raises(OSError) as err:
                paths.open_in_root(real_root, f"/proc/self/fd/{host_fd}")
            assert err.value.errno == 40  # ELOOP
    finally:
        os.close(host_fd)
    with pytest.raises(FileNotFoundError):
        paths.open_in_root(fd, "/etc/missing")
    with pytest.raises(NotADirectoryError):
        open(os.path.join(rootfs, "etc", "f"), "w").close()
        paths.mkdir_all(fd, "/etc/f")


def test_copy_tree_copies_symlinks_not_what_they_point_at(root: tuple[str, str, int],
                                                          tmp_path: object) -> None:
    rootfs, host, fd = root
    with open(os.path.join(host, "secret"), "w") as f:
        f.write("host\n")
    src = os.path.join(rootfs, "data")
    os.makedirs(os.path.join(src, "sub"))
    with open(os.path.join(src, "sub", "file"), "w") as f:
        f.write("data\n")
    os.chmod(os.path.join(src, "sub", "file"), 0o4711)
    os.symlink(host, os.path.join(src, "link"))
    os.mkfifo(os.path.join(src, "fifo"))
    dst = os.path.join(str(tmp_path), "copy")
    os.mkdir(dst)
    sfd = os.open(src, os.O_RDONLY | os.O_DIRECTORY)
    dfd = os.open(dst, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fdtree.copy_tree(sfd, dfd)
    finally:
        os.close(sfd)
        os.close(dfd)
    assert sorted(os.listdir(dst)) == ["fifo", "link", "sub"]
    assert os.readlink(os.path.join(dst, "link")) == host
    assert stat.S_ISFIFO(os.lstat(os.path.join(dst, "fifo")).st_mode)
    with open(os.path.join(dst, "sub", "file")) as f:
        assert f.read() == "data\n"
    assert stat.S_IMODE(os.stat(os.path.join(dst, "sub", "file")).st_mode) == 0o4711
