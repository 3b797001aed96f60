"""Containers end to end through the `barque` CLI: detached runs, the monitor, logs, stop,
kill, restart policies, OOM, volumes, ps/inspect, and bad input — as a Docker user would."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from tests.cli.conftest import Barque, inspect_container, ok, until
from tests.support.marks import needs_busybox
from tests.support.ptys import Step, run_in_pty

pytestmark = [
    pytest.mark.root,
    needs_busybox,
]


def test_detached_run_ps_logs_stop_rm(cleanup: Barque) -> None:
    b = cleanup
    script = "echo out; echo err >&2; trap 'echo bye; exit 0' TERM; while :; do sleep 0.1; done"
    cid = ok(b.run("run", "-d", "--name", "web", "busybox", "sh", "-c", script)).strip()
    assert len(cid) == 64
    until(lambda: "err" in b.run("logs", "web").stderr)
    logs = b.run("logs", "web")
    assert (logs.stdout, logs.stderr) == ("out\n", "err\n")
    ps = ok(b.run("ps"))
    header, row = ps.splitlines()
    assert header.split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS",
                              "PORTS", "NAMES"]
    assert row.startswith(cid[:12]) and row.endswith("web") and " Up " in row
    state = inspect_container(b, "web")["State"]
    assert state["Status"] == "running" and state["Running"] and state["Pid"] > 0
    assert ok(b.run("stop", "web")) == "web\n"
    state = inspect_container(b, "web")["State"]
    assert (state["Status"], state["ExitCode"], state["Running"]) == ("exited", 0, False)
    assert "bye" in b.run("logs", "web").stdout
    assert ok(b.run("ps", "-q")) == ""
    assert ok(b.run("ps", "-aq")) == cid[:12] + "\n"
    assert ok(b.run("rm", "web")) == "web\n"
    assert b.containers() == []


def test_detached_exit_unmounts_and_rm_removes(cleanup: Barque) -> None:
    b = cleanup
    cid = ok(b.run("run", "-d", "--rm", "busybox", "sleep", "0.3")).strip()
    kept = ok(b.run("run", "-d", "busybox", "true")).strip()
    until(lambda: cid not in ok(b.run("ps", "-aq", "--no-trunc")))  # --rm: gone on its own
    until(lambda: inspect_container(b, kept)["State"]["Status"] == "exited")
    merged = os.path.join(b.root, "containers", kept, "snapshot", "merged")
    until(lambda: not os.path.ismount(merged))  # the monitor's clean-up unmounted it
    assert os.path.isdir(os.path.join(b.root, "containers", kept))


def test_create_start_wait_and_start_attached(cleanup: Barque) -> None:
    b = cleanup
    cid = ok(b.run("create", "--name", "job", "busybox", "sh", "-c", "echo done; exit 4"))
    assert inspect_container(b, "job")["State"]["Status"] == "created"
    assert ok(b.run("start", "job")) == "job\n"
    assert ok(b.run("wait", "job")) == "4\n"
    assert ok(b.run("logs", "job")) == "done\n"
    attached = b.run("start", "-a", "job")
    assert (attached.returncode, attached.stdout) == (4, "done\n"), attached.stderr
    assert inspect_container(b, cid.strip())["State"]["ExitCode"] == 4


def test_kill_and_stop_of_a_process_ignoring_term(cleanup: Barque) -> None:
    b = cleanup
    ok(b.run("run", "-d", "--name", "stubborn", "busybox", "sleep", "300"))
    assert inspect_container(b, "stubborn")["Path"] == "sleep"
    started = time.monotonic()
    ok(b.run("stop", "-t", "1", "stubborn"))  # sleep as PID 1 ignores SIGTERM
    assert time.monotonic() - started < 15
    assert inspect_container(b, "stubborn")["State"]["ExitCode"] == 137
    # A signal without a handler does not reach a PID 1; with --init, tini passes it on.
    ok(b.run("run", "-d", "--init", "--name", "inited", "busybox", "sleep", "300"))
    # The init is not the container's command: inspect shows the command.
    assert inspect_container(b, "inited")["Path"] == "sleep"
    pid1 = ok(b.run("exec", "inited", "cat", "/proc/1/cmdline")).split("\0")
    assert pid1[:3] == ["/sbin/docker-init", "--", "sleep"]
    assert ok(b.run("kill", "-s", "USR1", "inited")) == "inited\n"
    until(lambda: not inspect_container(b, "inited")["State"]["Running"])
    assert inspect_container(b, "inited")["State"]["ExitCode"] == 138  # 128 + SIGUSR1
    killed = b.run("kill", "stubborn")
    assert killed.returncode == 1 and "is not running" in killed.stderr


def test_logs_follow_a_live_container(cleanup: Barque) -> None:
    b = cleanup
    script = "for i in 1 2 3; do echo line$i; sleep 0.3; done"
    ok(b.run("run", "-d", "--name", "ticker", "busybox", "sh", "-c", script))
    result = b.run("logs", "-f", "-t", "ticker", timeout=30)
    lines = result.stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["line1", "line2", "line3"]
    assert all(line[:4].isdigit() and line.split(" ")[0].endswith("Z") for line in lines)
    assert ok(b.run("logs", "--tail", "1", "ticker")) == "line3\n"


def test_restart_policy_brings_a_crashed_container_back(cleanup: Barque) -> None:
    b = cleanup
    ok(b.run("run", "-d", "--name", "crashy", "--restart", "on-failure:2", "busybox",
              "sh", "-c", "echo run; exit 1"))
    until(lambda: inspect_container(b, "crashy")["State"]["Status"] == "exited" and
           inspect_container(b, "crashy")["RestartCount"] == 2, timeout=30)
    assert ok(b.run("logs", "crashy")) == "run\nrun\nrun\n"
    ok(b.run("run", "-d", "--name", "always", "--restart", "always", "busybox",
              "sh", "-c", "sleep 0.2; exit 3"))
    until(lambda: inspect_container(b, "always")["RestartCount"] >= 2, timeout=30)
    ok(b.run("stop", "-t", "1", "always"))
    count = inspect_container(b, "always")["RestartCount"]
    time.sleep(1)
    state = inspect_container(b, "always")
    assert state["State"]["Status"] == "exited" and state["RestartCount"] == count


def test_memory_limit_kills_a_hog_with_oomkilled(cleanup: Barque) -> None:
    b = cleanup
    # dd reads into one 64 MiB buffer: that much memory, bounded whatever the limit does.
    hog = "dd if=/dev/zero of=/dev/null bs=67108864 count=1"
    result = b.run("run", "--name", "hog", "-m", "32m", "--memory-swap", "32m", "busybox",
                   "sh", "-c", hog, timeout=120)
    state = inspect_container(b, "hog")["State"]
    assert state["OOMKilled"] is True, (result.returncode, result.stderr, state)
    assert inspect_container(b, "hog")["HostConfig"]["Memory"] == 32 * 1024 * 1024


def test_named_volumes_survive_rm(cleanup: Barque) -> None:
    b = cleanup
    ok(b.run("run", "--rm", "-v", "data:/data", "busybox", "sh", "-c",
              "echo kept > /data/file"))
    assert ok(b.run("volume", "ls", "-q")) == "data\n"
    assert ok(b.run("run", "--rm", "-v", "data:/data:ro", "busybox", "cat", "/data/file")) == \
        "kept\n"
    ro = b.run("run", "--rm", "-v", "data:/data:ro", "busybox", "touch", "/data/x")
    assert ro.returncode == 1 and "Read-only file system" in ro.stderr
    ok(b.run("run", "-d", "--name", "user", "-v", "data:/data", "busybox", "sleep", "300"))
    busy = b.run("volume", "rm", "data")
    assert busy.returncode == 1 and "volume is in use" in busy.stderr
    ok(b.run("rm", "-f", "user"))
    assert ok(b.run("volume", "rm", "data")) == "data\n"
    assert ok(b.run("volume", "ls", "-q")) == ""


def test_bind_mounts_tmpfs_and_read_only_root(cleanup: Barque, tmp_path: str) -> None:
    b = cleanup
    host = os.path.join(str(tmp_path), "shared")
    os.mkdir(host)
    script = "echo hi > /host/f; touch /tmp/ok; touch /root/no 2>&1 | grep -c Read-only"
    out = ok(b.run("run", "--rm", "--read-only", "--tmpfs", "/tmp", "-v", f"{host}:/host",
                    "busybox", "sh", "-c", script))
    assert out == "1\n"
    assert open(os.path.join(host, "f")).read() == "hi\n"


def test_inspect_and_ps_formats(cleanup: Barque) -> None:
    b = cleanup
    ok(b.run("run", "-d", "--name", "fmt", "-l", "tier=web", "-e", "A=1", "busybox",
              "sleep", "300"))
    info = inspect_container(b, "fmt")
    assert info["Name"] == "/fmt" and info["Config"]["Labels"] == {"tier": "web"}
    assert "A=1" in info["Config"]["Env"] and info["Path"] == "sleep"
    assert info["Args"] == ["300"] and info["Image"].startswith("sha256:")
    assert ok(b.run("inspect", "-f", "{{.State.Status}} {{.Config.Labels.tier}}", "fmt")) == \
        "running web\n"
    assert ok(b.run("ps", "--format", "{{.Names}}\t{{.Command}}\t{{.State}}")) == \
        'fmt\t"sleep 300"\trunning\n'
    assert ok(b.run("ps", "--filter", "label=tier=web", "--format", "{{.Names}}")) == "fmt\n"
    assert ok(b.run("ps", "--filter", "label=tier=db", "-q")) == ""
    ok(b.run("rename", "fmt", "fmt2"))
    assert ok(b.run("ps", "--format", "{{json .Names}}")) == '"fmt2"\n'


def test_default_seccomp_profile_and_capabilities(cleanup: Barque) -> None:
    b = cleanup
    script = "grep Seccomp: /proc/self/status; unshare -U true; echo unshare=$?; " \
             "mkdir -p /mnt; mount -t tmpfs x /mnt; echo mount=$?"
    out = ok(b.run("run", "--rm", "busybox", "sh", "-c", script))
    # Docker's profile: user namespaces (clone flags) and mount are refused without the caps.
    assert out.splitlines()[0].split() == ["Seccomp:", "2"]
    assert "unshare=1" in out and "mount=1" in out
    out = ok(b.run("run", "--rm", "--cap-add", "SYS_ADMIN", "busybox", "sh", "-c",
                   "mkdir -p /mnt; mount -t tmpfs x /mnt; echo mount=$?"))
    assert out == "mount=0\n"
    out = ok(b.run("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "grep",
                   "Seccomp:", "/proc/self/status"))
    assert out.split() == ["Seccomp:", "0"]


def test_a_container_whose_monitor_died_is_shown_dead(cleanup: Barque) -> None:
    b = cleanup
    cid = ok(b.run("run", "-d", "--name", "orphan", "busybox", "sleep", "300")).strip()
    with open(os.path.join(b.runroot, "containers", cid, "state.json")) as f:
        monitor_pid = json.load(f)["MonitorPid"]
    os.kill(monitor_pid, signal.SIGKILL)  # by pid: the one this test's container reported
    until(lambda: inspect_container(b, "orphan")["State"]["Status"] == "dead")
    state = inspect_container(b, "orphan")["State"]
    assert state["Dead"] and not state["Running"] and "monitor" in state["Error"]
    assert ok(b.run("ps", "-a", "--format", "{{.Status}}")) == "Dead\n"
    assert ok(b.run("rm", "-f", "orphan")) == "orphan\n"  # its processes go with it
    assert b.containers() == []


def test_health_checks(cleanup: Barque) -> None:
    b = cleanup
    ok(b.run("run", "-d", "--name", "hc", "--health-cmd", "test -f /tmp/ready",
             "--health-interval", "200ms", "--health-retries", "50", "busybox", "sh", "-c",
             "sleep 1; touch /tmp/ready; sleep 300"))
    assert "(health: starting)" in ok(b.run("ps", "--format", "{{.Status}}"))
    until(lambda: inspect_container(b, "hc")["State"]["Health"]["Status"] == "healthy")
    health = inspect_container(b, "hc")["State"]["Health"]
    assert health["Log"][-1]["ExitCode"] == 0 and health["FailingStreak"] == 0
    assert "(healthy)" in ok(b.run("ps", "--format", "{{.Status}}"))
    ok(b.run("run", "-d", "--name", "sick", "--health-cmd", "exit 1", "--health-interval",
             "200ms", "--health-retries", "2", "busybox", "sleep", "300"))
    until(lambda: inspect_container(b, "sick")["State"]["Health"]["Status"] == "unhealthy")
    conflict = b.run("run", "--health-cmd", "true", "--no-healthcheck", "busybox", "true")
    assert conflict.returncode == 125 and "conflicts" in conflict.stderr
    plain = inspect_container(b, "hc")["Config"]["Healthcheck"]
    assert plain["Test"] == ["CMD-SHELL", "test -f /tmp/ready"]
    assert plain["Interval"] == 200_000_000


def test_pause_unpause(cleanup: Barque) -> None:
    b = cleanup
    ok(b.run("run", "-d", "--name", "pz", "busybox", "sleep", "300"))
    ok(b.run("pause", "pz"))
    assert inspect_container(b, "pz")["State"]["Status"] == "paused"
    assert "(Paused)" in ok(b.run("ps", "--format", "{{.Status}}"))
    ok(b.run("unpause", "pz"))
    assert inspect_container(b, "pz")["State"]["Status"] == "running"


def _pty_session(b: Barque, argv: list[str], steps: list[Step],
                 size: tuple[int, int] = (24, 80)) -> tuple[bytes, int]:
    """barque ARGV under a pty of `size`, driven by `steps` (tests/support/ptys.py)."""
    return run_in_pty(b.argv(*argv), steps, size=size, timeout=30)


def test_interactive_tty_session(cleanup: Barque) -> None:
    output, code = _pty_session(cleanup, ["run", "-it", "--rm", "busybox", "sh"],
                                [(b"#", b"echo h''i; exit 3\r")])
    assert b"hi" in output.replace(b"h''i", b"")
    assert code == 3


def test_tty_size_follows_the_terminal(cleanup: Barque) -> None:
    output, code = _pty_session(cleanup, ["run", "-it", "--rm", "busybox", "sh"],
                                [(b"#", b"stty size\r"), (b"33 111", (40, 120)),
                                 (b"", b"\r"), (b"#", b"stty size; exit\r")], size=(33, 111))
    assert b"40 120" in output and code == 0


def test_bad_input_changes_nothing(cleanup: Barque) -> None:
    b = cleanup
    for args, code, words in (
        (["run", "--no-such-flag", "busybox"], 125, "unknown flag: --no-such-flag"),
        (["run", "-v", "a:b:c:d", "busybox", "true"], 125, "invalid volume specification"),
        (["run", "-v", "/tmp:relative", "busybox", "true"], 125, "mount path must be absolute"),
        (["run", "127.0.0.1:9/missing", "true"], 125, "Unable to find image"),
        (["run", "-m", "lots", "busybox", "true"], 125, "invalid size"),
        (["run", "--restart", "sometimes", "busybox", "true"], 125, "invalid restart policy"),
        (["create", "--cap-add", "NOT_A_CAP", "busybox", "true"], 1,
         'invalid CapAdd: unknown capability: "CAP_NOT_A_CAP"'),
    ):
        result = b.run(*args)
        assert result.returncode == code, (args, result.stderr)
        assert words in result.stderr, (args, result.stderr)
    assert b.containers() == [] and ok(b.run("ps", "-aq")) == ""
    ok(b.run("run", "-d", "--name", "taken", "busybox", "sleep", "300"))
    again = b.run("run", "--name", "taken", "busybox", "true")
    assert again.returncode == 125 and 'The container name "/taken" is already in use' in \
        again.stderr
    running = b.run("rm", "taken")
    # Docker's CLI exits 1 for daemon errors outside run/create.
    assert running.returncode == 1
    assert "You cannot remove a running container " in running.stderr  # dockerd 20.10's words
    assert inspect_container(b, "taken")["State"]["Running"]
    assert len(b.containers()) == 1
    missing = b.run("stop", "nothere")
    assert missing.returncode == 1 and "No such container: nothere" in missing.stderr
