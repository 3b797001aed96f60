"""Every container process gets a session of its own (issue 8, escape 2, for the runtime used
directly, as containerd, scripts and the monitor's health checks use it): runc's nsexec calls
setsid() in the process it starts, for `run`, `create` and `exec`, with or without a terminal.

A process left in its caller's session shares the caller's controlling terminal: it can open
/dev/tty and type into the admin's shell with TIOCSTI. Here the admin's terminal is a pty, its
shell runs the runtime, then reads one line: a line typed by the container would be read
instead of the test's. runc is the oracle."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil

import pytest

from tests.support.bundles import Runtime
from tests.support.tty_attack import admin_shell, build_injector, in_pty

pytestmark = pytest.mark.root



@pytest.fixture(scope="module")
def injector(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_injector(str(tmp_path_factory.mktemp("tiocsti")))


def bundle_with(rt: Runtime, injector: str, args: list[str]) -> str:
    bundle = rt.bundle(rt.spec(args))
    shutil.copy2(injector, os.path.join(bundle, "rootfs", "tiocsti"))
    return bundle


def runtime_cmd(rt: Runtime, *args: str) -> str:
    return shlex.join([rt.binary, "--root", rt.state_root, *args])


def attack_command(rt: Runtime, injector: str, mode: str) -> str:
    """The admin's command that starts /tiocsti in a container, its stdio the terminal."""
    if mode == "exec":
        cid = rt.new_id()
        rt.cmd("run", "--detach", "--bundle", bundle_with(rt, injector, ["sleep", "300"]), cid,
               check=True)
        return runtime_cmd(rt, "exec", cid, "/tiocsti")
    cid = rt.new_id()
    bundle = bundle_with(rt, injector, ["/tiocsti"])
    if mode == "run":
        return runtime_cmd(rt, "run", "--bundle", bundle, cid)
    # create + start; the process outlives `start`: wait until it has stopped (bounded).
    state = runtime_cmd(rt, "state", cid)
    return (f"{runtime_cmd(rt, 'create', '--bundle', bundle, cid)} && "
            f"{runtime_cmd(rt, 'start', cid)} && i=0 && "
            f"while [ $i -lt 100 ] && ! {state} | grep -q '\"stopped\"'; do "
            f"sleep 0.1; i=$((i+1)); done")


@pytest.mark.parametrize("mode", ["run", "create", "exec"])
def test_process_cannot_use_the_callers_terminal(rt: Runtime, injector: str, mode: str) -> None:
    out, code = in_pty(admin_shell(attack_command(rt, injector, mode)), b"COMMAND-DONE",
                       b"nothing\n")
    text = out.decode(errors="replace").replace("\r\n", "\n")
    assert code == 0, text
    # Nothing typed into the admin's shell: it reads the test's line.
    assert "GOT:nothing" in text and "GOT:PWNED" not in text, text
    assert "injected" not in text, text
    # Its own session (a session made outside the container would show as 0), no terminal.
    sid, pid = map(int, re.search(r"sid=(\d+) pid=(\d+)", text).groups())  # type: ignore[union-attr]
    assert sid == pid != 0, text
    assert "/dev/tty: No such device or address" in text, text
    # Each fd is a pipe (runc's foreground run and exec), or the terminal it was handed,
    # which is not its controlling one: TIOCSTI would need CAP_SYS_ADMIN.
    for fd in range(3):
        assert re.search(f"^fd {fd}: (Operation not permitted|Inappropriate ioctl for device)$",
                         text, re.M), text


def test_exec_interrupt_reaches_the_process_once(rt: Runtime) -> None:
    """^C on the admin's terminal goes to the runtime (the terminal's foreground process
    group), which forwards it to the process: once, not also straight from the terminal."""
    cid = rt.new_id()
    rt.cmd("run", "--detach", "--bundle", rt.bundle(rt.spec(["sleep", "300"])), cid,
           check=True)
    script = "trap 'echo GOT-INT' INT; echo READY; sleep 2; echo END"
    argv = [rt.binary, "--root", rt.state_root, "exec", cid, "sh", "-c", script]
    out, code = in_pty(argv, b"READY", b"\x03")
    text = out.decode(errors="replace")
    assert code == 0, text
    assert text.count("GOT-INT") == 1 and "END" in text, text


def test_exec_pid_file_names_a_session_leader(rt: Runtime) -> None:
    """Seen from the host: the process in --pid-file leads its own session and process group
    (what the monitor kills when a health check times out), and has no controlling terminal."""
    cid = rt.new_id()
    rt.cmd("run", "--detach", "--bundle", rt.bundle(rt.spec(["sleep", "300"])), cid,
           check=True)
    pid_file = os.path.join(rt.tmp, f"exec-{cid}.pid")
    rt.cmd("exec", "--detach", "--pid-file", pid_file, cid, "sleep", "60", check=True)
    with open(pid_file) as f:
        pid = int(f.read())
    with open(f"/proc/{pid}/stat") as f:
        _state, _ppid, pgrp, session, tty_nr = f.read().rsplit(")", 1)[1].split()[:5]
    assert int(session) == int(pgrp) == pid != os.getsid(0)
    assert tty_nr == "0"


def test_exec_runs_nothing_before_its_pid_file_is_written(runtime: Runtime) -> None:
    """The process may execve only once its pid is published: if the runtime cannot write the
    pid file (or dies first), the process never runs. (runc writes it after the start, and
    kills the process when it cannot.)"""
    cid = runtime.new_id()
    runtime.cmd("run", "--detach", "--bundle", runtime.bundle(runtime.spec(["sleep", "300"])),
                cid, check=True)
    missing = os.path.join(runtime.tmp, "no-such-dir", "exec.pid")
    proc = runtime.cmd("exec", "--pid-file", missing, cid, "touch", "/ran")
    assert proc.returncode == 255  # runc's status for a failed exec set-up
    assert runtime.cmd("exec", cid, "ls", "/ran").returncode != 0, "the process ran"
    ps = runtime.cmd("ps", "--format", "json", cid, check=True).stdout
    assert len(json.loads(ps)) == 1, ps  # its init alone: no stage of the exec was left
    dot = os.path.join(os.path.dirname(missing), ".exec.pid")  # runc's temp name
    assert f"exec failed: open {dot}: no such file or directory" in proc.stderr.decode()
