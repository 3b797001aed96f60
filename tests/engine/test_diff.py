"""`diff` as an engine call (barque/engine/diff.py): plain (kind, path) pairs, the same the CLI
prints."""

from __future__ import annotations

import pytest

from barque.engine.context import Engine, EngineError, Paths
from barque.engine.diff import container_changes
from tests.cli.conftest import Barque, ok
from tests.support.marks import needs_busybox

pytestmark = [
    pytest.mark.root,
    needs_busybox,
]


def test_container_changes_are_data_sorted_by_path(barque: Barque) -> None:
    b = barque
    ok(b.run("run", "--name", "changer", "busybox", "sh", "-c",
             "mkdir /new && echo x > /new/f && rm /etc/group"))
    with Engine(Paths(b.root, b.runroot)) as engine:
        changes = container_changes(engine, "changer")
    assert changes == sorted(changes, key=lambda c: c[1])
    assert {("A", "/new"), ("A", "/new/f"), ("D", "/etc/group"), ("C", "/etc")} <= set(changes)
    printed = ok(b.run("diff", "changer")).splitlines()
    assert printed == [f"{kind} {path}" for kind, path in changes]


def test_container_changes_of_no_such_container(barque: Barque) -> None:
    with Engine(Paths(barque.root, barque.runroot)) as engine:
        with pytest.raises(EngineError, match="No such container: nosuch"):
            container_changes(engine, "nosuch")
