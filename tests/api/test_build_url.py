"""POST /build?remote=<http(s) URL> (dockerd's remote context; the Docker SDK sends it for a
`path` that is a URL): a tarball or a Dockerfile served by the test on 127.0.0.1, taken by
dockerd's Content-Type rule; dockerd's words and statuses for what fails, nothing left in
the root's tmp. The docker CLI downloads a URL context itself and sends the tar."""

from __future__ import annotations

import gzip
import json
import os
import urllib.parse

import pytest

from tests.api.conftest import Server
from tests.support.httpd import Reply, replying
from tests.support.tars import files_tar

pytestmark = pytest.mark.root


CTX = gzip.compress(files_tar({"Dockerfile": b"FROM scratch\nCOPY in.txt /in.txt\nLABEL via=tgz\n",
                          "app.Dockerfile": b"FROM scratch\nLABEL via=app\n",
                          "in.txt": b"in\n"}))
REPLIES = {"/ctx.tgz": Reply(CTX, content_type=None),  # sniffed: gzip
           "/Dockerfile": Reply(b"FROM busybox\nLABEL via=dockerfile\n", content_type=None),
           "/page": Reply(b"<html><body>not a context</body></html>", content_type="text/html")}


def _labels(server: Server, image: str) -> dict[str, str]:
    out = server.barque.run("image", "inspect", "-f", "{{json .Config.Labels}}", image)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _tmp_left(server: Server) -> list[str]:
    tmp = os.path.join(server.barque.root, "tmp")
    return sorted(os.listdir(tmp)) if os.path.isdir(tmp) else []


def _build(server: Server, remote: str, **query: str) -> tuple[int, str]:
    params = urllib.parse.urlencode({"remote": remote, **query})
    status, _, body = server.request("POST", "/v1.43/build?" + params)
    return status, body.decode()


def test_sdk_build_from_a_url(server: Server) -> None:
    import docker

    client = docker.DockerClient(base_url=server.host)
    try:
        with replying(REPLIES) as (base, _):
            stream = list(client.api.build(path=base + "/ctx.tgz", tag="urltgz:1",
                                           decode=True))
            assert stream[-1] == {"stream": "Successfully tagged urltgz:1\n"}, stream
            stream = list(client.api.build(path=base + "/ctx.tgz", tag="urlapp:1",
                                           dockerfile="app.Dockerfile", decode=True))
            assert stream[-1] == {"stream": "Successfully tagged urlapp:1\n"}, stream
            stream = list(client.api.build(path=base + "/Dockerfile", tag="urldf:1",
                                           decode=True))
            assert stream[-1] == {"stream": "Successfully tagged urldf:1\n"}, stream
    finally:
        client.close()
    assert _labels(server, "urltgz:1") == {"via": "tgz"}
    assert _labels(server, "urlapp:1") == {"via": "app"}
    assert _labels(server, "urldf:1") == {"via": "dockerfile"}
    assert _tmp_left(server) == []


def test_failures_in_dockerds_words_and_statuses(server: Server) -> None:
    with replying(REPLIES) as (base, _):
        status, body = _build(server, base + "/nope.tar")
        url = base + "/nope.tar"
        assert (status, json.loads(body)["message"]) == (404, (
            f"error downloading remote context {url}: failed to GET {url} with status 404 "
            f"Not Found: 404 page not found"))
        status, body = _build(server, base + "/page")
        assert (status, json.loads(body)["message"]) == (500, (
            f'error detecting content type for remote {base}/page: unsupported Content-Type '
            f'"text/html"'))
        status, body = _build(server, "ftp://127.0.0.1/ctx.tar")
        assert (status, json.loads(body)["message"]) == (
            400, "remoteURL (ftp://127.0.0.1/ctx.tar) could not be recognized as URL")
    assert _tmp_left(server) == []


def test_docker_cli_build_from_a_url(server: Server) -> None:
    """The docker CLI (classic builder) downloads the tarball itself and sends it."""
    with replying(REPLIES) as (base, _):
        out = server.docker("build", "-q", "-t", "urlcli:1", base + "/ctx.tgz")
    assert out.returncode == 0, out.stderr
    assert _labels(server, "urlcli:1") == {"via": "tgz"}
