"""`run`'s resource flags that reach the container's cgroup: --device-{read,write}-{bps,iops},
--blkio-weight-device, --memory-swappiness, --device-cgroup-rule, --cgroup-parent; and
--cidfile. Each value is read back from the cgroup files the container itself sees (and from
the host's side where the path is the point), and each bad value gets the docker CLI's or
dockerd's words."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

import pytest

from tests.cli.conftest import Barque, inspect_container, ok
from tests.support.marks import needs_busybox

pytestmark = [pytest.mark.root, needs_busybox]

V1 = not os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def _whole_disk() -> str:
    """A whole block device of this host (the kernel throttles disks, not partitions)."""
    names = sorted(os.listdir("/sys/block"))
    for name in [n for n in names if not n.startswith(("loop", "ram", "zram"))] + names:
        path = f"/dev/{name}"
        try:
            if stat.S_ISBLK(os.stat(path).st_mode):
                return path
        except OSError:
            continue
    raise AssertionError("no block device node on this host")


def _numbers(path: str) -> str:
    rdev = os.stat(path).st_rdev
    return f"{os.major(rdev)}:{os.minor(rdev)}"


def _blkio_file(name: str) -> str:
    return f"/sys/fs/cgroup/blkio/{name}" if V1 else "/sys/fs/cgroup/io.max"


def test_block_io_throttles_reach_the_cgroup(barque: Barque) -> None:
    disk = _whole_disk()
    numbers = _numbers(disk)
    names = ("blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
             "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device")
    out = ok(barque.run("run", "--name", "io", "--network", "none",
                        "--device-read-bps", f"{disk}:1mb", "--device-write-bps", f"{disk}:2mb",
                        "--device-read-iops", f"{disk}:100", "--device-write-iops",
                        f"{disk}:200", "busybox", "sh", "-c",
                        "cat " + " ".join(dict.fromkeys(_blkio_file(n) for n in names))))
    if V1:
        assert out.split("\n")[:4] == [f"{numbers} 1048576", f"{numbers} 2097152",
                                       f"{numbers} 100", f"{numbers} 200"]
    else:
        assert f"{numbers} rbps=1048576 wbps=2097152 riops=100 wiops=200" in out
    host_config = inspect_container(barque, "io")["HostConfig"]
    assert host_config["BlkioDeviceReadBps"] == [{"Path": disk, "Rate": 1048576}]
    assert host_config["BlkioDeviceWriteIOps"] == [{"Path": disk, "Rate": 200}]


def test_weight_device_and_swappiness_applied_or_discarded_as_dockerd(barque: Barque) -> None:
    """Where the host's cgroups have the file, the value is in it; where not (blk-mq without
    BFQ has no blkio weights; cgroup v2 no swappiness), dockerd's warning and nothing kept."""
    disk = _whole_disk()
    weights = "/sys/fs/cgroup/blkio/blkio.weight_device"
    swappiness = "/sys/fs/cgroup/memory/memory.swappiness"
    result = barque.run("run", "--name", "wd", "--network", "none", "--blkio-weight-device",
                        f"{disk}:300", "--memory-swappiness", "17", "busybox", "sh", "-c",
                        f"cat {swappiness} {weights} 2>/dev/null; true")
    assert result.returncode == 0, result.stderr
    host_config = inspect_container(barque, "wd")["HostConfig"]
    if os.path.exists(swappiness):
        assert result.stdout.split("\n")[0] == "17"
        assert host_config["MemorySwappiness"] == 17
    else:
        assert "WARNING: Your kernel does not support memory swappiness capabilities or the " \
            "cgroup is not mounted. Memory swappiness discarded." in result.stderr
        assert host_config["MemorySwappiness"] is None
    if V1 and os.path.exists(weights):
        assert f"{_numbers(disk)} 300" in result.stdout
        assert host_config["BlkioWeightDevice"] == [{"Path": disk, "Weight": 300}]
    elif V1 and not os.path.exists("/sys/fs/cgroup/blkio/blkio.bfq.weight_device"):
        assert "WARNING: Your kernel does not support Block I/O weight_device or the cgroup " \
            "is not mounted. Weight-device discarded." in result.stderr
        assert host_config["BlkioWeightDevice"] == []


