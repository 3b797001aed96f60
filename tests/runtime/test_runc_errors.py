"""runc 1.1's exit codes, messages and checks, with runc itself as the oracle: each test runs
the same bundle and command under barque-runtime and under runc (its own state root)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.bundles import Runtime

pytestmark = pytest.mark.root

CGROUP_ROOT = "/sys/fs/cgroup"
PURE_V2 = os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers"))


def _detached(rt: Runtime, spec: dict | None = None) -> str:
    cid = rt.new_id()
    rt.cmd("run", "--detach", "--bundle", rt.bundle(spec or rt.spec(["sleep", "300"])), cid,
           check=True, timeout=30)
    return cid


def test_exec_with_a_bad_pid_file_directory(rt: Runtime) -> None:
    cid = _detached(rt)
    missing = os.path.join(rt.tmp, "no-such-dir", "exec.pid")
    proc = rt.cmd("exec", "--pid-file", missing, cid, "true", timeout=30)
    err = proc.stderr.decode()
    assert proc.returncode == 255, err
    dot = os.path.join(rt.tmp, "no-such-dir", ".exec.pid")
    assert f"exec failed: open {dot}: no such file or directory" in err
    assert "Traceback" not in err and "FileNotFoundError" not in err


def test_create_with_a_bad_pid_file_directory(rt: Runtime) -> None:
    cid = rt.new_id()
    missing = os.path.join(rt.tmp, "no-such-dir", "init.pid")
    proc = rt.cmd("create", "--pid-file", missing, "--bundle", rt.bundle(rt.spec(["true"])),
                  cid, timeout=30)
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert f"open {os.path.join(rt.tmp, 'no-such-dir', '.init.pid')}: no such file" in err
    assert "FileNotFoundError" not in err


def test_exec_into_a_paused_container(rt: Runtime) -> None:
    cid = _detached(rt)
    rt.cmd("pause", cid, check=True)
    try:
        proc = rt.cmd("exec", cid, "true", timeout=30)
        assert proc.returncode == 255, proc.stderr
        assert ("exec failed: cannot exec in a paused container (use --ignore-paused to "
                "override)") in proc.stderr.decode()
        # --ignore-paused: the process joins the frozen cgroup and runs once it is thawed
        resumer = threading.Timer(1.0, lambda: rt.cmd("resume", cid, check=True))
        resumer.start()
        proc = rt.cmd("exec", "--ignore-paused", cid, "echo", "ran", timeout=30)
        resumer.join()
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == b"ran\n"
    finally:
        rt.cmd("resume", cid)


@pytest.mark.skipif(PURE_V2, reason="unified resources are valid on a pure cgroup v2 host")
def test_unified_resources_on_a_cgroup_v1_host(rt: Runtime) -> None:
    spec = rt.spec(["true"])
    spec["linux"].setdefault("resources", {})["unified"] = {"pids.max": "10"}
    cid = rt.new_id()
    proc = rt.cmd("run", "--detach", "--bundle", rt.bundle(spec), cid, timeout=30)
    assert proc.returncode == 1
    assert "invalid configuration: cannot use unified on cgroup v1" in proc.stderr.decode()


@pytest.mark.parametrize("hook, words", [
    ({"path": "/bin/sh", "args": ["sh", "-c", "echo bad system call >&2; exit 3"]},
     "error running hook #0: error running hook: exit status 3, stdout: , "
     "stderr: bad system call"),
    ({"path": "/nonexistent/hook"},
     "error running hook #0: fork/exec /nonexistent/hook: no such file or directory"),
])
def test_failing_hook(rt: Runtime, hook: dict, words: str) -> None:
    spec = rt.spec(["true"])
    spec["hooks"] = {"prestart": [hook]}
    cid = rt.new_id()
    proc = rt.cmd("run", "--detach", "--bundle", rt.bundle(spec), cid, timeout=30)
    assert proc.returncode == 1
    assert words in proc.stderr.decode()


def _cgroup_dirs(name: str) -> list[str]:
    """The directories of cgroup /NAME in every hierarchy (one on a pure v2 host)."""
    if PURE_V2:
        return [os.path.join(CGROUP_ROOT, name)]
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("cgroup", "cgroup2") and fields[4].startswith(CGROUP_ROOT):
                out.append(os.path.join(fields[4], name))
    return out


@pytest.fixture
def own_cgroup(run_prefix: str, rt: Runtime) -> Iterator[str]:
    """A cgroup made before the container, at the path its config names; removed after."""
    name = f"{run_prefix}-pre-{os.path.basename(rt.binary)}-{os.getpid()}"
    made = []
    for d in _cgroup_dirs(name):
        os.makedirs(d, exist_ok=True)
        made.append(d)
        parent = os.path.dirname(d)
        for f in ("cpuset.cpus", "cpuset.mems"):  # an empty v1 cpuset takes no task
            # (v2's root has no such file, and an empty one in a child inherits)
            if os.path.exists(os.path.join(d, f)) and os.path.exists(os.path.join(parent, f)):
                with open(os.path.join(parent, f)) as src, open(os.path.join(d, f), "w") as dst:
                    dst.write(src.read())
    yield name
    for d in made:
        for f, value in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
            if os.path.exists(os.path.join(d, f)):
                with open(os.path.join(d, f), "w") as out:
                    out.write(value)
    time.sleep(0.1)
    for d in made:
        if os.path.isdir(d):
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    for pid in f.read().split():
                        try:
                            os.kill(int(pid), 9)
                        except ProcessLookupError:
                            pass
            except OSError:
                pass
    time.sleep(0.1)
    for d in made:
        if os.path.isdir(d):
            os.rmdir(d)


def _freeze(name: str) -> None:
    for d in _cgroup_dirs(name):
        for f, value in (("freezer.state", "FROZEN"), ("cgroup.freeze", "1")):
            if os.path.exists(os.path.join(d, f)):
                with open(os.path.join(d, f), "w") as out:
                    out.write(value)
                return
    raise AssertionError("no freezer for the test's cgroup")


@pytest.mark.parametrize("command", ["run", "create"])
def test_a_frozen_cgroup_is_refused(rt: Runtime, own_cgroup: str, command: str) -> None:
    """Into a frozen cgroup the init would freeze mid set-up and the runtime wait forever."""
    _freeze(own_cgroup)
    spec = rt.spec(["sleep", "300"])
    spec["linux"]["cgroupsPath"] = "/" + own_cgroup
    cid = rt.new_id()
    args = ["--detach"] if command == "run" else []
    try:
        proc = rt.cmd(command, *args, "--bundle", rt.bundle(spec), cid, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{command} into a frozen cgroup hangs")
    assert proc.returncode == 1
    assert "container's cgroup unexpectedly frozen" in proc.stderr.decode()


def test_a_cgroup_with_processes_gets_a_warning(rt: Runtime, own_cgroup: str) -> None:
    sleeper = subprocess.Popen(["sleep", "300"])
    try:
        for d in _cgroup_dirs(own_cgroup):
            try:
                with open(os.path.join(d, "cgroup.procs"), "w") as f:
                    f.write(str(sleeper.pid))
            except OSError:
                pass  # a hierarchy that refuses it (cpuset on some hosts): the others do
        spec = rt.spec(["sleep", "300"])
        spec["linux"]["cgroupsPath"] = "/" + own_cgroup
        cid = rt.new_id()
        proc = rt.cmd("run", "--detach", "--bundle", rt.bundle(spec), cid, timeout=30)
        err = proc.stderr.decode()
        assert proc.returncode == 0, err
        assert "container's cgroup is not empty: 1 process(es) found" in err
        rt.cmd("delete", "--force", cid)
    finally:
        sleeper.kill()
        sleeper.wait()


def _container_cgroup_dirs(cid: str, controllers: tuple[str, ...]) -> list[str]:
    if PURE_V2:
        return [os.path.join(CGROUP_ROOT, cid)]
    return [os.path.join(CGROUP_ROOT, c, cid) for c in controllers]


def test_exec_into_a_sub_cgroup(rt: Runtime) -> None:
    spec = rt.spec(["sleep", "300"])
    cid = rt.new_id()
    spec["linux"]["cgroupsPath"] = "/" + cid
    rt.cmd("run", "--detach", "--bundle", rt.bundle(spec), cid, check=True, timeout=30)
    subs = [os.path.join(d, "sub") for d in _container_cgroup_dirs(cid, ("memory", "pids"))]
    for d in subs:
        os.mkdir(d)
    try:
        arg = "sub" if PURE_V2 else "memory,pids:sub"
        proc = rt.cmd("exec", "--cgroup", arg, cid, "cat", "/proc/self/cgroup", timeout=30)
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.decode().splitlines()
        # Paths as the process sees them: relative to the container's cgroup with a cgroup
        # namespace (runc's default spec has one on a pure v2 host only), else the host's.
        own = "" if {"type": "cgroup"} in spec["linux"]["namespaces"] else "/" + cid
        if PURE_V2:
            assert lines == [f"0::{own}/sub"]
        else:
            assert any(ln.endswith(f":memory:{own}/sub") for ln in lines), lines
            assert any(ln.endswith(f":pids:{own}/sub") for ln in lines), lines
            assert any(ln.endswith(f":cpu:{own or '/'}") for ln in lines), lines  # its own
        bad = {"memory:nosuch" if not PURE_V2 else "nosuch":
               "error adding pid", "a:b:c": "invalid --cgroup argument: a:b:c"}
        if not PURE_V2:
            bad["bogus:sub"] = "unknown controller bogus in SubCgroupPaths"
            bad["sub"] = ""  # accepted alone: every hierarchy, and cpu has no "sub"
        for arg, words in bad.items():
            proc = rt.cmd("exec", "--cgroup", arg, cid, "true", timeout=30)
            assert proc.returncode == 255, (arg, proc.stderr)
            assert "exec failed: " in proc.stderr.decode()
            assert words in proc.stderr.decode(), (arg, proc.stderr)
        proc = rt.cmd("exec", "--cgroup", "memory:sub", "--cgroup", "sub", cid, "true")
        assert proc.returncode == 255
        assert "invalid --cgroup argument: sub (missing <controller>: prefix)" in \
            proc.stderr.decode()
    finally:
        for d in subs:
            os.rmdir(d)
        rt.cmd("delete", "--force", cid)


def test_debug_logs_each_set_up_step(rt: Runtime) -> None:
    """runc --debug logs its set-up (nsexec stages, namespaces, cgroups, init): one line per
    step, not only the command line."""
    log = os.path.join(rt.tmp, f"debug-{os.path.basename(rt.binary)}.log")
    cid = rt.new_id()
    rt.cmd("--log", log, "--debug", "run", "--detach", "--bundle",
           rt.bundle(rt.spec(["sleep", "300"])), cid, check=True, timeout=30)
    rt.cmd("--log", log, "--debug", "exec", cid, "true", check=True, timeout=30)
    rt.cmd("delete", "--force", cid)
    with open(log) as f:
        lines = [ln for ln in f if "level=debug" in ln]
    assert len(lines) >= 10, lines
    text = "".join(lines)
    assert "cgroup" in text and "stage-1" in text, text
    if os.path.basename(rt.binary) != "runc":
        for step in ("loading the bundle", "into its cgroup", "root filesystem", "pivot_root",
                     "seccomp", "exec fifo", "joined the namespaces"):
            assert step in text, (step, text)
