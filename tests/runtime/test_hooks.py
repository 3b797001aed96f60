"""OCI hooks run in order with the state on stdin; a failing hook fails create cleanly."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.support.bundles import Runtime

pytestmark = pytest.mark.root


def hook(log: str, name: str, code: int = 0) -> dict:
    # Hooks run in the runtime's namespace (or the container's for createContainer and
    # startContainer, which still see the host's /bin/sh and the log path before pivot).
    script = f'read -r state; echo "{name} $state" >> {log}; exit {code}'
    return {"path": "/bin/sh", "args": ["sh", "-c", script], "timeout": 10}


def test_hooks_run_in_order(runtime: Runtime) -> None:
    log = os.path.join(runtime.tmp, "hooks.log")
    spec = runtime.spec(["true"])
    # Only hooks that run in the runtime's mount namespace can write to the host log:
    # createContainer runs before pivot_root, startContainer after it (inside the container).
    spec["hooks"] = {kind: [hook(log, kind)] for kind in
                     ("prestart", "createRuntime", "createContainer", "poststart", "poststop")}
    spec["hooks"]["startContainer"] = [{"path": "/bin/sh", "args": [
        "sh", "-c", "read -r s; echo startContainer > /tmp/started"]}]
    cid = runtime.new_id()
    bundle = runtime.bundle(spec)
    runtime.cmd("create", "--bundle", bundle, cid, check=True)
    runtime.cmd("start", cid, check=True)
    deadline = time.monotonic() + 10
    while runtime.state(cid)["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.02)
    runtime.cmd("delete", cid, check=True)
    lines = open(log).read().splitlines()
    order = [line.split()[0] for line in lines]
    assert order == ["prestart", "createRuntime", "createContainer", "poststart", "poststop"]
    state = json.loads(lines[0].split(" ", 1)[1])
    assert state["id"] == cid and state["pid"] > 0 and state["bundle"] == bundle
    assert open(os.path.join(bundle, "rootfs/tmp/started")).read() == "startContainer\n"


def test_runtime_hooks_run_in_the_hosts_pid_namespace(runtime: Runtime) -> None:
    # The runtime unshares a PID namespace to fork the init into it, then must take its own
    # back: the hooks it runs afterwards (and their children) belong to the host.
    log = os.path.join(runtime.tmp, "pidns.log")
    spec = runtime.spec(["true"])
    script = f"readlink /proc/self/ns/pid >> {log}"
    spec["hooks"] = {kind: [{"path": "/bin/sh", "args": ["sh", "-c", script]}]
                     for kind in ("prestart", "poststart")}
    proc = runtime.cmd("run", "--bundle", runtime.bundle(spec), runtime.new_id())
    assert proc.returncode == 0, proc.stderr
    assert open(log).read().splitlines() == [os.readlink("/proc/self/ns/pid")] * 2


def test_failing_prestart_hook_fails_create(runtime: Runtime) -> None:
    log = os.path.join(runtime.tmp, "hooks.log")
    spec = runtime.spec(["true"])
    spec["hooks"] = {"createRuntime": [hook(log, "createRuntime", code=3)]}
    cid = runtime.new_id()
    proc = runtime.cmd("create", "--bundle", runtime.bundle(spec), cid)
    assert proc.returncode == 1
    assert b"error running hook #0: error running hook: exit status" in proc.stderr
    assert not os.path.exists(os.path.join(runtime.state_root, cid))


def test_hook_timeout(runtime: Runtime) -> None:
    spec = runtime.spec(["true"])
    spec["hooks"] = {"prestart": [{"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}]}
    start = time.monotonic()
    proc = runtime.cmd("create", "--bundle", runtime.bundle(spec), runtime.new_id())
    assert proc.returncode == 1 and b"hook ran past specified timeout of 1.0s" in proc.stderr
    assert time.monotonic() - start < 8
