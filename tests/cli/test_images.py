"""Image commands end to end: the `barque` CLI against a real registry on 127.0.0.1, with
skopeo on the other side."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from collections.abc import Iterator

import pytest

from barque.image import default as default_image
from tests.cli.conftest import Barque
from tests.support.marks import needs_busybox
from tests.support.registry import Registry, run_registry, skopeo_copy, skopeo_inspect

pytestmark = [
    pytest.mark.root,
    needs_busybox,
]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(str(tmp_path_factory.mktemp("registry"))) as reg:
        yield reg


@pytest.fixture(scope="module")
def seeded(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An image pushed by skopeo: Barque's default busybox, as an OCI layout."""
    layout = str(tmp_path_factory.mktemp("layout") / "busybox")
    default_image.build_default_image(layout)
    name = f"{registry.host}/skopeo/busybox:1.0"
    skopeo_copy(f"oci:{layout}:latest", f"docker://{name}")
    return name


@pytest.fixture(autouse=True)
def docker_config(tmp_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", os.path.join(str(tmp_path), "docker-config"))


def test_pull_from_skopeo_then_run(barque: Barque, seeded: str) -> None:
    pulled = barque.run("pull", seeded)
    assert pulled.returncode == 0, pulled.stderr
    lines = pulled.stdout.splitlines()
    assert lines[0] == "1.0: Pulling from skopeo/busybox"
    assert any(line.startswith("Digest: sha256:") for line in lines)
    assert f"Status: Downloaded newer image for {seeded}" in lines
    assert lines[-1] == seeded
    again = barque.run("pull", seeded)
    assert f"Status: Image is up to date for {seeded}" in again.stdout
    ran = barque.run("run", "--rm", seeded, "echo", "pulled and run")
    assert (ran.returncode, ran.stdout) == (0, "pulled and run\n"), ran.stderr


def test_run_pulls_a_missing_image(barque: Barque, seeded: str) -> None:
    ran = barque.run("run", "--rm", seeded, "echo", "auto-pulled")
    assert (ran.returncode, ran.stdout) == (0, "auto-pulled\n"), ran.stderr
    assert f"Unable to find image '{seeded}' locally" in ran.stderr


def test_push_is_read_back_by_skopeo(barque: Barque, registry: Registry) -> None:
    target = f"{registry.host}/barque/pushed:v2"
    assert barque.run("image", "build-default").returncode == 0
    assert barque.run("tag", "busybox", target).returncode == 0
    pushed = barque.run("push", target)
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.splitlines()[0] == f"The push refers to repository " \
                                            f"[{registry.host}/barque/pushed]"
    digest = pushed.stdout.split("digest: ")[1].split()[0]
    info = skopeo_inspect(f"docker://{target}")
    assert info["Digest"] == digest
    image_id = barque.run("images", "-q", "--no-trunc", target).stdout.strip()
    assert image_id.startswith("sha256:")
    inspect = json.loads(barque.run("image", "inspect", target).stdout)[0]
    assert f"{registry.host}/barque/pushed@{digest}" in inspect["RepoDigests"]


def test_images_table_filters_and_format(barque: Barque) -> None:
    assert barque.run("image", "build-default").returncode == 0
    assert barque.run("tag", "busybox", "mine:1").returncode == 0
    table = barque.run("images").stdout.splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert {tuple(line.split()[:2]) for line in table[1:]} == {("busybox", "latest"),
                                                              ("mine", "1")}
    formatted = barque.run("images", "--format", "{{.Repository}}:{{.Tag}}",
                           "--filter", "reference=mine*")
    assert formatted.stdout == "mine:1\n"
    as_json = barque.run("images", "--format", "{{json .}}", "busybox").stdout.splitlines()
    assert [json.loads(line)["Tag"] for line in as_json] == ["latest"]
    assert barque.run("images", "--filter", "dangling=true", "-q").stdout == ""
    bad = barque.run("images", "--filter", "nope=1")
    assert bad.returncode == 1 and "Invalid filter 'nope'" in bad.stderr


def test_history_inspect_and_rmi(barque: Barque) -> None:
    assert barque.run("image", "build-default").returncode == 0
    history = barque.run("history", "busybox").stdout.splitlines()
    assert history[0].split()[:2] == ["IMAGE", "CREATED"]
    assert len(history) == 2
    inspect = barque.run("image", "inspect", "--format", "{{.Os}}/{{.Architecture}}",
                         "busybox")
    assert inspect.stdout.strip().startswith("linux/")
    missing = barque.run("image", "inspect", "nothere")
    assert missing.returncode == 1 and "No such image: nothere" in missing.stderr
    assert barque.run("tag", "busybox", "second").returncode == 0
    assert barque.run("rmi", "second").stdout == "Untagged: second:latest\n"
    removed = barque.run("rmi", "busybox")
    assert removed.returncode == 0
    assert removed.stdout.splitlines()[0] == "Untagged: busybox:latest"
    assert any(line.startswith("Deleted: sha256:") for line in removed.stdout.splitlines())
    gone = barque.run("rmi", "busybox")
    assert (gone.returncode, gone.stderr) == (
        1, "Error: No such image: busybox\n")  # the docker client's words, the name as given


def test_rmi_of_an_image_a_container_uses_needs_force(barque: Barque) -> None:
    assert barque.run("run", "--name", "keeper", "busybox", "true").returncode == 0
    refused = barque.run("rmi", "busybox")
    assert refused.returncode == 1 and "must force" in refused.stderr
    assert "busybox" in barque.run("images").stdout
    # Once the container is gone, so is its hold on the image.
    assert barque.run("rm", "keeper").stdout == "keeper\n"
    assert barque.containers() == []
    missing = barque.run("rm", "keeper")
    assert (missing.returncode, missing.stderr) == (
        1, "Error: No such container: keeper\n")  # the docker CLI's words for rm
    assert barque.run("rmi", "busybox").returncode == 0


def test_save_load_round_trip_and_skopeo_reads_it(barque: Barque, tmp_path: str,
                                                  run_prefix: str) -> None:
    assert barque.run("image", "build-default").returncode == 0
    image_id = barque.run("images", "-q", "--no-trunc", "busybox").stdout.strip()
    archive = os.path.join(str(tmp_path), "saved.tar")
    assert barque.run("save", "-o", archive, "busybox").returncode == 0
    skopeo = subprocess.run(["skopeo", "inspect", f"docker-archive:{archive}"],
                            capture_output=True, text=True, timeout=60)
    assert skopeo.returncode == 0, skopeo.stderr
    other = Barque(os.path.join(str(tmp_path), "root2"), os.path.join(str(tmp_path), "run2"))
    with open(archive, "rb") as f:
        loaded = subprocess.run(other.argv("load"), stdin=f, capture_output=True, text=True,
                                timeout=60)
    assert (loaded.returncode, loaded.stdout) == (0, "Loaded image: busybox:latest\n"), \
        loaded.stderr
    assert other.run("images", "-q", "--no-trunc", "busybox").stdout.strip() == image_id


def test_import_and_export(barque: Barque, tmp_path: str) -> None:
    assert barque.run("run", "--name", "src", "busybox", "sh", "-c",
                      "echo changed > /etc/motd").returncode == 0
    exported = os.path.join(str(tmp_path), "fs.tar")
    result = barque.run("export", "-o", exported, "src")
    assert result.returncode == 0, result.stderr
    with tarfile.open(exported) as tar:
        names = set(tar.getnames())
        motd = tar.extractfile("etc/motd")
        assert motd is not None and motd.read() == b"changed\n"
    assert "bin/busybox" in names
    imported = barque.run("import", "--change", "CMD [\"cat\", \"/etc/motd\"]", exported,
                          "imported:v1")
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith("sha256:")
    ran = barque.run("run", "--rm", "imported:v1")
    assert (ran.returncode, ran.stdout) == (0, "changed\n"), ran.stderr
    bad = barque.run("import", "--change", "RUN true", exported)
    assert bad.returncode == 1 and "not a valid change command" in bad.stderr


def test_login_logout_and_bad_references(barque: Barque, registry: Registry) -> None:
    # The open registry takes any credentials: login stores them, logout removes them.
    login = barque.run("login", "-u", "someone", "--password-stdin", registry.host,
                       input="secret\n")
    assert (login.returncode, login.stdout) == (0, "Login Succeeded\n"), login.stderr
    config = os.path.join(os.environ["DOCKER_CONFIG"], "config.json")
    with open(config) as f:
        assert registry.host in json.load(f)["auths"]
    logout = barque.run("logout", registry.host)
    assert logout.stdout == f"Removing login credentials for {registry.host}\n"
    with open(config) as f:
        assert registry.host not in json.load(f).get("auths", {})
    bad = barque.run("pull", "Upper")
    assert bad.returncode == 1 and "repository name must be lowercase" in bad.stderr
    missing = barque.run("pull", f"{registry.host}/no/such:tag")
    assert missing.returncode == 1 and "manifest unknown" in missing.stderr
    assert barque.run("images", "-q").stdout == ""


def test_oci_archive_and_layout_directory(barque: Barque, tmp_path: str) -> None:
    assert barque.run("image", "build-default").returncode == 0
    image_id = barque.run("images", "-q", "--no-trunc", "busybox").stdout.strip()
    archive = os.path.join(str(tmp_path), "oci.tar")
    layout = os.path.join(str(tmp_path), "layout")
    assert barque.run("save", "--format", "oci-archive", "-o", archive, "busybox").returncode == 0
    assert barque.run("save", "--format", "oci-dir", "-o", layout, "busybox").returncode == 0
    skopeo = subprocess.run(["skopeo", "inspect", f"oci:{layout}:busybox:latest"],
                            capture_output=True, text=True, timeout=60)
    assert skopeo.returncode == 0, skopeo.stderr
    for source in (archive, layout):
        other = Barque(os.path.join(str(tmp_path), "r-" + os.path.basename(source)),
                       os.path.join(str(tmp_path), "run-" + os.path.basename(source)))
        loaded = other.run("load", "-i", source)
        assert loaded.returncode == 0, loaded.stderr
        assert other.run("images", "-q", "--no-trunc").stdout.strip() == image_id


def test_rmi_force_refuses_an_image_a_running_container_uses(barque: Barque) -> None:
    """Docker's rule, in the engine under both front ends: even -f cannot delete the image of
    a running container."""
    assert barque.run("run", "-d", "--name", "runner", "busybox", "sleep", "60").returncode == 0
    image_id = barque.run("images", "-q", "--no-trunc", "busybox").stdout.split()[0]
    refused = barque.run("rmi", "-f", image_id)
    assert refused.returncode == 1
    assert "(cannot be forced) - image is being used by running container" in refused.stderr
    assert image_id in barque.run("images", "-q", "--no-trunc").stdout
    assert barque.run("rm", "-f", "runner").returncode == 0
    assert barque.run("rmi", "-f", image_id).returncode == 0
