"""/volumes and /system/df through `barque serve`: the real docker CLI, the Docker SDK, and
bad requests (dockerd's statuses and words, nothing changed)."""

from __future__ import annotations

import json
import os
import urllib.parse

import pytest

from tests.api.conftest import Server
from tests.cli.conftest import ok

pytestmark = pytest.mark.root


def _filters(**values: list[str]) -> str:
    return urllib.parse.quote(json.dumps(values))


def test_docker_volume_commands(server: Server) -> None:
    assert ok(server.docker("volume", "create", "--label", "team=a", "v1")) == "v1\n"
    assert ok(server.docker("volume", "create", "v2")) == "v2\n"
    assert ok(server.docker("volume", "create", "v1")) == "v1\n"  # exists: returned, as Docker
    assert ok(server.docker("volume", "ls", "-q")).split() == ["v1", "v2"]
    assert ok(server.docker("volume", "ls", "-q", "-f", "label=team=a")) == "v1\n"
    [data] = json.loads(ok(server.docker("volume", "inspect", "v1")))
    assert (data["Name"], data["Driver"], data["Labels"], data["Scope"]) == \
        ("v1", "local", {"team": "a"}, "local")
    assert data["Mountpoint"] == os.path.join(server.barque.root, "volumes", "v1", "_data")
    out = server.docker("volume", "inspect", "nosuch")
    assert out.returncode == 1
    assert "Error response from daemon: get nosuch: no such volume" in out.stderr
    # in use: kept, with dockerd's words; the CLI of barque sees the same volumes
    ok(server.docker("run", "--name", "user", "-v", "v1:/data", "busybox",
                     "sh", "-c", "echo kept > /data/f"))
    out = server.docker("volume", "rm", "v1")
    assert out.returncode == 1 and "remove v1: volume is in use - [" in out.stderr
    assert ok(server.barque.run("volume", "ls", "-q")).split() == ["v1", "v2"]
    assert ok(server.docker("volume", "ls", "-q", "-f", "dangling=true")) == "v2\n"
    # prune: anonymous only by default (API >= 1.42), -a named ones too, filters kept
    out = ok(server.docker("volume", "prune", "-f"))
    assert "Deleted Volumes" not in out and "Total reclaimed space: 0B" in out
    out = ok(server.docker("volume", "prune", "-af", "--filter", "label=team=b"))
    assert "Deleted Volumes" not in out
    out = ok(server.docker("volume", "prune", "-af"))
    assert "Deleted Volumes:\nv2\n" in out
    ok(server.docker("rm", "user"))
    out = ok(server.docker("volume", "prune", "-af", "--filter", "label=team=a"))
    assert "Deleted Volumes:\nv1\n" in out and "Total reclaimed space: 5B" in out
    assert ok(server.docker("volume", "ls", "-q")) == ""
    assert not os.path.exists(os.path.join(server.barque.root, "volumes", "v1"))


def test_sdk_volumes(server: Server) -> None:
    import docker

    client = docker.DockerClient(base_url=server.host)
    try:
        volume = client.volumes.create("sdkvol", labels={"k": "v"})
        assert (volume.name, volume.attrs["Labels"]) == ("sdkvol", {"k": "v"})
        assert [v.name for v in client.volumes.list(filters={"label": "k=v"})] == ["sdkvol"]
        assert client.volumes.list(filters={"name": "nomatch"}) == []
        assert client.volumes.get("sdkvol").attrs["Mountpoint"].endswith("/sdkvol/_data")
        with pytest.raises(docker.errors.NotFound, match="no such volume"):
            client.volumes.get("nosuch")
        anonymous = client.volumes.create()
        assert len(anonymous.name) == 64
        assert client.volumes.prune() == {"VolumesDeleted": [anonymous.name],
                                          "SpaceReclaimed": 0}
        volume.remove(force=True)
        assert client.volumes.list() == []
        with pytest.raises(docker.errors.NotFound):
            client.api.remove_volume("sdkvol")
    finally:
        client.close()


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"Name": "bad/name"}, 400, 'create bad/name: "bad/name" includes invalid characters for '
     'a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed'),
    ({"Name": "v", "Labels": {"a": 1}}, 400, "json: cannot unmarshal number into Go struct "
     "field VolumeCreateBody.Labels of type string"),
    ({"Name": "v", "Driver": "nope"}, 404, 'create v: error looking up volume plugin nope: '
     'plugin "nope" not found'),
    ({"Name": "v", "DriverOpts": {"type": "nfs"}}, 400, "options are not supported"),
])
def test_bad_create_changes_nothing(server: Server, body: dict[str, object], status: int,
                                    message: str) -> None:
    got, _, reply = server.request("POST", "/v1.43/volumes/create", json.dumps(body).encode(),
                                   {"Content-Type": "application/json"})
    assert got == status and message in json.loads(reply)["message"]
    assert json.loads(server.request("GET", "/v1.43/volumes")[2]) == \
        {"Volumes": [], "Warnings": []}
    assert not os.listdir(os.path.join(server.barque.root, "volumes")) \
        if os.path.isdir(os.path.join(server.barque.root, "volumes")) else True


