"""The engines the compatibility suite compares, started once per session: Debian's dockerd
on directories of its own, and Barque on a root of its own, both holding busybox:latest."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.cli.conftest import _barque, new_barque, remove_everything
from tests.compat.engines import DOCKER_CLI, DOCKERD, Dockerd, Engine
from tests.support import tools


@dataclass
class Engines:
    docker: Engine
    barque: Engine
    # the paths each engine shows of itself, replaced by one placeholder
    paths: dict[str, list[str]]
    tmp: str  # where the cases' host directories go
    if_prefix: str


@pytest.fixture(scope="session")
def engines(run_prefix: str, if_prefix: str) -> Iterator[Engines]:
    tools.require(DOCKERD, DOCKER_CLI, "containerd", "runc")
    work = tempfile.mkdtemp(prefix=f"{run_prefix}-compat-")
    b = new_barque(os.path.join(work, "root"), os.path.join(work, "run"), if_prefix)
    # a client config of its own, as the docker CLI's: login never touches ~/.docker
    client = os.path.join(work, "barque-client")
    os.makedirs(client)
    barque = Engine("barque", b.argv(), {"DOCKER_CONFIG": client})
    dockerd = Dockerd(run_prefix)
    try:
        dockerd.start()
        docker = dockerd.engine()
        _load_busybox(barque, docker, work)
        yield Engines(docker, barque,
                      {"docker": [os.path.join(dockerd.work, "data"),
                                  os.path.join(dockerd.work, "exec")],
                       "barque": [b.root, b.runroot]},
                      os.path.join(work, "cases"), if_prefix)
    finally:
        try:
            dockerd.stop()
        finally:
            remove_everything(b, work)
            shutil.rmtree(work, ignore_errors=True)


def _load_busybox(barque: Engine, docker: Engine, work: str) -> None:
    """Barque's default image, saved by Barque as a docker-save tar and loaded into both:
    the same image ID under the same tag."""
    oci = os.path.join(work, "default.tar")
    saved = os.path.join(work, "busybox.tar")
    run = [*_barque(), "image", "save-default", "-o", oci]
    subprocess.run(run, check=True, capture_output=True)
    for engine, args in ((barque, ["load", "-i", oci]), (barque, ["save", "-o", saved,
                                                                   "busybox:latest"]),
                         (docker, ["load", "-i", saved])):
        result = engine.run(args, timeout=120)
        assert result.code == 0, (engine.name, args, result.stderr)
