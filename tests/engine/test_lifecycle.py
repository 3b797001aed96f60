"""Engine lifecycle corner cases that the CLI cannot reach on purpose."""

from __future__ import annotations

import os

import pytest

from barque.engine import lifecycle, monitor
from barque.engine.context import Engine, Paths
from barque.engine.create import create
from barque.image import default as default_image
from tests.cli.conftest import Barque

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not os.path.isfile(default_image.BUSYBOX),
                       reason="busybox-static is not installed"),
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
