"""`docker cp` both ways, `docker export` and the SDK's get_archive/put_archive through
`barque serve` (/containers/{id}/archive, /containers/{id}/export)."""

from __future__ import annotations

import base64
import io
import json
import os
import tarfile
import tempfile

import pytest

from tests.api.conftest import Server

pytestmark = pytest.mark.root


def _tar(entries: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.uid, info.gid = len(data), 1234, 1234
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


@pytest.fixture
def running(server: Server) -> str:
    out = server.docker("run", "-d", "--name", "box", "busybox", "sh", "-c",
                        "mkdir -p /data/sub && echo deep > /data/sub/f && echo top > /data/t "
                        "&& ln -s /data/t /data/link && exec sleep 300")
    assert out.returncode == 0, out.stderr
    return "box"


def _in_box(server: Server, *cmd: str) -> str:
    out = server.barque.run("exec", "box", *cmd)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_cp_out_files_dirs_and_tar(server: Server, running: str, tmp_path: str) -> None:
    dest = str(tmp_path)
    out = server.docker("cp", "box:/data/t", os.path.join(dest, "renamed"))
    assert out.returncode == 0, out.stderr
    assert open(os.path.join(dest, "renamed")).read() == "top\n"
    assert server.docker("cp", "box:/data", dest).returncode == 0
    assert open(os.path.join(dest, "data", "sub", "f")).read() == "deep\n"
    assert os.readlink(os.path.join(dest, "data", "link")) == "/data/t"  # not followed
    assert server.docker("cp", "-L", "box:/data/link", os.path.join(dest, "followed")) \
        .returncode == 0
    assert open(os.path.join(dest, "followed")).read() == "top\n"
    out = server.docker("cp", "box:/data/sub/.", "-")
    with tarfile.open(fileobj=io.BytesIO(out.stdout.encode())) as tar:
        assert sorted(tar.getnames()) == [".", "./f"]
    out = server.docker("cp", "box:/nosuch", dest)
    assert out.returncode == 1
    assert "Could not find the file /nosuch in container box" in out.stderr


def test_cp_in_files_dirs_and_tar(server: Server, running: str, tmp_path: str) -> None:
    src = os.path.join(tmp_path, "src")
    os.makedirs(os.path.join(src, "d", "sub"))
    with open(os.path.join(src, "d", "sub", "f"), "w") as f:
        f.write("in\n")
    with open(os.path.join(src, "file"), "w") as f:
        f.write("one\n")
    os.chown(os.path.join(src, "file"), 1234, 1234)
    for args in (("file", "box:/tmp/"), ("file", "box:/tmp/renamed"), ("d", "box:/tmp/newd")):
        out = server.docker("cp", os.path.join(src, args[0]), args[1])
        assert out.returncode == 0, out.stderr
    assert _in_box(server, "cat", "/tmp/file", "/tmp/renamed", "/tmp/newd/sub/f") == \
        "one\none\nin\n"
    assert _in_box(server, "stat", "-c", "%u", "/tmp/file") == "0\n"  # the container's root
    assert server.docker("cp", "-a", os.path.join(src, "file"), "box:/tmp/kept").returncode == 0
    assert _in_box(server, "stat", "-c", "%u:%g", "/tmp/kept") == "1234:1234\n"
    piped = server.docker("cp", "-", "box:/root", input=_tar({"fromtar": b"t\n"}).decode())
    assert piped.returncode == 0, piped.stderr
    assert _in_box(server, "cat", "/root/fromtar") == "t\n"
    out = server.docker("cp", os.path.join(src, "file"), "box:/nosuchdir/x")
    assert out.returncode == 1
    assert "Could not find the file /nosuchdir in container box" in out.stderr


def test_cp_with_a_stopped_container(server: Server, tmp_path: str) -> None:
    out = server.docker("run", "--name", "done", "busybox", "sh", "-c", "echo kept > /k")
    assert out.returncode == 0, out.stderr
    assert server.docker("cp", "done:/k", str(tmp_path)).returncode == 0
    assert open(os.path.join(tmp_path, "k")).read() == "kept\n"
    with open(os.path.join(tmp_path, "back"), "w") as f:
        f.write("back\n")
    assert server.docker("cp", os.path.join(tmp_path, "back"), "done:/").returncode == 0
    assert server.docker("cp", "done:/back", "-").returncode == 0
    assert server.barque.run("start", "-a", "done").returncode == 0  # still starts


def test_head_stat_and_put_errors(server: Server, running: str) -> None:
    status, headers, _ = server.request("HEAD", "/v1.43/containers/box/archive?path=/data/link")
    assert status == 200
    stat = json.loads(base64.b64decode(headers["X-Docker-Container-Path-Stat"]))
    assert (stat["name"], stat["linkTarget"], stat["mode"] & (1 << 27)) == \
        ("link", "/data/t", 1 << 27)  # Go's ModeSymlink
    status, headers, _ = server.request("HEAD", "/v1.43/containers/box/archive?path=/data")
    stat = json.loads(base64.b64decode(headers["X-Docker-Container-Path-Stat"]))
    assert stat["mode"] & (1 << 31)  # Go's ModeDir: the docker CLI's IsDir()
    status, _, body = server.request("GET", "/v1.43/containers/nosuch/archive?path=/")
    assert (status, json.loads(body)) == (404, {"message": "No such container: nosuch"})
    status, _, body = server.request("PUT", "/v1.43/containers/box/archive?path=/data/t",
                                     _tar({"x": b"x"}))
    assert (status, json.loads(body)["message"]) == (400, "extraction point is not a "
                                                          "directory")
    status, _, body = server.request("PUT", "/v1.43/containers/box/archive", _tar({}))
    assert status == 400


def test_put_archive_stays_in_the_container(server: Server, running: str) -> None:
    """A tar's `..` is refused, and the container's own symlink to a host path (as an
    image may plant) leads into the container's tree of that name, never the host's."""
    host_dir = tempfile.mkdtemp(prefix="barque-api-archive-")
    try:
        _in_box(server, "sh", "-c", f"mkdir -p {host_dir} && ln -s {host_dir} /tmp/escape")
        status, _, body = server.request("PUT", "/v1.43/containers/box/archive?path=/tmp",
                                         _tar({"escape/marker": b"m\n"}))
        assert status == 200, body
        assert os.listdir(host_dir) == []  # the host's dir of that name: untouched
        assert _in_box(server, "cat", f"{host_dir}/marker") == "m\n"
        status, _, body = server.request("PUT", "/v1.43/containers/box/archive?path=/tmp",
                                         _tar({"../../../marker2": b"m\n"}))
        assert status == 400
        assert "is outside of" in json.loads(body)["message"]
        status, _, body = server.request("PUT", "/v1.43/containers/box/archive?path=/tmp",
                                         _tar({}, {"rel": "../../../../etc"}))
        assert status == 400
        assert "invalid symlink" in json.loads(body)["message"]
        assert server.barque.run("exec", "box", "ls", "/marker2", "/tmp/rel").returncode != 0
    finally:
        os.rmdir(host_dir)


def test_put_into_read_only_places(server: Server, tmp_path: str) -> None:
    out = server.docker("run", "-d", "--name", "ro", "--read-only", "--tmpfs", "/tmp",
                        "-v", f"{tmp_path}:/ro:ro", "-v", "rwvol:/rw", "busybox", "sleep", "300")
    assert out.returncode == 0, out.stderr
    for path, message in (("/tmp", "container rootfs is marked read-only"),
                          ("/ro", "mounted volume is marked read-only")):
        status, _, body = server.request("PUT", f"/v1.43/containers/ro/archive?path={path}",
                                         _tar({"x": b"x"}))
        assert (status, json.loads(body)["message"]) == (400, message)
    assert os.listdir(tmp_path) == []
    status, _, _ = server.request("PUT", "/v1.43/containers/ro/archive?path=/rw",
                                  _tar({"x": b"x\n"}))
    assert status == 200
    assert server.barque.run("exec", "ro", "cat", "/rw/x").stdout == "x\n"


def test_export(server: Server, running: str, tmp_path: str) -> None:
    target = os.path.join(tmp_path, "box.tar")
    out = server.docker("export", "-o", target, "box")
    assert out.returncode == 0, out.stderr
    with tarfile.open(target) as tar:
        names = set(tar.getnames())
    assert {"bin/sh", "data/sub/f", "data/link"} <= names
    out = server.docker("export", "nosuch")
    assert out.returncode == 1
    assert "No such container: nosuch" in out.stderr


def test_sdk_archive_and_export(server: Server, running: str) -> None:
    import docker

    client = docker.DockerClient(base_url=server.host)
    try:
        box = client.containers.get("box")
        bits, stat = box.get_archive("/data/sub")
        assert (stat["name"], stat["mode"] & (1 << 31) != 0) == ("sub", True)
        with tarfile.open(fileobj=io.BytesIO(b"".join(bits))) as tar:
            assert sorted(tar.getnames()) == ["sub", "sub/f"]
        assert box.put_archive("/tmp", _tar({"sdk": b"sdk\n"})) is True
        assert _in_box(server, "cat", "/tmp/sdk") == "sdk\n"
        with pytest.raises(docker.errors.NotFound):
            box.get_archive("/nosuch")
        exported = b"".join(box.export())
        with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
            assert "tmp/sdk" in tar.getnames()
    finally:
        client.close()
