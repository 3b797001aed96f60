"""`start` and `delete` without Python (monitor/runtime_fast.c): the common case runs no
interpreter, and every other case reaches the Python runtime with runc's answer unchanged."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import time

import pytest

from tests.support.bundles import Runtime
from tests.support.tools import require

pytestmark = pytest.mark.root


def _execs(runtime: Runtime, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """The command, and the programs it executed (strace -f -e execve)."""
    require("strace")
    trace = os.path.join(runtime.tmp, f"trace-{time.monotonic_ns()}")
    proc = subprocess.run(["strace", "-f", "-qq", "-e", "trace=execve", "-e", "signal=none",
                           "-o", trace, runtime.binary, "--root", runtime.state_root, *args],
                          capture_output=True, timeout=60)
    with open(trace) as f:
        programs = [line.split('"')[1] for line in f if "execve(" in line and "= 0" in line]
    return proc, programs


def _python_ran(programs: list[str]) -> bool:
    return any("python" in os.path.basename(p) or p.endswith("sealexec") for p in programs)


def _created(runtime: Runtime, args: list[str], **spec_changes: object) -> str:
    spec = runtime.spec(args)
    spec.update(spec_changes)
    cid = runtime.new_id()
    runtime.cmd("create", "--bundle", runtime.bundle(spec, copy_rootfs=False), cid, check=True)
    return cid


def _cgroup_dirs(cid: str) -> list[str]:
    return glob.glob(f"/sys/fs/cgroup/{cid}") + glob.glob(f"/sys/fs/cgroup/*/{cid}")


def _wait_stopped(runtime: Runtime, cid: str) -> None:
    deadline = time.monotonic() + 10
    while runtime.state(cid)["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_start_and_delete_run_no_python(runtime: Runtime) -> None:
    cid = _created(runtime, ["true"])
    assert _cgroup_dirs(cid)
    proc, programs = _execs(runtime, "start", cid)
    assert proc.returncode == 0, proc.stderr
    assert not _python_ran(programs), programs
    _wait_stopped(runtime, cid)
    proc, programs = _execs(runtime, "delete", cid)
    assert proc.returncode == 0, proc.stderr
    assert not _python_ran(programs), programs
    assert not os.path.exists(os.path.join(runtime.state_root, cid))
    assert _cgroup_dirs(cid) == []


def test_containerd_flags_take_the_fast_path(runtime: Runtime) -> None:
    """containerd's shim passes --log and --log-format json, and `delete --force`: still no
    Python, and the log file exists afterwards as runc leaves it."""
    log = os.path.join(runtime.tmp, "log.json")
    cid = _created(runtime, ["true"])
    for args in (["start", cid], ["delete", "--force", cid]):
        if args[0] == "delete":
            _wait_stopped(runtime, cid)
        proc, programs = _execs(runtime, "--log", log, "--log-format", "json", *args)
        assert proc.returncode == 0, proc.stderr
        assert not _python_ran(programs), (args, programs)
    assert os.path.exists(log)
    assert not os.path.exists(os.path.join(runtime.state_root, cid))


@pytest.mark.parametrize("words", [
    ["start", "nosuch"], ["delete", "nosuch"], ["start", "bad/id"], ["delete", "a", "b"],
    ["start", "--bogus", "x"],
])
def test_refusals_keep_the_python_runtimes_words(runtime: Runtime, words: list[str]) -> None:
    """Cases the C part does not handle get the Python runtime's (runc's) answer, unchanged
    (the same as with the C part out of the way)."""
    env = {**os.environ, "BARQUE_RUNTIME_SLOW": "1"}
    expected = runtime.cmd(*words, env=env)
    got = runtime.cmd(*words)
    assert (got.returncode, got.stdout, got.stderr) == \
        (expected.returncode, expected.stdout, expected.stderr)
    assert got.returncode != 0


def test_a_started_container_and_a_running_delete_reach_python(runtime: Runtime) -> None:
    cid = _created(runtime, ["sleep", "100"])
    runtime.cmd("start", cid, check=True)
    again = runtime.cmd("start", cid)
    assert again.returncode == 1
    assert b"cannot start an already running container" in again.stderr
    refused = runtime.cmd("delete", cid)
    assert refused.returncode == 1
    assert b"that is not stopped: running" in refused.stderr
    assert os.path.exists(os.path.join(runtime.state_root, cid))
    runtime.cmd("delete", "--force", cid, check=True)
    assert not os.path.exists(os.path.join(runtime.state_root, cid))
    assert _cgroup_dirs(cid) == []


def test_hooks_run_through_python(runtime: Runtime) -> None:
    """poststart and poststop hooks: the commands go to the Python runtime, which runs them."""
    marks = os.path.join(runtime.tmp, "marks")
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"cat >> {marks}; echo >> {marks}"]}
    cid = _created(runtime, ["true"], hooks={"poststart": [hook], "poststop": [hook]})
    runtime.cmd("start", cid, check=True)
    _wait_stopped(runtime, cid)
    runtime.cmd("delete", cid, check=True)
    with open(marks) as f:
        states = [json.loads(line) for line in f if line.strip()]
    assert [s["status"] for s in states] == ["running", "stopped"]


def test_a_process_left_in_the_cgroup_is_killed_by_delete(runtime: Runtime) -> None:
    """No PID namespace: the init's background child outlives it in the cgroup. rmdir says
    EBUSY, and the Python runtime kills it and removes the cgroup, as runc does."""
    spec = runtime.spec(["sh", "-c", "sleep 100 & exit 0"])
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"]
                                   if n["type"] != "pid"]
    cid = runtime.new_id()
    runtime.cmd("create", "--bundle", runtime.bundle(spec, copy_rootfs=False), cid, check=True)
    runtime.cmd("start", cid, check=True)
    _wait_stopped(runtime, cid)
    left = set()
    for d in _cgroup_dirs(cid):
        with open(os.path.join(d, "cgroup.procs")) as f:
            left.update(int(p) for p in f.read().split())
    assert left, "the background sleep should still be in the cgroup"
    runtime.cmd("delete", cid, check=True)
    assert _cgroup_dirs(cid) == []
    for pid in left:
        assert not os.path.exists(f"/proc/{pid}") or _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
