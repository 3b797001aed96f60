"""Escape attempts from inside a container that barque-runtime runs with runc's default spec
(`barque-runtime spec`): three capabilities, no seccomp, no_new_privileges, masked and
read-only paths, a devices cgroup that denies all but the standard nodes. Each attempt must
fail; each is harmless even if it worked (see tests/support/escape.c). runc is the oracle
for the chroot breakout with --no-pivot."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.support import escape
from tests.support.bundles import Runtime, fresh_path

pytestmark = pytest.mark.root


def spec_with(runtime: Runtime, escape_dir: str, args: list[str],
              add_caps: tuple[str, ...] = ()) -> dict:
    spec = runtime.spec(args)
    spec["mounts"].append({"destination": "/x", "type": "bind", "source": escape_dir,
                           "options": ["rbind", "ro"]})
    caps = spec["process"]["capabilities"]
    for key in ("bounding", "effective", "permitted"):
        caps[key] += list(add_caps)
    return spec


def attack(runtime: Runtime, escape_dir: str, *args: str, add_caps: tuple[str, ...] = (),
           runtime_flags: tuple[str, ...] = ()) -> tuple[int, str, str]:
    spec = spec_with(runtime, escape_dir, ["/x/escape", *args], add_caps)
    proc = runtime.cmd("run", *runtime_flags, "--bundle", runtime.bundle(spec),
                       runtime.new_id())
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def shell(runtime: Runtime, script: str, add_caps: tuple[str, ...] = ()) -> dict[str, int]:
    spec = runtime.spec(["sh", "-c", escape.TRY + script])
    for key in ("bounding", "effective", "permitted"):
        spec["process"]["capabilities"][key] += list(add_caps)
    proc = runtime.run(spec)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return escape.results(proc.stdout.decode())


@pytest.mark.parametrize("name", escape.CAPABILITY_ATTACKS)
def test_syscall_blocked_by_capabilities(runtime: Runtime, escape_dir: str, name: str) -> None:
    escape.assert_blocked(*attack(runtime, escape_dir, name))


def test_shocker_open_by_handle_at(runtime: Runtime, escape_dir: str) -> None:
    # /x is a bind mount of a host directory: its filesystem's root inode is a host dir.
    escape.assert_blocked(*attack(runtime, escape_dir, "shocker", "/x/escape"))


def test_release_agent_through_a_user_namespace(runtime: Runtime, escape_dir: str,
                                                host_dir: str, run_prefix: str) -> None:
    # No seccomp here: unshare(CLONE_NEWUSER) works and makes the process root of a new user
    # namespace; the kernel still refuses it a v1 cgroup hierarchy and a release agent.
    agent = os.path.join(host_dir, "agent")
    with open(agent, "w") as f:
        f.write(f"#!/bin/sh\ntouch {host_dir}/pwned\n")
    os.chmod(agent, 0o755)
    escape.assert_blocked(*attack(runtime, escape_dir, "release_agent", agent, run_prefix))
    assert not os.path.exists(os.path.join(host_dir, "pwned"))


def test_ptrace_a_host_process(runtime: Runtime, escape_dir: str) -> None:
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        escape.assert_blocked(*attack(runtime, escape_dir, "ptrace", str(sleeper.pid)))
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_chroot_without_cap_sys_chroot(runtime: Runtime, escape_dir: str,
                                       host_dir: str) -> None:
    rc, out, err = attack(runtime, escape_dir, "chroot", os.path.join(host_dir, "marker"))
    escape.assert_blocked(rc, out, err)
    assert "chroot jail" in out  # refused at the first chroot


@pytest.mark.parametrize("flags", [(), ("--no-pivot",)], ids=["pivot_root", "no-pivot"])
def test_chroot_breakout_stays_in_the_container(runtime: Runtime, escape_dir: str,
                                                host_dir: str, flags: tuple[str, ...]) -> None:
    # With CAP_SYS_CHROOT the double chroot leaves the nested jail (it reaches /x/escape,
    # which only the container has) and reaches no host file: the same as runc, with or
    # without pivot_root (on a host run from an initramfs, both land in that initramfs).
    caps = ("CAP_SYS_CHROOT",)
    rc, out, _ = attack(runtime, escape_dir, "chroot", "/x/escape", add_caps=caps,
                        runtime_flags=flags)
    escape.assert_left_the_jail(rc, out, "/x/escape")
    escape.assert_blocked(*attack(runtime, escape_dir, "chroot",
                                  os.path.join(host_dir, "marker"), add_caps=caps,
                                  runtime_flags=flags))


def test_proc_links_stay_inside(runtime: Runtime, escape_dir: str, host_dir: str) -> None:
    escape.assert_blocked(*attack(runtime, escape_dir, "procwalk",
                                  os.path.join(host_dir, "marker")))


def test_mounting_the_host_filesystem_fails(runtime: Runtime) -> None:
    escape.assert_all_failed(shell(runtime, escape.mount_script()))


@pytest.mark.parametrize("add_caps", [(), ("CAP_MKNOD",)], ids=["default", "cap-mknod"])
def test_host_disk_node_cannot_be_read(runtime: Runtime, add_caps: tuple[str, ...]) -> None:
    # Without CAP_MKNOD there is no node; with it, the devices cgroup refuses opening it.
    escape.assert_all_failed(shell(runtime, escape.device_read_script(), add_caps))


def test_proc_sys_and_sysrq_are_read_only(runtime: Runtime) -> None:
    before = escape.proc_sys_values()
    results = shell(runtime, escape.PROC_SYS_SCRIPT)
    assert "vm/swappiness" in results, results
    escape.assert_all_failed(results)
    assert escape.proc_sys_values() == before


def test_sys_and_cgroupfs_are_read_only(runtime: Runtime) -> None:
    results = shell(runtime, escape.SYS_SCRIPT)
    assert any(name.startswith("write /sys/fs/cgroup") for name in results), results
    escape.assert_all_failed(results)


def bind_spec(runtime: Runtime, source: str, destination: str) -> dict:
    spec = runtime.spec(["true"])
    spec["mounts"].append({"destination": destination, "type": "bind", "source": source,
                           "options": ["rbind"]})
    return spec


def run_bundle(binary: str, state: str, bundle: str, cid: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, "--root", state, "run", "--bundle", bundle, cid],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("destination", ["/proc", "/proc/sys", "/proc/kcore", "/proc/self",
                                         "/proc/1/root", "/data"])
def test_bind_over_proc_refused_like_runc(runtime: Runtime, host_dir: str,
                                          destination: str) -> None:
    # A bind that would cover the container's procfs (or a part of it) with host files, also
    # through an image's symlink (/data -> /proc): the masked and read-only paths would then
    # apply to a fake /proc. runc refuses each (checkProcMount); so must barque-runtime.
    src = os.path.join(host_dir, "src")
    os.mkdir(src)
    bundle = runtime.bundle(bind_spec(runtime, src, destination))
    os.symlink("/proc", fresh_path(os.path.join(bundle, "rootfs", "data")))
    proc = run_bundle(runtime.binary, runtime.state_root, bundle, runtime.new_id())
    assert proc.returncode != 0, proc
    assert "cannot be mounted because it is" in proc.stderr, proc.stderr
    assert os.listdir(src) == []  # no mount point or device made in the host directory
    if shutil.which("runc"):
        oracle = run_bundle("runc", os.path.join(runtime.tmp, "runc-state"), bundle,
                            runtime.new_id())
        assert oracle.returncode != 0, oracle


def test_bind_of_an_lxcfs_file_into_proc_allowed(runtime: Runtime, host_dir: str) -> None:
    # The few files lxcfs emulates stay allowed, as in runc.
    fake = os.path.join(host_dir, "meminfo")
    with open(fake, "w") as f:
        f.write("MemTotal: 1 kB\n")
    spec = bind_spec(runtime, fake, "/proc/meminfo")
    spec["process"]["args"] = ["cat", "/proc/meminfo"]
    proc = runtime.run(spec)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode() == "MemTotal: 1 kB\n"
