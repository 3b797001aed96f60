"""`run`/`create` flags whose fields Barque does not apply: refused in the engine's clear
words (125 from `run`, as dockerd's errors), never ignored; dropped with dockerd's warnings
where dockerd drops them; and the cheap ones applied (docs/create-fields.md)."""

from __future__ import annotations

import json
import os

import pytest

from tests.cli.conftest import Barque, inspect_container, ok
from tests.support.marks import needs_busybox

pytestmark = [pytest.mark.root, needs_busybox]

REFUSED = [
    (["--runtime", "crun"], "runtime 'crun' is not supported by Barque"),
    (["--isolation", "hyperv"], "Invalid isolation: \"hyperv\" - linux only supports 'default'"),
    (["--storage-opt", "size=1G"], "StorageOpt is not supported by Barque"),
    (["--volume-driver", "nfs"], "volume driver 'nfs' is not supported by Barque"),
    (["--gpus", "all"], "DeviceRequests is not supported by Barque"),
    (["--cpu-rt-period", "1000000"], "CpuRealtimePeriod is not supported by Barque"),
    (["--cpu-rt-runtime", "950000"], "CpuRealtimeRuntime is not supported by Barque"),
    (["--io-maxiops", "5"], "Invalid QoS settings: linux does not support Maximum IO "
                            "Bandwidth or Maximum IO IOps"),
    (["--io-maxbandwidth", "1m"], "Invalid QoS settings"),
    (["--link-local-ip", "169.254.1.1"], "LinkLocalIPs (--link-local-ip) is not supported "
                                         "by Barque"),
    (["--health-start-interval", "1s"], "Healthcheck.StartInterval is not supported by Barque"),
    (["--log-opt", "compress=true"], "log opt compress=true is not supported by Barque"),
    (["--log-opt", "mode=non-blocking"], "log opt mode=non-blocking is not supported by Barque"),
    (["--mac-address", "02:42:ac:11:00:99"], "conflicting options: mac-address and the "
                                             "network mode"),
    (["--oom-score-adj", "1001"], "Invalid value 1001, range for oom score adj is "
                                  "[-1000, 1000]"),
    (["--platform", "linux/arm64", "--pull", "never"],
     "image with reference busybox was found but does not match the specified platform: "
     "wanted linux/arm64, actual: linux/"),
]


def test_each_flag_barque_cannot_apply_is_refused_and_makes_nothing(barque: Barque) -> None:
    for flags, words in REFUSED:
        result = barque.run("run", "--rm", "--network", "none", *flags, "busybox", "true")
        assert result.returncode == 125, (flags, result.stderr)
        assert words in result.stderr, (flags, result.stderr)
        assert result.stdout == ""
    assert barque.run("ps", "-aq").stdout == ""
    assert barque.containers() == []


def test_what_dockerd_drops_is_dropped_with_its_warnings(barque: Barque) -> None:
    result = barque.run("run", "--name", "dropped", "--network", "none", "--kernel-memory",
                        "10m", "--cpu-percent", "5", "--cpu-count", "2", "busybox",
                        "echo", "ran")
    assert (result.returncode, result.stdout) == (0, "ran\n"), result.stderr
    assert result.stderr.splitlines() == [
        "WARNING: Specifying a kernel memory limit is deprecated and will be removed in a "
        "future release.",
        "WARNING: Your kernel does not support kernel memory limit capabilities or the cgroup "
        "is not mounted. Limitation discarded.",
        "WARNING: linux does not support CPU percent. Percent discarded.",
        "WARNING: linux does not support CPU count. Count discarded."]
    host_config = inspect_container(barque, "dropped")["HostConfig"]
    assert (host_config["KernelMemory"], host_config["CpuPercent"],
            host_config["CpuCount"]) == (0, 0, 0)


def test_annotations_and_the_default_runtime_names(barque: Barque) -> None:
    ok(barque.run("create", "--name", "annotated", "--network", "none", "--annotation",
                  "org.example.a=1", "--annotation", "org.example.b", "--runtime", "runc",
                  "busybox", "true"))
    data = inspect_container(barque, "annotated")
    assert data["HostConfig"]["Annotations"] == {"org.example.a": "1", "org.example.b": ""}
    assert data["HostConfig"]["Runtime"] == "runc"  # dockerd's default runtime's name
    ok(barque.run("start", "-a", "annotated"))
    with open(os.path.join(barque.root, "containers", data["Id"], "config.json")) as f:
        annotations = json.load(f)["annotations"]
    assert (annotations["org.example.a"], annotations["org.example.b"]) == ("1", "")


def test_log_driver_none_keeps_no_log(barque: Barque) -> None:
    result = barque.run("run", "--name", "quiet", "--network", "none", "--log-driver", "none",
                        "busybox", "echo", "unlogged")
    assert (result.returncode, result.stdout) == (0, "unlogged\n"), result.stderr
    logs = barque.run("logs", "quiet")
    assert logs.returncode == 1
    assert logs.stderr == ("Error response from daemon: configured logging driver does not "
                           "support reading\n")


def test_attach_shows_only_the_streams_named(barque: Barque) -> None:
    script = "echo out; echo err >&2; exit 3"
    only_out = barque.run("run", "--rm", "--network", "none", "-a", "stdout", "busybox", "sh",
                          "-c", script)
    assert (only_out.returncode, only_out.stdout, only_out.stderr) == (3, "out\n", "")
    only_err = barque.run("run", "--rm", "--network", "none", "-a", "STDERR", "busybox", "sh",
                          "-c", script)
    assert (only_err.returncode, only_err.stdout, only_err.stderr) == (3, "", "err\n")
    echoed = barque.run("run", "--rm", "-i", "--network", "none", "-a", "stdin", "-a", "stdout",
                        "busybox", "cat", input="in\n")
    assert (echoed.returncode, echoed.stdout) == (0, "in\n"), echoed.stderr
    detached = barque.run("run", "-d", "-a", "stdout", "busybox", "true")
    assert detached.returncode == 125
    assert detached.stderr.startswith("barque: Conflicting options: -a and -d.\n")
    bad = barque.run("run", "--rm", "-a", "stdweird", "busybox", "true")
    assert bad.returncode == 125
    assert bad.stderr.startswith('invalid argument "stdweird" for "-a, --attach" flag: valid '
                                 "streams are STDIN, STDOUT and STDERR\n")
    assert barque.run("ps", "-aq").stdout == ""
