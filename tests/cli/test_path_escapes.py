"""Paths from a flag, an image or the container's own files are resolved inside the
container's root: `-w` with `..`, an image's symlink to a host dir under WORKDIR and VOLUME,
a container that swaps its workdir for a symlink and is started again, an /etc/passwd symlink.
Each target is a harmless dir of the run's prefix in the host's /tmp; nothing may appear there."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.cli.conftest import Barque, ok
from tests.support.marks import needs_busybox

pytestmark = [pytest.mark.root, needs_busybox]


@pytest.fixture
def host_dir(run_prefix: str) -> Iterator[str]:
    """An empty dir in the host's /tmp: what an attacker aims at."""
    path = f"/tmp/{run_prefix}-hostdir"
    os.mkdir(path)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_workdir_dotdot_is_cleaned_inside_the_container(barque: Barque, run_prefix: str) -> None:
    name = f"{run_prefix}x"
    try:
        dotdots = "/.." * 30  # more than the depth of any root dir's snapshot on the host
        out = ok(barque.run("run", "--rm", "-w", f"{dotdots}/tmp/{name}", "busybox",
                            "sh", "-c", "pwd; ls -d $(pwd)"))
        assert out == f"/tmp/{name}\n/tmp/{name}\n"
        assert not os.path.lexists(f"/tmp/{name}")
    finally:
        shutil.rmtree(f"/tmp/{name}", ignore_errors=True)


def test_image_symlink_to_host_under_workdir_and_volume(barque: Barque, host_dir: str) -> None:
    ok(barque.run("run", "--name", "mk", "busybox", "ln", "-s", host_dir, "/link"))
    ok(barque.run("commit", "-c", "WORKDIR /link/x", "-c", "VOLUME /link/vol", "mk", "evil"))
    out = ok(barque.run("run", "--rm", "evil", "sh", "-c",
                        "touch made-here; ls /link; ls; ls -d /link/vol"))
    assert out == "vol\nx\nmade-here\n/link/vol\n"
    assert os.listdir(host_dir) == []


def test_container_swapping_its_workdir_for_a_symlink(barque: Barque, host_dir: str) -> None:
    swap = f"cd / && rm -rf /data && ln -s {host_dir} /data"
    ok(barque.run("run", "--name", "swapper", "-w", "/data/sub", "busybox", "sh", "-c", swap))
    assert os.listdir(host_dir) == []
    ok(barque.run("start", "-a", "swapper"))  # the engine makes the workdir again at each start
    assert os.listdir(host_dir) == []


def test_passwd_symlink_to_a_host_file_is_not_read(barque: Barque, host_dir: str) -> None:
    host_passwd = os.path.join(host_dir, "passwd")
    with open(host_passwd, "w") as f:
        f.write("hostonly:x:4242:4242::/:/bin/sh\n")
    ok(barque.run("run", "--name", "mk", "busybox", "sh", "-c",
                  f"rm /etc/passwd && ln -s {host_passwd} /etc/passwd"))
    ok(barque.run("commit", "mk", "evil"))
    result = barque.run("run", "--rm", "-u", "hostonly", "evil", "id")
    assert result.returncode == 125, (result.stdout, result.stderr)
    assert "unable to find user hostonly" in result.stderr
