"""Bad values for `run`, `create` and `update` fail up front, in Docker's words, with exit 125
and nothing made (issue 8: the sysctl escape and the data-safety items)."""

from __future__ import annotations

import os

import pytest

from tests.cli.conftest import Barque, ok
from tests.support.marks import needs_busybox

pytestmark = [pytest.mark.root, needs_busybox]

SWAPPINESS = "/proc/sys/vm/swappiness"


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def _refused(b: Barque, args: list[str], words: str, command: str = "run",
             code: int = 125) -> None:
    before = ok(b.run("ps", "-aq", "--no-trunc")) if b.containers() else ""
    result = b.run(command, *args)
    assert result.returncode == code, (args, result.stdout, result.stderr)
    assert words in result.stderr, (args, result.stderr)
    assert "Traceback" not in result.stderr and "CgroupError" not in result.stderr
    after = ok(b.run("ps", "-aq", "--no-trunc"))
    assert after == before, f"{args} made a container"


def test_host_sysctl_refused(barque: Barque) -> None:
    before = _read(SWAPPINESS)
    evil = str((int(before) + 1) % 100)
    try:
        _refused(barque, ["--rm", "--sysctl", f"vm.swappiness={evil}", "busybox", "true"],
                 f'invalid argument "vm.swappiness={evil}" for "--sysctl" flag: sysctl '
                 f"'vm.swappiness={evil}' is not whitelisted")
        _refused(barque, ["--sysctl", f"vm.swappiness={evil}", "busybox", "true"],
                 "is not whitelisted", command="create")
        # A key that starts as a net.* one but climbs out of /proc/sys/net.
        _refused(barque, ["--rm", "--sysctl", f"net/../vm/swappiness={evil}", "busybox",
                          "true"], "is not whitelisted")
        _refused(barque, ["--rm", "--sysctl", f"net.ipv4/../../vm/swappiness={evil}",
                          "busybox", "true"], "is not whitelisted")
    finally:
        after = _read(SWAPPINESS)
        if after != before:
            with open(SWAPPINESS, "w") as f:
                f.write(before)
    assert after == before, "the host's vm.swappiness was changed"


def test_net_sysctl_refused_with_host_network(barque: Barque) -> None:
    before = _read("/proc/sys/net/ipv4/ip_forward")
    evil = "0" if before == "1" else "1"
    _refused(barque, ["--rm", "--network", "host", "--sysctl", f"net.ipv4.ip_forward={evil}",
                      "busybox", "true"],
             'sysctl "net.ipv4.ip_forward" not allowed in host network namespace')
    assert _read("/proc/sys/net/ipv4/ip_forward") == before


def test_namespaced_sysctls_work(barque: Barque) -> None:
    host = _read("/proc/sys/kernel/shmmax"), _read("/proc/sys/net/ipv4/ip_forward")
    out = ok(barque.run("run", "--rm", "--sysctl", "kernel.shmmax=1234567", "--sysctl",
                        "net.ipv4.ip_forward=1", "busybox", "cat", "/proc/sys/kernel/shmmax",
                        "/proc/sys/net/ipv4/ip_forward"))
    assert out.split() == ["1234567", "1"]
    assert (_read("/proc/sys/kernel/shmmax"), _read("/proc/sys/net/ipv4/ip_forward")) == host


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


