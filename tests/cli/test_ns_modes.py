"""Docker's namespace modes other than the network's, with real containers: `--ipc`
(private, shareable, host, none, container:X), `--pid container:X`, `--uts host` and
`--cgroupns host|private`, their checks in Docker's words and what `inspect` shows."""

from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest

from tests.cli.conftest import Barque, inspect_container, ok, until
from tests.support import tools
from tests.support.marks import needs_busybox

pytestmark = [pytest.mark.root, needs_busybox]

SLEEP = ("busybox", "sleep", "1000")


def _run_d(b: Barque, name: str, *flags: str) -> dict:
    ok(b.run("run", "-d", "--network", "none", "--name", name, *flags, *SLEEP))
    return inspect_container(b, name)


def _ns(pid: int | str, kind: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def _shm_mounted(b: Barque, container_id: str) -> bool:
    path = os.path.join(b.root, "containers", container_id, "shm")
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def test_a_shareable_containers_ipc_and_shm_are_its_joiners(barque: Barque) -> None:
    tools.require("nsenter", "ipcmk")
    donor = _run_d(barque, "donor", "--ipc", "shareable")
    assert donor["HostConfig"]["IpcMode"] == "shareable"
    pid = donor["State"]["Pid"]
    ok(barque.run("exec", "donor", "sh", "-c", "echo from-donor > /dev/shm/marker"))
    # a System V segment made in the donor's IPC namespace, from the host
    made = ok(subprocess.run(["nsenter", f"--ipc=/proc/{pid}/ns/ipc", "ipcmk", "-M", "4096"],
                             capture_output=True, text=True))
    shmid = made.split(":")[-1].strip()
    out = ok(barque.run("run", "--rm", "--network", "none", "--ipc", "container:donor",
                        "busybox", "sh", "-c", "cat /dev/shm/marker; readlink /proc/self/ns/ipc;"
                        " awk 'NR>1 {print $2}' /proc/sysvipc/shm"))
    assert out.split("\n")[:3] == ["from-donor", _ns(pid, "ipc"), shmid]
    joiner = _run_d(barque, "joiner", "--ipc", "container:donor")
    assert joiner["HostConfig"]["IpcMode"] == f"container:{donor['Id']}"  # as dockerd stores it
    assert _shm_mounted(barque, donor["Id"])
    # The donor stops: its /dev/shm is unmounted on the host, the joiner runs on with it.
    ok(barque.run("stop", "-t", "1", "donor"))
    assert not _shm_mounted(barque, donor["Id"])
    out = ok(barque.run("exec", "joiner", "sh", "-c",
                        "cat /dev/shm/marker; echo more > /dev/shm/m2; cat /dev/shm/m2"))
    assert out.split() == ["from-donor", "more"]
    assert inspect_container(barque, "joiner")["State"]["Status"] == "running"
    # ... and cannot start again without it, in dockerd's words
    ok(barque.run("stop", "-t", "1", "joiner"))
    result = barque.run("start", "joiner")
    assert result.returncode == 1
    assert f"can't join IPC of container {donor['Id']}: container {donor['Id']} is not " \
        "running" in result.stderr


def test_an_ipc_donor_must_exist_run_and_be_shareable(barque: Barque) -> None:
    private = _run_d(barque, "private")
    assert private["HostConfig"]["IpcMode"] == "private"  # dockerd's default-ipc-mode
    ok(barque.run("create", "--network", "none", "--name", "made", "busybox", "true"))
    made = inspect_container(barque, "made")["Id"]
    for ref, words in (
            ("private", f"can't join IPC of container {private['Id']}: non-shareable IPC "
                        "(hint: use IpcMode:shareable for the donor container)"),
            ("made", f"can't join IPC of container {made}: container {made} is not running"),
            ("nosuch", "No such container: nosuch")):
        result = barque.run("run", "--rm", "--network", "none", "--ipc", f"container:{ref}",
                            "busybox", "true")
        assert result.returncode == 125, result.stderr
        assert f"Error response from daemon: {words}." in result.stderr
    assert sorted(barque.run("ps", "-aq").stdout.split()) == sorted(
        [private["Id"][:12], made[:12]])  # nothing left (--rm: a failed start removes it)


def test_ipc_host_and_none(barque: Barque, run_prefix: str) -> None:
    marker = f"/dev/shm/{run_prefix}-ipc-host"
    with open(marker, "w") as f:
        f.write("host\n")
    try:
        host = _run_d(barque, "host", "--ipc", "host")
        assert _ns(host["State"]["Pid"], "ipc") == _ns("self", "ipc")
        name = os.path.basename(marker)
        assert ok(barque.run("exec", "host", "cat", f"/dev/shm/{name}")) == "host\n"
        # a container joining one in the host's IPC namespace gets the host's /dev/shm too
        out = ok(barque.run("run", "--rm", "--network", "none", "--ipc", "container:host",
                            "busybox", "cat", f"/dev/shm/{name}"))
        assert out == "host\n"
    finally:
        os.unlink(marker)
    result = barque.run("run", "--rm", "--network", "none", "--ipc", "none", "busybox",
                        "sh", "-c", "readlink /proc/self/ns/ipc; ls /dev/shm")
    assert result.returncode == 1
    assert result.stdout.strip() != _ns("self", "ipc")  # a namespace of its own
    assert "/dev/shm: No such file or directory" in result.stderr


def test_pid_container_sees_the_donors_processes(barque: Barque) -> None:
    donor = _run_d(barque, "pdonor")
    out = ok(barque.run("run", "--rm", "--network", "none", "--pid", "container:pdonor",
                        "busybox", "sh", "-c", "readlink /proc/self/ns/pid; ps -o pid,args"))
    lines = out.splitlines()
    assert lines[0] == _ns(donor["State"]["Pid"], "pid")
    assert any(line.split() == ["1", "sleep", "1000"] for line in lines[1:]), out
    joiner = _run_d(barque, "pjoiner", "--pid", "container:pdonor")
    assert joiner["HostConfig"]["PidMode"] == f"container:{donor['Id']}"
    # The donor's init gone, the kernel ends its PID namespace: the joiner with it.
    ok(barque.run("stop", "-t", "1", "pdonor"))
    until(lambda: inspect_container(barque, "pjoiner")["State"]["Status"] == "exited")
    result = barque.run("run", "--rm", "--network", "none", "--pid", "container:pdonor",
                        "busybox", "true")
    assert result.returncode == 125
    assert f"Error response from daemon: container {donor['Id']} is not running." in \
        result.stderr


def test_uts_host(barque: Barque) -> None:
    out = ok(barque.run("run", "--rm", "--network", "none", "--uts", "host", "busybox",
                        "sh", "-c", "hostname; readlink /proc/self/ns/uts"))
    assert out.split() == [socket.gethostname(), _ns("self", "uts")]
    result = barque.run("run", "--rm", "--network", "none", "--uts", "host", "-h", "x",
                        "busybox", "true")
    assert result.returncode == 125
    assert "Error response from daemon: conflicting options: hostname and the UTS mode." in \
        result.stderr
    info = _run_d(barque, "uts", "--uts", "host")
    assert info["HostConfig"]["UTSMode"] == "host"
    assert _run_d(barque, "uts2")["HostConfig"]["UTSMode"] == ""


def test_cgroupns_private_and_host(barque: Barque) -> None:
    from barque.cgroups.mountinfo import is_pure_v2

    default = "private" if is_pure_v2() else "host"
    info = _run_d(barque, "cgdefault")
    assert info["HostConfig"]["CgroupnsMode"] == default
    own = ok(barque.run("run", "--rm", "--network", "none", "--cgroupns", "private",
                        "busybox", "sh", "-c", "cat /proc/self/cgroup; readlink "
                        "/proc/self/ns/cgroup"))
    *lines, inode = own.splitlines()
    assert lines and all(line.endswith(":/") for line in lines), own
    assert inode != _ns("self", "cgroup")
    ok(barque.run("run", "-d", "--network", "none", "--name", "cghost", "--cgroupns", "host",
                  *SLEEP))
    info = inspect_container(barque, "cghost")
    shown = ok(barque.run("exec", "cghost", "cat", "/proc/self/cgroup"))
    assert info["Id"] in shown
    assert _ns(info["State"]["Pid"], "cgroup") == _ns("self", "cgroup")


@pytest.mark.parametrize(("flag", "words"), [
    ("--pid", "barque: --pid: invalid PID mode."),
    ("--uts", "barque: --uts: invalid UTS mode."),
    ("--cgroupns", "barque: --cgroupns: invalid CGROUP mode."),
    ("--ipc", "barque: Error response from daemon: invalid IPC mode: bogus."),
])
def test_a_bad_mode_is_refused_in_dockers_words(barque: Barque, flag: str, words: str) -> None:
    result = barque.run("run", "--rm", "--network", "none", flag, "bogus", "busybox", "true")
    assert result.returncode == 125
    assert result.stderr.splitlines()[0] == words
    assert barque.run("ps", "-aq").stdout == ""


def test_a_restarted_joiner_joins_the_same_namespaces(barque: Barque) -> None:
    """The monitor's restarts reuse the spec: it names the donor's namespaces pinned in the
    joiner's dir for its run, never /proc/PID of a donor whose PID may be reused by then."""
    donor = _run_d(barque, "rdonor", "--ipc", "shareable")
    ok(barque.run("run", "-d", "--network", "none", "--name", "rjoiner", "--restart",
                  "on-failure:2", "--ipc", "container:rdonor", "--pid", "container:rdonor",
                  "busybox", "sh", "-c", "readlink /proc/self/ns/ipc >> /dev/shm/seen; "
                  "readlink /proc/self/ns/pid >> /dev/shm/seen; exit 1"))
    joiner = inspect_container(barque, "rjoiner")["Id"]

    def ended() -> bool:
        info = inspect_container(barque, "rjoiner")
        return info["State"]["Status"] == "exited" and info["RestartCount"] == 2

    until(ended, timeout=60)
    seen = ok(barque.run("exec", "rdonor", "cat", "/dev/shm/seen")).split()
    pid = donor["State"]["Pid"]
    assert seen == [_ns(pid, "ipc"), _ns(pid, "pid")] * 3  # three runs, each in the donor's
    # at the end for good, the pins are let go (the monitor's clean-up)
    until(lambda: not any(f"/{joiner}/ns-" in point for point in _mount_points()))


def _mount_points() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f]


