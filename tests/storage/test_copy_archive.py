"""The host side of `cp` out: Docker's destination rules, and a hostile archive that can
write nowhere but below the destination."""

from __future__ import annotations

import io
import os

import pytest

from barque.storage import copy_archive
from tests.storage.util import short_tar


def _tar(*members: tuple[str, str, str]) -> io.BytesIO:
    """(kind, name, data or link target) -> an archive."""
    return io.BytesIO(short_tar(list(members)))


def test_plan_follows_dockers_rules(tmp_path: str) -> None:
    tmp = str(tmp_path)
    os.mkdir(os.path.join(tmp, "dir"))
    open(os.path.join(tmp, "file"), "w").close()
    os.symlink("dir", os.path.join(tmp, "link"))
    assert copy_archive.plan(os.path.join(tmp, "dir"), True) == (os.path.join(tmp, "dir"), None)
    assert copy_archive.plan(os.path.join(tmp, "link"), False) == (os.path.join(tmp, "dir"),
                                                                   None)
    assert copy_archive.plan(os.path.join(tmp, "new"), True) == (tmp, "new")
    assert copy_archive.plan(os.path.join(tmp, "file"), False) == (tmp, "file")
    with pytest.raises(copy_archive.CopyError, match="cannot copy directory"):
        copy_archive.plan(os.path.join(tmp, "file"), True)
    with pytest.raises(copy_archive.CopyError, match="no such directory"):
        copy_archive.plan(os.path.join(tmp, "new") + "/", False)
    with pytest.raises(copy_archive.CopyError, match="no such directory"):
        copy_archive.plan(os.path.join(tmp, "missing", "x"), False)


@pytest.mark.parametrize("members", [
    [("file", "../escaped", "x")],
    [("file", "/abs/escaped", "x")],
    [("dir", "d", ""), ("file", "d/../../escaped", "x")],
    # a symlink out, then a file through it: the link is made, never followed
    [("dir", "d", ""), ("sym", "d/out", "../../outside"), ("file", "d/out/escaped", "x")],
    # a hard link to a host file
    [("dir", "d", ""), ("hard", "d/h", "../../outside/host-file")],
    [("dir", "d", ""), ("hard", "d/h", "/etc/passwd")],
], ids=["dotdot", "absolute", "inner-dotdot", "through-symlink", "hardlink-out",
        "hardlink-abs"])
def test_a_hostile_archive_writes_nothing_outside(tmp_path: str,
                                                  members: list[tuple[str, str, str]]) -> None:
    tmp = str(tmp_path)
    outside = os.path.join(tmp, "outside")
    os.mkdir(outside)
    with open(os.path.join(outside, "host-file"), "w") as f:
        f.write("host")
    dest = os.path.join(tmp, "dest", "inner")
    os.makedirs(dest)
    with pytest.raises(copy_archive.CopyError):
        copy_archive.extract(_tar(*members), dest, "d", None, preserve=False)
    assert sorted(os.listdir(outside)) == ["host-file"]
    assert not os.path.exists(os.path.join(tmp, "escaped"))
    assert os.stat(os.path.join(outside, "host-file")).st_nlink == 1


def test_rebased_and_owned_by_the_caller(tmp_path: str) -> None:
    tmp = str(tmp_path)
    archive = _tar(("dir", "d", ""), ("file", "d/f", "one"), ("hard", "d/g", "d/f"),
                   ("sym", "d/s", "f"))
    copy_archive.extract(archive, tmp, "d", "new", preserve=False)
    new = os.path.join(tmp, "new")
    assert open(os.path.join(new, "f")).read() == "one"
    assert os.stat(os.path.join(new, "g")).st_ino == os.stat(os.path.join(new, "f")).st_ino
    assert os.readlink(os.path.join(new, "s")) == "f"
    assert os.stat(os.path.join(new, "f")).st_uid == os.getuid()
