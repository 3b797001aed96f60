"""barque-monitor tests: the binary is built once per session with make."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.support.bundles import Runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tests.monitor.test_monitor import Monitors

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MONITOR_DIR = os.path.join(REPO, "monitor")


@pytest.fixture(scope="session")
def monitor_bin() -> str:
    if not shutil.which("make") or not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("make and a C compiler are needed to build barque-monitor")
    proc = subprocess.run(["make", "-C", MONITOR_DIR], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"make -C monitor failed:\n{proc.stdout}\n{proc.stderr}"
    return os.path.join(MONITOR_DIR, "build", "barque-monitor")


@pytest.fixture
def mon(runtime: Runtime, monitor_bin: str) -> Iterator[Monitors]:
    """Monitors launched by a test, every one (and its container) removed at the end."""
    from tests.monitor.test_monitor import Monitors

    monitors = Monitors(runtime, monitor_bin)
    yield monitors
    monitors.cleanup()
