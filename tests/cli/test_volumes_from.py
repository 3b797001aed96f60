"""`--volumes-from CONTAINER[:ro|rw]`: another container's volumes and binds at the same
paths, as Docker's (it was taken by the API and ignored, and the CLI had no flag)."""

from __future__ import annotations

import os

import pytest

from tests.cli.conftest import Barque, inspect_container, ok

pytestmark = pytest.mark.root


def test_volumes_from_shares_volumes_and_binds(barque: Barque,
                                               tmp_path: os.PathLike[str]) -> None:
    ok(barque.run("run", "-d", "--network", "none", "--name", "owner", "-v", "/anon",
                  "-v", f"{tmp_path}:/host", "busybox", "sleep", "60"))
    shared = barque.run("run", "--rm", "--network", "none", "--volumes-from", "owner",
                        "busybox", "sh", "-c", "echo there > /anon/f && echo there > /host/f")
    assert shared.returncode == 0, shared.stderr
    with open(os.path.join(str(tmp_path), "f")) as f:
        assert f.read() == "there\n"
    read_only = barque.run("run", "--rm", "--network", "none", "--volumes-from", "owner:ro",
                           "busybox", "sh", "-c", "cat /anon/f; touch /anon/g")
    assert read_only.returncode == 1 and read_only.stdout == "there\n", read_only
    assert "Read-only file system" in read_only.stderr
    # the borrower's own mount wins at the same path
    own = barque.run("run", "--rm", "--network", "none", "--volumes-from", "owner",
                     "--tmpfs", "/anon", "busybox", "ls", "/anon")
    assert own.returncode == 0 and own.stdout == "", own
    made = ok(barque.run("create", "--network", "none", "--volumes-from", "owner", "busybox"))
    assert inspect_container(barque, made.strip())["HostConfig"]["VolumesFrom"] == ["owner"]
    # `rm -v` of the borrower keeps the volume the owner still uses; the owner's removes it
    ok(barque.run("rm", "-v", made.strip()))
    assert ok(barque.run("volume", "ls", "-q")).count("\n") == 1
    ok(barque.run("rm", "-fv", "owner"))
    assert ok(barque.run("volume", "ls", "-q")) == ""


@pytest.mark.parametrize(("ref", "words"), [
    ("nosuch", "Error response from daemon: No such container: nosuch"),
    ("owner:xx", "Error response from daemon: invalid mode: xx"),
])
def test_bad_volumes_from(barque: Barque, ref: str, words: str) -> None:
    ok(barque.run("create", "--network", "none", "--name", "owner", "busybox"))
    bad = barque.run("run", "--rm", "--network", "none", "--volumes-from", ref, "busybox",
                     "true")
    assert bad.returncode == 125 and words in bad.stderr, bad
    assert len(barque.containers()) == 1  # nothing made
