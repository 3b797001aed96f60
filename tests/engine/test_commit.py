"""`commit` as an engine call (barque/engine/commit.py): an Image back, its config and
history as Docker makes them; a bad `--change` changes nothing."""

from __future__ import annotations

import pytest

from barque.engine.commit import commit
from barque.engine.context import Engine, EngineError, Paths
from tests.cli.conftest import Barque, ok
from tests.support.marks import needs_busybox

pytestmark = [
    pytest.mark.root,
    needs_busybox,
]


def test_commit_returns_the_new_image(barque: Barque) -> None:
    b = barque
    ok(b.run("run", "--name", "base", "busybox", "sh", "-c", "echo baked > /baked"))
    with Engine(Paths(b.root, b.runroot)) as engine:
        parent = engine.store.get(engine.find("base").image_id)
        image = commit(engine, "base", "baked:v1", author="me", message="bake",
                       changes=["ENV BAKED=yes"])
        config = engine.store.config(image)
    assert image.tags == ["docker.io/library/baked:v1"]
    assert len(image.layers) == len(parent.layers) + 1
    assert "BAKED=yes" in config["config"]["Env"]
    assert config["author"] == "me" and config["history"][-1]["comment"] == "bake"
    assert config["history"][-1]["created_by"] == "sh -c echo baked > /baked"
    assert ok(b.run("run", "--rm", "baked:v1", "cat", "/baked")) == "baked\n"


def test_bad_change_is_refused_and_adds_nothing(barque: Barque) -> None:
    b = barque
    ok(b.run("run", "--name", "base", "busybox", "true"))
    before = ok(b.run("images", "-q", "--no-trunc")).split()
    with Engine(Paths(b.root, b.runroot)) as engine:
        with pytest.raises(EngineError, match="run is not a valid change command") as e:
            commit(engine, "base", "x:1", changes=["RUN make"])
    assert (e.value.exit_code, e.value.status) == (1, 400)
    assert ok(b.run("images", "-q", "--no-trunc")).split() == before
