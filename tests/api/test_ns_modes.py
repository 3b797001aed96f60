"""HostConfig's IpcMode, PidMode, UTSMode and CgroupnsMode through `barque serve`: the docker
CLI's `--ipc`, `--pid`, `--uts`, `--cgroupns`, and compose's `ipc:` and `pid: "service:x"`
(docker-compose 1.29 through the Docker SDK; its file formats have no `uts:`)."""

from __future__ import annotations

import os
import socket

import pytest

from tests.api.conftest import Server
from tests.api.test_compose import _compose
from tests.cli.conftest import ok
from tests.support import tools

pytestmark = pytest.mark.root

COMPOSE_FILE = """\
version: "3.8"
services:
  donor:
    image: busybox
    command: sh -c 'echo from-donor > /dev/shm/marker; exec sleep 600'
    ipc: shareable
    network_mode: none
  joiner:
    image: busybox
    command: sleep 601
    ipc: "service:donor"
    pid: "service:donor"
    network_mode: none
    depends_on:
      - donor
"""


def _modes(server: Server, name: str) -> list[str]:
    return ok(server.docker("inspect", "-f", "{{.HostConfig.IpcMode}} {{.HostConfig.PidMode}} "
                            "{{.HostConfig.UTSMode}} {{.HostConfig.CgroupnsMode}}|", name)
              ).rstrip("|\n").split(" ")


def test_docker_cli_namespace_modes(server: Server) -> None:
    ok(server.docker("run", "-d", "--network", "none", "--name", "donor", "--ipc", "shareable",
                     "--cgroupns", "private", "busybox", "sleep", "600"))
    donor = ok(server.docker("inspect", "-f", "{{.Id}}", "donor")).strip()
    assert _modes(server, "donor") == ["shareable", "", "", "private"]
    ok(server.docker("exec", "donor", "sh", "-c", "echo hi > /dev/shm/marker"))
    out = ok(server.docker("run", "--rm", "--network", "none", "--ipc", "container:donor",
                           "--pid", "container:donor", "--uts", "host", "busybox", "sh", "-c",
                           "cat /dev/shm/marker; hostname; ps -o args | grep -c '^sleep 600'"))
    assert out.split() == ["hi", socket.gethostname(), "1"]
    ok(server.docker("run", "-d", "--network", "none", "--name", "plain", "busybox", "sleep",
                     "600"))
    plain = ok(server.docker("inspect", "-f", "{{.Id}}", "plain")).strip()
    from barque.cgroups.mountinfo import is_pure_v2

    assert _modes(server, "plain") == ["private", "", "",
                                       "private" if is_pure_v2() else "host"]
    out = server.docker("run", "--rm", "--network", "none", "--ipc", "container:plain",
                        "busybox", "true")
    assert out.returncode == 125
    assert f"can't join IPC of container {plain}: non-shareable IPC (hint: use " \
        "IpcMode:shareable for the donor container)" in out.stderr
    out = server.docker("create", "--pid", "container:nosuch", "busybox", "true")
    assert out.returncode == 1 and "No such container: nosuch" in out.stderr
    out = server.docker("create", "--ipc", "bogus", "busybox", "true")
    assert out.returncode == 1 and "invalid IPC mode: bogus" in out.stderr
    names = ok(server.docker("ps", "-a", "--format", "{{.Names}}")).split()
    assert sorted(names) == ["donor", "plain"]  # nothing made by the refused ones
    assert donor


def test_compose_ipc_pid_uts(server: Server, tmp_path: os.PathLike[str]) -> None:
    tools.require("docker-compose")
    ok(server.barque.run("image", "build-default"))  # the image the project names is local
    project_dir = str(tmp_path)
    with open(os.path.join(project_dir, "docker-compose.yml"), "w") as f:
        f.write(COMPOSE_FILE)
    try:
        up = _compose(server, project_dir, "up", "-d")
        assert up.returncode == 0, up.stderr
        donor = ok(server.docker("ps", "-q", "--no-trunc", "--filter",
                                 "label=com.docker.compose.service=donor")).strip()
        joiner = ok(server.docker("ps", "-q", "--no-trunc", "--filter",
                                  "label=com.docker.compose.service=joiner")).strip()
        assert _modes(server, joiner)[:2] == [f"container:{donor}", f"container:{donor}"]
        out = ok(server.docker("exec", joiner, "sh", "-c",
                               "until [ -e /dev/shm/marker ]; do sleep 0.05; done; "
                               "cat /dev/shm/marker; ps -o args"))
        lines = out.splitlines()
        assert lines[0] == "from-donor"
        assert "sleep 600" in lines and "sleep 601" in lines
    finally:
        down = _compose(server, project_dir, "down", "-t", "1")
        assert down.returncode == 0, down.stderr
