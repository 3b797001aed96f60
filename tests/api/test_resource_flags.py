"""HostConfig's CgroupParent, DeviceCgroupRules, Blkio* device fields and MemorySwappiness
through `barque serve`, as the docker CLI sends them (and --cidfile, its own), and dockerd's
400s for bad values."""

from __future__ import annotations

import json
import os
import stat

import pytest

from tests.api.conftest import Server

pytestmark = pytest.mark.root

V1 = not os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def _whole_disk() -> str:
    names = sorted(os.listdir("/sys/block"))
    for name in [n for n in names if not n.startswith(("loop", "ram", "zram"))] + names:
        try:
            if stat.S_ISBLK(os.stat(f"/dev/{name}").st_mode):
                return f"/dev/{name}"
        except OSError:
            continue
    raise AssertionError("no block device node on this host")


def test_docker_cli_resource_flags(server: Server, run_prefix: str, tmp_path: str) -> None:
    disk = _whole_disk()
    rdev = os.stat(disk).st_rdev
    numbers = f"{os.major(rdev)}:{os.minor(rdev)}"
    cid = os.path.join(str(tmp_path), "cid")
    parent = f"/{run_prefix}-api-cgp"
    files = ["/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device"] if V1 else \
        ["/sys/fs/cgroup/io.max"]
    try:
        out = server.docker("run", "--name", "res", "--network", "none", "--cidfile", cid,
                            "--cgroup-parent", parent, "--device-read-bps", f"{disk}:1mb",
                            "--device-cgroup-rule", "c 42:* r", "--memory-swappiness", "0",
                            "busybox", "sh", "-c", f"cat {' '.join(files)} /proc/self/cgroup")
        assert out.returncode == 0, out.stderr
        with open(cid) as f:
            container_id = f.read()
        assert f"{numbers} " in out.stdout and "1048576" in out.stdout
        assert f"{parent}/{container_id}" in out.stdout
        out = server.docker("inspect", "res")
        host_config = json.loads(out.stdout)[0]["HostConfig"]
        assert host_config["CgroupParent"] == parent
        assert host_config["DeviceCgroupRules"] == ["c 42:* r"]
        assert host_config["BlkioDeviceReadBps"] == [{"Path": disk, "Rate": 1048576}]
        assert host_config["ContainerIDFile"] == cid
        assert host_config["MemorySwappiness"] == (0 if V1 else None)
    finally:
        server.docker("rm", "-f", "res")
        for top in os.listdir("/sys/fs/cgroup") if V1 else [""]:
            try:
                os.rmdir(f"/sys/fs/cgroup/{top}{parent}".replace("//", "/"))
            except OSError:
                pass


@pytest.mark.parametrize("host_config, words", [
    ({"DeviceCgroupRules": ["c 1:3"]}, "invalid device cgroup rule format: 'c 1:3'"),
    ({"DeviceCgroupRules": "c 1:3 rwm"}, "json: cannot unmarshal"),
    ({"BlkioDeviceReadBps": [{"Path": "/dev/nonexistent-disk", "Rate": 1}]},
     "stat /dev/nonexistent-disk: no such file or directory"),
    ({"BlkioWeightDevice": [{"Path": "/dev/null", "Weight": 70000}]}, "json: cannot unmarshal"),
    ({"CgroupParent": 7}, "json: cannot unmarshal"),
    ({"BlkioWeight": -1}, "json: cannot unmarshal number -1"),
    ({"MemorySwappiness": "lots"}, "json: cannot unmarshal str"),
])
def test_bad_values_are_400_and_make_nothing(server: Server, host_config: dict,
                                             words: str) -> None:
    body = json.dumps({"Image": "busybox", "Cmd": ["true"], "HostConfig": host_config})
    status, _, reply = server.request("POST", "/v1.43/containers/create", body.encode(),
                                      {"Content-Type": "application/json"})
    assert status == 400, reply
    assert words in json.loads(reply)["message"]
    out = server.docker("ps", "-aq")
    assert out.stdout == ""


def test_swappiness_out_of_range_or_discarded(server: Server) -> None:
    body = json.dumps({"Image": "busybox", "Cmd": ["true"],
                       "HostConfig": {"MemorySwappiness": 101}})
    status, _, reply = server.request("POST", "/v1.43/containers/create", body.encode(),
                                      {"Content-Type": "application/json"})
    if V1:
        assert (status, json.loads(reply)["message"]) == (
            400, "Invalid value: 101, valid memory swappiness range is 0-100")
    else:  # v2 has no swappiness: dropped with dockerd's warning
        assert status == 201 and "Memory swappiness discarded." in reply.decode()


def test_sdk_resource_fields(server: Server, run_prefix: str) -> None:
    """The Docker SDK's names for them (compose's cgroup_parent, device_cgroup_rules and
    blkio_config send the same fields)."""
    import docker

    disk = _whole_disk()
    rdev = os.stat(disk).st_rdev
    parent = f"/{run_prefix}-sdk-cgp"
    client = docker.DockerClient(base_url=server.host)
    script = "cat /sys/fs/cgroup/blkio/blkio.throttle.write_iops_device; cat /proc/self/cgroup" \
        if V1 else "cat /sys/fs/cgroup/io.max; cat /proc/self/cgroup"
    try:
        out = client.containers.run(
            "busybox", ["sh", "-c", script], name="sdkres", network_mode="none",
            cgroup_parent=parent, device_cgroup_rules=["c 42:* r"],
            device_write_iops=[{"Path": disk, "Rate": 77}]).decode()
        assert f"{os.major(rdev)}:{os.minor(rdev)}" in out and "77" in out
        container = client.containers.get("sdkres")
        assert f"{parent}/{container.id}" in out
        host_config = container.attrs["HostConfig"]
        assert (host_config["CgroupParent"], host_config["DeviceCgroupRules"]) == (
            parent, ["c 42:* r"])
        assert host_config["BlkioDeviceWriteIOps"] == [{"Path": disk, "Rate": 77}]
    finally:
        server.docker("rm", "-f", "sdkres")
        client.close()
        for top in os.listdir("/sys/fs/cgroup") if V1 else [""]:
            try:
                os.rmdir(f"/sys/fs/cgroup/{top}{parent}".replace("//", "/"))
            except OSError:
                pass
