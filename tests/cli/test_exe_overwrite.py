"""CVE-2019-5736 class through the CLI: a container's process spins over /proc for the runtime
that `barque exec` or its own health check (run by the monitor, no admin action at all) makes
join it, to write through its /proc/PID/exe. The target is a private copy of the interpreter
that only this test's barque, monitor and runtime use (tests/support/exe_attack.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from tests.cli.conftest import Barque, inspect_container, ok
from tests.support import exe_attack
from tests.support.marks import needs_busybox

pytestmark = [pytest.mark.root, pytest.mark.slow, needs_busybox]


@dataclass
class CopyBarque(Barque):
    """The CLI of the interpreter copy, on the `barque` fixture's root dirs."""
    program: str = ""

    def argv(self, *args: str) -> list[str]:
        return [self.program, "--root", self.root, "--runroot", self.runroot, *args]


@pytest.fixture
def setup(barque: Barque, tmp_path: os.PathLike) -> tuple[CopyBarque, exe_attack.Interpreter,
                                                            exe_attack.Tools]:
    interpreter = exe_attack.interpreter_copy(os.path.join(str(tmp_path), "venv"))
    tools = exe_attack.Tools(os.path.join(str(tmp_path), "tools"))
    return CopyBarque(barque.root, barque.runroot, interpreter.barque), interpreter, tools


def _attack(b: CopyBarque, tools: exe_attack.Tools, marker: str, *flags: str) -> None:
    ok(b.run("run", "-d", "--name", "box", "-v", f"{tools.dir}:/t:ro", *flags, "busybox",
             "/t/attack", "scan", "5", "-", marker))


def _outcome(b: CopyBarque, interpreter: exe_attack.Interpreter, marker: str) -> None:
    log = exe_attack.wait_for_log(lambda: b.run("logs", "box").stdout)
    interpreter.assert_intact(marker)
    assert "WROTE" not in log
    assert "done caught=0" in log, f"a joining process was reachable: {log}"


def test_barque_exec_cannot_reach_the_runtime(setup: tuple) -> None:
    b, interpreter, tools = setup
    marker = f"{os.path.basename(os.path.dirname(b.root))}-barque-exec"
    _attack(b, tools, marker)
    for _ in range(8):
        b.run("exec", "box", "true")
    _outcome(b, interpreter, marker)


def test_health_check_cannot_reach_the_runtime(setup: tuple) -> None:
    b, interpreter, tools = setup
    marker = f"{os.path.basename(os.path.dirname(b.root))}-health"
    _attack(b, tools, marker, "--health-cmd", "true", "--health-interval", "200ms")
    _outcome(b, interpreter, marker)
    checks = inspect_container(b, "box")["State"]["Health"]["Log"]
    assert len(checks) >= 3, checks  # the monitor did make the runtime join, repeatedly
