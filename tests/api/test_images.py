"""The image endpoints through `barque serve`: the real docker CLI and the Docker SDK for
Python pull from and push to a real local registry, tag, remove, save/load, import, prune,
inspect, history; bad requests get dockerd's statuses and change nothing."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from typing import Any

import pytest

from barque.image.default import build_default_image
from tests.api.conftest import Server
from tests.support.registry import Registry, run_registry, skopeo_copy, skopeo_inspect
from tests.support.tools import require

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(str(tmp_path_factory.mktemp("registry"))) as reg:
        yield reg


@pytest.fixture(scope="module")
def seeded(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> str:
    """`127.0.0.1:PORT/busybox` (its :latest pushed by skopeo from Barque's default image)."""
    require("busybox")
    layout = str(tmp_path_factory.mktemp("layout") / "busybox")
    build_default_image(layout, "latest")
    skopeo_copy(f"oci:{layout}:latest", f"docker://{registry.host}/busybox:latest")
    return f"{registry.host}/busybox"


def _ok(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 0, (out.stdout, out.stderr)
    return out.stdout


def _default_image(server: Server) -> str:
    """The built-in busybox in the server's store (as `docker run busybox` makes it)."""
    _ok(server.docker("run", "--rm", "busybox", "true"))
    return _ok(server.docker("image", "inspect", "-f", "{{.Id}}", "busybox")).strip()


def _rootfs_tar(marker: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("marker")
        data = marker.encode()
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _import(server: Server, marker: str, *args: str) -> str:
    """`docker import - [REF]` of a one-file rootfs; the new image's ID."""
    env = {**os.environ, "DOCKER_HOST": server.host}
    out = subprocess.run(["docker", "import", *args], input=_rootfs_tar(marker),
                         capture_output=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.decode().strip()


def test_images_inspect_history(server: Server) -> None:
    image_id = _default_image(server)
    listed = _ok(server.docker("images", "--format", "{{.Repository}} {{.Tag}} {{.ID}}"))
    assert listed.split() == ["busybox", "latest", image_id[7:19]]
    assert _ok(server.docker("images", "-q", "--no-trunc")).split() == [image_id]
    [data] = json.loads(_ok(server.docker("image", "inspect", "busybox")))
    assert (data["Id"], data["RepoTags"], data["Os"]) == (image_id, ["busybox:latest"], "linux")
    assert data["RootFS"]["Type"] == "layers"
    history = _ok(server.docker("history", "--no-trunc", "--format",
                                "{{.ID}}|{{.CreatedBy}}|{{.Size}}", "busybox"))
    rows = history.splitlines()
    assert rows[0].startswith(image_id + "|")
    assert all(r.startswith("<missing>|") for r in rows[1:])
    engine_rows = _ok(server.barque.run("history", "-q", "--no-trunc", "busybox")).split()
    assert [r.split("|")[0] for r in rows] == engine_rows  # one engine under both
    # filters reach the engine
    assert _ok(server.docker("images", "-q", "--filter", "dangling=true")) == ""
    assert _ok(server.docker("images", "-q", "--filter", "reference=busy*")).split() == \
        [image_id[7:19]]
    assert _ok(server.docker("images", "-q", "--filter", "until=1h")).split() == \
        [image_id[7:19]]  # the built-in image says it was made in 1970
    out = server.docker("images", "--filter", "nosuchkey=1")
    assert out.returncode == 1
    assert "Invalid filter 'nosuchkey'" in out.stderr


def test_run_of_a_missing_image_pulls_it(server: Server, seeded: str) -> None:
    out = server.docker("run", "--rm", seeded, "echo", "hi")
    assert (out.returncode, out.stdout) == (0, "hi\n"), out.stderr
    assert f"Unable to find image '{seeded}:latest' locally" in out.stderr
    assert "Status: Downloaded newer image for" in out.stderr
    assert _ok(server.docker("images", "--format", "{{.Repository}}:{{.Tag}}")).split() == \
        [f"{seeded}:latest"]
    out = server.docker("run", "--rm", seeded, "echo", "again")  # now local: no pull
    assert (out.returncode, out.stdout, out.stderr) == (0, "again\n", "")


def test_create_answers_no_such_image(server: Server) -> None:
    body = json.dumps({"Image": "127.0.0.1:1/nosuch", "Cmd": ["true"]}).encode()
    status, _, reply = server.request("POST", "/v1.43/containers/create", body,
                                      {"Content-Type": "application/json"})
    assert (status, json.loads(reply)) == (404, {"message": "No such image: "
                                                            "127.0.0.1:1/nosuch:latest"})
    assert _ok(server.docker("ps", "-aq")) == ""


def test_pull_tag_push_rmi(server: Server, seeded: str, registry: Registry) -> None:
    out = _ok(server.docker("pull", seeded))
    lines = out.splitlines()
    assert lines[:2] == ["Using default tag: latest", "latest: Pulling from busybox"]
    assert any(line.endswith(": Pull complete") for line in lines)
    assert lines[-3].startswith("Digest: sha256:")
    assert lines[-2:] == [f"Status: Downloaded newer image for {seeded}:latest",
                          f"{seeded}:latest"]
    again = _ok(server.docker("pull", seeded)).splitlines()
    assert again[-2] == f"Status: Image is up to date for {seeded}:latest"

    target = f"{registry.host}/copied:v1"
    _ok(server.docker("tag", seeded, target))
    tags = _ok(server.docker("images", "--format", "{{.Repository}}:{{.Tag}}")).split()
    assert sorted(tags) == sorted([f"{seeded}:latest", target])
    pushed = _ok(server.docker("push", target)).splitlines()
    assert pushed[0] == f"The push refers to repository [{registry.host}/copied]"
    assert pushed[-1].startswith("v1: digest: sha256:")
    digest = pushed[-1].split()[2]
    assert skopeo_inspect(f"docker://{target}")["Digest"] == digest
    [data] = json.loads(_ok(server.docker("image", "inspect", target)))
    assert f"{registry.host}/copied@{digest}" in data["RepoDigests"]

    removed = _ok(server.docker("rmi", target)).splitlines()
    assert removed == [f"Untagged: {target}", f"Untagged: {registry.host}/copied@{digest}"]
    removed = _ok(server.docker("rmi", seeded)).splitlines()
    assert removed[0] == f"Untagged: {seeded}:latest"
    assert removed[-1].startswith("Deleted: sha256:")
    assert _ok(server.docker("images", "-q")) == ""


def test_pull_and_push_failures(server: Server, registry: Registry) -> None:
    out = server.docker("pull", f"{registry.host}/nosuch:latest")
    assert out.returncode == 1
    assert "Error response from daemon:" in out.stderr
    assert "nosuch" in out.stderr
    out = server.docker("push", f"{registry.host}/notlocal:latest")  # as dockerd: in-stream
    assert (out.returncode, out.stdout, out.stderr) == (
        1, f"The push refers to repository [{registry.host}/notlocal]\n",
        f"An image does not exist locally with the tag: {registry.host}/notlocal\n")
    out = server.docker("pull", "127.0.0.1:1/unreachable:latest")  # nothing listens there
    assert out.returncode == 1
    assert "connection refused" in out.stderr
    assert _ok(server.docker("images", "-q")) == ""


def test_save_load(server: Server, tmp_path: os.PathLike[str]) -> None:
    image_id = _default_image(server)
    archive = os.path.join(tmp_path, "busybox.tar")
    _ok(server.docker("save", "-o", archive, "busybox"))
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["busybox:latest"]
    out = server.docker("save", "-o", os.path.join(tmp_path, "no.tar"), "nosuch")
    assert out.returncode == 1
    assert "No such image: nosuch\n" in out.stderr  # dockerd's save: the name as given
    _ok(server.docker("rmi", "busybox"))
    assert _ok(server.docker("images", "-q")) == ""
    assert _ok(server.docker("load", "-i", archive)) == "Loaded image: busybox:latest\n"
    assert _ok(server.docker("images", "-q", "--no-trunc")).split() == [image_id]
    out = server.docker("load", input="not a tarball")
    assert out.returncode == 1
    assert _ok(server.docker("images", "-q", "--no-trunc")).split() == [image_id]


def test_import_and_prune(server: Server) -> None:
    tagged = _import(server, "one", "-", "imported:1")
    assert tagged.startswith("sha256:")
    dangling = _import(server, "two", "--change", "LABEL keep=yes", "-")
    assert _ok(server.docker("images", "-q", "--no-trunc", "--filter",
                             "dangling=true")).split() == [dangling]
    [data] = json.loads(_ok(server.docker("image", "inspect", "imported:1")))
    assert data["Id"] == tagged
    # filters that match nothing remove nothing: another label, made over an hour ago
    for match_nothing in ("label=keep=no", "until=1h"):
        out = _ok(server.docker("image", "prune", "-f", "--filter", match_nothing))
        assert out == "Total reclaimed space: 0B\n"
    assert _ok(server.docker("images", "-q", "--filter", "until=1h")) == ""
    out = _ok(server.docker("image", "prune", "-f"))
    assert out.startswith(f"Deleted Images:\ndeleted: {dangling}\n")
    assert _ok(server.docker("images", "-q", "--no-trunc")).split() == [tagged]
    out = server.docker("image", "prune", "-f", "--filter", "nosuch=1")
    assert out.returncode == 1
    assert "Invalid filter 'nosuch'" in out.stderr
    assert _ok(server.docker("images", "-q", "--no-trunc")).split() == [tagged]


def test_rmi_of_an_image_in_use(server: Server) -> None:
    image_id = _default_image(server)
    _ok(server.docker("run", "-d", "--name", "user", "busybox", "sleep", "60"))
    out = server.docker("rmi", "-f", image_id)
    assert out.returncode == 1
    assert "image is being used by running container" in out.stderr
    out = server.docker("rmi", "nosuch")
    assert out.returncode == 1
    assert "No such image: nosuch:latest" in out.stderr
    _ok(server.docker("rm", "-f", "user"))
    assert _ok(server.docker("images", "-q", "--no-trunc")).split() == [image_id]


def test_bad_requests(server: Server) -> None:
    for method, path, status, message in [
        ("GET", "/v1.43/images/nosuch/json", 404, "No such image: nosuch:latest"),
        ("GET", "/v1.43/images/nosuch/history", 404, "No such image: nosuch:latest"),
        ("POST", "/v1.43/images/nosuch/tag?repo=x&tag=y", 404,
         "No such image: nosuch:latest"),
        ("DELETE", "/v1.43/images/nosuch", 404, "No such image: nosuch:latest"),
        ("GET", "/v1.43/images/nosuch/get", 404, "No such image: nosuch"),
        ("POST", "/v1.43/images/create?fromImage=Bad::Name&tag=x", 400,
         "invalid reference format"),
        ("POST", "/v1.43/images/create", 400, "fromImage or fromSrc is required"),
        ("POST", "/v1.43/images/prune?filters=%7Bbad", 400, None),
    ]:
        got, headers, body = server.request(method, path)
        assert (got, headers["Content-Type"]) == (status, "application/json"), (path, body)
        if message is not None:
            assert json.loads(body) == {"message": message}, path
    status, _, body = server.request("GET", "/v1.43/images/search?term=busybox")
    assert status == 501
    assert "not implemented by Barque" in json.loads(body)["message"]
    out = server.docker("search", "busybox")
    assert out.returncode == 1
    assert "search is not implemented by Barque" in out.stderr
    assert _ok(server.docker("images", "-q")) == ""


def test_sdk_images(server: Server, seeded: str, registry: Registry) -> None:
    import docker  # the test extra (pip install -e '.[test]'): never skipped

    client = docker.DockerClient(base_url=server.host)
    try:
        image = client.images.pull(seeded, tag="latest")
        assert image.tags == [f"{seeded}:latest"]
        assert client.images.get(seeded).id == image.id
        assert [i.id for i in client.images.list()] == [image.id]
        assert [h["Id"] for h in image.history()][0] == image.id
        assert image.tag(f"{registry.host}/sdk", "v2")
        messages = list(client.images.push(f"{registry.host}/sdk", tag="v2", stream=True,
                                           decode=True))
        assert not [m for m in messages if "error" in m], messages
        aux = [m["aux"] for m in messages if "aux" in m]
        assert aux[0]["Tag"] == "v2" and aux[0]["Digest"].startswith("sha256:")
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get("nosuch")
        with pytest.raises(docker.errors.NotFound):
            client.images.pull(f"{registry.host}/nosuch", tag="latest")
        client.images.remove(f"{registry.host}/sdk:v2")
        saved = b"".join(image.save(named=True))
        client.images.remove(seeded, force=True)
        assert client.images.list() == []
        [loaded] = client.images.load(saved)
        assert (loaded.id, loaded.tags) == (image.id, [f"{seeded}:latest"])
        client.images.remove(seeded)
        # containers.run of an image not yet pulled: NotFound from create, then a pull
        assert client.containers.run(seeded, ["echo", "sdk"], remove=True) == b"sdk\n"
    finally:
        client.close()


def test_auth_and_credentials(server: Server, seeded: str,
                              tmp_path_factory: pytest.TempPathFactory) -> None:
    """POST /auth checks credentials against the registry (htpasswd); a push to it goes with
    the X-Registry-Auth the docker CLI sends from its own config after `docker login`."""
    require("htpasswd")
    root = tmp_path_factory.mktemp("auth-registry")
    htpasswd = subprocess.run(["htpasswd", "-Bbn", "alice", "pw-1"], check=True,
                              capture_output=True, text=True).stdout
    (root / "htpasswd").write_text(htpasswd)
    with run_registry(str(root), auth={"htpasswd": {"realm": "r",
                                                    "path": str(root / "htpasswd")}}) as reg:
        _ok(server.docker("pull", seeded))
        target = f"{reg.host}/private:1"
        _ok(server.docker("tag", seeded, target))
        out = server.docker("push", target)
        assert out.returncode == 1
        assert "authentication required" in out.stderr or "unauthorized" in out.stderr
        out = server.docker("login", "-u", "alice", "--password-stdin", reg.host,
                            input="wrong\n")
        assert out.returncode == 1
        assert "Error response from daemon:" in out.stderr
        out = server.docker("login", "-u", "alice", "--password-stdin", reg.host,
                            input="pw-1\n")
        assert out.returncode == 0, out.stderr
        assert "Login Succeeded" in out.stdout
        pushed = _ok(server.docker("push", target)).splitlines()
        assert pushed[-1].startswith("1: digest: sha256:")
        auth = base64.urlsafe_b64encode(json.dumps(
            {"username": "alice", "password": "pw-1", "serveraddress": reg.host}).encode())
        status, _, body = server.request("POST", "/v1.43/auth", json.dumps(
            {"username": "alice", "password": "pw-1", "serveraddress": reg.host}).encode(),
            {"Content-Type": "application/json"})
        assert (status, json.loads(body)["Status"]) == (200, "Login Succeeded")
        _ok(server.docker("rmi", target))
        status, _, body = server.request(
            "POST", f"/v1.43/images/create?fromImage={reg.host}/private&tag=1",
            headers={"X-Registry-Auth": auth.decode()})
        assert status == 200
        assert b"Downloaded newer image" in body or b"Image is up to date" in body


def test_bodies_over_the_json_limit_stream(server: Server, tmp_path: os.PathLike[str]) -> None:
    """import and load read the body as it comes: a 17 MiB rootfs is no 413; save of two
    names (/images/get?names=...) and load give them both back."""
    busybox = _default_image(server)
    rootfs = os.path.join(tmp_path, "rootfs.tar")
    with tarfile.open(rootfs, "w") as tar:
        info = tarfile.TarInfo("big")
        info.size = 17 << 20
        tar.addfile(info, io.BytesIO(os.urandom(info.size)))
    big = _ok(server.docker("import", rootfs, "big:1")).strip()
    [data] = json.loads(_ok(server.docker("image", "inspect", "big:1")))
    assert data["Id"] == big and data["Size"] >= 17 << 20
    archive = os.path.join(tmp_path, "two.tar")
    _ok(server.docker("save", "-o", archive, "big:1", "busybox"))
    _ok(server.docker("rmi", "big:1", "busybox"))
    assert _ok(server.docker("images", "-q")) == ""
    loaded = _ok(server.docker("load", "-q", "-i", archive)).splitlines()
    assert sorted(loaded) == ["Loaded image: big:1", "Loaded image: busybox:latest"]
    assert sorted(_ok(server.docker("images", "-q", "--no-trunc")).split()) == \
        sorted([big, busybox])


class _SlowProxy:
    """A TCP relay to the registry that sends its replies at ~2 MB/s and counts the bytes:
    a pull through it takes seconds, long enough to hang up in the middle."""

    def __init__(self, upstream: str) -> None:
        import socket
        import threading

        host, port = upstream.split(":")
        self.upstream = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.sent = 0
        self.open = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self.lock:
                self.open += 1
            for args in ((client, server, 0.0), (server, client, 0.03)):
                threading.Thread(target=self._pump, args=args, daemon=True).start()

    def _pump(self, src: Any, dst: Any, pause: float) -> None:
        import time

        try:
            while data := src.recv(65536):
                dst.sendall(data)
                if pause:
                    with self.lock:
                        self.sent += len(data)
                    time.sleep(pause)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass
            if pause:
                with self.lock:
                    self.open -= 1

    def close(self) -> None:
        self.listener.close()


@pytest.mark.slow
def test_pull_ends_when_its_client_hangs_up(server: Server, registry: Registry,
                                            tmp_path: os.PathLike[str]) -> None:
    """As dockerd: a pull is cancelled when its connection closes (no image, the transfer
    cut short), not carried on for nobody."""
    import time

    from tests.api.conftest import _UnixConnection

    rootfs = os.path.join(tmp_path, "rootfs.tar")
    with tarfile.open(rootfs, "w") as tar:
        info = tarfile.TarInfo("big")
        info.size = 16 << 20
        tar.addfile(info, io.BytesIO(os.urandom(info.size)))
    _ok(server.docker("import", rootfs, f"{registry.host}/big:1"))
    _ok(server.docker("push", f"{registry.host}/big:1"))
    _ok(server.docker("rmi", f"{registry.host}/big:1"))
    proxy = _SlowProxy(registry.host)
    try:
        conn = _UnixConnection(server.socket)
        conn.request("POST", f"/v1.43/images/create?fromImage={proxy.host}/big&tag=1")
        response = conn.getresponse()
        assert response.status == 200
        while b'"Downloading"' not in response.readline():
            pass
        conn.close()
        deadline = time.monotonic() + 30
        while proxy.open and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proxy.open == 0  # the registry client hung up too
        assert proxy.sent < 8 << 20, proxy.sent  # long before the 16 MiB layer was through
        assert _ok(server.docker("images", "-q")) == ""
    finally:
        proxy.close()
