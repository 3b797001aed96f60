"""Escape attempts from inside a default container (`barque run --rm busybox …`): Docker's 14
capabilities, Docker's default seccomp profile, masked and read-only paths. Every attempt
must fail and leave the host as it was. Each is bounded and harmless even if it worked: it
reads, writes a value back unchanged, touches a marker in a run-prefixed temp dir, or works
on a private cgroup hierarchy. The raw-syscall attacks are tests/support/escape.c."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid

import pytest

from barque.engine.spec import DOCKER_MASKED_PATHS
from tests.cli.conftest import Barque, ok, until
from tests.support import escape
from tests.support.marks import needs_busybox

pytestmark = [pytest.mark.root, needs_busybox]

UNCONFINED = ("--security-opt", "seccomp=unconfined")


def attack(barque: Barque, escape_dir: str, *args: str,
           options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return barque.run("run", "--rm", *options, "-v", f"{escape_dir}:/x:ro", "busybox",
                      "/x/escape", *args)


def assert_blocked(proc: subprocess.CompletedProcess[str]) -> None:
    escape.assert_blocked(proc.returncode, proc.stdout, proc.stderr)


def shell(barque: Barque, script: str, options: tuple[str, ...] = ()) -> dict[str, int]:
    proc = barque.run("run", "--rm", *options, "busybox", "sh", "-c", escape.TRY + script)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return escape.results(proc.stdout)


def host_files(path: str) -> list[str]:
    return sorted(os.path.join(d, n) for d, dirs, files in os.walk(path) for n in dirs + files)


# Raw syscalls under the default seccomp profile.

@pytest.mark.parametrize("name", escape.SECCOMP_ATTACKS)
def test_syscall_blocked_by_default_seccomp(barque: Barque, escape_dir: str, name: str) -> None:
    proc = attack(barque, escape_dir, name)
    assert_blocked(proc)
    assert "Operation not permitted" in proc.stdout, proc.stdout  # seccomp's EPERM


@pytest.mark.parametrize("name", escape.CAPABILITY_ATTACKS)
def test_syscall_blocked_without_seccomp_by_capabilities(barque: Barque, escape_dir: str,
                                                         name: str) -> None:
    assert_blocked(attack(barque, escape_dir, name, options=UNCONFINED))


@pytest.mark.parametrize("options", [(), UNCONFINED], ids=["default", "seccomp-unconfined"])
def test_shocker_open_by_handle_at(barque: Barque, escape_dir: str,
                                   options: tuple[str, ...]) -> None:
    # /etc/hostname is a bind mount of a host file: a handle to its filesystem's root inode
    # would be the host's root directory.
    assert_blocked(attack(barque, escape_dir, "shocker", "/etc/hostname", options=options))


def test_ptrace_a_host_process(barque: Barque, escape_dir: str) -> None:
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        proc = attack(barque, escape_dir, "ptrace", str(sleeper.pid))
        assert_blocked(proc)
        with open(f"/proc/{sleeper.pid}/status") as f:
            status = dict(line.split(":", 1) for line in f)
        assert status["TracerPid"].strip() == "0"
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


# The root and the host's paths.

def test_chroot_breakout_stays_in_the_container(barque: Barque, escape_dir: str,
                                                host_dir: str) -> None:
    # Docker keeps CAP_SYS_CHROOT, so the double-chroot trick works: it leaves the nested
    # jail (shown by reaching the container's own /etc/hostname) but climbs no further than
    # the container's root, which pivot_root made the mount namespace's root.
    inside = attack(barque, escape_dir, "chroot", "/etc/hostname")
    escape.assert_left_the_jail(inside.returncode, inside.stdout, "/etc/hostname")
    assert_blocked(attack(barque, escape_dir, "chroot", os.path.join(host_dir, "marker")))


def test_proc_root_cwd_exe_stay_inside(barque: Barque, escape_dir: str, host_dir: str) -> None:
    assert_blocked(attack(barque, escape_dir, "procwalk", os.path.join(host_dir, "marker")))


def test_another_containers_files_unreachable_through_proc(barque: Barque,
                                                           escape_dir: str) -> None:
    secret = f"/tmp/secret-{uuid.uuid4().hex}"
    ok(barque.run("run", "-d", "--name", "victim", "-v", f"{escape_dir}:/x:ro", "busybox",
                  "sh", "-c", f"echo s > {secret}; exec sleep 60"))
    until(lambda: barque.run("exec", "victim", "test", "-e", secret).returncode == 0)
    # The walk finds the file from inside its own container: it would see it if it could.
    own = barque.run("exec", "victim", "/x/escape", "procwalk", secret)
    assert own.returncode == 3 and "ESCAPED" in own.stdout, own
    assert_blocked(attack(barque, escape_dir, "procwalk", secret))
    ok(barque.run("rm", "-f", "victim"))


# Mounts and devices.

def test_mounting_the_host_filesystem_fails(barque: Barque) -> None:
    script = escape.mount_script()
    escape.assert_all_failed(shell(barque, script))
    escape.assert_all_failed(shell(barque, script, UNCONFINED))
    assert socket.gethostname() != "bq-escaped"


def test_fresh_proc_or_sysfs_in_a_user_namespace_fails(barque: Barque) -> None:
    # Without seccomp a container may make a user namespace and be root in it; a new proc or
    # sysfs mount there would show what the masked and read-only paths hide. The kernel
    # refuses it because the container's own /proc and /sys have those mounts over them
    # (mount_too_revealing); a --privileged container, without them, succeeds.
    script = ("try proc unshare -Urmpf --mount-proc true\n"
              "try sysfs unshare -Urmnf mount -t sysfs sysfs /sys\n")
    escape.assert_all_failed(shell(barque, script, UNCONFINED))


def test_dev_holds_only_the_standard_nodes(barque: Barque) -> None:
    out = ok(barque.run("run", "--rm", "busybox", "ls", "/dev"))
    assert set(out.split()) <= {"console", "core", "fd", "full", "mqueue", "null", "ptmx", "pts",
                                "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom",
                                "zero"}, out


def test_mknod_of_the_host_disk_cannot_be_read(barque: Barque) -> None:
    # CAP_MKNOD and the devices cgroup's "b *:* m" let mknod succeed, as in Docker; the
    # devices cgroup denies opening the node.
    script = escape.device_read_script()
    escape.assert_all_failed(shell(barque, script))


def test_loading_a_module_fails(barque: Barque, escape_dir: str) -> None:
    assert_blocked(attack(barque, escape_dir, "module"))
    results = shell(barque, "echo 'not a module' > /tmp/m.ko\ntry insmod insmod /tmp/m.ko\n"
                            "try modprobe-path sh -c 'echo /tmp/x > /proc/sys/kernel/modprobe'\n")
    escape.assert_all_failed(results)


# /proc and /sys.

def test_proc_sys_and_sysrq_are_read_only(barque: Barque) -> None:
    # Each value is written back unchanged: a write that got through would change nothing.
    before = escape.proc_sys_values()
    results = shell(barque, escape.PROC_SYS_SCRIPT)
    assert "vm/swappiness" in results and "kernel/core_pattern" in results, results
    escape.assert_all_failed(results)
    assert escape.proc_sys_values() == before


def test_masked_paths_read_empty(barque: Barque) -> None:
    # /proc/kcore (the host's memory), /proc/keys (every keyring's description), ...
    script = "".join(f"if [ -d {p} ]; then echo {p} $(ls -A {p} | wc -l); "
                     f"elif [ -e {p} ]; then echo {p} $(cat {p} 2>/dev/null | wc -c); fi\n"
                     for p in DOCKER_MASKED_PATHS)
    results = shell(barque, script)
    nonempty = {p: n for p, n in results.items() if n}
    assert not nonempty, nonempty
    if os.path.exists("/proc/keys"):
        assert "/proc/keys" in results  # masked by /dev/null, not missing


def test_sys_and_cgroupfs_are_read_only(barque: Barque) -> None:
    results = shell(barque, escape.SYS_SCRIPT)
    assert any(name.startswith("write /sys/fs/cgroup") for name in results), results
    escape.assert_all_failed(results)


@pytest.mark.parametrize("options", [(), UNCONFINED], ids=["default", "seccomp-unconfined"])
def test_cgroup_v1_release_agent(barque: Barque, escape_dir: str, host_dir: str,
                                 run_prefix: str, options: tuple[str, ...]) -> None:
    # CVE-2022-0492: the release agent would be run by the host's kernel as root. It only
    # touches a marker; the hierarchy is a new named one, none of the host's.
    agent = os.path.join(host_dir, "agent")
    pwned = os.path.join(host_dir, "pwned")
    with open(agent, "w") as f:
        f.write(f"#!/bin/sh\ntouch {pwned}\n")
    os.chmod(agent, 0o755)
    proc = attack(barque, escape_dir, "release_agent", agent, run_prefix, options=options)
    assert_blocked(proc)
    assert not os.path.exists(pwned)


# Volumes and mounts with "..".

def confined_mount_cases(host_dir: str, src: str) -> dict[str, list[str]]:
    target = "/../../../.." + os.path.join(host_dir, "escaped")
    return {
        "-v": ["-v", f"{src}:{target}"],
        "--mount bind": ["--mount", f"type=bind,src={src},dst=/a/../../../..{target}"],
        "--tmpfs": ["--tmpfs", target],
        "-v volume": ["-v", f"vol1:{target}"],
        "--mount volume": ["--mount", f"type=volume,src=vol2,dst=/a/..{target}"],
    }


@pytest.mark.parametrize("case", ["-v", "--mount bind", "--tmpfs", "-v volume",
                                  "--mount volume"])
def test_mount_target_with_dotdot_stays_inside(barque: Barque, host_dir: str,
                                               case: str) -> None:
    src = os.path.join(host_dir, "src")
    os.mkdir(src)
    before = host_files(host_dir)
    flags = confined_mount_cases(host_dir, src)[case]
    inside = os.path.join(host_dir, "escaped")
    out = ok(barque.run("run", "--rm", *flags, "busybox", "sh", "-c",
                        f"grep -c ' {inside} ' /proc/self/mountinfo"))
    assert out.strip() == "1"  # mounted at the cleaned path inside the container
    assert host_files(host_dir) == before  # and nothing made on the host


@pytest.mark.parametrize("args", [
    ["run", "--rm", "-v", "..:/data", "busybox", "true"],
    ["run", "--rm", "-v", "../../../x:/data", "busybox", "true"],
    ["run", "--rm", "--mount", "type=volume,src=..,dst=/data", "busybox", "true"],
    ["run", "--rm", "--mount", "type=volume,src=../x,dst=/data", "busybox", "true"],
    ["run", "--rm", "-v", "/tmp:/x/../..", "busybox", "true"],
    ["run", "--rm", "--tmpfs", "/x/..", "busybox", "true"],
    ["volume", "create", ".."],
    ["volume", "create", "../../x"],
], ids=lambda a: " ".join(a[1:-2] if a[0] == "run" else a))
def test_volume_names_and_targets_with_dotdot_refused(barque: Barque,
                                                      args: list[str]) -> None:
    proc = barque.run(*args)
    assert proc.returncode in (1, 125), proc
    assert "Error" in proc.stderr, proc.stderr
    assert barque.run("volume", "ls", "-q").stdout.strip() == ""
    volumes = os.path.join(barque.root, "volumes")
    assert not os.path.isdir(volumes) or os.listdir(volumes) == []


@pytest.mark.parametrize("target", ["/proc", "/proc/sys", "/proc/kcore", "/proc/1/root"])
def test_volume_over_proc_refused(barque: Barque, host_dir: str, target: str) -> None:
    # A host directory over the container's /proc would make the masked and read-only paths
    # apply to a fake: refused at start, as Docker's runc refuses it.
    src = os.path.join(host_dir, "src")
    os.mkdir(src)
    proc = barque.run("run", "--rm", "-v", f"{src}:{target}", "busybox", "true")
    assert proc.returncode == 125, proc
    assert "cannot be mounted because it is" in proc.stderr, proc.stderr
    assert os.listdir(src) == []


def test_user_mount_at_dev_replaces_the_default_dev_mounts(barque: Barque, host_dir: str) -> None:
    # As moby: a user mount replaces the defaults at and (for /dev) under its destination;
    # otherwise /dev/pts, /dev/shm and /dev/mqueue mount points were made in the host dir.
    src = os.path.join(host_dir, "src")
    os.mkdir(src)
    count = "awk 'index($5, \"/dev/\") == 1 {n++} END {print n+0}' /proc/self/mountinfo"
    out = ok(barque.run("run", "--rm", "-v", f"{src}:/dev", "busybox", "sh", "-c", count))
    assert out.strip() == "0"
    assert os.listdir(src) == []