@pytest.mark.parametrize("flags, words", [
    (["--cpus", "nan"], 'invalid argument "nan" for "--cpus" flag: failed to parse nan as a '
                        "rational number"),
    (["--cpus", "inf"], 'invalid argument "inf" for "--cpus" flag: failed to parse inf as a '
                        "rational number"),
    (["--cpus", "0.0001"], "Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs "
                           "available"),
    (["--cpus", "1000"], "Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs "
                         "available"),
    (["--cpus", "-1"], "Range of CPUs is from 0.01 to {n}.00"),
    (["--cpuset-cpus", "999"], "Requested CPUs are not available - requested 999, available: "),
    (["--cpuset-cpus", "0-x"], "Invalid value 0-x for cpuset cpus: invalid format: 0-x"),
    (["--memory", "1e20"], "invalid argument \"1e20\" for \"-m, --memory\" flag: invalid size: "
                           "'1e20'"),
    (["--memory", "100000000000000000000"], "invalid size: '100000000000000000000'"),
    (["--memory", "1k"], "Minimum memory limit allowed is 6MB"),
    (["--memory-reservation", "1k"], "Minimum memory reservation allowed is 6MB"),
    (["--cpu-period", "10"], "CPU cfs period can not be less than 1ms (i.e. 1000) or larger "
                             "than 1s (i.e. 1000000)"),
    (["--cpu-quota", "10"], "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
])
def test_bad_resource_values(barque: Barque, flags: list[str], words: str) -> None:
    _refused(barque, ["--rm", *flags, "busybox", "true"], words.format(n=_cpus()))


@pytest.mark.parametrize("flags, words", [
    (["--memory-swap", "10m"],
     "You should always set the Memory limit when using Memoryswap limit, see usage"),
    (["-m", "10m", "--memory-swap", "5m"],
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    (["-m", "1k"], "Minimum memory limit allowed is 6MB"),
])
def test_memory_words_exactly_as_moby(barque: Barque, flags: list[str], words: str) -> None:
    """The whole message, as dockerd's (no full stop after "see usage"), which `run` reports
    as the docker CLI's reportError does: one full stop, then the help line."""
    _refused(barque, ["--rm", *flags, "busybox", "true"], words)
    result = barque.run("run", "--rm", *flags, "busybox", "true")
    assert result.stderr == (f"barque: Error response from daemon: {words}.\n"
                             "See 'barque run --help'.\n")


def test_huge_environment_refused(barque: Barque, tmp_path: str) -> None:
    env_file = os.path.join(str(tmp_path), "env")
    with open(env_file, "w") as f:
        f.write("BIG=" + "a" * (1 << 20) + "\n")
    _refused(barque, ["--rm", "--env-file", env_file, "busybox", "true"],
             "environment variable BIG is too long")


def test_update_refuses_bad_values(barque: Barque) -> None:
    b = barque
    ok(b.run("create", "--name", "limits", "--cpus", "0.5", "busybox", "true"))
    for flags, words in ((["--cpus", "1000"], "Range of CPUs is from 0.01"),
                         (["--cpus", "nan"], "failed to parse nan as a rational number"),
                         (["--cpuset-cpus", "999"], "Requested CPUs are not available"),
                         (["--memory", "1k"], "Minimum memory limit allowed is 6MB")):
        result = b.run("update", *flags, "limits")
        assert result.returncode != 0 and words in result.stderr, (flags, result.stderr)
        assert "Traceback" not in result.stderr
    out = ok(b.run("inspect", "--format", "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}}",
                   "limits"))
    assert out.split() == ["500000000", "0"]


# --- --security-opt: applied or refused, never accepted and ignored ---------------------------

_PATHS = ("for p in /proc/keys /proc/version /proc/sys; do "
          "grep -c \" $p \" /proc/self/mountinfo; done; wc -c < /proc/version")


def _mounts(b: Barque, *opts: str) -> list[str]:
    args = [a for opt in opts for a in ("--security-opt", opt)]
    return ok(b.run("run", "--rm", *args, "busybox", "sh", "-c", _PATHS)).split()


def _lsm_enabled(name: str) -> bool:
    from barque.linux import lsm

    return lsm.apparmor_enabled() if name == "apparmor" else lsm.selinux_enabled()


def test_system_paths_mask_and_unmask(barque: Barque) -> None:
    b = barque
    keys, version, sys_ro, size = _mounts(b)
    assert (keys, version, sys_ro) == ("1", "0", "1") and int(size) > 0  # Docker's defaults
    assert _mounts(b, "systempaths=unconfined")[:3] == ["0", "0", "0"]
    masked = _mounts(b, "mask=/proc/version")
    assert masked[1] == "1" and masked[3] == "0"  # masked: /dev/null bound over it
    assert _mounts(b, "unmask=ALL")[:3] == ["0", "0", "0"]
    assert _mounts(b, "unmask=/proc/keys")[:3] == ["0", "0", "1"]
    assert _mounts(b, "unmask=/proc/*")[:3] == ["0", "0", "0"]  # a glob, as Podman's


@pytest.mark.parametrize("opt, words", [
    ("systempaths=confined", 'invalid --security-opt 2: "systempaths=confined"'),
    ("mask=proc/kcore", 'invalid --security-opt 2: "mask=proc/kcore"'),
    ("bogus=1", 'invalid --security-opt 2: "bogus=1"'),
    ("bogus", 'Invalid --security-opt: "bogus"'),  # the docker CLI's own check
    ("label=bogus", 'bad label option "bogus"'),
])
def test_bad_security_opts_refused(barque: Barque, opt: str, words: str) -> None:
    _refused(barque, ["--rm", "--security-opt", opt, "busybox", "true"], words)
    # docker create: 125 for the CLI's own checks, 1 for the daemon's
    _refused(barque, ["--security-opt", opt, "busybox", "true"], words, command="create",
             code=125 if opt == "bogus" else 1)


def test_lsm_confinement_is_never_dropped(barque: Barque) -> None:
    """Asking for an AppArmor profile or an SELinux label on a host without that module fails
    rather than running the container unconfined; asking for no confinement works."""
    b = barque
    if not _lsm_enabled("apparmor"):
        _refused(b, ["--rm", "--security-opt", "apparmor=docker-default", "busybox", "true"],
                 "AppArmor is not enabled on this host")
    if not _lsm_enabled("selinux"):
        _refused(b, ["--rm", "--security-opt", "label=type:container_t", "busybox", "true"],
                 "SELinux is not enabled on this host")
    ok(b.run("run", "--rm", "--security-opt", "apparmor=unconfined", "--security-opt",
             "label=disable", "busybox", "true"))
