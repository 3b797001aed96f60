"""The escape-attempt program (escape.c) and what the escape tests share about the host."""

from __future__ import annotations

import os
import subprocess
import uuid

from tests.support import tools

SOURCE = os.path.join(os.path.dirname(__file__), "escape.c")

# Attacks escape.c makes with raw syscalls that Docker's default seccomp profile refuses
# (and that the 14 default capabilities would not allow anyway, except where noted). Each is
# harmless if allowed: see escape.c.
SECCOMP_ATTACKS = [
    "keyctl", "add_key", "request_key",  # the kernel keyring is not namespaced
    "bpf",
    "unshare_user",  # CLONE_NEWUSER|CLONE_NEWNS: root in a new user ns, then mount
    "unshare_mount",
    "clone_user",  # the same flags through clone(2)
    "userfaultfd",
    "perf_event_open",
    "module",  # init_module, finit_module
    "fsopen",  # the new mount API
    "reboot", "kexec", "swapon", "settime", "ioperm",
]  # fmt: skip

# Those that still fail without seccomp (--security-opt seccomp=unconfined): each needs a
# capability the default set lacks (CAP_SYS_ADMIN, CAP_SYS_MODULE, CAP_DAC_READ_SEARCH).
# keyctl/add_key, unshare(CLONE_NEWUSER) and clone(CLONE_NEWUSER) do succeed then, as under
# Docker; perf_event_open and userfaultfd then depend on the host's sysctls.
CAPABILITY_ATTACKS = ["bpf", "unshare_mount", "module", "fsopen", "reboot", "kexec", "swapon",
                      "settime", "ioperm"]


def build(dest_dir: str) -> str:
    """Compile escape.c statically into dest_dir; returns the binary's path."""
    tools.require("gcc")
    out = os.path.join(dest_dir, "escape")
    proc = subprocess.run(["gcc", "-static", "-O1", "-o", out, SOURCE],
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"gcc -static failed (libc6-dev installed?): {proc.stderr}"
    return out


def assert_blocked(rc: int, out: str, err: str = "") -> None:
    """escape's verdict: rc 0 and "blocked:"; rc 3 "ESCAPED:" is a hole in the boundary."""
    assert "ESCAPED" not in out, f"escape succeeded: {out} {err}"
    assert rc == 0 and "blocked:" in out, (rc, out, err)


def assert_left_the_jail(rc: int, out: str, container_path: str) -> None:
    """The double chroot's control: it got out of its nested jail, to the container's root
    (which has container_path) or, where the host itself runs chrooted from an initramfs
    (a guest, DOCKER_RAMDISK setups), to that initramfs, as it does under runc: pivot_root
    cannot make the container's root the mount namespace's root there."""
    if rc == 3:
        assert f"ESCAPED: {container_path}" in out, out
        return
    landed = out.partition("landed in a root holding:")[2].partition(")")[0].split()
    assert rc == 0 and landed and "init" in landed, out


def host_block_devices(readable: bool = False) -> list[tuple[str, int, int]]:
    """(name, major, minor) of the host's block devices, the root's first; with readable,
    only those this (host, root) process can open, so that a container failing to is the
    boundary's doing (some hosts refuse even root its own root disk)."""
    root = os.stat("/").st_dev
    devices = []
    for name in sorted(os.listdir("/sys/class/block")):
        try:
            with open(f"/sys/class/block/{name}/dev") as f:
                major, minor = (int(n) for n in f.read().split(":"))
            if readable:
                os.close(os.open(f"/dev/{name}", os.O_RDONLY))
        except (OSError, ValueError):
            continue
        devices.append((name, major, minor))
    devices.sort(key=lambda d: os.makedev(d[1], d[2]) != root)
    return devices[:8]  # bounded: a host with hundreds of loop devices needs no more


def host_readable_devices() -> list[tuple[str, str, int, int]]:
    """(name, "b" or "c", major, minor) of device nodes the host can read and a container must
    not: its disks and, for a host without any (a guest on 9p), the kernel log (/dev/kmsg,
    1:11, which each reader reads from its own position: reading takes nothing away)."""
    nodes = [(name, "b", major, minor) for name, major, minor in host_block_devices(True)]
    try:
        os.close(os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK))
        nodes.append(("kmsg", "c", 1, 11))
    except OSError:
        pass
    return nodes


