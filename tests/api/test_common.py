"""barque/api/common.py's reader: polled reads on one thread, shared only by requests that
came before the read began."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from barque.api.common import PATHS, READS, in_reader
from barque.engine.context import Engine
from barque.engine.paths import Paths


class _Request:
    """What in_reader reads of an aiohttp request: its app's state."""

    def __init__(self, root: Path) -> None:
        self.app: dict[Any, Any] = {PATHS: Paths(str(root / "root"), str(root / "run")),
                                    READS: {}}


def test_a_read_is_shared_only_by_requests_that_came_before_it_began(tmp_path: Path) -> None:
    began, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def read(engine: Engine) -> int:
        calls.append(engine.paths.root)
        began.set()
        assert release.wait(10)
        return len(calls)

    async def scenario() -> list[int]:
        request: Any = _Request(tmp_path)
        first = asyncio.ensure_future(in_reader(request, read, "k"))
        assert await asyncio.get_running_loop().run_in_executor(None, began.wait, 10)
        # the first read is under way: what comes now must not get its answer
        second = asyncio.ensure_future(in_reader(request, read, "k"))
        third = asyncio.ensure_future(in_reader(request, read, "k"))  # before the second began
        other = asyncio.ensure_future(in_reader(request, read, "other"))  # another question
        await asyncio.sleep(0)
        release.set()
        answers = [await first, await second, await third, await other]
        assert request.app[READS] == {}  # nothing kept once answered
        return answers

    assert asyncio.run(scenario()) == [1, 2, 2, 3]
    assert calls == [str(tmp_path / "root")] * 3
