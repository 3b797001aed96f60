"""engine.naming: generated names, rename; engine.inspect.inspect_object, called as the API will."""

from __future__ import annotations

import pytest

from barque.engine import lifecycle, naming
from barque.engine.context import Engine, EngineError, Paths
from barque.engine.create import create
from barque.engine.inspect import inspect_object
from tests.cli.conftest import Barque
from tests.support.marks import needs_busybox


@pytest.mark.root
@needs_busybox
def test_rename_attachable_and_inspect_object(barque: Barque) -> None:
    with Engine(Paths(barque.root, barque.runroot)) as engine:
        record = create(engine, "busybox", {"Cmd": ["true"]}, {}, name="first")
        try:
            with pytest.raises(EngineError, match="Invalid container name") as e:
                naming.rename(engine, "first", "bad name")
            assert e.value.status == 400
            with pytest.raises(EngineError, match="same name as its current name"):
                naming.rename(engine, "first", "first")
            with pytest.raises(EngineError, match="No such container"):
                naming.rename(engine, "nothere", "x")
            naming.rename(engine, "first", "second")
            assert engine.find("second").id == record.id
            with pytest.raises(EngineError, match="stopped container") as e:
                lifecycle.attachable(engine, "second")
            assert e.value.status == 409
            found = inspect_object(engine, "second")
            assert found is not None and found["Id"] == record.id
            assert inspect_object(engine, "busybox") is None  # containers only
            image = inspect_object(engine, "busybox", images_too=True)
            assert image is not None and image["Id"] == record.image_id
            network = inspect_object(engine, "none", images_too=True)
            assert network is not None and network["Name"] == "none"
            assert inspect_object(engine, "nothing-at-all", images_too=True) is None
        finally:
            lifecycle.remove(engine, record.id, force=True)


def test_generated_names_have_dockers_shape() -> None:
    import re

    names = {naming.random_name() for _ in range(200)}
    assert all(re.fullmatch(r"[a-z]+_[a-z]+", n) for n in names)
    assert len(names) > 150  # drawn from thousands of pairs, not a handful
    assert re.fullmatch(r"[a-z]+_[a-z]+[0-9]", naming.random_name(1))  # a retry's
    assert all(naming.check_name(n) == n for n in names)
