"""`cp` out of a container: Docker's path rules, and the symlink-exchange race
(CVE-2018-15664) that must never bring back the host's files."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import time

import pytest

from tests.cli.conftest import Barque, ok
from tests.support.marks import needs_busybox
from tests.support.tools import require

pytestmark = [
    pytest.mark.root,
    needs_busybox,
]

_EXCHANGER = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc != 3) return 2;
    for (;;) syscall(SYS_renameat2, AT_FDCWD, argv[1], AT_FDCWD, argv[2], 2 /* EXCHANGE */);
}
"""


def _exchanger(tmp_path: str) -> str:
    require("gcc")
    source = os.path.join(tmp_path, "exchange.c")
    with open(source, "w") as f:
        f.write(_EXCHANGER)
    binary = os.path.join(tmp_path, "exchange")
    subprocess.run(["gcc", "-static", "-O2", "-o", binary, source], check=True, timeout=120)
    return binary


@pytest.mark.slow
def test_cp_out_during_a_symlink_exchange_never_reads_the_host(barque: Barque,
                                                               tmp_path: str,
                                                               run_prefix: str) -> None:
    # The container swaps its dir /w/d with a symlink /w/l -> the host's secret dir in a
    # renameat2(RENAME_EXCHANGE) loop while we copy files and dirs from below /w/d. A copy
    # that resolves the container's path on the host now and then follows the symlink.
    b, tmp = barque, str(tmp_path)
    secret_dir = f"/tmp/{run_prefix}-secret"
    marker = f"HOST-SECRET-{run_prefix}\n"
    os.makedirs(os.path.join(secret_dir, "sub"))
    try:
        for name in ("secretname", "sub/secretname"):
            with open(os.path.join(secret_dir, name), "w") as f:
                f.write(marker)
        binary = _exchanger(tmp)
        ok(b.run("create", "--name", "racer", "busybox", "sh", "-c",
                 "mkdir -p /w/d/sub && echo inside > /w/d/secretname && "
                 f"echo inside > /w/d/sub/secretname && ln -s {secret_dir} /w/l && "
                 "exec /exchange /w/d /w/l"))
        ok(b.run("cp", binary, "racer:/exchange"))
        ok(b.run("start", "racer"))
        time.sleep(0.3)
        leaked: dict[str, set[int]] = {"file": set(), "dir": set()}
        copied, deadline = 0, time.monotonic() + 240
        for i in range(140):  # 100 file copies, then 40 directory copies
            if time.monotonic() > deadline:
                break
            is_dir = i >= 100
            source = ("/w/d", "/w/d/sub")[i % 2] if is_dir else \
                ("/w/d/secretname", "/w/d/sub/secretname")[i % 2]
            dest = os.path.join(tmp, f"out{i}")
            b.run("cp", f"racer:{source}", dest)
            if os.path.islink(dest):
                continue  # /w/d caught as the symlink: copied as a link, never followed
            for base, _, files in os.walk(dest) if is_dir else [(tmp, [], [f"out{i}"])]:
                for name in files:
                    path = os.path.join(base, name)
                    if os.path.isfile(path) and not os.path.islink(path):
                        copied += 1
                        if open(path).read() == marker:
                            leaked["dir" if is_dir else "file"].add(i)
        assert not leaked["file"] and not leaked["dir"], (
            f"the host's file came back in {len(leaked['file'])} of 100 file copies and "
            f"{len(leaked['dir'])} of 40 directory copies")
        assert copied >= 20  # the race did not keep every copy from happening
    finally:
        b.run("rm", "-f", "racer", timeout=60)
        shutil.rmtree(secret_dir, ignore_errors=True)


def _names(b: Barque, source: str, *flags: str) -> list[str]:
    result = subprocess.run(b.argv("cp", *flags, source, "-"), capture_output=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    with tarfile.open(fileobj=io.BytesIO(result.stdout)) as tar:
        return [m.name + ("/" if m.isdir() else "") for m in tar.getmembers()]


@pytest.mark.parametrize("running", [True, False], ids=["running", "stopped"])
def test_cp_out_keeps_dockers_rules(barque: Barque, tmp_path: str, running: bool) -> None:
    b, tmp = barque, str(tmp_path)
    setup = ("mkdir -p /w/d/sub && echo one > /w/d/f && echo two > /w/d/sub/g && "
             "chmod 0640 /w/d/f && ln -s d/f /w/lf && ln -s /w/d /w/ld && "
             "echo vol > /v/inside")
    if running:
        ok(b.run("run", "-d", "--name", "cc", "-v", "/v", "busybox", "sleep", "300"))
        ok(b.run("exec", "cc", "sh", "-c", setup))
    else:
        ok(b.run("run", "--name", "cc", "-v", "/v", "busybox", "sh", "-c", setup))
    # The archive's names (`cp C:P -`), as Docker's.
    assert _names(b, "cc:/w/d") == ["d/", "d/f", "d/sub/", "d/sub/g"]
    assert _names(b, "cc:/w/d/.") == ["./", "./f", "./sub/", "./sub/g"]
    assert _names(b, "cc:/w/d/f") == ["f"]
    assert _names(b, "cc:/w/lf") == ["lf"]  # a symlink as such
    assert _names(b, "cc:/w/lf", "-L") == ["lf"]  # its target, named as the link
    assert _names(b, "cc:/w/ld/sub") == ["sub/", "sub/g"]  # symlinks before the last followed
    assert _names(b, "cc:/v") == ["v/", "v/inside"]  # a volume
    # Onto the host.
    ok(b.run("cp", "cc:/w/d", os.path.join(tmp, "new")))  # a new dir takes DEST's name
    assert sorted(os.listdir(os.path.join(tmp, "new"))) == ["f", "sub"]
    assert os.stat(os.path.join(tmp, "new", "f")).st_mode & 0o777 == 0o640
    ok(b.run("cp", "cc:/w/d", os.path.join(tmp, "new")))  # into the existing dir
    assert open(os.path.join(tmp, "new", "d", "sub", "g")).read() == "two\n"
    ok(b.run("cp", "cc:/w/d/.", os.path.join(tmp, "new")))  # its contents, merged
    assert sorted(os.listdir(os.path.join(tmp, "new"))) == ["d", "f", "sub"]
    ok(b.run("cp", "cc:/w/d/f", os.path.join(tmp, "file")))
    ok(b.run("cp", "cc:/w/d/sub/g", os.path.join(tmp, "file")))  # replaces a file
    assert open(os.path.join(tmp, "file")).read() == "two\n"
    ok(b.run("cp", "cc:/w/lf", os.path.join(tmp, "link")))
    assert os.readlink(os.path.join(tmp, "link")) == "d/f"
    ok(b.run("cp", "-L", "cc:/w/lf", os.path.join(tmp, "followed")))
    assert open(os.path.join(tmp, "followed")).read() == "one\n"
    refused = b.run("cp", "cc:/w/d", os.path.join(tmp, "file"))
    assert refused.returncode == 1 and "cannot copy directory" in refused.stderr
    missing = b.run("cp", "cc:/w/nope", os.path.join(tmp, "x"))
    # dockerd's 404, in the docker client's own words
    assert (missing.returncode, missing.stderr) == (
        1, "Error: No such container:path: cc:/w/nope\n")
    nodir = b.run("cp", "cc:/w/d/f", os.path.join(tmp, "nodir", "x"))
    assert nodir.returncode == 1 and not os.path.exists(os.path.join(tmp, "nodir"))
