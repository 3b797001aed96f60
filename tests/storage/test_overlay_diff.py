"""The overlay diff (barque/storage/overlay_diff.py) on layer dirs made by hand: an upper dir
against its lowers as Docker's overlay2 driver reads it, and a copied rootfs as its naive
driver does; both in Docker's walk order."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

from barque.storage.entries import OPAQUE_XATTR
from barque.storage.overlay_diff import diff, diff_dirs, visible

pytestmark = pytest.mark.root  # whiteouts are device nodes; the opaque xattr is trusted.*


def _file(path: str, data: str = "x") -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(data)


def _lower(tmp: str) -> str:
    lower = os.path.join(tmp, "lower")
    for name in ("a/x", "b/y", "d/z", "keep"):
        _file(os.path.join(lower, name))
    return lower


def test_upper_dir_against_its_lowers(tmp_path: Any) -> None:
    tmp = str(tmp_path)
    lower, upper = _lower(tmp), os.path.join(tmp, "upper")
    _file(os.path.join(upper, "a", "new"))  # added beside a lower file
    os.makedirs(os.path.join(upper, "b"))
    os.mknod(os.path.join(upper, "b", "y"), 0o600 | 0o020000, os.makedev(0, 0))  # whiteout
    _file(os.path.join(upper, "d", "w"))
    os.setxattr(os.path.join(upper, "d"), OPAQUE_XATTR, b"y")  # hides the lower's d/z
    assert diff(upper, [lower]) == [("C", "/a"), ("A", "/a/new"), ("C", "/b"),
                                    ("D", "/b/y"), ("D", "/d"), ("A", "/d/w")]
    # What the merged view shows: the whiteout and the opaque dir hide the lower's files.
    assert visible([upper, lower], ("b", "y")) is None
    assert visible([upper, lower], ("d", "z")) is None
    assert visible([upper, lower], ("keep",)) is not None
    empty = os.path.join(tmp, "empty-upper")
    os.mkdir(empty)
    assert diff(empty, [lower]) == []


def test_copied_rootfs_against_its_lowers(tmp_path: Any) -> None:
    tmp = str(tmp_path)
    lower = _lower(tmp)
    rootfs = os.path.join(tmp, "rootfs")
    shutil.copytree(lower, rootfs, symlinks=True)  # copy2: the same mtimes
    assert diff_dirs(rootfs, [lower]) == []
    _file(os.path.join(rootfs, "a", "new"))
    os.unlink(os.path.join(rootfs, "b", "y"))
    assert diff_dirs(rootfs, [lower]) == [("C", "/a"), ("A", "/a/new"), ("C", "/b"),
                                          ("D", "/b/y")]