def test_unknown_volumes_and_filters(server: Server) -> None:
    for method, path, status, message in [
        ("GET", "/v1.43/volumes/nosuch", 404, "get nosuch: no such volume"),
        ("DELETE", "/v1.43/volumes/nosuch", 404, "get nosuch: no such volume"),
        ("GET", f"/v1.43/volumes?filters={_filters(size=['1'])}", 400, "Invalid filter 'size'"),
        ("POST", f"/v1.43/volumes/prune?filters={_filters(until=['1h'])}", 400,
         "Invalid filter 'until'"),
        ("POST", f"/v1.43/volumes/prune?filters={_filters(all=['maybe'])}", 400,
         "invalid filter 'all=maybe'"),
    ]:
        got, headers, body = server.request(method, path)
        assert (got, json.loads(body)) == (status, {"message": message}), path
        assert headers["Content-Type"] == "application/json"
    assert server.request("DELETE", "/v1.43/volumes/nosuch?force=1")[0] == 204


def test_prune_before_api_1_42_takes_named_volumes(server: Server) -> None:
    ok(server.docker("volume", "create", "named"))
    status, _, body = server.request("POST", "/v1.41/volumes/prune")
    assert (status, json.loads(body)["VolumesDeleted"]) == (200, ["named"])


def test_system_df(server: Server) -> None:
    ok(server.docker("volume", "create", "data"))
    ok(server.docker("run", "--name", "writer", "-v", "data:/d", "busybox", "sh", "-c",
                     "head -c 3000 /dev/zero > /d/f; echo 12345678 > /g"))
    table = ok(server.docker("system", "df")).splitlines()
    assert table[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert [line.split("  ")[0] for line in table[1:]] == \
        ["Images", "Containers", "Local Volumes", "Build Cache"]
    rows = {row["Type"]: row for row in map(json.loads, ok(server.docker(
        "system", "df", "--format", "json")).splitlines())}
    assert (rows["Images"]["TotalCount"], rows["Images"]["Active"]) == ("1", "1")
    assert (rows["Containers"]["TotalCount"], rows["Containers"]["Active"],
            rows["Containers"]["Size"]) == ("1", "0", "9B")
    assert (rows["Local Volumes"]["Active"], rows["Local Volumes"]["Size"]) == ("1", "3kB")
    verbose = ok(server.docker("system", "df", "-v"))
    assert "writer" in verbose and "\ndata " in verbose
    status, _, body = server.request("GET", "/v1.43/system/df")
    df = json.loads(body)
    assert status == 200
    assert set(df) == {"LayersSize", "Images", "Containers", "Volumes", "BuildCache",
                       "BuilderSize"}
    [volume] = df["Volumes"]
    assert (volume["Name"], volume["UsageData"]) == ("data", {"Size": 3000, "RefCount": 1})
    [container] = df["Containers"]
    assert (container["Names"], container["SizeRw"]) == (["/writer"], 9)
    [image] = df["Images"]
    assert image["RepoTags"] == ["busybox:latest"] and image["Containers"] == 1
    assert df["LayersSize"] == image["Size"] > 0
    status, _, body = server.request("GET", "/v1.43/system/df?type=volume")
    assert (status, list(json.loads(body))) == (200, ["Volumes"])
    status, _, body = server.request("GET", "/v1.43/system/df?type=bogus")
    assert (status, json.loads(body)) == (400, {"message": "unknown object type: bogus"})

    import docker

    client = docker.DockerClient(base_url=server.host)
    try:
        assert [v["Name"] for v in client.df()["Volumes"]] == ["data"]
    finally:
        client.close()
