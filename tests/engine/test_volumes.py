"""engine.volumes' operations (`docker volume`, /volumes), called as the API will."""

from __future__ import annotations

import pytest

from barque.engine import volumes
from barque.engine.context import Engine, EngineError, Paths
from tests.cli.conftest import Barque


@pytest.mark.root
def test_create_list_filter_remove(barque: Barque) -> None:
    with Engine(Paths(barque.root, barque.runroot)) as engine:
        with pytest.raises(EngineError, match='plugin "nfs" not found') as e:
            volumes.create_volume(engine, "v", driver="nfs")
        assert e.value.status == 404 and volumes.list_volumes(engine) == []
        with pytest.raises(EngineError, match="Invalid filter 'size'"):
            volumes.list_volumes(engine, {"size": ["1"]})
        volumes.create_volume(engine, "alpha", labels={"a": "1", "b": "2"})
        volumes.create_volume(engine, "beta", labels={"a": "1"})

        def names(filters: dict[str, list[str]]) -> list[str]:
            return [v.name for v in volumes.list_volumes(engine, filters)]

        assert names({}) == ["alpha", "beta"]
        assert names({"name": ["alp", "bet"]}) == ["alpha", "beta"]  # any value
        assert names({"label": ["a=1", "b"]}) == ["alpha"]  # every label
        assert names({"dangling": ["true"]}) == ["alpha", "beta"]
        assert names({"dangling": ["false"]}) == []
        assert names({"driver": ["local"], "name": ["beta"]}) == ["beta"]
        volumes.remove_volume(engine, "alpha")
        volumes.remove_volume(engine, "gone", force=True)  # nothing to do, as Docker
        assert names({}) == ["beta"]
        volumes.remove_volume(engine, "beta")


@pytest.mark.root
def test_prune_filters(barque: Barque) -> None:
    from barque.engine.system import prune_volumes

    with Engine(Paths(barque.root, barque.runroot)) as engine:
        volumes.create_volume(engine, "keep", labels={"team": "a", "keep": "1"})
        volumes.create_volume(engine, "drop", labels={"team": "a"})
        volumes.create_volume(engine, "other", labels={"team": "b"})
        anonymous, _ = volumes.create_volume(engine, "")
        with pytest.raises(EngineError, match="Invalid filter 'until'") as e:
            prune_volumes(engine, True, {"until": ["1h"]})
        assert e.value.status == 400
        with pytest.raises(EngineError, match="invalid filter 'all=maybe'"):
            prune_volumes(engine, False, {"all": ["maybe"]})
        assert len(engine.volumes.all()) == 4  # refused: nothing removed
        assert prune_volumes(engine, False, {"label": ["team=a"]}) == ([], 0)  # named: kept
        assert prune_volumes(engine, False, {"all": ["true"], "label": ["team=a"],
                                             "label!": ["keep"]}) == (["drop"], 0)
        assert prune_volumes(engine, False) == ([anonymous.name], 0)
        assert [v.name for v in engine.volumes.all()] == ["keep", "other"]
