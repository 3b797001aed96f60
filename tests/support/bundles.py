"""Building busybox OCI bundles and driving barque-runtime against them, for tests."""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid

from barque.runtime.spec import default_spec


def busybox_path() -> str:
    return shutil.which("busybox") or "/bin/busybox"


def make_busybox_rootfs(root: str) -> str:
    """A minimal rootfs: the static busybox and a symlink per applet."""
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "proc", "sys", "dev", "root",
              "home/user"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    shutil.copy2(busybox_path(), os.path.join(root, "bin", "busybox"))
    applets = subprocess.run([busybox_path(), "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        link = os.path.join(root, applet)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if not os.path.lexists(link):
            os.symlink("/bin/busybox", link)
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n"
                "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    with open(os.path.join(root, "etc", "group"), "w") as f:
        f.write("root:x:0:\ntty:x:5:\nuser:x:1000:\nnogroup:x:65534:\n")
    os.chown(os.path.join(root, "home/user"), 1000, 1000)
    return root


class Runtime:
    """One test's state root and bundles; cleans every container it made."""

    def __init__(self, tmp: str, rootfs: str, prefix: str) -> None:
        self.tmp = tmp
        self.rootfs = rootfs
        self.prefix = prefix
        self.state_root = os.path.join(tmp, "state")
        self.ids: list[str] = []
        from tests.conftest import runtime_binary

        self.binary = runtime_binary()

    def new_id(self) -> str:
        cid = f"{self.prefix}-{uuid.uuid4().hex[:8]}"
        self.ids.append(cid)
        return cid

    def spec(self, args: list[str] | None = None, terminal: bool = False) -> dict:
        spec = default_spec()
        spec["process"]["terminal"] = terminal
        spec["process"]["args"] = args or ["true"]
        spec["root"]["readonly"] = False
        return spec

    def bundle(self, spec: dict, copy_rootfs: bool = True) -> str:
        path = os.path.join(self.tmp, f"bundle-{uuid.uuid4().hex[:8]}")
        os.makedirs(path)
        spec = copy.deepcopy(spec)
        if copy_rootfs:
            subprocess.run(["cp", "-a", self.rootfs, os.path.join(path, "rootfs")], check=True)
            spec["root"]["path"] = "rootfs"
        else:
            spec["root"]["path"] = self.rootfs
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(spec, f)
        return path

    def cmd(self, *args: str, check: bool = False, timeout: float = 60,
            input: bytes | None = None, **kw: object) -> subprocess.CompletedProcess:
        """Run barque-runtime; output goes through files, not pipes, because a detached
        container inherits them and would hold a pipe open long after the command ended."""
        import tempfile

        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run([self.binary, "--root", self.state_root, *args],
                                  stdout=out, stderr=err, timeout=timeout, input=input,
                                  **kw)  # type: ignore[call-overload]
            out.seek(0)
            err.seek(0)
            proc.stdout, proc.stderr = out.read(), err.read()
        if check and proc.returncode != 0:
            raise AssertionError(f"barque-runtime {' '.join(args)} failed "
                                 f"({proc.returncode}): {proc.stderr.decode()}")
        return proc

    def run(self, spec: dict, **kw: object) -> subprocess.CompletedProcess:
        """`run` a container in the foreground; returns the completed process."""
        cid = self.new_id()
        return self.cmd("run", "--bundle", self.bundle(spec), cid, **kw)

    def output(self, args: list[str], **spec_changes: object) -> str:
        spec = self.spec(args)
        spec.update(spec_changes)
        proc = self.run(spec)
        assert proc.returncode == 0, proc.stderr.decode()
        return proc.stdout.decode()

    def state(self, cid: str) -> dict:
        return json.loads(self.cmd("state", cid, check=True).stdout)

    def cleanup(self) -> None:
        for cid in self.ids:
            if os.path.exists(os.path.join(self.state_root, cid)):
                self.cmd("delete", "--force", cid)
        # Anything still holding a test mount (should be nothing) is a test failure elsewhere.
        for cid in self.ids:
            _kill_cgroup_leftovers(cid)


def _kill_cgroup_leftovers(cid: str) -> None:
    """Containers without a cgroupsPath live at /<id> in each hierarchy: check nothing is left."""
    import glob

    for path in glob.glob(f"/sys/fs/cgroup/{cid}") + glob.glob(f"/sys/fs/cgroup/*/{cid}"):
        try:
            with open(os.path.join(path, "cgroup.procs")) as f:
                for pid in f.read().split():
                    os.kill(int(pid), signal.SIGKILL)
            os.rmdir(path)
        except OSError:
            pass


if __name__ == "__main__":
    print(make_busybox_rootfs(sys.argv[1]))


def fresh_path(path: str) -> str:
    """`path` in a bundle's own rootfs copy, with whatever is there removed: tests that share
    the session's rootfs without copying it (copy_rootfs=False) leave mount points in it."""
    import shutil

    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)
    return path


def assert_refused(runtime: Runtime, spec: dict, words: str) -> None:
    """`barque-runtime run` of spec fails with `words`, no traceback, and makes nothing."""
    cid = runtime.new_id()
    proc = runtime.cmd("run", "--bundle", runtime.bundle(spec), cid)
    err = proc.stderr.decode()
    assert proc.returncode != 0, err
    assert words in err, err
    assert "Traceback" not in err
    assert not os.path.exists(os.path.join(runtime.state_root, cid))  # nothing was made
