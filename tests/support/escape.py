"""The escape-attempt program (escape.c) and what the escape tests share about the host."""

from __future__ import annotations

import os
import subprocess

from tests.support import tools

SOURCE = os.path.join(os.path.dirname(__file__), "escape.c")

# Attacks escape.c makes with raw syscalls that Docker's default seccomp profile refuses
# (and that the 14 default capabilities would not allow anyway, except where noted).
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
]  # fmt: skip

# Those that still fail without seccomp (--security-opt seccomp=unconfined): each needs a
# capability the default set lacks (CAP_SYS_ADMIN, CAP_SYS_MODULE, CAP_DAC_READ_SEARCH).
# keyctl/add_key, unshare(CLONE_NEWUSER) and clone(CLONE_NEWUSER) do succeed then, as under
# Docker; perf_event_open and userfaultfd then depend on the host's sysctls.
CAPABILITY_ATTACKS = ["bpf", "unshare_mount", "module", "fsopen"]


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


def host_block_devices() -> list[tuple[str, int, int]]:
    """(name, major, minor) of the host's block devices, the root's first."""
    root = os.stat("/").st_dev
    devices = []
    for name in sorted(os.listdir("/sys/class/block")):
        try:
            with open(f"/sys/class/block/{name}/dev") as f:
                major, minor = (int(n) for n in f.read().split(":"))
        except (OSError, ValueError):
            continue
        devices.append((name, major, minor))
    devices.sort(key=lambda d: os.makedev(d[1], d[2]) != root)
    return devices[:8]  # bounded: a host with hundreds of loop devices needs no more


def read_text(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None
