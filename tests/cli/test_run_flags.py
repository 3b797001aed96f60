"""`run` flags and container commands not covered elsewhere, each checked from inside the
container or through `inspect`, as a Docker user would."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.cli.conftest import Barque, inspect_container, ok, until
from tests.support.marks import needs_busybox

pytestmark = [
    pytest.mark.root,
    needs_busybox,
]


def test_process_flags(barque: Barque, tmp_path: str) -> None:
    b = barque
    env_file = os.path.join(str(tmp_path), "env")
    with open(env_file, "w") as f:
        f.write("# a comment\nFROM_FILE=yes\n")
    script = ('echo "$FROM_FILE"; ulimit -n; grep CapEff /proc/self/status; '
              'grep -c box.example /etc/hosts; cat /proc/self/cgroup >/dev/null')
    out = ok(b.run("run", "--rm", "--env-file", env_file, "--ulimit", "nofile=512:512",
                   "--cap-drop", "ALL", "--cap-add", "KILL", "--add-host",
                   "box.example:10.1.2.3", "--entrypoint", "sh", "busybox", "-c", script))
    lines = out.splitlines()
    assert lines[0] == "yes" and lines[1] == "512"
    assert int(lines[2].split()[1], 16) == 1 << 5  # CAP_KILL alone
    assert lines[3] == "1"
    privileged = ok(b.run("run", "--rm", "--privileged", "busybox", "grep", "CapEff",
                          "/proc/self/status"))
    assert int(privileged.split()[1], 16) > 0xA80425FB  # more than Docker's 14


def test_network_modes(barque: Barque) -> None:
    b = barque
    host = ok(b.run("run", "--rm", "--network", "host", "busybox", "ls", "/sys/class/net"))
    assert set(host.split()) == set(os.listdir("/sys/class/net"))
    ok(b.run("run", "-d", "--name", "netowner", "busybox", "sleep", "300"))
    pid = inspect_container(b, "netowner")["State"]["Pid"]
    joined = ok(b.run("run", "--rm", "--network", "container:netowner", "busybox",
                      "readlink", "/proc/self/ns/net"))
    assert joined.strip() == os.readlink(f"/proc/{pid}/ns/net")


def test_device_cpuset_and_pids_limit(barque: Barque) -> None:
    b = barque
    out = ok(b.run("run", "--rm", "--device", "/dev/null:/dev/mynull", "--cpuset-cpus", "0",
                   "busybox", "sh", "-c", "echo hi > /dev/mynull && echo ok; "
                   "grep Cpus_allowed_list /proc/self/status"))
    assert out.splitlines()[0] == "ok" and out.split()[-1] == "0"
    # A bounded "fork bomb": a subshell starts 40 background sleeps under a limit of 10
    # processes (ash gives up at its first failed fork); the count is then read with shell
    # builtins only (no fork is left to spare).
    bomb = ("(i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); done) 2>/dev/null; "
            "for f in /sys/fs/cgroup/pids/pids.current /sys/fs/cgroup/pids.current; do "
            "[ -r $f ] && read n < $f && echo $n; done; exit 0")
    count = ok(b.run("run", "--rm", "--pids-limit", "10", "busybox", "sh", "-c", bomb,
                     timeout=60))
    assert 1 < int(count.split()[0]) <= 10


def test_stop_signal_and_timeout(barque: Barque) -> None:
    b = barque
    script = "trap 'echo got-usr1; exit 0' USR1; while :; do sleep 0.1; done"
    ok(b.run("run", "-d", "--name", "sig", "--stop-signal", "USR1", "busybox", "sh", "-c",
             script))
    ok(b.run("stop", "sig"))
    assert inspect_container(b, "sig")["State"]["ExitCode"] == 0
    assert "got-usr1" in ok(b.run("logs", "sig"))
    ok(b.run("run", "-d", "--name", "slow", "--stop-timeout", "1", "busybox", "sleep", "300"))
    started = time.monotonic()
    ok(b.run("stop", "slow"))
    assert time.monotonic() - started < 10
    assert inspect_container(b, "slow")["State"]["ExitCode"] == 137


def test_restart_attach_and_exec_tty(barque: Barque) -> None:
    b = barque
    ok(b.run("run", "-d", "--name", "svc", "busybox", "sh", "-c",
             "echo started; while :; do sleep 0.1; done"))
    first = inspect_container(b, "svc")["State"]["StartedAt"]
    assert ok(b.run("restart", "-t", "0", "svc")) == "svc\n"
    state = inspect_container(b, "svc")["State"]
    assert state["Running"] and state["StartedAt"] != first
    until(lambda: ok(b.run("logs", "svc")) == "started\nstarted\n")
    # attach: output from now on; the container's end ends it with the container's status.
    proc = subprocess.Popen(b.argv("attach", "svc"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    time.sleep(0.5)
    ok(b.run("exec", "svc", "sh", "-c", "echo from-exec > /proc/1/fd/1"))
    ok(b.run("kill", "svc"))
    out, _ = proc.communicate(timeout=30)
    assert b"from-exec" in out and proc.returncode == 137
    ok(b.run("start", "svc"))
    tty = ok(b.run("exec", "-t", "svc", "sh", "-c", "tty; stty size"))
    assert tty.startswith("/dev/pts/") and len(tty.splitlines()) == 2


def test_logs_since_until(barque: Barque) -> None:
    b = barque
    ok(b.run("run", "--name", "timed", "busybox", "sh", "-c", "echo early; sleep 1.2; echo late"))
    entries = ok(b.run("logs", "-t", "timed")).splitlines()
    late_time = entries[1].split()[0]
    assert ok(b.run("logs", "--since", late_time, "timed")) == "late\n"
    assert ok(b.run("logs", "--until", late_time.replace("Z", "")[:19] + "Z", "timed")) == \
        "early\n"
    assert ok(b.run("logs", "--since", "1h", "timed")) == "early\nlate\n"
    assert ok(b.run("logs", "--since", "2099-01-01T00:00:00Z", "timed")) == ""


def test_port_prune_and_volume_commands(barque: Barque) -> None:
    b = barque
    ok(b.run("run", "--name", "portless", "busybox", "true"))
    assert ok(b.run("port", "portless")) == ""
    missing = b.run("port", "portless", "80")
    assert missing.returncode == 1 and "No public port '80/tcp'" in missing.stderr
    assert ok(b.run("volume", "create", "--label", "k=v", "vol1")) == "vol1\n"
    assert ok(b.run("volume", "create", "vol1")) == "vol1\n"  # as Docker: no error
    info = ok(b.run("volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Labels.k}}", "vol1"))
    assert info == "vol1 local v\n"
    assert ok(b.run("volume", "ls", "--filter", "label=k=v", "-q")) == "vol1\n"
    ok(b.run("run", "--name", "anon", "-v", "/data", "busybox", "true"))
    anon = inspect_container(b, "anon")["Mounts"][0]["Name"]
    pruned = ok(b.run("container", "prune", "-f"))
    assert "Deleted Containers:" in pruned and ok(b.run("ps", "-aq")) == ""
    pruned = ok(b.run("volume", "prune", "-f"))
    assert anon in pruned and "vol1" not in pruned  # only anonymous ones by default
    assert ok(b.run("volume", "prune", "-a", "-f")).count("vol1") == 1
    assert ok(b.run("volume", "ls", "-q")) == ""


def test_network_ls(barque: Barque) -> None:
    b = barque
    table = ok(b.run("network", "ls")).splitlines()
    assert table[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert [line.split()[1:] for line in table[1:]] == [["bridge", "bridge", "local"],
                                                         ["host", "host", "local"],
                                                         ["none", "null", "local"]]
    assert ok(b.run("network", "ls", "--filter", "driver=null", "--format", "{{.Name}}")) == \
        "none\n"
    assert len(ok(b.run("network", "ls", "-q", "--no-trunc")).split()[0]) == 64
