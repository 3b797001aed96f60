"""GET /events through the real docker CLI and the Docker SDK: one log for the runs of
barque's CLI and of the API."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from tests.api.conftest import Server

pytestmark = pytest.mark.root


def _stamp() -> str:
    return f"{time.time():.9f}"


def test_docker_events_shows_runs_of_both_front_ends(server: Server) -> None:
    since = _stamp()
    out = server.barque.run("run", "--rm", "--network", "none", "--name", "viacli",
                            "-l", "who=cli", "busybox", "true")
    assert out.returncode == 0, out.stderr
    out = server.docker("run", "--rm", "--network", "none", "--name", "viaapi",
                        "-l", "who=api", "busybox", "sh", "-c", "exit 3")
    assert out.returncode == 3, out.stderr
    until = _stamp()
    shown = server.docker("events", "--since", since, "--until", until, "--format",
                          "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    for name in ("viacli", "viaapi"):
        mine = [line.rsplit(" ", 1)[0] for line in lines if line.endswith(" " + name)]
        assert mine == ["container create", "container attach", "container start",
                        "container die", "container destroy"], lines
    plain = server.docker("events", "--since", since, "--until", until,
                          "--filter", "event=die", "--filter", "label=who=api")
    assert plain.returncode == 0, plain.stderr
    [line] = plain.stdout.splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) container die "
                        r"[0-9a-f]{64} \(exitCode=3, image=busybox, "
                        r"name=viaapi, who=api\)", line), line
    as_json = server.docker("events", "--since", since, "--until", until, "--format", "json",
                            "--filter", "container=viacli", "--filter", "event=start")
    [event] = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert event["Type"] == "container" and event["status"] == "start"
    assert event["from"] == "busybox" and event["scope"] == "local"
    assert event["Actor"]["Attributes"]["name"] == "viacli"
    assert event["time"] == event["timeNano"] // 10**9


def test_docker_events_follows(server: Server) -> None:
    env_cmd = server.docker  # the CLI's own follow: no --until, ended by us
    assert env_cmd("create", "--name", "later", "--network", "none", "busybox",
                   "true").returncode == 0
    import os

    proc = subprocess.Popen(
        ["docker", "events", "--filter", "container=later", "--format",
         "{{.Action}}"], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "DOCKER_HOST": server.host})
    try:
        deadline = time.monotonic() + 30
        seen: list[str] = []
        # No event may be missed once the CLI is connected; it says nothing until then, so
        # start again until one shows.
        while "start" not in seen and time.monotonic() < deadline:
            assert server.docker("start", "later").returncode == 0
            line = proc.stdout.readline().strip() if proc.stdout else ""
            seen.append(line)
        assert "start" in seen
    finally:
        proc.terminate()
        proc.wait(10)


def test_sdk_events(server: Server) -> None:
    import docker

    client = docker.DockerClient(base_url=server.host)
    try:
        since = time.time()
        stream = client.events(decode=True, filters={"type": "container", "event": "die"})
        container = client.containers.run("busybox", ["sh", "-c", "exit 7"], detach=True,
                                          network_mode="none", name="sdkrun")
        event = next(iter(stream))
        stream.close()
        assert (event["Action"], event["Actor"]["ID"], event["id"]) == \
            ("die", container.id, container.id)
        assert event["Actor"]["Attributes"]["exitCode"] == "7"
        container.remove()
        past = list(client.events(decode=True, since=since, until=time.time(),
                                  filters={"container": "sdkrun"}))
        assert [e["Action"] for e in past] == ["create", "start", "die", "destroy"]
        for args in (("volume", "create", "sdkvol"), ("volume", "rm", "sdkvol"),
                     ("network", "create", "sdknet"), ("network", "rm", "sdknet")):
            assert server.barque.run(*args).returncode == 0  # /volumes, /networks: not here
        vols = list(client.events(decode=True, since=since, until=time.time(),
                                  filters={"type": ["volume", "network"]}))
        assert [(e["Type"], e["Action"], e["Actor"]["Attributes"].get("name", e["Actor"]["ID"]))
                for e in vols] == [("volume", "create", "sdkvol"), ("volume", "destroy", "sdkvol"),
                                   ("network", "create", "sdknet"),
                                   ("network", "destroy", "sdknet")]
    finally:
        client.close()


def test_bad_requests(server: Server) -> None:
    status, _, body = server.request("GET", "/v1.43/events?filters=" + "%7Bbad")
    assert status == 400 and json.loads(body)["message"].startswith("invalid filter")
    status, _, body = server.request("GET", "/v1.43/events?since=20&until=10")
    assert (status, json.loads(body)) == \
        (400, {"message": "`since` time (20) cannot be after `until` time (10)"})
    status, _, body = server.request("GET", "/v1.43/events?since=yesterday")
    assert (status, json.loads(body)) == (400, {"message": 'invalid value for since: '
                                                           '"yesterday"'})
    out = server.docker("events", "--since", "30", "--until", "20")
    assert (out.returncode, out.stderr.strip()) == (1, "Error response from daemon: `since` "
                                                    "time (30) cannot be after `until` time "
                                                    "(20)")
