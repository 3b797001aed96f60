"""barque.linux.files: renameat2(RENAME_NOREPLACE, RENAME_EXCHANGE) and syncfs on a real file
system."""

from __future__ import annotations

import errno
import os

import pytest

from barque.linux import files


def test_rename_noreplace_moves_a_directory(tmp_path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_text("x")
    files.rename_noreplace(str(tmp_path / "a"), str(tmp_path / "b"))
    assert (tmp_path / "b" / "f").read_text() == "x"
    assert not (tmp_path / "a").exists()


def test_rename_noreplace_keeps_an_existing_target(tmp_path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()  # even an empty dir, which rename(2) would replace
    with pytest.raises(OSError) as e:
        files.rename_noreplace(str(tmp_path / "a"), str(tmp_path / "b"))
    assert e.value.errno == errno.EEXIST
    assert (tmp_path / "a").is_dir() and (tmp_path / "b").is_dir()


def test_rename_noreplace_relative_to_dir_fds(tmp_path) -> None:
    (tmp_path / "a").write_text("y")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        files.rename_noreplace("a", "c", src_dir_fd=fd, dst_dir_fd=fd)
    finally:
        os.close(fd)
    assert (tmp_path / "c").read_text() == "y"


def test_rename_exchange_swaps_two_directories(tmp_path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_text("old")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "f").write_text("new")
    files.rename_exchange(str(tmp_path / "b"), str(tmp_path / "a"))
    assert (tmp_path / "a" / "f").read_text() == "new"
    assert (tmp_path / "b" / "f").read_text() == "old"


def test_rename_exchange_needs_both(tmp_path) -> None:
    (tmp_path / "a").mkdir()
    with pytest.raises(OSError) as e:
        files.rename_exchange(str(tmp_path / "a"), str(tmp_path / "missing"))
    assert e.value.errno == errno.ENOENT
    assert (tmp_path / "a").is_dir()


def test_syncfs(tmp_path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        files.syncfs(fd)
    finally:
        os.close(fd)
    with pytest.raises(OSError) as e:
        files.syncfs(fd)  # closed
    assert e.value.errno == errno.EBADF
