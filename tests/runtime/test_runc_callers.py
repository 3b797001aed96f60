"""What runc's callers read, found by running dockerd (tests/runtime/test_dockerd_runtime.py)
and the runtime-tools suite (bench/runtime_tools.py) against barque-runtime: the words of a
process that cannot start and the shape of the --log lines containerd's shim parses. runc 1.1
is the oracle; its own name ("runc create failed: ", ours "barque-runtime create failed: ") is
the one thing that differs."""

from __future__ import annotations

import os
import re

import pytest

from tests.runtime.test_runc_oracle import Oracle
from tests.support.bundles import Runtime

pytestmark = pytest.mark.root

COMMANDS = ["no-such-command", "/etc", "/etc/passwd"]


def _log_line(path: str) -> str:
    with open(path) as f:
        lines = [line for line in f if "error" in line]
    assert lines, f"no error in {path}"
    # the time varies; each runtime names itself
    line = re.sub(r'"time":"[^"]*"|time="[^"]*"', "TIME", lines[-1].rstrip("\n"))
    return _unnamed(line)


def _unnamed(text: str) -> str:
    return re.sub(r"\b(runc|barque-runtime) (create|run) failed: ", r"RUNTIME \2 failed: ", text)


@pytest.mark.parametrize("fmt", ["json", "text"])
@pytest.mark.parametrize("command", COMMANDS)
def test_create_of_a_command_that_cannot_start(oracle: Oracle, command: str, fmt: str) -> None:
    """dockerd shows the runtime's --log error and maps its words to 126/127."""
    rt = oracle.rt
    bundle = rt.bundle(rt.spec([command]))
    logs = {who: os.path.join(rt.tmp, f"{who}-{fmt}.log") for who in ("runc", "barque")}
    ours = rt.cmd("--log", logs["barque"], "--log-format", fmt, "create", "--bundle", bundle,
                  rt.new_id())
    theirs = oracle.runc("--log", logs["runc"], "--log-format", fmt, "create", "--bundle",
                         bundle, oracle.runc_id())
    assert ours.returncode == theirs.returncode == 1  # Docker's 126/127 come from the words
    assert _log_line(logs["barque"]) == _log_line(logs["runc"])


@pytest.mark.parametrize("command", COMMANDS)
def test_exec_of_a_command_that_cannot_start(oracle: Oracle, command: str) -> None:
    rt = oracle.rt
    bundle = rt.bundle(rt.spec(["sleep", "60"]))
    ours_id, theirs_id = rt.new_id(), oracle.runc_id()
    rt.cmd("run", "-d", "--bundle", bundle, ours_id, check=True)
    assert oracle.runc("run", "-d", "--bundle", bundle, theirs_id).returncode == 0
    logs = {who: os.path.join(rt.tmp, f"{who}-exec.log") for who in ("runc", "barque")}
    ours = rt.cmd("--log", logs["barque"], "--log-format", "json", "exec", ours_id, command)
    theirs = oracle.runc("--log", logs["runc"], "--log-format", "json", "exec", theirs_id,
                         command)
    assert (ours.returncode, theirs.returncode) == (255, 255)
    # up to the reason: runc 1.1.5 in the pure v2 guest says "stat /etc: no such file or
    # directory" for a path that exists (test_create_of_a_command_that_cannot_start has them)
    head = f'exec failed: unable to start container process: exec: \\"{command}\\": '
    assert head in _log_line(logs["runc"])
    assert _log_line(logs["barque"]).partition(head)[:2] == _log_line(
        logs["runc"]).partition(head)[:2]


def test_create_and_run_name_themselves_as_runc(oracle: Oracle) -> None:
    """runc's "runc create failed: ..." / "runc run failed: ...", on stderr alone (with --log
    too) and in the log: dockerd quotes the log line ("OCI runtime create failed: runc create
    failed: ..."), so ours says "barque-runtime create failed: ..." there."""
    rt = oracle.rt
    bundle = rt.bundle(rt.spec(["no-such-command"]))
    for command in ("create", "run"):
        logs = {who: os.path.join(rt.tmp, f"{who}-{command}.log") for who in ("runc", "barque")}
        ours = rt.cmd("--log", logs["barque"], "--log-format", "json", command, "--bundle",
                      bundle, rt.new_id())
        theirs = oracle.runc("--log", logs["runc"], "--log-format", "json", command,
                             "--bundle", bundle, oracle.runc_id())
        words = (f"{command} failed: unable to start container process: exec: "
                 '"no-such-command": executable file not found in $PATH\n')
        assert theirs.stderr.decode() == f"runc {words}"
        assert ours.stderr.decode() == f"barque-runtime {words}"
        assert _log_line(logs["barque"]) == _log_line(logs["runc"])
        assert f"barque-runtime {command} failed: " in open(logs["barque"]).read()


