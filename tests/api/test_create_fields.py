"""No create field silently ignored (docs/create-fields.md): what Barque cannot apply is a
400 that makes nothing, what dockerd drops is dropped with its warning, the cheap ones are
applied; and the bodies the docker CLI, the SDK and compose send still pass."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from tests.api.conftest import Server
from tests.cli.conftest import ok, until

pytestmark = pytest.mark.root

_JSON = {"Content-Type": "application/json"}


def _create(server: Server, body: dict[str, Any], name: str = "") -> tuple[int, dict[str, Any]]:
    query = f"?name={name}" if name else ""
    status, _, raw = server.request("POST", f"/v1.43/containers/create{query}",
                                    json.dumps({"Image": "busybox", "Cmd": ["true"], **body})
                                    .encode(), _JSON)
    return status, json.loads(raw)


def _inspect(server: Server, ref: str) -> dict[str, Any]:
    status, _, raw = server.request("GET", f"/v1.43/containers/{ref}/json")
    assert status == 200, raw
    return json.loads(raw)


# Each: a body with one field Barque does not apply, and words its 400 must have.
REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"NetworkDisabled": True}, "NetworkDisabled is not supported by Barque"),
    ({"Healthcheck": {"Test": ["CMD", "true"], "StartInterval": 10**9}},
     "Healthcheck.StartInterval is not supported by Barque"),
    ({"Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000}},
     "Interval in Healthcheck cannot be less than 1ms"),
    ({"Healthcheck": {"Test": ["CMD", "true"], "Retries": -1}},
     "Retries in Healthcheck cannot be negative"),
    ({"Healthcheck": {"Test": ["EXEC", "true"]}},
     "healthcheck type 'EXEC' is not supported by Barque"),
    ({"HostConfig": {"Runtime": "crun"}}, "runtime 'crun' is not supported by Barque"),
    ({"HostConfig": {"Isolation": "hyperv"}},
     "Invalid isolation: \"hyperv\" - linux only supports 'default'"),
    ({"HostConfig": {"VolumeDriver": "nfs"}}, "volume driver 'nfs' is not supported by Barque"),
    ({"HostConfig": {"Cgroup": "container:x"}}, "Cgroup is not supported by Barque"),
    ({"HostConfig": {"StorageOpt": {"size": "1G"}}}, "StorageOpt is not supported by Barque"),
    ({"HostConfig": {"DeviceRequests": [{"Count": -1, "Capabilities": [["gpu"]]}]}},
     "DeviceRequests is not supported by Barque"),
    ({"HostConfig": {"CpuRealtimePeriod": 1000000}},
     "CpuRealtimePeriod is not supported by Barque"),
    ({"HostConfig": {"CpuRealtimeRuntime": 950000}},
     "CpuRealtimeRuntime is not supported by Barque"),
    ({"HostConfig": {"IOMaximumIOps": 100}}, "Invalid QoS settings: linux does not support "
                                             "Maximum IO Bandwidth or Maximum IO IOps"),
    ({"HostConfig": {"IOMaximumBandwidth": 1 << 20}}, "Invalid QoS settings"),
    ({"HostConfig": {"OomScoreAdj": 1001}},
     "Invalid value 1001, range for oom score adj is [-1000, 1000]"),
    ({"HostConfig": {"LogConfig": {"Type": "syslog", "Config": {}}}},
     "logging driver 'syslog' is not supported by Barque"),
    ({"HostConfig": {"LogConfig": {"Type": "json-file", "Config": {"compress": "true"}}}},
     "log opt compress=true is not supported by Barque"),
    ({"HostConfig": {"LogConfig": {"Type": "json-file", "Config": {"tag": "{{.Name}}"}}}},
     "log opt tag={{.Name}} is not supported by Barque"),
    ({"HostConfig": {"LogConfig": {"Type": "json-file", "Config": {"colour": "red"}}}},
     "unknown log opt 'colour' for json-file log driver"),
    ({"HostConfig": {"Mounts": [{"Type": "volume", "Target": "/v",
                                 "BindOptions": {"Propagation": "rshared"}}]}},
     "BindOptions must not be specified on mount type \"volume\""),
    ({"HostConfig": {"Mounts": [{"Type": "npipe", "Source": "x", "Target": "/p"}]}},
     "invalid mount config for type \"npipe\": mount type unknown"),
    ({"HostConfig": {"Mounts": [{"Type": "bind", "Source": "/tmp", "Target": "/t",
                                 "BindOptions": {"NonRecursive": True}}]}},
     "mount option BindOptions.NonRecursive is not supported by Barque"),
    ({"HostConfig": {"Mounts": [{"Type": "volume", "Target": "/v",
                                 "VolumeOptions": {"Labels": {"a": "b"}}}]}},
     "mount option VolumeOptions.Labels is not supported by Barque"),
    ({"HostConfig": {"Mounts": [{"Type": "volume", "Target": "/v", "VolumeOptions": {
        "DriverConfig": {"Name": "local", "Options": {"type": "nfs"}}}}]}},
     "mount option VolumeOptions.DriverConfig is not supported by Barque"),
    ({"HostConfig": {"Mounts": [{"Type": "tmpfs", "Target": "/t",
                                 "TmpfsOptions": {"Options": [["exec"]]}}]}},
     "mount option TmpfsOptions.Options is not supported by Barque"),
    ({"HostConfig": {"Annotations": {"": "x"}}}, "invalid Annotations"),
    ({"HostConfig": {"MaskedPaths": ["proc/kcore"]}}, "invalid MaskedPaths"),
    ({"HostConfig": {"ConsoleSize": [24]}}, "invalid ConsoleSize"),
    ({"NetworkingConfig": {"EndpointsConfig": {"bridge": {
        "IPAMConfig": {"LinkLocalIPs": ["169.254.1.1"]}}}}},
     "network bridge: LinkLocalIPs (--link-local-ip) is not supported by Barque"),
    ({"MacAddress": "02:42:ac:11:00:99", "HostConfig": {"NetworkMode": "none"}},
     "conflicting options: mac-address and the network mode"),
    ({"NetworkingConfig": {"EndpointsConfig": {"bridge": {"DriverOpts": {"k": "v"}}}}},
     "network bridge: endpoint DriverOpts is not supported by Barque"),
]


def test_each_field_barque_cannot_apply_is_a_400_that_makes_nothing(server: Server) -> None:
    for body, words in REFUSED:
        status, answer = _create(server, body, name="refused")
        assert (status, words in answer.get("message", "")) == (400, True), (body, answer)
    assert server.docker("ps", "-aq").stdout == ""
    assert server.barque.containers() == []


def test_the_clients_default_bodies_pass(server: Server) -> None:
    """The docker CLI sends every field at its zero value (KernelMemory 0, CpuCount 0,
    Runtime "", Isolation "", ConsoleSize [0, 0], ...); so does this literal body of its;
    the SDK sends what it is given."""
    made = server.docker("create", "--name", "cli", "busybox", "true")
    assert made.returncode == 0, made.stderr
    assert made.stderr == ""
    status, answer = _create(server, _DOCKER_CLI_BODY, name="literal")
    assert (status, answer["Warnings"]) == (201, []), answer
    import docker

    client = docker.DockerClient(base_url=server.host)
    try:
        container = client.containers.create(
            "busybox", "true", name="sdk", log_config={"Type": "json-file", "Config": {}},
            runtime=None, isolation=None, volume_driver=None, storage_opt=None,
            device_requests=None, mem_swappiness=None, oom_score_adj=0)
        assert container.attrs["HostConfig"]["Runtime"] == "barque-runtime"
    finally:
        client.close()


# The docker CLI 20.10's create body for `docker create busybox true`, as it sends it.
_DOCKER_CLI_BODY: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": True,
    "AttachStderr": True, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": [],
    "Cmd": ["true"], "Image": "busybox", "Volumes": {}, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": {},
    "HostConfig": {
        "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": {}},
        "NetworkMode": "default", "PortBindings": {}, "RestartPolicy": {
            "Name": "no", "MaximumRetryCount": 0}, "AutoRemove": False, "VolumeDriver": "",
        "VolumesFrom": None, "CapAdd": None, "CapDrop": None, "CgroupnsMode": "",
        "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None,
        "IpcMode": "", "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "",
        "Privileged": False, "PublishAllPorts": False, "ReadonlyRootfs": False,
        "SecurityOpt": None, "UTSMode": "", "UsernsMode": "", "ShmSize": 0,
        "ConsoleSize": [0, 0], "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0,
        "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": None, "BlkioDeviceWriteBps": None, "BlkioDeviceReadIOps": None,
        "BlkioDeviceWriteIOps": None, "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": [],
        "DeviceCgroupRules": None, "DeviceRequests": None, "KernelMemory": 0,
        "KernelMemoryTCP": 0, "MemoryReservation": 0, "MemorySwap": 0,
        "MemorySwappiness": None, "OomKillDisable": False, "PidsLimit": None,
        "Ulimits": None, "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0, "MaskedPaths": None, "ReadonlyPaths": None},
    "NetworkingConfig": {"EndpointsConfig": {}},
}


def test_what_dockerd_drops_is_dropped_with_its_warnings(server: Server) -> None:
    status, answer = _create(server, {"HostConfig": {
        "KernelMemory": 64 << 20, "CpuPercent": 50, "CpuCount": 2}}, name="dropped")
    assert status == 201, answer
    assert answer["Warnings"] == [
        "Specifying a kernel memory limit is deprecated and will be removed in a future "
        "release.",
        "Your kernel does not support kernel memory limit capabilities or the cgroup is not "
        "mounted. Limitation discarded.",
        "linux does not support CPU percent. Percent discarded.",
        "linux does not support CPU count. Count discarded."]
    host_config = _inspect(server, "dropped")["HostConfig"]
    assert (host_config["KernelMemory"], host_config["CpuPercent"],
            host_config["CpuCount"]) == (0, 0, 0)


def test_the_cheap_fields_are_applied(server: Server) -> None:
    """Annotations and ConsoleSize reach the OCI spec, MaskedPaths and ReadonlyPaths replace
    Docker's defaults, CreateMountpoint makes the bind source."""
    source = os.path.join(os.path.dirname(server.socket), "made-by-create")
    status, answer = _create(server, {
        "Tty": True, "Cmd": ["sh", "-c", "stty size; wc -c < /proc/cpuinfo; "
                             "touch /proc/sys/x 2>&1 | grep -c Read-only; exec sleep 60"],
        "HostConfig": {"Annotations": {"org.example.k": "v"}, "ConsoleSize": [31, 101],
                       "MaskedPaths": ["/proc/cpuinfo"], "ReadonlyPaths": [],
                       "NetworkMode": "none",
                       "Mounts": [{"Type": "bind", "Source": source, "Target": "/made",
                                   "BindOptions": {"CreateMountpoint": True}}]}},
        name="applied")
    assert status == 201, answer
    data = _inspect(server, "applied")
    assert data["HostConfig"]["MaskedPaths"] == ["/proc/cpuinfo"]
    assert data["HostConfig"]["ReadonlyPaths"] == []
    assert data["HostConfig"]["Annotations"] == {"org.example.k": "v"}
    status, _, raw = server.request("POST", "/v1.43/containers/applied/start")
    assert status == 204, raw
    try:
        assert os.path.isdir(source)  # made at the start, as a -v bind's
        with open(os.path.join(server.barque.root, "containers", data["Id"],
                               "config.json")) as f:
            spec = json.load(f)
        assert spec["annotations"]["org.example.k"] == "v"
        assert spec["process"]["consoleSize"] == {"height": 31, "width": 101}

        def logged() -> str:
            return server.docker("logs", "applied").stdout

        until(lambda: len(logged().split()) >= 4)
        # the TTY's size, an empty (masked) /proc/cpuinfo, no read-only /proc/sys
        assert logged().split() == ["31", "101", "0", "0"]
    finally:
        server.docker("rm", "-f", "applied")


