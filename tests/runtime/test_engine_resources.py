"""The engine's linux.resources for HostConfig's block I/O, swappiness and device cgroup rule
fields, and its cgroupsPath for CgroupParent, applied by barque-runtime: on this host's cgroup
driver and (scripts/test) in the pure cgroup v2 guest."""

from __future__ import annotations

import os

import pytest

from barque.engine import spec, spec_resources
from tests.support.bundles import Runtime

pytestmark = pytest.mark.root

V2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
MiB = 1 << 20


def _disk_node(directory: str) -> tuple[str, str] | None:
    """A node in `directory` for a whole disk of this machine (the kernel throttles disks,
    not partitions) and its numbers: the engine takes them from the node it is given, and the
    v2 guest may have no /dev entry of its own for the disk."""
    for name in sorted(os.listdir("/sys/block")):
        try:
            with open(f"/sys/block/{name}/dev") as f:
                numbers = f.read().strip()
        except OSError:
            continue
        major, minor = (int(n) for n in numbers.split(":"))
        path = os.path.join(directory, name)
        os.mknod(path, 0o600 | 0o060000, os.makedev(major, minor))  # S_IFBLK
        return path, numbers
    return None


def _cat(runtime: Runtime, host_config: dict, files: list[str], cgroups_path: str) -> str:
    spec_ = runtime.spec(["sh", "-c", f"cat {' '.join(files)} /proc/self/cgroup"])
    resources = spec_resources.resources(host_config)
    spec_["linux"]["resources"] = resources
    spec_["linux"]["cgroupsPath"] = cgroups_path
    # /proc/self/cgroup as the host names the cgroup (runc's default spec has a cgroup
    # namespace on v2)
    spec_["linux"]["namespaces"] = [ns for ns in spec_["linux"]["namespaces"]
                                    if ns["type"] != "cgroup"]
    return runtime.run(spec_, check=True).stdout.decode()


def test_block_io_throttles_from_host_config(runtime: Runtime, tmp_path: str) -> None:
    found = _disk_node(str(tmp_path))
    if found is None:
        pytest.skip("no block device on this machine")
    node, numbers = found
    host_config = {"BlkioDeviceReadBps": [{"Path": node, "Rate": MiB}],
                   "BlkioDeviceWriteBps": [{"Path": node, "Rate": 2 * MiB}],
                   "BlkioDeviceReadIOps": [{"Path": node, "Rate": 100}],
                   "BlkioDeviceWriteIOps": [{"Path": node, "Rate": 200}]}
    cid = runtime.new_id()
    if V2:
        out = _cat(runtime, host_config, ["/sys/fs/cgroup/io.max"], f"/{cid}")
        assert f"{numbers} rbps={MiB} wbps={2 * MiB} riops=100 wiops=200" in out
        return
    names = ["read_bps_device", "write_bps_device", "read_iops_device", "write_iops_device"]
    out = _cat(runtime, host_config, [f"/sys/fs/cgroup/blkio/blkio.throttle.{n}"
                                      for n in names], f"/{cid}")
    assert out.splitlines()[:4] == [f"{numbers} {MiB}", f"{numbers} {2 * MiB}",
                                    f"{numbers} 100", f"{numbers} 200"]


def test_swappiness_and_device_rules_from_host_config(runtime: Runtime) -> None:
    """/dev/kmsg (always there): opening it write-only needs no privilege but the device
    cgroup's "w" (and writes nothing)."""
    host_config = {"MemorySwappiness": 23, "DeviceCgroupRules": ["c 1:11 w"]}
    # (v2 has no swappiness: the engine drops it there with dockerd's warning)
    script = ("cat /sys/fs/cgroup/memory/memory.swappiness; " if not V2 else "") + \
        "mknod /tmp/k c 1 11 && exec 3>/tmp/k && echo opened"
    spec_ = runtime.spec(["sh", "-c", script])
    for kind in ("bounding", "effective", "permitted"):
        spec_["process"]["capabilities"][kind] = ["CAP_MKNOD"]
    spec_["linux"]["resources"] = spec_resources.resources(host_config)
    out = runtime.run(spec_, check=True).stdout.decode().split()
    assert out == (["opened"] if V2 else ["23", "opened"])
    spec_["linux"]["resources"] = spec_resources.resources({})
    refused = runtime.run(spec_)
    assert b"opened" not in refused.stdout and b"not permitted" in refused.stderr


def test_cgroup_parent_relative_is_below_the_starters_cgroup(runtime: Runtime) -> None:
    """A relative CgroupParent hangs below the cgroup of the process that runs the runtime:
    on v2 below its parent (that cgroup holds processes, so v2 would give the container's no
    controllers), as runc's fs2 does."""
    cid = runtime.new_id()
    parent = f"{cid}-parent"
    cgroups_path = spec.cgroups_path({"CgroupParent": parent}, cid)
    assert cgroups_path == f"{parent}/{cid}"
    out = _cat(runtime, {"PidsLimit": 41}, [], cgroups_path)
    with open("/proc/self/cgroup") as f:
        own = dict(line.rstrip("\n").split(":", 2)[1:] for line in f)
    key = "" if V2 else "pids"
    base = os.path.dirname(own[key]) if V2 else own[key]
    expected = "/" + f"{base}/{parent}/{cid}".strip("/")
    seen = dict(line.split(":", 2)[1:] for line in out.splitlines() if line.count(":") >= 2)
    assert seen[key] == expected
    # the container's own cgroup went with its delete; the parent (every hierarchy's) is ours
    for top in ["/sys/fs/cgroup"] if V2 else [f"/sys/fs/cgroup/{d}"
                                              for d in os.listdir("/sys/fs/cgroup")]:
        for root, dirs, _ in os.walk(top):
            if parent in dirs:
                os.rmdir(os.path.join(root, parent))
                dirs.remove(parent)


def test_swappiness_kept_on_v1_dropped_with_dockerds_warning_on_v2() -> None:
    from barque.engine import resource_checks

    host_config: dict = {"MemorySwappiness": 30, "BlkioDeviceReadBps": [
        {"Path": "/dev/null", "Rate": 1}]}
    warnings = resource_checks.adapt(host_config)
    dropped = "Your kernel does not support memory swappiness capabilities or the cgroup " \
        "is not mounted. Memory swappiness discarded."
    if V2:
        assert dropped in warnings and host_config["MemorySwappiness"] is None
    else:
        assert dropped not in warnings and host_config["MemorySwappiness"] == 30
    # both drivers have the throttle files (v2: the io controller)
    assert host_config["BlkioDeviceReadBps"] == [{"Path": "/dev/null", "Rate": 1}]
    assert resource_checks.adapt({"MemorySwappiness": -1}) == []  # the CLI's "unset"
