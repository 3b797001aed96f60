"""Debian's docker-compose (1.29, through the Docker SDK) against `barque serve`: a two-service
project — a web server and a client that finds it by service name (network aliases, the
embedded DNS) — a named volume and a port published on 127.0.0.1: up, ps, logs, down -v,
and nothing left."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request

import pytest

from tests.api.conftest import Server
from tests.cli.conftest import ok, until
from tests.support import tools

pytestmark = [pytest.mark.root, pytest.mark.slow]

PROJECT = "bqcompose"
COMPOSE_FILE = """\
version: "3.8"
services:
  web:
    image: busybox
    command: sh -c 'echo hello-from-web > /www/index.html && exec httpd -f -v -p 80 -h /www'
    volumes:
      - www:/www
    ports:
      - "127.0.0.1:{port}:80"
  client:
    image: busybox
    command: sh -c 'until wget -qO- http://web/index.html; do sleep 0.2; done; exec sleep 600'
    depends_on:
      - web
volumes:
  www:
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _compose(server: Server, project_dir: str, *args: str,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": server.host,
           "DOCKER_CONFIG": os.path.join(project_dir, "docker-config"),
           "COMPOSE_INTERACTIVE_NO_CLI": "1"}
    return subprocess.run(["docker-compose", "--no-ansi", "-p", PROJECT, *args],
                          cwd=project_dir, capture_output=True, text=True, env=env,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _fetch(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as reply:
        return reply.read().decode()


def test_compose_up_ps_logs_down(server: Server, tmp_path: os.PathLike[str]) -> None:
    tools.require("docker-compose")
    project_dir, port = str(tmp_path), _free_port()
    with open(os.path.join(project_dir, "docker-compose.yml"), "w") as f:
        f.write(COMPOSE_FILE.format(port=port))
    ok(server.barque.run("image", "build-default"))  # the image the project names is local
    up = _compose(server, project_dir, "up", "-d")
    assert up.returncode == 0, up.stderr
    for line in (f'Creating network "{PROJECT}_default" with the default driver',
                 f'Creating volume "{PROJECT}_www" with default driver',
                 f"Creating {PROJECT}_web_1 ... done", f"Creating {PROJECT}_client_1 ... done"):
        assert line in up.stderr, up.stderr

    ps = _compose(server, project_dir, "ps")
    assert ps.returncode == 0, ps.stderr
    rows = {line.split()[0]: line for line in ps.stdout.splitlines()[2:]}
    assert set(rows) == {f"{PROJECT}_web_1", f"{PROJECT}_client_1"}
    assert all(" Up " in row for row in rows.values()), ps.stdout
    assert f"127.0.0.1:{port}->80/tcp" in rows[f"{PROJECT}_web_1"]
    assert ok(server.docker("ps", "-q", "--filter", f"label=com.docker.compose.project="
                            f"{PROJECT}")).count("\n") == 2

    # the client found the web server by its service name; the host reaches the port
    def fetched() -> bool:
        logs = _compose(server, project_dir, "logs", "--no-color", "client")
        return "hello-from-web" in logs.stdout
    until(fetched, timeout=60)
    assert _fetch(port) == "hello-from-web\n"
    logs = _compose(server, project_dir, "logs", "--no-color", "web")
    assert logs.returncode == 0 and "response:200" in logs.stdout, logs.stdout
    network = json.loads(ok(server.docker("network", "inspect", f"{PROJECT}_default")))[0]
    assert network["Labels"]["com.docker.compose.network"] == "default"
    assert len(network["Containers"]) == 2
    again = _compose(server, project_dir, "up", "-d")  # the config hashes match: nothing new
    assert again.returncode == 0 and f"{PROJECT}_web_1 is up-to-date" in again.stderr, \
        again.stderr

    start = time.monotonic()
    down = _compose(server, project_dir, "down", "-v", "-t", "1")
    assert down.returncode == 0, down.stderr
    assert time.monotonic() - start < 60
    for line in (f"Removing {PROJECT}_web_1", f"Removing network {PROJECT}_default",
                 f"Removing volume {PROJECT}_www"):
        assert line in down.stderr, down.stderr
    # nothing left: containers, the volume and its data, the network and its bridge, the port
    assert ok(server.docker("ps", "-aq")) == ""
    assert ok(server.docker("volume", "ls", "-q")) == ""
    assert ok(server.docker("network", "ls", "--format", "{{.Name}}")).split() == \
        ["bridge", "host", "none"]
    assert not os.path.exists(os.path.join(server.barque.root, "volumes", f"{PROJECT}_www"))
    gone = subprocess.run(["ip", "link", "show", "br-" + network["Id"][:12]],
                          capture_output=True)
    assert gone.returncode != 0
    with pytest.raises(OSError):
        _fetch(port)
