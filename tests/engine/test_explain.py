"""engine.explain: for containers started with known settings, the facts it reports are
exactly those, each checked against /proc and the cgroup files, read here independently."""

from __future__ import annotations

import json
import os

import pytest

from barque.engine.context import Engine, EngineError, Paths
from barque.engine.explain import SCHEMA_FILE, explain
from barque.engine.spec_security import DOCKER_CAPS
from tests.cli.conftest import Barque, inspect_container, ok, until
from tests.support.marks import needs_busybox

pytestmark = [pytest.mark.root, needs_busybox]

SAMPLE = 0.2  # seconds of CPU sampling: enough to see a busy loop


def _facts(b: Barque, name: str) -> dict:
    import jsonschema

    with Engine(Paths(b.root, b.runroot)) as engine:
        facts = explain(engine, name, SAMPLE)
    with open(SCHEMA_FILE) as f:
        jsonschema.validate(facts, json.load(f))
    return facts


def _pid(b: Barque, name: str) -> int:
    return int(inspect_container(b, name)["State"]["Pid"])


def _inode(pid: int | str, kind: str) -> int:
    link = os.readlink(f"/proc/{pid}/ns/{kind}")
    return int(link.split("[")[1].rstrip("]"))


def _by_type(facts: dict) -> dict[str, dict]:
    return {ns["type"]: ns for ns in facts["namespaces"]}


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return {k: v.strip() for k, _, v in (line.partition(":") for line in f)}


