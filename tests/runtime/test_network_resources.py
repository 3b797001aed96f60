"""linux.resources.network (net_cls class ID, net_prio priorities): applied where the host has
those v1 controllers, refused where it does not, never silently dropped (issue 8, escape 8)."""

from __future__ import annotations

import os
import shlex
import subprocess

import pytest

from tests.support.bundles import Runtime
from tests.support.tools import require

pytestmark = pytest.mark.root

NETWORK = {"classID": 0x100001, "priorities": [{"name": "lo", "priority": 7}]}


def _mounted_controllers() -> set[str]:
    from barque.cgroups.mountinfo import hierarchies, own_cgroups

    return {c for h in hierarchies(own_cgroups()) for c in h.controllers}


def test_network_limits_refused_without_their_controllers(runtime: Runtime) -> None:
    mounted = _mounted_controllers()
    for network, controller in (({"classID": 0x100001}, "net_cls"),
                                ({"priorities": NETWORK["priorities"]}, "net_prio")):
        if controller in mounted:
            continue  # this host applies it: the test below covers that
        spec = runtime.spec(["true"])
        spec["linux"]["resources"]["network"] = network
        spec["linux"]["cgroupsPath"] = f"/{runtime.prefix}-net-{controller}"
        cid = runtime.new_id()
        proc = runtime.cmd("run", "--bundle", runtime.bundle(spec), cid)
        err = proc.stderr.decode()
        assert proc.returncode != 0, err
        assert f"cannot set {controller}" in err or "net_cls and net_prio" in err, err
        assert "Traceback" not in err and "warning" not in err
        assert not os.path.exists(os.path.join(runtime.state_root, cid))
        assert not [d for d in os.listdir("/sys/fs/cgroup") if os.path.isdir(
            f"/sys/fs/cgroup/{d}/{runtime.prefix}-net-{controller}")]


def test_network_limits_applied_where_mounted(runtime: Runtime, tmp_path: str) -> None:
    """In a mount namespace of its own (the host's mounts are left alone), the test mounts a
    net_cls,net_prio hierarchy, creates a container and reads its class and priorities."""
    require("unshare")
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        pytest.skip("a pure cgroup v2 host: no v1 net_cls/net_prio to apply them with")
    with open("/proc/cgroups") as f:
        known = {line.split()[0] for line in f if not line.startswith("#")}
    if not {"net_cls", "net_prio"} <= known:
        pytest.skip("this kernel has no net_cls/net_prio controllers")
    if {"net_cls", "net_prio"} & _mounted_controllers():
        mount_dir = None  # the host mounts them already: use its hierarchy
    else:
        mount_dir = os.path.join(str(tmp_path), "netcls")
        os.mkdir(mount_dir)
    spec = runtime.spec(["sleep", "30"])
    spec["linux"]["resources"]["network"] = NETWORK
    path = f"/{runtime.prefix}-netcls"
    spec["linux"]["cgroupsPath"] = path
    cid = runtime.new_id()
    bundle = runtime.bundle(spec)
    rt = f"{shlex.quote(runtime.binary)} --root {shlex.quote(runtime.state_root)}"
    where = mount_dir or _host_dir("net_cls")
    script = (
        (f"mount -t cgroup -o net_cls,net_prio none {mount_dir} || exit 99; "
         if mount_dir else "")
        + f"{rt} create --bundle {shlex.quote(bundle)} {cid} || exit 98; "
        f"cat {where}{path}/net_cls.classid; grep '^lo ' {where}{path}/net_prio.ifpriomap; "
        f"{rt} delete --force {cid}; "
        # Unmounted with no cgroup left in it, the kernel destroys the hierarchy it made.
        + (f"umount {mount_dir}" if mount_dir else "true")
    )
    try:
        proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                              capture_output=True, text=True, timeout=60)
    finally:
        if mount_dir:
            _destroy_hierarchy(mount_dir)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert proc.stdout.split() == [str(0x100001), "lo", "7"]


def _host_dir(controller: str) -> str:
    from barque.cgroups.mountinfo import hierarchies, own_cgroups

    return next(h.mountpoint for h in hierarchies(own_cgroups()) if controller in h.controllers)


def _destroy_hierarchy(mount_dir: str) -> None:
    """The kernel keeps a v1 hierarchy whose last unmount came while a removed cgroup of it
    was still dying; a later mount and unmount with nothing left in it destroys it, so that
    the host ends as it began (no net_cls,net_prio line in every /proc/PID/cgroup)."""
    import time

    def present() -> bool:
        with open("/proc/self/cgroup") as f:
            return ":net_cls,net_prio:" in f.read()

    for _ in range(30):
        if not present():
            return
        subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                        f"mount -t cgroup -o net_cls,net_prio none {mount_dir} && "
                        f"umount {mount_dir}"], capture_output=True, timeout=30)
        time.sleep(0.3)
    if present():
        pytest.fail("the net_cls,net_prio hierarchy the test made is still there")
