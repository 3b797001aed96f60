"""`docker stats`, `docker update` and the SDK's stats/update through `barque serve`
(/containers/{id}/stats, /containers/{id}/update)."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import Server

pytestmark = pytest.mark.root


@pytest.fixture
def running(server: Server) -> str:
    out = server.docker("run", "-d", "--name", "busy", "busybox", "sleep", "300")
    assert out.returncode == 0, out.stderr
    return "busy"


def test_docker_stats_no_stream_and_update(server: Server, running: str) -> None:
    out = server.docker("stats", "--no-stream", "--format",
                        "{{.Name}} {{.PIDs}} {{.MemUsage}} {{.CPUPerc}} {{.NetIO}}")
    assert out.returncode == 0, out.stderr
    name, pids, usage, _, limit, cpu, net = out.stdout.split(maxsplit=6)
    assert (name, pids, usage[-1], cpu[-1]) == ("busy", "1", "B", "%")
    assert net.count("B") == 2  # rx / tx of eth0
    out = server.docker("update", "--memory", "64m", "--pids-limit", "50", "busy")
    assert (out.returncode, out.stdout) == (0, "busy\n"), out.stderr
    out = server.docker("stats", "--no-stream", "--format", "{{.MemUsage}}", "busy")
    assert out.stdout.split(" / ")[1].strip() == "64MiB"
    out = server.docker("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}",
                        "busy")
    assert out.stdout.split() == ["67108864", "50"]
    out = server.docker("update", "--cpu-rt-runtime", "100", "busy")
    assert out.returncode == 1
    assert "not supported" in out.stderr
    out = server.docker("update", "--memory", "64m", "nosuch")
    assert out.returncode == 1
    assert "No such container: nosuch" in out.stderr


def test_stats_of_a_stopped_container(server: Server) -> None:
    assert server.docker("create", "--name", "idle", "busybox", "true").returncode == 0
    status, _, body = server.request("GET", "/v1.43/containers/idle/stats?stream=false")
    assert status == 200
    data = json.loads(body)
    assert (data["name"], data["read"], data["memory_stats"], data["pids_stats"]) == \
        ("/idle", "0001-01-01T00:00:00Z", {}, {})
    status, _, body = server.request("GET", "/v1.43/containers/nosuch/stats?stream=false")
    assert (status, json.loads(body)) == (404, {"message": "No such container: nosuch"})


def test_bad_updates_change_nothing(server: Server, running: str) -> None:
    for body in (b'{"Memory": "lots"}', b'{"Memory": 1024}', b'{"KernelMemory": 1048576}',
                 b"[1]"):
        status, _, reply = server.request("POST", "/v1.43/containers/busy/update", body,
                                          {"Content-Type": "application/json"})
        assert status == 400, (body, reply)
        assert json.loads(reply)["message"]
    out = server.docker("inspect", "-f", "{{.HostConfig.Memory}}", "busy")
    assert out.stdout.strip() == "0"


def test_sdk_stats_and_update(server: Server, running: str) -> None:
    import docker

    client = docker.DockerClient(base_url=server.host)
    try:
        busy = client.containers.get("busy")
        stats = busy.stats(stream=False)
        assert stats["id"] == busy.id and stats["name"] == "/busy"
        assert stats["precpu_stats"]["system_cpu_usage"] < stats["cpu_stats"][
            "system_cpu_usage"]  # two readings: the CLI's CPU % needs them
        assert stats["memory_stats"]["usage"] > 0 and stats["pids_stats"]["current"] == 1
        assert stats["cpu_stats"]["online_cpus"] >= 1
        assert "eth0" in stats["networks"]
        one = busy.stats(stream=False, one_shot=True)
        assert one["preread"] == "0001-01-01T00:00:00Z"
        readings = busy.stats(decode=True)
        first, second = next(readings), next(readings)
        readings.close()
        assert first["read"] < second["read"]
        busy.update(mem_limit="32m")
        busy.reload()
        assert busy.attrs["HostConfig"]["Memory"] == 32 << 20
    finally:
        client.close()