def _process_at_pid(pid: int, argv: list[str], attempts: int = 200) -> subprocess.Popen[bytes]:
    """A host process given `pid` (the kernel's next PID set through ns_last_pid; another
    fork on this busy host may take it first: tried again, a bounded number of times)."""
    for _ in range(attempts):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid - 1))
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        if proc.pid == pid:
            return proc
        proc.kill()
        proc.wait()
    pytest.fail(f"could not start a process with PID {pid}")


@pytest.mark.parametrize(("kind", "flag", "unshare"), [
    ("ipc", "--ipc", "--ipc"), ("net", "--network", "--net")])
def test_a_restart_never_joins_a_reused_pid(barque: Barque, tmp_path: os.PathLike[str],
                                            kind: str, flag: str, unshare: str) -> None:
    """The attack: the donor dies and its PID is taken by another process (here one in a
    namespace of its own, a harmless `sleep`) before the joiner's policy restarts it: a spec
    naming /proc/PID/ns/... would put the joiner in that process's namespace."""
    tools.require("unshare")
    out = str(tmp_path)
    donor = _run_d(barque, "vdonor", "--ipc", "shareable")
    pid = int(donor["State"]["Pid"])
    ok(barque.run("run", "-d", "--name", "vjoiner", "--restart", "always",
                  *(["--network", "none"] if kind != "net" else []),
                  flag, "container:vdonor", "-v", f"{out}:/out", "busybox", "sh", "-c",
                  f"readlink /proc/self/ns/{kind} >> /out/seen; sleep 2; exit 1"))
    seen = os.path.join(out, "seen")
    until(lambda: os.path.exists(seen))
    ok(barque.run("kill", "vdonor"))
    until(lambda: not os.path.exists(f"/proc/{pid}"))
    victim = _process_at_pid(pid, ["unshare", unshare, "sleep", "60"])
    try:
        until(lambda: _ns(pid, kind) != _ns("self", kind))  # unshared, then sleeping
        runs = len(_words(seen))
        until(lambda: len(_words(seen)) > runs, timeout=30)
        inodes = _words(seen)
        assert _ns(pid, kind) not in inodes  # never the victim's
        assert set(inodes) == {inodes[0]}  # always the donor's
    finally:
        victim.kill()
        victim.wait()


def _words(path: str) -> list[str]:
    with open(path) as f:
        return f.read().split()


def test_explain_shows_namespaces_shared_with_another_container(barque: Barque) -> None:
    _run_d(barque, "edonor", "--ipc", "shareable")
    _run_d(barque, "ejoiner", "--ipc", "container:edonor", "--pid", "container:edonor")
    facts = json.loads(ok(barque.run("explain", "--format", "json", "ejoiner")))
    shared = {ns["type"]: ns for ns in facts["namespaces"]}
    for kind in ("pid", "ipc"):
        assert shared[kind]["private"] and shared[kind]["shared_with"] == ["edonor"]
    assert shared["mnt"]["shared_with"] == []
    assert "sees the processes of edonor too" in shared["pid"]["meaning"]
    text = ok(barque.run("explain", "edonor"))
    rows = {line.split()[0]: line for line in text.splitlines() if line.startswith(" ")}
    assert rows["pid"].split()[1:4] == ["shared", "with", "ejoiner,"]
    assert rows["ipc"].split()[1:4] == ["shared", "with", "ejoiner,"]
    assert rows["mnt"].split()[1] == "private,"
