"""Engine lifecycle corner cases that the CLI cannot reach on purpose."""

from __future__ import annotations

import pytest

from barque.engine import lifecycle, monitor
from barque.engine.context import Engine, Paths
from barque.engine.create import create
from tests.cli.conftest import Barque
from tests.support.marks import needs_busybox

pytestmark = [
    pytest.mark.root,
    needs_busybox,
]


def test_rm_ends_a_monitor_whose_attach_client_never_came(barque: Barque) -> None:
    # `run` or `start -a` killed between starting the monitor and attaching: the monitor waits
    # for a client that never comes; removing the container must not leave it behind.
    with Engine(Paths(barque.root, barque.runroot)) as engine:
        record = create(engine, "busybox", {"Cmd": ["true"]}, {})
        lifecycle.start(engine, record.id, attach=True)
        live = monitor.read_state(engine.paths.monitor_dir(record.id))
        assert live is not None and live["Status"] == "created"
        pid = int(live["MonitorPid"])
        assert monitor.alive(pid)
        lifecycle.remove(engine, record.id)
        assert not monitor.alive(pid)
        assert engine.records.get(record.id) is None
