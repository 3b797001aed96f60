"""engine.stats.stream (`docker stats`, GET /containers/{id}/stats): readings as data."""

from __future__ import annotations

import itertools

import pytest

from barque.engine import stats
from barque.engine.context import Engine, Paths
from tests.cli.conftest import Barque, ok
from tests.support.marks import needs_busybox

pytestmark = [pytest.mark.root, needs_busybox]


def test_stream_reads_running_containers_and_blanks_stopped_ones(barque: Barque) -> None:
    b = barque
    ok(b.run("run", "-d", "--name", "busy", "-m", "64m", "busybox", "sh", "-c",
             "while :; do :; done"))
    ok(b.run("create", "--name", "idle", "busybox", "true"))
    try:
        with Engine(Paths(b.root, b.runroot)) as engine:
            rounds = list(itertools.islice(
                stats.stream(engine, ["busy", "idle"], interval=0.2), 2))
            for entries in rounds:
                busy, idle = entries
                assert (busy.name, busy.ref, idle.ref) == ("busy", "busy", "idle")
                assert idle.sample is None and idle.cpu_percent == 0.0
                assert busy.sample is not None and busy.previous is not None
                assert busy.sample.limit == 64 << 20 and busy.sample.pids >= 1
                assert 0 < busy.memory_percent < 100
                assert busy.cpu_percent > 5  # a busy loop: a good part of one CPU
            # Without names: the running ones only (all of them with all_).
            [only] = next(stats.stream(engine, []))
            assert only.name == "busy"
            assert {e.name for e in next(stats.stream(engine, [], all_=True))} == \
                {"busy", "idle"}
    finally:
        b.run("rm", "-f", "busy", "idle")
