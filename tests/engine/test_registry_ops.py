"""Push, pull, login and logout as engine calls against a local registry: progress goes to a
sink the caller gives (the CLI renders it; the API will stream it), results come back as data."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from typing import Any

import pytest

from barque.engine import auth
from barque.engine import images as eng
from barque.image.store import ImageNotFound
from barque.registry.progress import Progress
from tests.support.registry import Registry, run_registry

pytestmark = pytest.mark.root


class Recorder(Progress):
    """Every event the engine reports, in order."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def pull_started(self, ref: Any) -> None:
        self.events.append("pull_started")

    def push_started(self, ref: Any) -> None:
        self.events.append("push_started")

    def layer_done(self, layer: str) -> None:
        self.events.append("layer_done")

    def layer_exists(self, layer: str) -> None:
        self.events.append("layer_exists")

    def push_finished(self, ref: Any, digest: str, size: int) -> None:
        self.events.append("push_finished")


@pytest.fixture
def registry(tmp_path: Any) -> Iterator[Registry]:
    with run_registry(str(tmp_path / "registry")) as reg:
        yield reg


def _tar() -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    buf.seek(0)
    return buf


def test_push_then_pull_report_progress(registry: Registry, tmp_path: Any) -> None:
    source = eng.open_store(str(tmp_path / "a"))
    target = eng.open_store(str(tmp_path / "b"))
    try:
        name = f"{registry.host}/eng/hello:1"
        image = eng.import_image(source, _tar(), name)
        pushed = Recorder()
        digest = eng.push(source, name, progress=pushed)
        assert digest.startswith("sha256:")
        assert pushed.events[0] == "push_started" and pushed.events[-1] == "push_finished"
        assert "layer_done" in pushed.events

        pulled = Recorder()
        outcome = eng.pull(target, name, progress=pulled)
        assert (outcome.image.id, outcome.digest, outcome.fresh) == (image.id, digest, True)
        assert pulled.events[0] == "pull_started" and "layer_done" in pulled.events
        assert not eng.pull(target, name).fresh  # "Image is up to date"
        with pytest.raises(ImageNotFound):
            eng.push(source, f"{registry.host}/eng/ghost:1")
    finally:
        source.close()
        target.close()


def test_login_and_logout_keep_the_auth_config(registry: Registry, tmp_path: Any) -> None:
    config = str(tmp_path / "config.json")
    answer = auth.login(registry.host, "someone", "secret", config_path=config)
    assert answer["Status"] == "Login Succeeded"
    with open(config) as f:
        assert registry.host in json.load(f)["auths"]
    assert auth.logout(registry.host, config_path=config)
    with open(config) as f:
        assert registry.host not in json.load(f).get("auths", {})
    assert not auth.logout(registry.host, config_path=config)  # nothing left to forget
    assert os.stat(config).st_mode & 0o077 == 0
