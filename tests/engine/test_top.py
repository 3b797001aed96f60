"""engine.top (`docker top`, GET /containers/{id}/top): a ProcessTable of the container's
processes only."""

from __future__ import annotations

import pytest

from barque.engine.context import Engine, EngineError, Paths
from barque.engine.top import parse_ps, top
from tests.cli.conftest import Barque, ok
from tests.support.marks import needs_busybox

_PS = """UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 06:00 ?        00:00:01 /sbin/init splash
root         412       1  0 06:01 ?        00:00:00 sleep   300 with  spaces
"""


def test_parse_ps_keeps_the_container_rows_and_the_command_spaces() -> None:
    table = parse_ps(_PS, {"412"})
    assert table.titles == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert table.processes == [["root", "412", "1", "0", "06:01", "?", "00:00:00",
                                "sleep   300 with  spaces"]]
    with pytest.raises(EngineError, match="Couldn't find PID field in ps output"):
        parse_ps("USER COMMAND\nroot init\n", {"1"})


@pytest.mark.root
@needs_busybox
def test_top_lists_only_the_containers_processes(barque: Barque) -> None:
    b = barque
    ok(b.run("run", "-d", "--name", "topped", "busybox", "sleep", "300"))
    ok(b.run("create", "--name", "idle", "busybox", "true"))
    try:
        with Engine(Paths(b.root, b.runroot)) as engine:
            table = top(engine, "topped")
            assert table.titles[-1] == "CMD" and len(table.processes) == 1
            assert table.processes[0][-1] == "sleep 300"
            table = top(engine, "topped", ["-o", "pid,comm"])
            assert table.titles == ["PID", "COMMAND"] and table.processes[0][1] == "sleep"
            with pytest.raises(EngineError, match="is not running") as e:
                top(engine, "idle")
            assert e.value.status == 409
            with pytest.raises(EngineError, match="No such container"):
                top(engine, "nothere")
    finally:
        b.run("rm", "-f", "topped", "idle")
