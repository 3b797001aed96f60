"""The engine's RUN executor, recording what the builder asked of it."""

from __future__ import annotations

import time
from collections.abc import Callable

from barque.build.executor import RunRequest
from barque.engine.build_run import EngineExecutor
from barque.engine.context import Engine


class Recording:
    def __init__(self, engine: Engine) -> None:
        self.inner = EngineExecutor(engine)
        self.runs: list[RunRequest] = []
        # (start, end) of each run, monotonic: whether two of them ran at once
        self.spans: list[tuple[float, float]] = []

    def run(self, request: RunRequest, output: Callable[[int, bytes], None]) -> int:
        self.runs.append(request)
        start = time.monotonic()
        try:
            return self.inner.run(request, output)
        finally:
            self.spans.append((start, time.monotonic()))