def _cgroup_dir(pid: int, controller: str) -> str:
    """The container's directory for `controller`, from /proc/PID/cgroup and the host's
    mounts (v2: the unified hierarchy at /sys/fs/cgroup)."""
    with open(f"/proc/{pid}/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return "/sys/fs/cgroup" + next(path for _, keys, path in lines if keys == "")
    for _, keys, path in lines:
        if controller in keys.split(","):
            return f"/sys/fs/cgroup/{keys}{path}"
    raise AssertionError(f"no {controller} hierarchy")


def _read(directory: str, *names: str) -> str:
    """The first of `names` that exists there (v1 and v2 call the same thing differently)."""
    for name in names:
        path = os.path.join(directory, name)
        if os.path.exists(path):
            with open(path) as f:
                return f.read().strip()
    raise AssertionError(f"none of {names} in {directory}")


def test_limited_container_reports_exactly_its_limits_and_namespaces(barque: Barque) -> None:
    b = barque
    ok(b.run("run", "-d", "--name", "lim", "-m", "64m", "--pids-limit", "20", "--cap-drop",
             "ALL", "--network", "none", "busybox", "sleep", "1000"))
    pid = _pid(b, "lim")
    facts = _facts(b, "lim")
    assert facts["container"]["pid"] == pid and facts["container"]["name"] == "lim"

    namespaces = _by_type(facts)
    for kind in ("pid", "mnt", "uts", "ipc", "net", "user", "cgroup", "time"):
        assert namespaces[kind]["inode"] == _inode(pid, kind), kind
        assert namespaces[kind]["host_inode"] == _inode("self", kind), kind
        private = _inode(pid, kind) != _inode("self", kind)
        assert namespaces[kind]["private"] is private, kind
    for kind in ("pid", "mnt", "uts", "ipc", "net"):
        assert namespaces[kind]["private"] and namespaces[kind]["shared_with"] == [], kind
    assert namespaces["pid"]["meaning"] == f"PID 1 inside is PID {pid} outside"
    assert namespaces["net"]["meaning"].endswith("interfaces lo")  # --network none
    assert not namespaces["user"]["private"] and namespaces["user"]["shared_with"] == ["host"]

    cg = facts["cgroups"]
    memory_dir = _cgroup_dir(pid, "memory")
    pids_dir = _cgroup_dir(pid, "pids")
    assert cg["memory"]["limit"] == 64 << 20 == \
        int(_read(memory_dir, "memory.max", "memory.limit_in_bytes"))
    assert cg["pids"]["limit"] == 20 == int(_read(pids_dir, "pids.max"))
    assert cg["pids"]["current"] == int(_read(pids_dir, "pids.current")) == 1
    assert 0 < cg["memory"]["current"] <= 64 << 20
    assert cg["cpu"]["quota_us"] is None and cg["cpu"]["limit_cpus"] is None
    assert cg["oom_kills"] == 0
    assert memory_dir in cg["directories"].values()

    security = facts["security"]
    status = _status(pid)
    assert int(status["CapEff"], 16) == int(status["CapBnd"], 16) == 0
    assert security["capabilities"]["effective"] == []
    assert security["capabilities"]["bounding"] == []
    assert security["capabilities"]["dropped"] == DOCKER_CAPS
    assert security["seccomp"]["mode"] == int(status["Seccomp"]) == 2
    assert security["seccomp"]["filters"] == int(status["Seccomp_filters"]) >= 1
    assert security["seccomp"]["profile"]["allowed_syscalls"] > 200
    assert security["no_new_privs"] is (status["NoNewPrivs"] == "1")
    assert security["user"]["outside"] == {"uid": 0, "gid": 0}
    assert security["user"]["inside"] == {"uid": 0, "gid": 0}
    # Masked paths as the container's mount table has them.
    with open(f"/proc/{pid}/mountinfo") as f:
        points = {line.split()[4] for line in f}
    for entry in security["paths"]["masked"]:
        assert (entry["state"] == "masked") == (entry["path"] in points), entry
    assert "/proc/sys" in [p["path"] for p in security["paths"]["readonly"]
                           if p["state"] == "read-only"]

    cost = facts["cost"]
    with open(f"/proc/{cost['monitor_pid']}/comm") as f:
        assert f.read().strip() == "barque-monitor"
    assert 0 < cost["monitor_rss_bytes"] < 64 << 20
    assert 0 < cost["start_latency_ms"] < 60_000


def test_host_network_and_pid_are_shared_and_a_joined_netns_names_its_owner(
        barque: Barque) -> None:
    b = barque
    ok(b.run("run", "-d", "--name", "hostnet", "--network", "host", "busybox", "sleep", "1000"))
    ok(b.run("run", "-d", "--name", "hostpid", "--pid", "host", "--network", "none", "busybox",
             "sleep", "1000"))
    ok(b.run("run", "-d", "--name", "joined", "--network", "container:hostpid", "busybox",
             "sleep", "1000"))
    net = _by_type(_facts(b, "hostnet"))
    assert not net["net"]["private"] and net["net"]["inode"] == _inode("self", "net")
    assert net["net"]["shared_with"] == ["host"]
    assert net["pid"]["private"]
    pid_host = _facts(b, "hostpid")
    pidns = _by_type(pid_host)
    assert not pidns["pid"]["private"] and pidns["pid"]["inode"] == _inode("self", "pid")
    assert str(pid_host["container"]["pid"]) in pidns["pid"]["meaning"]
    # hostpid and joined share one private network namespace: each names the other.
    assert pidns["net"]["private"] and pidns["net"]["shared_with"] == ["joined"]
    assert _by_type(_facts(b, "joined"))["net"]["shared_with"] == ["hostpid"]


def test_read_only_root_and_no_limits(barque: Barque) -> None:
    b = barque
    ok(b.run("run", "-d", "--name", "ro", "--read-only", "--network", "none", "busybox",
             "sleep", "1000"))
    pid = _pid(b, "ro")
    facts = _facts(b, "ro")
    with open(f"/proc/{pid}/mountinfo") as f:
        root = [line.split() for line in f if line.split()[4] == "/"][-1]
    assert "ro" in root[5].split(",")
    assert facts["security"]["paths"]["root_read_only"] is True
    assert facts["filesystem"]["overlay"]["read_only"] is True
    # No -m, --pids-limit or --cpus: no limit at all, as the cgroup files say.
    cg = facts["cgroups"]
    assert cg["memory"]["limit"] is None and cg["pids"]["limit"] is None
    assert cg["cpu"]["quota_us"] is None
    assert _read(_cgroup_dir(pid, "pids"), "pids.max") == "max"


def test_cpu_quota_and_use(barque: Barque) -> None:
    b = barque
    ok(b.run("run", "-d", "--name", "busy", "--cpus", "0.5", "--network", "none", "busybox",
             "sh", "-c", "while :; do :; done"))
    pid = _pid(b, "busy")
    cpu = _facts(b, "busy")["cgroups"]["cpu"]
    directory = _cgroup_dir(pid, "cpu")
    if os.path.exists(os.path.join(directory, "cpu.max")):
        quota, period = _read(directory, "cpu.max").split()
    else:
        quota = _read(directory, "cpu.cfs_quota_us")
        period = _read(directory, "cpu.cfs_period_us")
    assert (cpu["quota_us"], cpu["period_us"]) == (int(quota), int(period))
    assert cpu["limit_cpus"] == 0.5
    assert 5 < cpu["percent"] < 80  # a busy loop held to half a CPU (sampled briefly)


def test_copy_on_write_of_a_container_that_wrote_10_mb(barque: Barque) -> None:
    b = barque
    ok(b.run("run", "-d", "--name", "writer", "--network", "none", "busybox", "sh", "-c",
             "dd if=/dev/zero of=/big bs=1M count=10 2>/dev/null && rm /bin/cat && "
             "touch /done && sleep 1000"))
    upper = inspect_container(b, "writer")["GraphDriver"]["Data"]["UpperDir"]
    until(lambda: os.path.exists(os.path.join(upper, "done")))
    overlay = _facts(b, "writer")["filesystem"]["overlay"]
    assert overlay["upper_dir"] == upper
    cow = overlay["copy_on_write"]
    assert cow["largest"][0] == {"path": "/big",
                                 "bytes": os.stat(os.path.join(upper, "big")).st_size}
    assert cow["largest"][0]["bytes"] == 10 << 20
    assert cow["bytes"] == sum(os.lstat(os.path.join(d, n)).st_size
                               for d, _, names in os.walk(upper) for n in names
                               if os.path.isfile(os.path.join(d, n))
                               and not os.path.islink(os.path.join(d, n)))
    assert cow["whiteouts"] == 1  # the deleted /bin/cat
    # The image's layers, named by the store, as the mount's lowerdir lists them.
    with Engine(Paths(b.root, b.runroot)) as engine:
        image = engine.store.resolve("busybox")
        sizes = engine.store.layer_sizes(image)
        lowers = engine.store.lowers(image)
    layers = [layer for layer in overlay["layers"] if layer["kind"] == "image"]
    assert [layer["dir"] for layer in layers] == lowers
    assert [layer["digest"] for layer in layers] == \
        [layer.blob_digest for layer in reversed(image.layers)]
    assert [layer["size"] for layer in layers] == list(reversed(sizes))
    assert overlay["layers"][0]["kind"] == "init"
    # A second container of the image shares its layer (and only that).
    ok(b.run("run", "-d", "--name", "second", "--network", "none", "busybox", "sleep", "1000"))
    again = _facts(b, "writer")["filesystem"]["overlay"]["layers"]
    assert [layer["shared_with"] for layer in again] == [0] + [1] * len(layers)


def test_privileged_holds_every_capability_without_seccomp_or_masks(barque: Barque) -> None:
    b = barque
    ok(b.run("run", "-d", "--name", "priv", "--privileged", "--network", "none", "busybox",
             "sleep", "1000"))
    pid = _pid(b, "priv")
    security = _facts(b, "priv")["security"]
    status = _status(pid)
    mask = int(status["CapEff"], 16)
    assert len(security["capabilities"]["effective"]) == bin(mask).count("1") > 14
    assert security["capabilities"]["dropped"] == []
    assert security["seccomp"]["mode"] == int(status["Seccomp"]) == 0
    assert security["paths"]["masked"] == [] and security["paths"]["readonly"] == []


def test_a_stopped_container_is_an_error(barque: Barque) -> None:
    b = barque
    cid = ok(b.run("create", "--name", "idle", "busybox", "true")).strip()
    with Engine(Paths(b.root, b.runroot)) as engine:
        with pytest.raises(EngineError, match=f"Container {cid} is not running"):
            explain(engine, "idle", SAMPLE)