@pytest.mark.parametrize("command", ["", "not-executable", "a-directory"])
def test_path_lookup_passes_over_what_is_not_executable(oracle: Oracle, command: str) -> None:
    """Go's exec.LookPath (runc's): in $PATH, a directory, a file without x bits and ""
    (the directory itself) are passed over, so the command is not found (Docker: 127), where
    a path given with a slash is "permission denied" (126)."""
    rt = oracle.rt
    bundle = rt.bundle(rt.spec([command]))
    with open(os.path.join(bundle, "rootfs", "bin", "not-executable"), "w") as f:
        f.write("echo hi\n")
    os.mkdir(os.path.join(bundle, "rootfs", "bin", "a-directory"))
    logs = {who: os.path.join(rt.tmp, f"{who}-path.log") for who in ("runc", "barque")}
    ours = rt.cmd("--log", logs["barque"], "--log-format", "json", "create", "--bundle", bundle,
                  rt.new_id())
    theirs = oracle.runc("--log", logs["runc"], "--log-format", "json", "create", "--bundle",
                         bundle, oracle.runc_id())
    assert ours.returncode == theirs.returncode == 1
    assert f'exec: \\"{command}\\": executable file not found in $PATH' in _log_line(logs["runc"])
    assert _log_line(logs["barque"]) == _log_line(logs["runc"])
    assert _unnamed(ours.stderr.decode()) == _unnamed(theirs.stderr.decode())


def test_run_error_words(runtime: Runtime) -> None:
    """Without --log the error goes to stderr, in the same words."""
    proc = runtime.run(runtime.spec(["/etc"]))
    assert b'unable to start container process: exec: "/etc": permission denied' in proc.stderr


def _words(stderr: bytes) -> str:
    """The error's words from either runtime's stderr, its name and the file's words left
    out (runc: "openat2 PATH: no such file or directory"; barque: "cannot open PATH ...")."""
    text = stderr.decode()
    m = re.search(r"(unable to start container process: .*?procHooks process: )", text)
    return m.group(1) if m else text


def test_a_cgroup_file_the_host_lacks(oracle: Oracle) -> None:
    """runtime-tools' linux_cgroups_blkio: a weight where the kernel has no blkio.weight (no
    CFQ/BFQ) fails in runc's words, not with a Python exception's name."""
    rt = oracle.rt
    spec = rt.spec(["true"])
    spec["linux"]["resources"] = {"blockIO": {"weight": 500}}
    bundle = rt.bundle(spec)
    theirs = oracle.runc("run", "--bundle", bundle, oracle.runc_id())
    ours = rt.cmd("run", "--bundle", bundle, rt.new_id())
    assert (ours.returncode == 0) == (theirs.returncode == 0), (ours.stderr, theirs.stderr)
    if theirs.returncode:  # this host lacks the file (hybrid v1 without CFQ here)
        assert b"CgroupError" not in ours.stderr
        assert _words(ours.stderr) == _words(theirs.stderr)


def test_update_of_a_cgroup_file_the_host_lacks(oracle: Oracle) -> None:
    rt = oracle.rt
    bundle = rt.bundle(rt.spec(["sleep", "60"]))
    ours_id, theirs_id = rt.new_id(), oracle.runc_id()
    rt.cmd("run", "-d", "--bundle", bundle, ours_id, check=True)
    assert oracle.runc("run", "-d", "--bundle", bundle, theirs_id).returncode == 0
    ours = rt.cmd("update", "--blkio-weight", "300", ours_id)
    theirs = oracle.runc("update", "--blkio-weight", "300", theirs_id)
    assert ours.returncode == theirs.returncode, (ours.stderr, theirs.stderr)
    assert b"CgroupError" not in ours.stderr and b"Traceback" not in ours.stderr


def test_a_cwd_only_root_may_enter(oracle: Oracle) -> None:
    """`docker run -u 1000 -w /root`: runc changes into the cwd as root, before the user is
    set, so the process starts there though it may not list it."""
    rt = oracle.rt
    spec = rt.spec(["sh", "-c", "pwd; ls >/dev/null 2>&1 || echo unreadable"])
    spec["process"]["user"] = {"uid": 1000, "gid": 1000}
    spec["process"]["cwd"] = "/private"
    bundle = rt.bundle(spec)
    os.mkdir(os.path.join(bundle, "rootfs", "private"), 0o700)
    ours = rt.cmd("run", "--bundle", bundle, rt.new_id())
    theirs = oracle.runc("run", "--bundle", bundle, oracle.runc_id())
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout) == (
        0, b"/private\nunreadable\n"), (ours.stderr, theirs.stderr)


def test_a_missing_cwd_is_made_for_any_user(oracle: Oracle) -> None:
    """runc makes a missing cwd (as root, 0755) whoever the process's user is."""
    rt = oracle.rt
    spec = rt.spec(["sh", "-c", "pwd; stat -c '%u %a' ."])
    spec["process"]["user"] = {"uid": 1000, "gid": 1000}
    spec["process"]["cwd"] = "/no/such/dir"
    bundle = rt.bundle(spec)
    ours = rt.cmd("run", "--bundle", bundle, rt.new_id())
    theirs = oracle.runc("run", "--bundle", bundle, oracle.runc_id())
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout) == (
        0, b"/no/such/dir\n0 755\n"), (ours.stderr, theirs.stderr)

