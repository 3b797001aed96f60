"""The engine's container listing (`ps`, GET /containers/json), called as the API will:
plain arguments in, ContainerSummary out; Docker's filter rules."""

from __future__ import annotations

import pytest

from barque.engine import listing
from barque.engine.context import Engine, EngineError, Paths
from barque.engine.create import create
from barque.engine.filters import parse_filters
from tests.cli.conftest import Barque, ok
from tests.support.marks import needs_busybox


def test_parse_filters_as_docker_does() -> None:
    assert parse_filters(["status=running", "status=paused", "label=a=b"],
                         listing.FILTER_KEYS) == {"status": ["running", "paused"],
                                                  "label": ["a=b"]}
    with pytest.raises(EngineError, match="Invalid filter 'nope'") as e:
        parse_filters(["nope=1"], listing.FILTER_KEYS)
    assert e.value.status == 400
    with pytest.raises(EngineError, match="bad format of filter"):
        parse_filters(["status"], listing.FILTER_KEYS)


@pytest.mark.root
@needs_busybox
def test_list_containers_filters(barque: Barque) -> None:
    with Engine(Paths(barque.root, barque.runroot)) as engine:
        # Bad filters fail before anything is read, even with no container at all.
        with pytest.raises(EngineError, match="Invalid filter 'bogus'"):
            listing.list_containers(engine, filters={"bogus": ["x"]})
        with pytest.raises(EngineError, match="should not contain ':'"):
            listing.list_containers(engine, filters={"publish": ["80:80"]})
        web = create(engine, "busybox", {"Cmd": ["true"], "Labels": {"tier": "web", "x": "1"}},
                     {}, name="web1")
        db = create(engine, "busybox", {"Cmd": ["sh", "-c", "exit 3"],
                                        "Labels": {"tier": "db"}}, {}, name="db1")

        def names(**kw: object) -> list[str]:
            return [s.name for s in listing.list_containers(engine, **kw)]  # type: ignore

        assert names() == []  # running ones only, by default
        assert names(all_=True) == ["db1", "web1"]  # newest first
        assert names(all_=True, limit=1) == ["db1"]
        assert names(filters={"status": ["created"]}) == ["db1", "web1"]  # status: all shown
        # One key's values: any matches; label values: all must.
        assert names(all_=True, filters={"name": ["web", "db"]}) == ["db1", "web1"]
        assert names(all_=True, filters={"label": ["tier=web", "x"]}) == ["web1"]
        assert names(all_=True, filters={"label": ["tier=web", "x=2"]}) == []
        assert names(all_=True, filters={"id": [db.id[:6]]}) == ["db1"]
        assert names(all_=True, filters={"ancestor": ["busybox"], "name": ["web"]}) == ["web1"]
        summary = listing.list_containers(engine, all_=True, filters={"id": [web.id]})[0]
        assert (summary.id, summary.image, summary.command, summary.state) == (
            web.id, "busybox", "true", "created")
        assert summary.labels == {"tier": "web", "x": "1"} and summary.volumes == []
        assert summary.status == "Created" and summary.created > 0


@pytest.mark.root
@needs_busybox
def test_list_containers_running_and_exited(barque: Barque) -> None:
    b = barque
    ok(b.run("run", "-d", "--name", "up", "busybox", "sleep", "300"))
    assert b.run("run", "--name", "three", "busybox", "sh", "-c", "exit 3").returncode == 3
    try:
        with Engine(Paths(b.root, b.runroot)) as engine:
            assert [s.name for s in listing.list_containers(engine)] == ["up"]
            # exited= alone shows no stopped container (Docker's rule: it needs `all`).
            assert listing.list_containers(engine, filters={"exited": ["3"]}) == []
            exited = listing.list_containers(engine, all_=True, filters={"exited": ["0", "3"]})
            assert [s.name for s in exited] == ["three"] and exited[0].state == "exited"
            assert listing.list_containers(engine, all_=True, filters={"exited": ["1"]}) == []
    finally:
        b.run("rm", "-f", "up", "three")
