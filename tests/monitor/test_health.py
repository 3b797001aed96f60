"""barque-monitor's health checks (monitor/README.md, "Health checks"), driven for real:
busybox bundles, the runtime's exec, the check's process in health.json.

Intervals are short (100-300 ms) and every wait is bounded; the fixtures remove every monitor,
container and directory a test makes.

barque-runtime's `exec` now and then (about 1 in 300 here) reports exit status 255 for a
process that exits at once: the process's "ready" can overtake its pid on the pipe to the
runtime. The monitor records what the runtime says, so the assertions below accept a failure
where one is harmless and look for the check's own results where they matter."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable

import pytest

from tests.monitor.test_monitor import (
    Launched,
    Monitors,
    attach,
    demux,
    parse_time,
    read_to_eof,
)

pytestmark = pytest.mark.root

TMPFS = {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "nodev", "mode=1777"]}


def health_flags(interval: int, timeout: int = 5000, retries: int = 3, start: int = 0
                 ) -> list[str]:
    return ["--health-interval", str(interval), "--health-timeout", str(timeout),
            "--health-retries", str(retries), "--health-start-period", str(start)]


def launch(mon: Monitors, args: list[str], check: list[str], flags: list[str],
           tmpfs: bool = False, spec: dict | None = None) -> Launched:
    """A monitor whose --dir has health.json (the engine's job): the container's process
    running `check`, without a terminal."""
    spec = spec or mon.rt.spec(args)
    if tmpfs:  # the rootfs is shared by every test: files go to a tmpfs of the container's
        spec["mounts"].append(TMPFS)
    cmd, cid, directory, log_path, bundle = mon.command(spec, flags)
    process = dict(spec["process"], args=check, terminal=False)
    with open(os.path.join(directory, "health.json"), "w") as f:
        json.dump(process, f)
    proc = subprocess.run(cmd, capture_output=True, timeout=60)
    m = Launched(cid, directory, log_path, bundle, proc)
    mon.launched.append(m)
    assert proc.returncode == 0, proc.stderr
    return m


def health(state: dict) -> dict:
    return state.get("Health") or {}


def wait_health(m: Launched, pred: Callable[[dict], bool], what: str, timeout: float = 20
                ) -> dict:
    return health(m.wait(lambda s: bool(health(s)) and pred(health(s)), timeout, what))


def observe(m: Launched, until: Callable[[dict], bool], timeout: float = 20) -> list[dict]:
    """Every distinct Health seen until `until` holds for one."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            h = health(m.state)
        except (OSError, ValueError):
            continue
        if h and (not seen or seen[-1] != h):
            seen.append(h)
        if h and until(h):
            return seen
        time.sleep(0.01)
    raise AssertionError(f"timed out: last health {seen[-1:]}")


def cmdline(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode().strip()
    except OSError:
        return None


def cgroup_procs(m: Launched) -> dict[int, str]:
    """The processes in the container's pids cgroup and their command lines."""
    init = m.state["Pid"]
    with open(f"/proc/{init}/cgroup") as f:
        path = next(line.split(":", 2)[2].strip() for line in f
                    if line.split(":")[1] == "pids")
    with open(f"/sys/fs/cgroup/pids{path}/cgroup.procs") as f:
        pids = [int(pid) for pid in f.read().split()]
    return {pid: cmd for pid in pids if (cmd := cmdline(pid)) is not None}


def wait_procs(m: Launched, cmd: str, timeout: float = 20) -> list[int]:
    """The pids of the container's processes running `cmd`, once there is one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [pid for pid, c in cgroup_procs(m).items() if c == cmd]
        if pids:
            return pids
        time.sleep(0.02)
    raise AssertionError(f"no {cmd!r} in the container")


def runtime_execs(m: Launched) -> list[str]:
    """The runtime's exec processes left for this container."""
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines() if m.id in line and " exec " in line]


def stop(mon: Monitors, m: Launched) -> dict:
    mon.rt.cmd("kill", m.id, "KILL", check=True)
    return m.wait_done()


def codes(h: dict) -> list[int]:
    return [e["ExitCode"] for e in h["Log"]]


def steps(seen: list[dict]) -> list[tuple[str, int]]:
    """(Status, FailingStreak) as it changed."""
    out: list[tuple[str, int]] = []
    for h in seen:
        if not out or out[-1] != (h["Status"], h["FailingStreak"]):
            out.append((h["Status"], h["FailingStreak"]))
    return out


def check_times(entry: dict) -> tuple[float, float]:
    start, end = parse_time(entry["Start"]), parse_time(entry["End"])
    assert start <= end <= time.time() + 1
    return start, end


# ---- status rules ----


def test_passing_check_is_healthy(mon: Monitors) -> None:
    m = launch(mon, ["sleep", "600"], ["true"], health_flags(100))
    h = wait_health(m, lambda h: h["Status"] == "healthy" and codes(h)[-1] == 0, "healthy")
    assert h["FailingStreak"] == 0 and 1 <= len(h["Log"]) <= 5
    assert h["Log"][-1]["Output"] == ""
    started = parse_time(m.state["StartedAt"])
    for entry in h["Log"]:
        start, _ = check_times(entry)
        assert start >= started + 0.1 - 0.01  # the first check waits an interval
    final = stop(mon, m)
    assert final["ExitCode"] == 137
    # no check once it has exited; the last health stays as it was
    assert health(final)["Status"] == "healthy"
    time.sleep(0.4)
    assert m.state == final
    assert runtime_execs(m) == []


def test_no_health_without_the_options(mon: Monitors) -> None:
    m = mon.launch(["sh", "-c", "exit 0"])
    assert m.proc.returncode == 0, m.proc.stderr
    assert "Health" not in m.wait_done()


def test_failing_check_becomes_unhealthy(mon: Monitors) -> None:
    m = launch(mon, ["sleep", "600"], ["false"], health_flags(100, retries=2))
    seen = observe(m, lambda h: h["Status"] == "unhealthy")
    # one failure: still starting, streak 1; the second makes it unhealthy
    assert [(h["Status"], h["FailingStreak"], len(h["Log"])) for h in seen[:3]] == [
        ("starting", 0, 0), ("starting", 1, 1), ("unhealthy", 2, 2)]
    assert 0 not in codes(seen[-1]) and 1 in codes(seen[-1])
    # the log keeps the last five results, oldest first
    h = wait_health(m, lambda h: h["FailingStreak"] >= 8, "eight failures")
    assert len(h["Log"]) == 5 and h["Status"] == "unhealthy"
    starts = [check_times(e)[0] for e in h["Log"]]
    assert starts == sorted(starts)
    prev_end = check_times(h["Log"][0])[1]
    for entry in h["Log"][1:]:  # each check an interval after the end of the one before
        start, end = check_times(entry)
        assert start >= prev_end + 0.1 - 0.01
        prev_end = end
    stop(mon, m)


def test_success_resets_the_streak(mon: Monitors) -> None:
    # fails twice, then passes: the streak goes back to 0 and it is healthy
    script = "n=$(cat /tmp/n 2>/dev/null || echo 0); echo $((n+1)) > /tmp/n; [ $n -ge 2 ]"
    m = launch(mon, ["sleep", "600"], ["sh", "-c", script], health_flags(100, retries=3),
               tmpfs=True)
    seen = observe(m, lambda h: h["Status"] == "healthy")
    assert steps(seen)[:3] == [("starting", 0), ("starting", 1), ("starting", 2)]
    assert steps(seen)[-1] == ("healthy", 0)
    assert 0 not in codes(seen[-1])[:2] and codes(seen[-1])[-1] == 0
    stop(mon, m)


def test_start_period(mon: Monitors) -> None:
    m = launch(mon, ["sleep", "600"], ["false"], health_flags(100, retries=1, start=1500))
    seen = observe(m, lambda h: h["Status"] == "unhealthy")
    started = parse_time(m.state["StartedAt"])
    # failures of checks begun within the start period leave it starting, streak 0
    within = [h for h in seen if h["Log"] and
              parse_time(h["Log"][-1]["Start"]) < started + 1.5 - 0.05]
    assert len(within) >= 3
    assert all((h["Status"], h["FailingStreak"]) == ("starting", 0) for h in within)
    last = seen[-1]
    assert last["FailingStreak"] == 1 and len(last["Log"]) >= 4
    assert parse_time(last["Log"][-1]["Start"]) >= started + 1.5 - 0.05
    stop(mon, m)


def test_start_period_ends_with_the_first_success(mon: Monitors) -> None:
    # passes for a second, then fails: within the start period, but no longer starting, so
    # the failure counts
    m = launch(mon, ["sh", "-c", "sleep 1; touch /tmp/fail; exec sleep 600"],
               ["sh", "-c", "[ ! -f /tmp/fail ]"], health_flags(100, retries=1, start=60000),
               tmpfs=True)
    seen = observe(m, lambda h: h["Status"] == "unhealthy")
    assert steps(seen)[0] == ("starting", 0)
    assert ("healthy", 0) in steps(seen) and steps(seen)[-1] == ("unhealthy", 1)
    assert time.time() - parse_time(m.state["StartedAt"]) < 30
    stop(mon, m)


def test_starting_then_healthy_once_ready(mon: Monitors) -> None:
    m = launch(mon, ["sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 600"],
               ["test", "-f", "/tmp/ready"], health_flags(100, retries=100), tmpfs=True)
    seen = observe(m, lambda h: h["Status"] == "healthy")
    assert seen[0]["Status"] == "starting"
    failed = [h for h in seen if h["Status"] == "starting" and h["Log"]]
    assert failed and 0 not in codes(failed[-1]) and 1 in codes(failed[-1])
    last = seen[-1]
    assert last["FailingStreak"] == 0 and last["Log"][-1]["ExitCode"] == 0
    stop(mon, m)


# ---- output ----


def test_output_is_kept(mon: Monitors) -> None:
    script = 'echo "out <&>"; echo err >&2; printf "\\377"; exit 3'
    m = launch(mon, ["sleep", "600"], ["sh", "-c", script], health_flags(100))
    h = wait_health(m, lambda h: 3 in codes(h), "a result")
    entry = next(e for e in h["Log"] if e["ExitCode"] == 3)
    assert entry["Output"] == "out <&>\nerr\n\ufffd"  # stdout and stderr together
    with open(m.path("state.json"), "rb") as f:
        raw = f.read()
    assert b"out \\u003c\\u0026\\u003e\\nerr\\n\\ufffd" in raw  # Go's escaping
    stop(mon, m)


@pytest.mark.parametrize("size,expected", [(4096, "x" * 4096), (100000, "x" * 4096 + "...")])
def test_long_output_is_cut(mon: Monitors, size: int, expected: str) -> None:
    check = ["sh", "-c", f"head -c {size} /dev/zero | tr '\\000' x"]
    m = launch(mon, ["sleep", "600"], check, health_flags(100))
    # it succeeds: it was not blocked on its output
    h = wait_health(m, lambda h: 0 in codes(h), "a result")
    entry = next(e for e in h["Log"] if e["ExitCode"] == 0)
    assert entry["Output"] == expected  # Docker's: the first 4096 bytes, "..." if more
    stop(mon, m)


def test_check_that_cannot_run(mon: Monitors) -> None:
    m = launch(mon, ["sleep", "600"], ["nope"], health_flags(100, retries=1))
    h = wait_health(m, lambda h: h["Status"] == "unhealthy", "unhealthy")
    entry = h["Log"][0]
    assert entry["ExitCode"] == -1  # the runtime's error, as Docker records a failed exec
    # barque-runtime's words for a failed exec, runc's since issue 12 (dockerd wraps runc's
    # in "OCI runtime exec failed: ... unable to start container process: ...: unknown")
    assert entry["Output"] == ('exec failed: unable to start container process: '
                               'exec: "nope": executable file not found in $PATH')
    stop(mon, m)


# ---- timeouts and the container's end ----


@pytest.mark.parametrize("timeout,text", [(500, "500ms"), (1500, "1.5s")])
def test_timeout_kills_the_check(mon: Monitors, timeout: int, text: str) -> None:
    # the first check sleeps (in a child of its shell), the later ones pass at once
    script = "[ -f /tmp/t ] && exit 0; touch /tmp/t; echo begun; sleep 30; echo never"
    m = launch(mon, ["sleep", "600"], ["sh", "-c", script], health_flags(100, timeout),
               tmpfs=True)
    h = wait_health(m, lambda h: len(h["Log"]) >= 2 and codes(h)[-1] == 0, "a success", 30)
    first = h["Log"][0]
    assert first["ExitCode"] == -1
    assert first["Output"] == f"Health check exceeded timeout ({text})"
    start, end = check_times(first)
    assert timeout / 1000 - 0.01 <= end - start < timeout / 1000 + 1.0
    assert h["Status"] == "healthy" and h["FailingStreak"] == 0
    # the check's shell and its sleep are gone (later checks exit at once, sleeping nowhere)
    assert "sleep 30" not in cgroup_procs(m).values()
    assert "begun" not in first["Output"]  # the killed check's output is not kept
    stop(mon, m)
    assert runtime_execs(m) == []  # and no runtime exec was left behind


def test_check_running_at_exit_is_killed_and_dropped(mon: Monitors) -> None:
    m = launch(mon, ["sh", "-c", "sleep 1"], ["sh", "-c", "sleep 30; sleep 1"],
               health_flags(100, timeout=60000))
    sleeping = wait_procs(m, "sleep 30")  # the check runs
    start = time.monotonic()
    final = m.wait_done(20)
    assert time.monotonic() - start < 10  # not held up by the check
    assert final["ExitCode"] == 0
    assert health(final) == {"Status": "starting", "FailingStreak": 0, "Log": []}
    assert runtime_execs(m) == []
    assert [cmdline(pid) for pid in sleeping] == [None] * len(sleeping)


def test_restart_keeps_the_log_and_starts_over(mon: Monitors) -> None:
    # passes in the first run, fails in the second: starting again, then unhealthy
    script = "[ -f /data/second ] && exit 1; exit 0"
    data = os.path.join(mon.rt.tmp, f"data-{os.getpid()}-{time.monotonic_ns()}")
    os.makedirs(data)
    try:
        spec = mon.rt.spec(["sh", "-c", "[ -f /data/first ] && touch /data/second; "
                            "touch /data/first; sleep 1; exit 1"])
        spec["mounts"].append({"destination": "/data", "type": "bind", "source": data,
                               "options": ["rbind", "rw"]})
        m = launch(mon, [], ["sh", "-c", script],
                   ["--restart", "on-failure:1", *health_flags(300, retries=1)], spec=spec)
        states = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = m.state
            if not states or states[-1] != state:
                states.append(state)
            if state["Status"] == "exited" and not m.monitor_alive():
                break
            time.sleep(0.01)
        final = states[-1]
        assert final["Status"] == "exited" and final["RestartCount"] == 1
        second = [s for s in states if s["RestartCount"] == 1 and s["Status"] == "running"]
        assert health(second[0])["Status"] == "starting"
        assert health(second[0])["FailingStreak"] == 0
        assert health(second[0])["Log"]  # the first run's results are kept
        h = health(final)
        assert h["Status"] == "unhealthy" and h["FailingStreak"] >= 1
        assert codes(h)[-1] == 1
        restarted = parse_time(final["StartedAt"])
        starts = {e["ExitCode"]: parse_time(e["Start"]) for e in h["Log"]}
        assert starts[0] < restarted <= starts[1]  # passed in the first run, failed after
    finally:
        shutil.rmtree(data, ignore_errors=True)


# ---- the monitor keeps serving ----


def test_output_and_attach_keep_flowing_during_checks(mon: Monitors) -> None:
    script = "read x; i=0; while [ $i -lt 20 ]; do echo line$i; i=$((i+1)); sleep 0.1; done"
    m = launch(mon, ["sh", "-c", script], ["sh", "-c", "sleep 0.4; echo checked"],
               ["--stdin", *health_flags(100)])
    sock = attach(m)
    try:
        sock.sendall(b"go\n")
        got = b""
        times = []
        deadline = time.monotonic() + 30
        while b"line19\n" not in got and time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
            times.append(time.monotonic())
        rest = read_to_eof(sock)
    finally:
        sock.close()
    out, _ = demux(got + rest)
    assert out == b"".join(b"line%d\n" % i for i in range(20))
    # live, not held back while a check ran: about 0.1 s apart
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert max(gaps) < 0.35, gaps
    final = m.wait_done()
    assert final["ExitCode"] == 0
    assert m.logged() == out.decode()
    log_times = [parse_time(t) for _, _, t in m.log_entries()]
    assert max(b - a for a, b in zip(log_times, log_times[1:], strict=False)) < 0.35
    h = health(final)
    assert "checked\n" in [e["Output"] for e in h["Log"]]


# ---- options ----


@pytest.mark.parametrize("args", [
    ["--health-interval", "100"],
    ["--health-interval", "100", "--health-timeout", "100", "--health-retries", "1"],
    health_flags(0),
    health_flags(100, timeout=0),
    health_flags(100, retries=0),
    health_flags(100, start=-1),
    ["--health-interval", "1s", "--health-timeout", "100", "--health-retries", "1",
     "--health-start-period", "0"],
    health_flags(100)[:-1],
])
def test_bad_health_options(monitor_bin: str, tmp_path: os.PathLike, args: list[str]) -> None:
    base = ["--id", "x", "--bundle", str(tmp_path), "--dir", str(tmp_path), "--runtime", "false",
            "--runtime-root", str(tmp_path)]
    proc = subprocess.run([monitor_bin, *base, *args], capture_output=True, timeout=10)
    assert proc.returncode == 1 and proc.stdout == b""
    assert proc.stderr.startswith(b"barque-monitor: ") and proc.stderr.count(b"\n") == 1
    assert b"health" in proc.stderr
    assert os.listdir(tmp_path) == []  # rejected before anything ran

