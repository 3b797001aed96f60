"""`docker build` (the classic builder protocol the docker CLI speaks to a Builder-Version 1
server) and the SDK's build through `barque serve`'s POST /build and /build/prune."""

from __future__ import annotations

import io
import json
import os

import pytest

from tests.api.conftest import Server
from tests.support.tars import files_tar

pytestmark = pytest.mark.root


def _context(path: str, dockerfile: str, files: dict[str, bytes] | None = None) -> str:
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "Dockerfile"), "w") as f:
        f.write(dockerfile)
    for name, data in (files or {}).items():
        with open(os.path.join(path, name), "wb") as f:
            f.write(data)
    return path


def test_docker_build_tags_and_prints_the_classic_stream(server: Server, tmp_path: str) -> None:
    ctx = _context(str(tmp_path), "FROM busybox\nARG WHO=nobody\nRUN echo hello $WHO\n"
                   "COPY greeting /greeting\nLABEL team=core\n", {"greeting": b"hi\n"})
    out = server.docker("build", "-t", "built", "--build-arg", "WHO=api", "--label", "x=y", ctx)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line for line in lines if line.startswith("Step ")] == [
        "Step 1/5 : FROM busybox", "Step 2/5 : ARG WHO=nobody", "Step 3/5 : RUN echo hello $WHO",
        "Step 4/5 : COPY greeting /greeting", "Step 5/5 : LABEL team=core"]
    assert "hello api" in lines
    assert lines[-2].startswith("Successfully built ")
    assert lines[-1] == "Successfully tagged built:latest"
    short = lines[-2].split()[-1]
    run = server.barque.run("run", "--rm", "built", "cat", "/greeting")
    assert run.stdout == "hi\n", run.stderr
    labels = server.barque.run("image", "inspect", "-f", "{{json .Config.Labels}}", "built")
    assert json.loads(labels.stdout) == {"team": "core", "x": "y"}
    assert server.barque.run("image", "inspect", "-f", "{{.Id}}", "built").stdout \
        .removeprefix("sha256:").startswith(short)
    again = server.docker("build", "-q", "-t", "built:2", "--build-arg", "WHO=api",
                          "--label", "x=y", ctx)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().removeprefix("sha256:").startswith(short)  # all cached


def test_docker_build_failures(server: Server, tmp_path: str) -> None:
    ctx = _context(os.path.join(tmp_path, "a"), "FROM busybox\nRUN echo out; exit 3\n")
    out = server.docker("build", "-t", "broken", ctx)
    assert out.returncode == 3  # the RUN's code, as with dockerd's classic builder
    assert "The command '/bin/sh -c echo out; exit 3' returned a non-zero code: 3" in out.stderr
    assert "out" in out.stdout.splitlines()
    ctx = _context(os.path.join(tmp_path, "b"), "FROM busybox\nFOO bar\n")
    out = server.docker("build", "-t", "broken", ctx)
    assert out.returncode == 1
    assert "Error response from daemon: dockerfile parse error on line 2: unknown " \
        "instruction: FOO" in out.stderr
    assert server.barque.run("image", "inspect", "broken").returncode != 0  # nothing made
    ctx = _context(os.path.join(tmp_path, "c"), "FROM busybox\n")
    out = server.docker("build", "-f", "Nope", ctx)
    assert out.returncode != 0


def test_target_and_a_stdin_dockerfile(server: Server) -> None:
    dockerfile = ("FROM busybox AS first\nRUN echo one > /one\n"
                  "FROM busybox AS second\nRUN echo two > /two\n")
    out = server.docker("build", "-t", "staged", "--target", "first", "-", input=dockerfile)
    assert out.returncode == 0, out.stderr
    run = server.barque.run("run", "--rm", "staged", "sh", "-c", "cat /one; ls /two")
    assert run.stdout == "one\n"
    assert run.returncode != 0  # the second stage was not built into it


def test_dockerfile_outside_the_context_and_dockerignore(server: Server,
                                                        tmp_path: str) -> None:
    ctx = _context(os.path.join(tmp_path, "ctx"), "FROM scratch\n",
                   {"kept": b"k\n", "secret": b"s\n", ".dockerignore": b"secret\n"})
    outside = os.path.join(tmp_path, "other.Dockerfile")
    with open(outside, "w") as f:
        f.write("FROM busybox\nCOPY . /c\n")
    out = server.docker("build", "-f", outside, "-t", "outside", ctx)
    assert out.returncode == 0, out.stderr
    run = server.barque.run("run", "--rm", "outside", "ls", "/c")
    assert "kept" in run.stdout.split() and "secret" not in run.stdout.split()
    out = server.docker("build", "--compress", "-q", "-f", outside, ctx)  # a gzip context
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("sha256:")