def test_config_mac_address_is_the_endpoints(server: Server) -> None:
    status, answer = _create(server, {"MacAddress": "02:42:ac:11:00:99"}, name="mac")
    assert status == 201, answer
    networks = _inspect(server, "mac")["NetworkSettings"]["Networks"]
    assert networks["bridge"]["MacAddress"] == "02:42:ac:11:00:99"


def test_log_driver_none_keeps_no_log(server: Server) -> None:
    status, answer = _create(server, {"Cmd": ["echo", "unlogged"], "HostConfig": {
        "LogConfig": {"Type": "none", "Config": {}}, "NetworkMode": "none"}}, name="quiet")
    assert status == 201, answer
    run = server.docker("start", "-a", "quiet")
    assert (run.returncode, run.stdout) == (0, "unlogged\n"), run.stderr
    logs = server.docker("logs", "quiet")
    assert logs.returncode != 0
    assert "configured logging driver does not support reading" in logs.stderr
    container_dir = os.path.join(server.barque.root, "containers",
                                 _inspect(server, "quiet")["Id"])
    assert not any(n.endswith("-json.log") for n in os.listdir(container_dir))


def test_compose_defaults_pass(server: Server, tmp_path: Any) -> None:
    """compose 1.29's create body for a plain service (through docker-py's
    create_host_config, with its own defaults)."""
    from tests.support import tools

    tools.require("docker-compose")
    (tmp_path / "docker-compose.yml").write_text(
        "version: '2.4'\nservices:\n  one:\n    image: busybox\n    command: 'true'\n"
        "    network_mode: none\n")
    ok(server.barque.run("image", "build-default"))  # the image the project names is local
    env = {**os.environ, "DOCKER_HOST": server.host, "COMPOSE_PROJECT_NAME": "cf"}
    up = subprocess.run(["docker-compose", "up", "--no-start"], cwd=tmp_path, env=env,
                        capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stderr
    assert server.docker("ps", "-aq").stdout.strip()


def test_the_platform_query_must_match_the_image(server: Server) -> None:
    status, _, raw = server.request(
        "POST", "/v1.43/containers/create?name=other&platform=linux/s390x",
        json.dumps({"Image": "busybox", "Cmd": ["true"]}).encode(), _JSON)
    message = json.loads(raw)["message"]
    assert status == 404, message
    assert message.startswith("image with reference busybox was found but does not match the "
                              "specified platform: wanted linux/s390x, actual: linux/"), message
    host = message.rsplit("actual: ", 1)[1]  # the default image's: the host's
    status, _, raw = server.request(
        "POST", f"/v1.43/containers/create?name=same&platform={host}",
        json.dumps({"Image": "busybox", "Cmd": ["true"]}).encode(), _JSON)
    assert status == 201, raw
    assert [n for n in server.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()] == [
        "same"]
