"""An engine on a root of the test's own, with the built-in busybox image, for the builder."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from barque.build.dockerfile.parser import parse
from barque.build.events import Vertex
from barque.build.options import BuildOptions
from barque.engine.build import build_parsed
from barque.engine.context import Engine
from barque.engine.images import ensure_default_image
from barque.engine.paths import Paths
from tests.build.executors import Recording
from tests.support.registry import Registry, run_registry


class Recorder:
    """The build's events, as a front end sees them."""

    def __init__(self) -> None:
        self.vertices: dict[int, Vertex] = {}
        self.logs: list[tuple[str, int, bytes]] = []

    def vertex(self, vertex: Vertex) -> None:
        known = self.vertices.get(vertex.number)
        assert known is None or known.name == vertex.name, (known, vertex)  # one #N each
        self.vertices[vertex.number] = vertex

    def log(self, vertex: Vertex, stream: int, data: bytes) -> None:
        self.logs.append((vertex.name, stream, data))

    def steps(self) -> list[Vertex]:
        return [v for _, v in sorted(self.vertices.items())
                if v.name.startswith("[") and not v.name.startswith("[internal]")]


@pytest.fixture(scope="module")
def _busybox_layout(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The built-in busybox image, made once per module and copied into each root."""
    root = str(tmp_path_factory.mktemp("bbroot"))
    engine = Engine(Paths(os.path.join(root, "r"), os.path.join(root, "rr")))
    try:
        ensure_default_image(engine.store)
    finally:
        engine.close()
    return os.path.join(root, "r")


@contextlib.contextmanager
def engine_on_copy(prefix: str, layout: str) -> Iterator[Engine]:
    """An engine on a fresh root copied from `layout` (the busybox image in it); its mounts
    and files removed after."""
    work = tempfile.mkdtemp(prefix=prefix)
    root = os.path.join(work, "root")
    shutil.copytree(layout, root, symlinks=True)
    e = Engine(Paths(root, os.path.join(work, "run")))
    try:
        yield e
    finally:
        e.close()
        _unmount_under(work)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def engine(run_prefix: str, _busybox_layout: str) -> Iterator[Engine]:
    with engine_on_copy(f"{run_prefix}-build-", _busybox_layout) as e:
        yield e


def image_files(engine: Engine, image_id: str) -> dict[str, bytes]:
    """Each regular file the image's layers hold (the top-most one wins)."""
    out: dict[str, bytes] = {}
    image = engine.store.get(image_id)
    for lower in reversed(engine.store.lowers(image)):  # bottom first
        for dirpath, _, names in os.walk(lower):
            for name in names:
                path = os.path.join(dirpath, name)
                if os.path.isfile(path) and not os.path.islink(path):
                    with open(path, "rb") as f:
                        out["/" + os.path.relpath(path, lower)] = f.read()
    return out


def mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path + "/")]


def _unmount_under(path: str) -> None:
    import subprocess

    for m in sorted(mounts_under(path), reverse=True):
        subprocess.run(["umount", "-l", m], check=False)


@pytest.fixture
def fresh(run_prefix: str, _busybox_layout: str) -> Iterator[Engine]:
    """A second engine on a root of its own (another machine or CI job, as far as caches
    go)."""
    with engine_on_copy(f"{run_prefix}-fresh-", _busybox_layout) as e:
        yield e


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(str(tmp_path_factory.mktemp("registry"))) as reg:
        yield reg


@pytest.fixture
def private_docker_config(tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Registry logins in the test's own docker config, never the host's."""
    monkeypatch.setenv("DOCKER_CONFIG", os.path.join(str(tmp_path), "docker-config"))


def build_recorded(engine: Engine, context: str, text: str,
                   **kw: object) -> tuple[str, Recorder, Recording]:
    """Build `text` on `context` (no network unless asked); the image ID, the events and the
    RUN steps the builder asked for."""
    events, executor = Recorder(), Recording(engine)
    kw.setdefault("network", "none")
    options = BuildOptions(context, text.encode(), **kw)  # type: ignore[arg-type]
    result = build_parsed(engine, parse(text), options, events, executor=executor)
    assert result.image_id is not None
    return result.image_id, events, executor


@pytest.fixture
def context(tmp_path: os.PathLike[str]) -> str:
    path = os.path.join(str(tmp_path), "ctx")
    os.makedirs(path)
    return path


# The CLI under test (tests/cli/conftest.py's `barque`), to run what a build made.
from tests.cli.conftest import barque  # noqa: E402,F401


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local server is reached directly, whatever proxy the host's environment sets."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
