"""The container tools: exec, cp, diff, commit, top, stats, update, and the system commands."""

from __future__ import annotations

import json
import os

import pytest

from tests.cli.conftest import Barque, inspect_container, ok
from tests.support.marks import needs_busybox

pytestmark = [
    pytest.mark.root,
    needs_busybox,
]


def test_exec(cleanup: Barque) -> None:
    b = cleanup
    ok(b.run("run", "-d", "--name", "box", "-e", "A=1", "busybox", "sleep", "300"))
    assert ok(b.run("exec", "box", "sh", "-c", "echo $A $B; pwd; id -u")) == "1\n/\n0\n"
    out = ok(b.run("exec", "-e", "B=2", "-w", "/tmp", "-u", "nobody", "box", "sh", "-c",
                    "echo $A $B; pwd; id -u"))
    assert out == "1 2\n/tmp\n65534\n"
    assert b.run("exec", "box", "sh", "-c", "exit 9").returncode == 9
    assert b.run("exec", "box", "no-such-command").returncode == 126  # Docker's exec: 126
    piped = b.run("exec", "-i", "box", "cat", input="through\n")
    assert piped.stdout == "through\n"
    ok(b.run("stop", "-t", "0", "box"))
    stopped = b.run("exec", "box", "true")
    assert stopped.returncode == 1 and "is not running" in stopped.stderr


def test_cp_round_trip_and_diff(cleanup: Barque, tmp_path: str) -> None:
    b = cleanup
    src = os.path.join(str(tmp_path), "tree")
    os.makedirs(os.path.join(src, "sub"))
    with open(os.path.join(src, "sub", "file"), "w") as f:
        f.write("content\n")
    os.symlink("sub/file", os.path.join(src, "link"))
    ok(b.run("create", "--name", "cpbox", "busybox", "sh", "-c",
              "cat /data/sub/file; rm /etc/group"))
    ok(b.run("cp", src, "cpbox:/data"))  # /data does not exist: it becomes the copy
    assert ok(b.run("start", "-a", "cpbox")) == "content\n"
    out = os.path.join(str(tmp_path), "back")
    ok(b.run("cp", "cpbox:/data", out))
    assert open(os.path.join(out, "sub", "file")).read() == "content\n"
    assert os.readlink(os.path.join(out, "link")) == "sub/file"
    diff = ok(b.run("diff", "cpbox")).splitlines()
    assert "A /data" in diff and "A /data/sub/file" in diff and "D /etc/group" in diff
    # A symlink the container plants cannot make `cp` write outside it.
    ok(b.run("run", "--name", "evil", "busybox", "ln", "-sfn", "/", "/escape"))
    payload = os.path.join(str(tmp_path), "payload")
    with open(payload, "w") as f:
        f.write("x")
    unique = f"/tmp/{os.path.basename(os.path.dirname(b.root))}-victim"
    ok(b.run("cp", payload, f"evil:/escape{unique}"))  # lands in the container's /tmp
    assert not os.path.exists(unique)
    assert ok(b.run("start", "-a", "evil")) == ""  # still a container that works
    ok(b.run("cp", f"evil:{unique}", os.path.join(str(tmp_path), "got")))
    assert open(os.path.join(str(tmp_path), "got")).read() == "x"


def test_cp_tar_from_stdin(cleanup: Barque) -> None:
    """`cp - CONTAINER:DIR`: the tar on stdin extracted into DIR (what the API's PUT
    /containers/{id}/archive does, through the same engine function)."""
    import io
    import tarfile

    b = cleanup
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("d/f")
        info.size, info.uid = 3, 4321
        tar.addfile(info, io.BytesIO(b"ab\n"))
    ok(b.run("create", "--name", "tarbox", "busybox", "stat", "-c", "%u %n", "/root/d/f"))
    ok(b.run("cp", "-", "tarbox:/root", input=buf.getvalue().decode()))
    assert ok(b.run("start", "-a", "tarbox")) == "0 /root/d/f\n"  # the container's root
    out = b.run("cp", "-", "tarbox:/etc/passwd", input=buf.getvalue().decode())
    assert (out.returncode, out.stderr) == (
        1, 'destination "tarbox:/etc/passwd" must be a directory\n')  # the docker CLI's check


def test_commit_then_run_shows_the_change(cleanup: Barque) -> None:
    b = cleanup
    ok(b.run("run", "--name", "base", "busybox", "sh", "-c", "echo baked > /baked"))
    image_id = ok(b.run("commit", "-m", "bake", "-c", "ENV BAKED=yes", "base",
                         "baked:v1")).strip()
    assert image_id.startswith("sha256:")
    out = ok(b.run("run", "--rm", "baked:v1", "sh", "-c", "cat /baked; echo $BAKED"))
    assert out == "baked\nyes\n"
    history = ok(b.run("history", "--format", "{{.Comment}}", "baked:v1")).splitlines()
    assert history[0] == "bake"


def test_top_stats_update(cleanup: Barque) -> None:
    b = cleanup
    ok(b.run("run", "-d", "--name", "busy", "-m", "64m", "busybox", "sleep", "300"))
    top = ok(b.run("top", "busy")).splitlines()
    assert top[0].split()[:3] == ["UID", "PID", "PPID"] and "sleep 300" in top[1]
    stats = ok(b.run("stats", "--no-stream", "busy")).splitlines()
    assert stats[0].split()[:4] == ["CONTAINER", "ID", "NAME", "CPU"]
    assert "/ 64MiB" in stats[1] and stats[1].split()[-1] == "1"
    ok(b.run("update", "--memory", "128m", "--pids-limit", "50", "busy"))
    assert inspect_container(b, "busy")["HostConfig"]["Memory"] == 128 << 20
    assert "/ 128MiB" in ok(b.run("stats", "--no-stream", "--format", "{{.MemUsage}}",
                                   "busy"))
    pids = b.run("exec", "busy", "cat", "/sys/fs/cgroup/pids/pids.max")
    if pids.returncode == 0:  # cgroup v1: the container sees its own pids controller
        assert pids.stdout == "50\n"


def test_system_commands(cleanup: Barque) -> None:
    b = cleanup
    ok(b.run("run", "--name", "gone", "-v", "/anon", "busybox", "true"))
    info = json.loads(ok(b.run("info", "--format", "{{json .}}")))
    assert info["Containers"] == 1 and info["ContainersStopped"] == 1 and info["Images"] == 1
    df = ok(b.run("system", "df")).splitlines()
    assert [line.split()[0] for line in df] == ["TYPE", "Images", "Containers", "Local",
                                                "Build"]
    assert ok(b.run("version", "--format", "{{.Server.Os}}")) == "linux\n"
    pruned = ok(b.run("system", "prune", "-f", "--volumes"))
    assert "Deleted Containers:" in pruned and "Deleted Volumes:" in pruned
    assert ok(b.run("ps", "-aq")) == "" and ok(b.run("volume", "ls", "-q")) == ""
