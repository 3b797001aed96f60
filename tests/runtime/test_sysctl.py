"""Sysctls in a raw config.json: only those of namespaces the container owns (issue 8, escape 3).

The attacks write the HOST's vm.swappiness through a container's linux.sysctl; each test reads
the host's value before and after, and puts it back should the attack have worked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.bundles import Runtime
from tests.support.bundles import assert_refused as refused

pytestmark = pytest.mark.root

SWAPPINESS = "/proc/sys/vm/swappiness"


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


@pytest.fixture
def host_swappiness() -> Iterator[str]:
    before = _read(SWAPPINESS)
    yield before
    if _read(SWAPPINESS) != before:  # the attack worked: undo it, then fail
        with open(SWAPPINESS, "w") as f:
            f.write(before)
        pytest.fail(f"the host's vm.swappiness was changed from {before}")


def _evil_value(before: str) -> str:
    return str((int(before) + 1) % 100)


def test_host_sysctl_refused(runtime: Runtime, host_swappiness: str) -> None:
    spec = runtime.spec(["true"])
    spec["linux"]["sysctl"] = {"vm.swappiness": _evil_value(host_swappiness)}
    refused(runtime, spec, 'sysctl "vm.swappiness" is not in a separate kernel namespace')
    assert _read(SWAPPINESS) == host_swappiness


@pytest.mark.parametrize("key", ["net/../vm/swappiness", "net.ipv4/../../../vm/swappiness",
                                 "net/ipv4/../../vm/swappiness", "/vm/swappiness",
                                 "net..vm.swappiness"])
def test_sysctl_key_cannot_leave_its_directory(runtime: Runtime, host_swappiness: str,
                                               key: str) -> None:
    """A net.* key is allowed in a private netns; its path still must not climb out of
    /proc/sys/net to reach a host entry."""
    spec = runtime.spec(["true"])
    spec["linux"]["sysctl"] = {key: _evil_value(host_swappiness)}
    cid = runtime.new_id()
    proc = runtime.cmd("run", "--bundle", runtime.bundle(spec), cid)
    assert proc.returncode != 0, proc.stderr.decode()
    assert "Traceback" not in proc.stderr.decode()
    assert _read(SWAPPINESS) == host_swappiness


def test_net_sysctl_refused_in_host_network(runtime: Runtime) -> None:
    spec = runtime.spec(["true"])
    spec["linux"]["namespaces"] = [ns for ns in spec["linux"]["namespaces"]
                                   if ns["type"] != "network"]
    before = _read("/proc/sys/net/ipv4/ip_forward")
    spec["linux"]["sysctl"] = {"net.ipv4.ip_forward": "0" if before == "1" else "1"}
    refused(runtime, spec, 'sysctl "net.ipv4.ip_forward" not allowed in host network namespace')
    # The runtime's own netns named by path is the host's too (runc: "host" means "current").
    spec["linux"]["namespaces"].append({"type": "network", "path": "/proc/self/ns/net"})
    refused(runtime, spec, 'sysctl "net.ipv4.ip_forward" not allowed in host network namespace')
    assert _read("/proc/sys/net/ipv4/ip_forward") == before


def test_ipc_sysctl_refused_in_host_ipc(runtime: Runtime) -> None:
    spec = runtime.spec(["true"])
    spec["linux"]["namespaces"] = [ns for ns in spec["linux"]["namespaces"]
                                   if ns["type"] != "ipc"]
    spec["linux"]["sysctl"] = {"kernel.shmmax": "1234567"}
    refused(runtime, spec, 'sysctl "kernel.shmmax" is not allowed in the hosts ipc namespace')


def test_uts_sysctls(runtime: Runtime) -> None:
    spec = runtime.spec(["true"])
    spec["linux"]["sysctl"] = {"kernel.hostname": "other"}
    refused(runtime, spec, 'sysctl "kernel.hostname" is not allowed as it conflicts with the '
                            'OCI "hostname" field')
    spec["linux"]["namespaces"] = [ns for ns in spec["linux"]["namespaces"]
                                   if ns["type"] != "uts"]
    spec["linux"]["sysctl"] = {"kernel.domainname": "example.org"}
    refused(runtime, spec, 'sysctl "kernel.domainname" is not in a separate kernel namespace')


def test_namespaced_sysctls_are_set(runtime: Runtime) -> None:
    host_shmmax = _read("/proc/sys/kernel/shmmax")
    host_forward = _read("/proc/sys/net/ipv4/ip_forward")
    spec = runtime.spec(["sh", "-c", "cat /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_forward "
                                     "/proc/sys/kernel/domainname /proc/sys/fs/mqueue/msg_max"])
    spec["linux"]["sysctl"] = {"kernel.shmmax": "1234567", "net/ipv4/ip_forward": "1",
                               "kernel.domainname": "example.org", "fs.mqueue.msg_max": "20"}
    proc = runtime.run(spec)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().split() == ["1234567", "1", "example.org", "20"]
    assert _read("/proc/sys/kernel/shmmax") == host_shmmax
    assert _read("/proc/sys/net/ipv4/ip_forward") == host_forward