def read_text(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


# The busybox attacks are shell scripts made of `try NAME COMMAND...` lines: each prints
# "NAME RC" with the command's own output discarded.
TRY = 'try() { name=$1; shift; "$@" >/dev/null 2>&1; echo "$name $?"; }\n'


def results(stdout: str) -> dict[str, int]:
    found = {}
    for line in stdout.splitlines():
        name, _, rc = line.rpartition(" ")
        found[name] = int(rc)
    assert found, stdout
    return found


def assert_all_failed(found: dict[str, int]) -> None:
    succeeded = [name for name, rc in found.items() if rc == 0]
    assert not succeeded, f"these attempts succeeded: {succeeded} (all: {found})"


def mount_script() -> str:
    """Mount the host's disks (through nodes made with mknod), proc, sysfs, cgroupfs; bind
    the root; remount read-only parts read-write; unmount a masked path; enter pid 1's
    namespaces; set the hostname."""
    devices = host_block_devices()  # none on a guest whose root is 9p: the rest still holds
    script = "mkdir -p /tmp/m\n"
    for name, major, minor in devices:
        script += (f"mknod /tmp/d-{name} b {major} {minor} 2>/dev/null\n"
                   f"try mount-{name} mount -o ro /tmp/d-{name} /tmp/m\n")
    return script + f"""
try mount-proc mount -t proc proc /tmp/m
try mount-sysfs mount -t sysfs sysfs /tmp/m
try mount-tmpfs mount -t tmpfs tmpfs /tmp/m
try mount-cgroup mount -t cgroup -o none,name=bq{uuid.uuid4().hex[:8]} cgroup /tmp/m
try mount-cgroup2 mount -t cgroup2 cgroup2 /tmp/m
try bind-root mount --bind / /tmp/m
try remount-proc-sys mount -o remount,rw /proc/sys
try remount-sys mount -o remount,rw /sys
try remount-cgroup mount -o remount,rw /sys/fs/cgroup
try umount-proc-sys umount /proc/sys
try umount-masked umount /proc/keys
try nsenter nsenter -t 1 -m -u -i -n -p true
try sethostname hostname bq-escaped
"""


def device_read_script() -> str:
    """mknod each node of host_readable_devices() (allowed where CAP_MKNOD is), then read or
    open it."""
    nodes = host_readable_devices()
    assert nodes, "no device node the host itself can read"
    script = ""
    for name, kind, major, minor in nodes:
        node = f"/tmp/d-{name}"
        script += (f"mknod {node} {kind} {major} {minor}; echo mknod-{name} $? >&2\n"
                   f"try read-{name} dd if={node} of=/dev/null bs=512 count=1\n"
                   f"try open-rw-{name} sh -c '[ -e {node} ] && : 1<>{node}'\n")
    return script


# Sysctls that are the host's (not namespaced) or classic escape routes (core_pattern,
# modprobe); each is written back with its own value, so a write that got through would
# change nothing.
PROC_SYS = ["vm/swappiness", "kernel/core_pattern", "kernel/hostname", "kernel/modprobe",
            "kernel/panic", "fs/suid_dumpable", "kernel/randomize_va_space", "net/core/somaxconn"]
PROC_SYS_SCRIPT = "".join(
    f"p=/proc/sys/{name}; if [ -e $p ]; then v=$(cat $p); try {name} sh -c \"echo '$v' > $p\"; "
    "fi\n" for name in PROC_SYS
) + "try sysrq-trigger sh -c 'echo h > /proc/sysrq-trigger'\n"  # h: print the help


def proc_sys_values() -> dict[str, str | None]:
    return {name: read_text(f"/proc/sys/{name}") for name in PROC_SYS}


# /sys (THP, uevent_helper: writes of the current value) and the cgroup filesystem (join,
# widen the devices list, set a release agent, make a cgroup).
SYS_SCRIPT = """
t=/sys/kernel/mm/transparent_hugepage/enabled
if [ -e $t ]; then v=$(sed 's/.*\\[\\(.*\\)\\].*/\\1/' $t); try thp sh -c "echo $v > $t"; fi
u=/sys/kernel/uevent_helper
if [ -e $u ]; then v=$(cat $u); try uevent_helper sh -c "echo '$v' > $u"; fi
try sys-chmod chmod 0777 /sys/kernel
for f in /sys/fs/cgroup/cgroup.procs /sys/fs/cgroup/*/cgroup.procs; do
  [ -e $f ] && try "write $f" sh -c "echo 1 > $f"
done
for f in /sys/fs/cgroup/devices.allow /sys/fs/cgroup/*/devices.allow; do
  [ -e $f ] && try "write $f" sh -c "echo a > $f"
done
for f in /sys/fs/cgroup/release_agent /sys/fs/cgroup/*/release_agent; do
  [ -e $f ] && try "write $f" sh -c "echo /x > $f"
done
for d in /sys/fs/cgroup /sys/fs/cgroup/*; do try "mkdir $d" mkdir $d/bq-escaped; done
"""
