"""Settings shared by the hypothesis fuzz tests (tests/*/test_*_fuzz.py).

Fast by default: each test runs its own modest number of examples. BARQUE_FUZZ_SCALE=N runs
N times as many (a longer run: `BARQUE_FUZZ_SCALE=50 ./scripts/test tests/storage/...`).
The examples are drawn afresh each run (no example database), as fuzzing wants.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings

SCALE = max(1, int(os.environ.get("BARQUE_FUZZ_SCALE", "1")))


def fuzz_settings(examples: int) -> Any:
    return settings(max_examples=examples * SCALE, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])