@pytest.mark.slow
def test_a_context_larger_than_the_body_limit(server: Server, tmp_path: str) -> None:
    """The context streams to the builder: the server's 16 MiB JSON body limit is not its."""
    blob = os.urandom(1 << 20) * 20
    ctx = _context(str(tmp_path), "FROM busybox\nCOPY big /big\n", {"big": blob})
    out = server.docker("build", "-t", "big", ctx, timeout=180)
    assert out.returncode == 0, out.stderr
    run = server.barque.run("run", "--rm", "big", "wc", "-c", "/big")
    assert run.stdout.split()[0] == str(len(blob))


def test_bad_build_requests(server: Server) -> None:
    images = server.barque.run("images", "-aq").stdout
    context = files_tar({"Dockerfile": b"FROM busybox\n"})
    headers = {"Content-Type": "application/x-tar"}
    for query, words in (("version=2", "BuildKit"), ("networkmode=bogus", "network mode"),
                         ("t=Bad:Tag", "invalid reference format"),
                         ("buildargs=[1]", "invalid buildargs"),
                         ("remote=ftp://127.0.0.1:1/ctx.tar", "could not be recognized as URL"),
                         ("dockerfile=Nope", "Nope")):
        status, _, body = server.request("POST", f"/v1.43/build?{query}", context, headers)
        assert status == 400, (query, body)
        assert words in json.loads(body)["message"], (query, body)
    status, _, body = server.request("POST", "/v1.43/build", b"not a tar at all", headers)
    assert status == 400
    assert server.barque.run("images", "-aq").stdout == images  # nothing made


def test_sdk_build_and_prune(server: Server, tmp_path: str) -> None:
    import docker

    client = docker.DockerClient(base_url=server.host)
    try:
        ctx = _context(str(tmp_path), "FROM busybox\nRUN echo from-path\n")
        stream = list(client.api.build(path=ctx, tag="sdk:path", decode=True))
        assert {"stream": "from-path\n"} in stream
        image_id = next(m["aux"]["ID"] for m in stream if "aux" in m)
        assert stream[-1] == {"stream": "Successfully tagged sdk:path\n"}
        fileobj = io.BytesIO(b"FROM busybox\nRUN exit 4\n")
        stream = list(client.api.build(fileobj=fileobj, tag="sdk:bad", decode=True))
        assert stream[-1]["errorDetail"] == {
            "code": 4, "message": "The command '/bin/sh -c exit 4' returned a non-zero code: 4"}
        fileobj = io.BytesIO(b"FROM busybox\nRUN echo x > /x\n")
        stream = list(client.api.build(fileobj=fileobj, tag="sdk:obj", decode=True, quiet=True))
        assert [m for m in stream if "stream" in m][-1]["stream"].startswith("sha256:")
        inspected = server.barque.run("image", "inspect", "-f", "{{.Id}}", "sdk:path")
        assert inspected.stdout.strip() == image_id
        pruned = client.api.prune_builds(all=True)
        assert pruned["SpaceReclaimed"] >= 0 and pruned["CachesDeleted"]
        with pytest.raises(docker.errors.APIError):
            client.api.prune_builds(filters={"bogus": "1"})
    finally:
        client.close()


def test_sdk_images_build_reads_the_image_back(server: Server, tmp_path: str) -> None:
    """The SDK's high-level build: the classic stream, then the image read back by its ID;
    a failing RUN is the SDK's BuildError."""
    import docker

    client = docker.DockerClient(base_url=server.host)
    try:
        ctx = _context(str(tmp_path), "FROM busybox\nRUN echo built > /built\n"
                                      "LABEL made=by-sdk\n")
        image, logs = client.images.build(path=ctx, tag="sdk:high")
        assert image.tags == ["sdk:high"]
        assert image.labels == {"made": "by-sdk"}
        assert {"stream": "Successfully tagged sdk:high\n"} in list(logs)
        out = client.containers.run("sdk:high", ["cat", "/built"], remove=True)
        assert out == b"built\n"
        with pytest.raises(docker.errors.BuildError, match="returned a non-zero code: 3"):
            client.images.build(fileobj=io.BytesIO(b"FROM busybox\nRUN exit 3\n"))
    finally:
        client.close()