def test_device_cgroup_rules(barque: Barque) -> None:
    """The rules join the default ones: a device node the defaults only let be made (`c *:*
    m`) can be opened once a rule allows it: /dev/kmsg, which needs no privilege to open
    write-only (nothing is written)."""
    script = "mknod /tmp/k c 1 11 && exec 3>/tmp/k && echo opened"
    listing = "cat /sys/fs/cgroup/devices/devices.list; " if V1 else ""
    out = ok(barque.run("run", "--rm", "--network", "none", "--device-cgroup-rule",
                        "c 1:11 w", "--device-cgroup-rule", "b 42:* rm", "busybox", "sh", "-c",
                        listing + script))
    if V1:
        listed = out.splitlines()
        assert "c 1:11 w" in listed and "b 42:* rm" in listed
    assert out.splitlines()[-1] == "opened"
    refused = barque.run("run", "--rm", "--network", "none", "busybox", "sh", "-c", script)
    assert refused.returncode != 0 and "Operation not permitted" in refused.stderr


@pytest.mark.parametrize("flag, value, words", [
    ("--device-cgroup-rule", "c 1:3", "invalid device cgroup format 'c 1:3'"),
    ("--device-cgroup-rule", "x 1:3 rwm", "invalid device cgroup format 'x 1:3 rwm'"),
    ("--device-read-bps", "vda:1", "bad format for device path: vda:1"),
    ("--device-write-bps", "/dev/vda", "bad format: /dev/vda"),
    ("--device-read-bps", "/dev/vda:-1", "invalid rate for device: /dev/vda:-1. The correct "
     "format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is "
     "optional and can be kb, mb, or gb"),
    ("--device-read-iops", "/dev/vda:1k", "invalid rate for device: /dev/vda:1k. The correct "
     "format is <device-path>:<number>. Number must be a positive integer"),
    ("--blkio-weight-device", "/dev/vda:5", "invalid weight for device: /dev/vda:5"),
    ("--blkio-weight-device", "/dev/vda:x", "invalid weight for device: /dev/vda:x"),
    ("--memory-swappiness", "x", 'strconv.ParseInt: parsing "x": invalid syntax'),
])
def test_bad_flag_values_in_the_docker_cli_words(barque: Barque, flag: str, value: str,
                                                 words: str) -> None:
    result = barque.run("run", "--rm", flag, value, "busybox", "true")
    assert result.returncode == 125
    assert result.stderr.splitlines()[0] == f'invalid argument "{value}" for "{flag}" flag: ' \
        f"{words}"
    assert barque.containers() == []


def test_bad_values_the_daemon_refuses(barque: Barque) -> None:
    result = barque.run("run", "--rm", "--memory-swappiness", "101", "busybox", "true")
    assert (result.returncode, result.stderr.splitlines()[0]) == (
        125, "barque: invalid value: 101. Valid memory swappiness range is 0-100.")
    result = barque.run("run", "--rm", "--device-read-bps", "/dev/nonexistent-disk:1",
                        "busybox", "true")
    assert "stat /dev/nonexistent-disk: no such file or directory" in result.stderr
    assert result.returncode != 0
    result = barque.run("run", "--rm", "--cgroup-parent", "a:b:c", "busybox", "true")
    assert result.returncode == 125 and "systemd cgroup driver" in result.stderr
    assert barque.containers() == []


