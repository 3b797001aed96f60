"""What the runtime's tests share: `rt`, each test run under barque-runtime and under runc (the
oracle, on a state root of its own): the same bundle, the same answers expected; `oracle`,
both side by side in one test."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.bundles import Runtime
from tests.support.tools import require

RUNTIMES = ["barque-runtime", "runc"]


@pytest.fixture(params=RUNTIMES)
def rt(request: pytest.FixtureRequest, runtime: Runtime) -> Iterator[Runtime]:
    """barque-runtime, or runc on its own state root: the same tests, the same answers."""
    if request.param == "barque-runtime":
        yield runtime
        return
    require("runc")
    oracle = Runtime(runtime.tmp, runtime.rootfs, runtime.prefix)
    oracle.binary = shutil.which("runc") or "runc"
    oracle.state_root = os.path.join(runtime.tmp, "runc-state")
    yield oracle
    oracle.cleanup()


@pytest.fixture
def oracle(runtime: Runtime) -> Iterator[Any]:
    """test_runc_oracle's Oracle: the same container run under both runtimes."""
    from tests.runtime.test_runc_oracle import Oracle

    o = Oracle(runtime)
    yield o
    o.cleanup()
