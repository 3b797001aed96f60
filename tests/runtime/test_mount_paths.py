"""Mount destinations and the cwd are opened inside the container's root and acted on through
that fd (/proc/self/fd/N), as runc does: neither a symlink in the rootfs, nor a swap raced
through a shared volume (CVE-2021-30465), nor a host fd's magic link leads out of the root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from barque.linux import mount as m
from tests.support.bundles import Runtime, fresh_path

pytestmark = pytest.mark.root

# Swaps a directory and a symlink with renameat2(RENAME_EXCHANGE) until killed or out of time:
# the container side of a shared volume, played from the host side of the volume's directory.
_SWAPPER = r"""
import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
a, b = sys.argv[1].encode(), sys.argv[2].encode()
deadline = time.monotonic() + float(sys.argv[3])
while time.monotonic() < deadline:
    for _ in range(2000):
        libc.renameat2(-100, a, -100, b, 2)
"""


def _mounts_below(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4].encode().decode("unicode_escape") for line in f]
    return [p for p in points if p.startswith(path.rstrip("/") + "/")]


def _unmount_below(path: str) -> None:
    for _ in range(100):
        below = _mounts_below(path)
        if not below:
            return
        for point in sorted(below, key=len, reverse=True):
            try:
                m.umount(point, m.MNT_DETACH)
            except OSError:
                pass


def test_file_destination_through_absolute_symlink_stays_inside(
        runtime: Runtime, tmp_path: object, run_prefix: str) -> None:
    host_file = f"/tmp/{run_prefix}-hostfile"
    with open(host_file, "w") as f:
        f.write("host\n")
    source = os.path.join(str(tmp_path), "source")
    with open(source, "w") as f:
        f.write("bound\n")
    try:
        spec = runtime.spec(["cat", "/etc/evil"])
        spec["mounts"].append({"destination": "/etc/evil", "type": "bind", "source": source,
                               "options": ["bind", "ro"]})
        bundle = runtime.bundle(spec)
        os.symlink(host_file, os.path.join(bundle, "rootfs", "etc", "evil"))
        proc = runtime.cmd("run", "--bundle", bundle, runtime.new_id())
        assert (proc.returncode, proc.stdout) == (0, b"bound\n"), proc.stderr
        assert host_file not in _mounts_below("/tmp")
        with open(host_file) as f:
            assert f.read() == "host\n"
        assert os.path.isfile(os.path.join(bundle, "rootfs", host_file.lstrip("/")))
    finally:
        os.unlink(host_file)


def test_device_node_through_absolute_symlink_stays_inside(runtime: Runtime,
                                                          tmp_path: object) -> None:
    host_dir = os.path.join(str(tmp_path), "host-dev")
    os.makedirs(host_dir)
    spec = runtime.spec(["sh", "-c", "ls -l /evil/null2"])
    spec["linux"]["devices"] = [{"path": "/evil/null2", "type": "c", "major": 1, "minor": 3,
                                 "fileMode": 0o666, "uid": 0, "gid": 0}]
    bundle = runtime.bundle(spec)
    os.symlink(host_dir, os.path.join(bundle, "rootfs", "evil"))
    proc = runtime.cmd("run", "--bundle", bundle, runtime.new_id())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(b"c"), proc.stdout
    assert os.listdir(host_dir) == []
    assert os.path.exists(os.path.join(bundle, "rootfs", host_dir.lstrip("/"), "null2"))


def test_cwd_through_a_host_fd_is_refused(runtime: Runtime, tmp_path: object) -> None:
    # runc's CVE-2024-21626: a cwd of /proc/self/fd/N, N a host directory the runtime holds.
    host_dir = os.path.join(str(tmp_path), "host-dir")
    os.makedirs(host_dir)
    spec = runtime.spec(["sh", "-c", "echo pwned > marker"])
    spec["process"]["cwd"] = "/proc/self/fd/3"
    bundle = runtime.bundle(spec)
    proc = subprocess.run(
        ["sh", "-c", 'exec 3<"$1"; shift; exec "$@"', "sh", host_dir, runtime.binary, "--root",
         runtime.state_root, "run", "--preserve-fds", "1", "--bundle", bundle,
         runtime.new_id()], capture_output=True, timeout=60)
    assert os.listdir(host_dir) == []
    assert proc.returncode != 0 and b"cwd" in proc.stderr, proc.stderr


def test_exec_cwd_through_a_host_fd_is_refused(runtime: Runtime, tmp_path: object) -> None:
    host_dir = os.path.join(str(tmp_path), "host-dir")
    os.makedirs(host_dir)
    cid = runtime.new_id()
    runtime.cmd("run", "-d", "--bundle", runtime.bundle(runtime.spec(["sleep", "30"])), cid,
                check=True)
    proc = subprocess.run(
        ["sh", "-c", 'exec 3<"$1"; shift; exec "$@"', "sh", host_dir, runtime.binary, "--root",
         runtime.state_root, "exec", "--preserve-fds", "1", "--cwd", "/proc/self/fd/3", cid,
         "sh", "-c", "echo pwned > marker"], capture_output=True, timeout=60)
    assert os.listdir(host_dir) == []
    assert proc.returncode != 0 and b"cwd" in proc.stderr, proc.stderr


def test_tmpcopyup_copies_without_following_symlinks(runtime: Runtime, tmp_path: object) -> None:
    host_dir = os.path.join(str(tmp_path), "host-secret")
    os.makedirs(host_dir)
    with open(os.path.join(host_dir, "secret"), "w") as f:
        f.write("host secret\n")
    spec = runtime.spec(["sh", "-c", "cat /data/file; ls /data/link/; readlink /data/link"])
    spec["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                           "options": ["tmpcopyup", "size=1m"]})
    bundle = runtime.bundle(spec)
    data = fresh_path(os.path.join(bundle, "rootfs", "data"))
    os.makedirs(data)
    with open(os.path.join(data, "file"), "w") as f:
        f.write("from the image\n")
    os.symlink(host_dir, os.path.join(data, "link"))
    proc = runtime.cmd("run", "--bundle", bundle, runtime.new_id())
    assert proc.returncode in (0, 1), proc.stderr
    out = proc.stdout.decode()
    assert out.startswith("from the image\n") and "secret" not in out.split("\n")[1:-2], out
    assert out.rstrip().endswith(host_dir), out


@pytest.mark.slow
def test_mount_race_through_shared_volume(runtime: Runtime, tmp_path: object,
                                          run_prefix: str) -> None:
    """A tmpfs mounted at /vol/a/…/x while /vol/a (a shared volume's dir) is swapped with a
    symlink to a host dir: the mount must never land on the host. The host dir is a shared
    mount and the container's root propagation rshared, so a mount that escaped in the
    container's namespace shows up in the test's own mountinfo."""
    target = f"/tmp/{run_prefix}-target"
    vol = os.path.join(str(tmp_path), "vol")
    deep = "1/2/3/4/5/6/x"  # the same tree both sides: a longer window for a path resolver
    os.makedirs(os.path.join(vol, "a", deep))
    os.symlink(target, os.path.join(vol, "b"))
    os.makedirs(target)
    m.mount("tmpfs", target, "tmpfs", 0, "size=1m")
    swapper = None
    try:
        m.mount(None, target, None, m.MS_SHARED)
        os.makedirs(os.path.join(target, deep))
        spec = runtime.spec(["true"])
        spec["linux"]["rootfsPropagation"] = "rshared"
        spec["mounts"] += [
            {"destination": "/vol", "type": "bind", "source": vol, "options": ["rbind"]},
            {"destination": f"/vol/a/{deep}", "type": "tmpfs", "source": "tmpfs",
             "options": ["size=1m"]},
        ]
        bundle = runtime.bundle(spec)
        swapper = subprocess.Popen([sys.executable, "-c", _SWAPPER, os.path.join(vol, "a"),
                                    os.path.join(vol, "b"), "60"])
        deadline, tries, started, escaped = time.monotonic() + 20, 0, 0, []
        while tries < 200 and time.monotonic() < deadline:
            tries += 1
            proc = runtime.cmd("run", "--bundle", bundle, runtime.new_id(), timeout=30)
            started += proc.returncode == 0
            escaped = _mounts_below(target) + sorted(set(os.listdir(target)) - {"1"})
            if escaped:
                break
        assert not escaped, f"a mount escaped to the host after {tries} tries: {escaped}"
        assert started > 0, "no run got through: the test attacked nothing"
    finally:
        if swapper is not None:
            swapper.kill()
            swapper.wait()
        _unmount_below(target)
        m.umount(target, m.MNT_DETACH)
        shutil.rmtree(target, ignore_errors=True)
