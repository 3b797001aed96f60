"""The engine's RUN executor, recording what the builder asked of it."""

from __future__ import annotations

from collections.abc import Callable

from barque.build.executor import RunRequest
from barque.engine.build_run import EngineExecutor
from barque.engine.context import Engine


class Recording:
    def __init__(self, engine: Engine) -> None:
        self.inner = EngineExecutor(engine)
        self.runs: list[RunRequest] = []

    def run(self, request: RunRequest, output: Callable[[int, bytes], None]) -> int:
        self.runs.append(request)
        return self.inner.run(request, output)
