"""The OCI lifecycle through the real barque-runtime binary: create, start, state, kill,
delete, list, ps, pause/resume, exec, and failures that must leave nothing behind."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.support.bundles import Runtime

pytestmark = pytest.mark.root


def wait_status(rt: Runtime, cid: str, status: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = rt.state(cid)
        if state["status"] == status or time.monotonic() > deadline:
            return state
        time.sleep(0.02)


def test_create_start_kill_delete(runtime: Runtime) -> None:
    cid = runtime.new_id()
    bundle = runtime.bundle(runtime.spec(["sleep", "600"]))
    pid_file = os.path.join(runtime.tmp, "pid")
    runtime.cmd("create", "--bundle", bundle, "--pid-file", pid_file, cid, check=True)
    state = runtime.state(cid)
    assert state["status"] == "created"
    assert state["id"] == cid and state["bundle"] == bundle
    assert int(open(pid_file).read()) == state["pid"] > 0
    runtime.cmd("start", cid, check=True)
    assert runtime.state(cid)["status"] == "running"
    again = runtime.cmd("start", cid)
    assert again.returncode != 0 and b"running" in again.stderr
    refused = runtime.cmd("delete", cid)
    assert refused.returncode != 0 and b"not stopped" in refused.stderr
    runtime.cmd("kill", cid, "KILL", check=True)
    assert wait_status(runtime, cid, "stopped")["status"] == "stopped"
    assert runtime.cmd("kill", cid, "KILL").returncode != 0
    runtime.cmd("delete", cid, check=True)
    assert runtime.cmd("state", cid).returncode != 0
    assert not os.path.exists(os.path.join(runtime.state_root, cid))


def test_delete_force_running(runtime: Runtime) -> None:
    cid = runtime.new_id()
    runtime.cmd("run", "-d", "--bundle", runtime.bundle(runtime.spec(["sleep", "600"])), cid,
                check=True)
    pid = runtime.state(cid)["pid"]
    runtime.cmd("delete", "--force", cid, check=True)
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    assert not os.path.exists(f"/sys/fs/cgroup/memory/{cid}")
    assert not os.path.exists(f"/sys/fs/cgroup/{cid}")


def test_run_foreground_exit_code_and_output(runtime: Runtime) -> None:
    proc = runtime.run(runtime.spec(["sh", "-c", "echo out; echo err >&2; exit 7"]))
    assert proc.returncode == 7
    assert proc.stdout == b"out\n"
    assert proc.stderr == b"err\n"


def test_run_removes_state(runtime: Runtime) -> None:
    proc = runtime.run(runtime.spec(["true"]))
    assert proc.returncode == 0, proc.stderr
    assert runtime.cmd("list", "-q").stdout == b""


def test_missing_executable_fails_create_cleanly(runtime: Runtime) -> None:
    cid = runtime.new_id()
    proc = runtime.cmd("create", "--bundle", runtime.bundle(runtime.spec(["nonexistent"])), cid)
    assert proc.returncode != 0
    assert b"executable file not found" in proc.stderr
    assert not os.path.exists(os.path.join(runtime.state_root, cid))
    assert not os.path.exists(f"/sys/fs/cgroup/pids/{cid}")
    assert not os.path.exists(f"/sys/fs/cgroup/{cid}")


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda s: s.pop("process"), b"process is required"),
        (lambda s: s["process"].update(args=[]), b"process.args"),
        (lambda s: s["process"].update(cwd="relative"), b"cwd"),
        (lambda s: s["linux"]["namespaces"].append({"type": "bogus"}), b"unknown namespace"),
        (lambda s: s["mounts"].append({"destination": "rel", "type": "tmpfs"}), b"not absolute"),
        (lambda s: s["root"].update(path="does-not-exist"), b"does not exist"),
    ],
)
def test_bad_config_leaves_nothing(runtime: Runtime, mutate: object, words: bytes) -> None:
    spec = runtime.spec(["true"])
    mutate(spec)  # type: ignore[operator]
    bundle = runtime.bundle(spec, copy_rootfs=False)
    if words == b"does not exist":
        spec["root"]["path"] = "does-not-exist"
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f)
    cid = runtime.new_id()
    proc = runtime.cmd("create", "--bundle", bundle, cid)
    assert proc.returncode == 1
    assert words in proc.stderr, proc.stderr
    assert not os.path.exists(os.path.join(runtime.state_root, cid))


def test_invalid_json_and_missing_config(runtime: Runtime) -> None:
    bundle = runtime.bundle(runtime.spec(), copy_rootfs=False)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        f.write("{not json")
    proc = runtime.cmd("create", "--bundle", bundle, runtime.new_id())
    assert proc.returncode == 1 and b"invalid config.json" in proc.stderr
    os.unlink(os.path.join(bundle, "config.json"))
    proc = runtime.cmd("create", "--bundle", bundle, runtime.new_id())
    assert proc.returncode == 1 and b"not found" in proc.stderr


def test_duplicate_id(runtime: Runtime) -> None:
    cid = runtime.new_id()
    bundle = runtime.bundle(runtime.spec(["sleep", "600"]))
    runtime.cmd("create", "--bundle", bundle, cid, check=True)
    proc = runtime.cmd("create", "--bundle", bundle, cid)
    assert proc.returncode == 1 and b"exists" in proc.stderr
    assert runtime.state(cid)["status"] == "created"


def test_list_formats(runtime: Runtime) -> None:
    cid = runtime.new_id()
    runtime.cmd("create", "--bundle", runtime.bundle(runtime.spec(["sleep", "600"])), cid,
                check=True)
    table = runtime.cmd("list", check=True).stdout.decode().splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert table[1].split()[0] == cid and table[1].split()[2] == "created"
    listed = json.loads(runtime.cmd("list", "--format", "json", check=True).stdout)
    assert [c["id"] for c in listed] == [cid]
    assert runtime.cmd("list", "-q", check=True).stdout.decode().split() == [cid]


def test_ps_pause_resume_exec(runtime: Runtime) -> None:
    cid = runtime.new_id()
    runtime.cmd("run", "-d", "--bundle", runtime.bundle(runtime.spec(["sleep", "600"])), cid,
                check=True)
    init = runtime.state(cid)["pid"]
    assert json.loads(runtime.cmd("ps", "--format", "json", cid, check=True).stdout) == [init]
    runtime.cmd("pause", cid, check=True)
    assert runtime.state(cid)["status"] == "paused"
    assert runtime.cmd("exec", cid, "true").returncode != 0
    runtime.cmd("resume", cid, check=True)
    assert runtime.state(cid)["status"] == "running"
    proc = runtime.cmd("exec", "--env", "FOO=bar", "--cwd", "/tmp", cid, "sh", "-c",
                       "echo $FOO $(pwd) $$; exit 5")
    assert proc.returncode == 5
    foo, cwd, pid = proc.stdout.decode().split()
    assert (foo, cwd) == ("bar", "/tmp") and int(pid) > 1
    table = runtime.cmd("ps", cid, check=True).stdout.decode().splitlines()
    assert "PID" in table[0] and any(str(init) in line for line in table[1:])


def test_exec_process_file_and_detach(runtime: Runtime) -> None:
    cid = runtime.new_id()
    runtime.cmd("run", "-d", "--bundle", runtime.bundle(runtime.spec(["sleep", "600"])), cid,
                check=True)
    process = runtime.spec(["sh", "-c", "echo hello > /tmp/from-exec"])["process"]
    path = os.path.join(runtime.tmp, "process.json")
    with open(path, "w") as f:
        json.dump(process, f)
    pid_file = os.path.join(runtime.tmp, "exec.pid")
    runtime.cmd("exec", "--process", path, "--detach", "--pid-file", pid_file, cid, check=True)
    assert int(open(pid_file).read()) > 0
    deadline = time.monotonic() + 5
    out = b""
    while time.monotonic() < deadline and out != b"hello\n":
        out = runtime.cmd("exec", cid, "cat", "/tmp/from-exec").stdout
        time.sleep(0.05)
    assert out == b"hello\n"


def test_exec_process_with_rlimits_in_a_container_without(runtime: Runtime) -> None:
    # The exec'd process applies rlimits after entering the container's mount namespace: the
    # runtime must have loaded what that needs (the resource module) for this process, not
    # only when the container's own process had rlimits.
    cid = runtime.new_id()
    spec = runtime.spec(["sleep", "600"])
    spec["process"].pop("rlimits", None)
    runtime.cmd("run", "-d", "--bundle", runtime.bundle(spec), cid, check=True)
    process = runtime.spec(["sh", "-c", "ulimit -n; ulimit -Hn"])["process"]
    process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]
    path = os.path.join(runtime.tmp, "process.json")
    with open(path, "w") as f:
        json.dump(process, f)
    proc = runtime.cmd("exec", "--process", path, cid)
    assert (proc.returncode, proc.stdout.split()) == (0, [b"123", b"456"]), proc.stderr


def test_exec_in_same_namespaces(runtime: Runtime) -> None:
    cid = runtime.new_id()
    runtime.cmd("run", "-d", "--bundle", runtime.bundle(runtime.spec(["sleep", "600"])), cid,
                check=True)
    init = runtime.state(cid)["pid"]
    proc = runtime.cmd("exec", cid, "sh", "-c",
                       "for n in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done",
                       check=True)
    want = [os.readlink(f"/proc/{init}/ns/{n}") for n in ("pid", "net", "ipc", "uts", "mnt",
                                                           "cgroup")]
    assert proc.stdout.decode().split() == want


def test_kill_all_and_signals(runtime: Runtime) -> None:
    cid = runtime.new_id()
    script = "trap 'echo got-term > /tmp/t; exit 0' TERM; while true; do sleep 0.1; done"
    runtime.cmd("run", "-d", "--bundle", runtime.bundle(runtime.spec(["sh", "-c", script])), cid,
                check=True)
    assert runtime.cmd("kill", cid, "NOPE").returncode == 1
    runtime.cmd("kill", cid, "TERM", check=True)
    assert wait_status(runtime, cid, "stopped")["status"] == "stopped"


def test_state_of_missing_container(runtime: Runtime) -> None:
    proc = runtime.cmd("state", "nope-" + runtime.prefix)
    assert proc.returncode == 1 and b"does not exist" in proc.stderr
    assert runtime.cmd("delete", "--force", "nope-" + runtime.prefix).returncode == 0


def test_unknown_flag_and_command(runtime: Runtime) -> None:
    assert b"flag provided but not defined" in runtime.cmd("create", "--bogus", "x").stderr
    assert runtime.cmd("frobnicate").returncode == 1


def test_log_json_on_failure(runtime: Runtime) -> None:
    log = os.path.join(runtime.tmp, "log.json")
    proc = runtime.cmd("--log", log, "--log-format", "json", "state", "missing")
    assert proc.returncode == 1
    lines = [json.loads(line) for line in open(log)]
    assert lines[-1]["level"] == "error" and "does not exist" in lines[-1]["msg"]
