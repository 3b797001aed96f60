"""POST /build?remote=<git URL> (dockerd's remote context; the Docker SDK sends it for a
`path` that is a git URL): the repository, served by `git daemon` on 127.0.0.1, is the
context; a missing ref is a 400 with BuildKit's words and leaves nothing behind."""

from __future__ import annotations

import json
import os
import urllib.parse

import pytest

from tests.api.conftest import Server
from tests.support import gitrepos

pytestmark = pytest.mark.root


def test_sdk_build_from_a_git_repository(server: Server, tmp_path: str) -> None:
    import docker

    base = os.path.join(str(tmp_path), "srv")
    gitrepos.make_repo(os.path.join(base, "app.git"), {
        "sub/Dockerfile": "FROM scratch\nCOPY in.txt /in.txt\nLABEL from=git\n",
        "sub/in.txt": "in\n"})
    client = docker.DockerClient(base_url=server.host)
    try:
        with gitrepos.git_daemon(base) as prefix:
            url = prefix + "app.git#main:sub"
            stream = list(client.api.build(path=url, tag="gitctx:1", decode=True))
            assert stream[-1] == {"stream": "Successfully tagged gitctx:1\n"}, stream
            status, _, body = server.request(
                "POST", "/v1.43/build?remote=" + urllib.parse.quote(prefix + "app.git#nosuch"))
            assert status == 400
            assert "repository does not contain ref nosuch" in json.loads(body)["message"]
    finally:
        client.close()
    labels = server.barque.run("image", "inspect", "-f", "{{json .Config.Labels}}", "gitctx:1")
    assert json.loads(labels.stdout) == {"from": "git"}
    tmp = os.path.join(server.barque.root, "tmp")
    assert not os.path.isdir(tmp) or os.listdir(tmp) == []


def test_docker_cli_build_from_a_git_repository(server: Server, tmp_path: str) -> None:
    """The docker CLI (classic builder) clones the repository itself and sends its tree."""
    base = os.path.join(str(tmp_path), "srv")
    gitrepos.make_repo(os.path.join(base, "app.git"), {
        "Dockerfile": "FROM scratch\nCOPY in.txt /in.txt\nLABEL via=docker\n",
        "in.txt": "in\n"})
    with gitrepos.git_daemon(base) as prefix:
        out = server.docker("build", "-q", "-t", "gitcli:1", prefix + "app.git#main")
    assert out.returncode == 0, out.stderr
    labels = server.barque.run("image", "inspect", "-f", "{{json .Config.Labels}}", "gitcli:1")
    assert json.loads(labels.stdout) == {"via": "docker"}
