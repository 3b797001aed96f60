"""Fixtures for the registry tests: one real registry for the session, busybox pushed to it
by skopeo, and a Docker config directory of each test's own (never the user's)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from barque.image.default import build_default_image
from barque.storage.blobs import BlobStore
from tests.support.registry import Registry, run_registry, skopeo_copy
from tests.support.tools import require


@pytest.fixture(autouse=True)
def docker_config(tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch) -> str:
    """The credentials file this test reads and writes ($DOCKER_CONFIG/config.json)."""
    directory = os.path.join(tmp_path, "docker-config")
    monkeypatch.setenv("DOCKER_CONFIG", directory)
    return os.path.join(directory, "config.json")


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(str(tmp_path_factory.mktemp("registry"))) as reg:
        yield reg


@pytest.fixture(scope="session")
def busybox_layout(tmp_path_factory: pytest.TempPathFactory) -> str:
    require("busybox")
    layout = str(tmp_path_factory.mktemp("layout") / "busybox")
    build_default_image(layout, "latest")
    return layout


@pytest.fixture(scope="session")
def seeded(registry: Registry, busybox_layout: str) -> str:
    """`127.0.0.1:PORT/busybox:latest`, pushed by skopeo from Barque's default image."""
    skopeo_copy(f"oci:{busybox_layout}:latest", f"docker://{registry.host}/busybox:latest")
    return f"{registry.host}/busybox:latest"


@pytest.fixture
def store(tmp_path: os.PathLike[str]) -> BlobStore:
    return BlobStore(os.path.join(tmp_path, "store"))