@pytest.fixture
def parents(run_prefix: str) -> Iterator[None]:
    """Removes the host cgroup directories a test's --cgroup-parent made (Docker leaves a
    parent in place, as runc does), in every hierarchy, after the test's containers (the
    test names it before `barque`, whose teardown removes them, so it runs after that)."""
    yield
    for top in os.listdir("/sys/fs/cgroup"):
        for root, dirs, _ in os.walk(os.path.join("/sys/fs/cgroup", top)):
            for name in [d for d in dirs if d.startswith(run_prefix)]:
                dirs.remove(name)
                for below, _, _ in sorted(os.walk(os.path.join(root, name)),
                                          key=lambda e: -len(e[0])):
                    try:
                        os.rmdir(below)
                    except OSError:
                        pass


def _own_cgroups() -> dict[str, str]:
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            own[controllers] = path
    return own


def test_cgroup_parent_absolute_and_relative(parents: None, barque: Barque,
                                            run_prefix: str) -> None:
    absolute = f"/{run_prefix}-cgp/sub"
    out = ok(barque.run("run", "-d", "--name", "abs", "--network", "none", "--cgroup-parent",
                        absolute, "busybox", "sleep", "300"))
    container_id = out.strip()
    pid = inspect_container(barque, "abs")["State"]["Pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        seen = [line.rstrip("\n").split(":", 2)[2] for line in f]
    assert set(seen) == {f"{absolute}/{container_id}"}
    assert inspect_container(barque, "abs")["HostConfig"]["CgroupParent"] == absolute
    # Relative: below the cgroup of the process that starts it (this test's, which the
    # barque command inherits; on v2 that cgroup's parent, as runc's fs2), per hierarchy on
    # v1; a ".." never leaves the hierarchy: it climbs at most to its root.
    relative = f"{run_prefix}-rel"
    own = _own_cgroups()
    for parent, under_own in ((f"{relative}/../{relative}", True),
                              (f"../../../../../../{relative}", False)):
        out = ok(barque.run("run", "--rm", "--network", "none", "--cgroup-parent", parent,
                            "busybox", "cat", "/proc/self/cgroup"))
        for line in out.splitlines():
            controllers, path = line.split(":", 2)[1:]
            base = own[controllers] if V1 else os.path.dirname(own[controllers])
            expected = "/" + f"{base}/{relative}".strip("/") if under_own else f"/{relative}"
            assert os.path.dirname(path) == expected, (parent, line)
    ok(barque.run("rm", "-f", "abs"))
    assert not os.path.exists(f"/sys/fs/cgroup/pids{absolute}/{container_id}"
                              if V1 else f"/sys/fs/cgroup{absolute}/{container_id}")


def test_cidfile(barque: Barque, tmp_path: str) -> None:
    cid = os.path.join(str(tmp_path), "cid")
    ok(barque.run("run", "--rm", "--network", "none", "--cidfile", cid, "busybox", "true"))
    with open(cid) as f:
        written = f.read()
    assert len(written) == 64 and all(c in "0123456789abcdef" for c in written)
    words = ("container ID file found, make sure the other container isn't running or delete "
             f"{cid}")
    result = barque.run("run", "--rm", "--cidfile", cid, "busybox", "true")
    assert (result.returncode, result.stderr) == (
        125, f"barque: {words}.\nSee 'barque run --help'.\n")
    result = barque.run("create", "--cidfile", cid, "busybox", "true")
    assert (result.returncode, result.stderr) == (1, words + "\n")
    assert barque.containers() == []
    os.unlink(cid)
    result = barque.run("create", "--cidfile", cid, "--pull", "never", "nosuchimage", "true")
    assert result.returncode != 0
    assert not os.path.exists(cid)  # removed again: the create failed
    result = barque.run("create", "--cidfile", cid, "--name", "made", "busybox", "true")
    assert result.returncode == 0
    with open(cid) as f:
        assert f.read() == result.stdout.strip()
    assert inspect_container(barque, "made")["HostConfig"]["ContainerIDFile"] == cid
    missing = os.path.join(str(tmp_path), "nodir", "cid")
    result = barque.run("create", "--cidfile", missing, "busybox", "true")
    assert (result.returncode, result.stderr) == (
        1, f"failed to create the container ID file: open {missing}: no such file or "
        "directory\n")
