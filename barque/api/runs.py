"""The server's memory of the containers it started: which ones a client is attaching to
(their start waits for it, as `run` does) and the final state of each run, for /wait.

A run started here is claimed from its monitor (engine.lifecycle.claim_exit), so its final
state is known here before an --rm container is removed; if the server dies, the claim ends
and the monitor's exit command cleans up as without a server: the containers are the
monitors', never the server's."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from aiohttp import web

from barque.engine import lifecycle
from barque.engine import state as st
from barque.engine.context import Engine
from barque.engine.errors import EngineError
from barque.engine.paths import Paths


class Runs:
    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.attaching: set[str] = set()
        self._exits: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._watched: set[str] = set()  # runs started here, until their end
        self.stopping = False  # the server stops: watchers let go of their claims

    def exit_of(self, container_id: str) -> asyncio.Future[dict[str, Any]]:
        """The final state of the container's next run here (made before it starts, for a
        /wait that comes before /start, as the docker CLI sends them)."""
        future = self._exits.get(container_id)
        if future is None or future.done():
            future = asyncio.get_running_loop().create_future()
            self._exits[container_id] = future
        return future

    def watching(self, container_id: str) -> bool:
        future = self._exits.get(container_id)
        return future is not None and not future.done()

    def started_here(self, container_id: str) -> bool:
        """A run of the container started by this server is under way (its end will be
        handed to exit_of's future)."""
        return container_id in self._watched

    def ended(self, container_id: str, state: dict[str, Any]) -> None:
        self._watched.discard(container_id)
        future = self._exits.pop(container_id, None)
        if future is not None and not future.done():
            future.set_result(state)

    def watch(self, container_id: str) -> None:
        """After a start: claim the run's exit, wait for it, clean up as the CLI's attached
        run does (an --rm container removed), and hand its final state to the waiters. In
        a thread of its own for the container's life, not one of the engine pool's (a
        hundred running containers must not starve the requests)."""
        self.exit_of(container_id)  # /wait after /start finds it
        self._watched.add(container_id)
        loop = asyncio.get_running_loop()

        def run() -> None:
            try:
                state = self._wait_end(container_id)
            except Exception as e:  # noqa: BLE001 (a waiter must not hang on it)
                state = {"ExitCode": -1, "Error": str(e)}
            try:
                loop.call_soon_threadsafe(self.ended, container_id, state)
            except RuntimeError:
                pass  # the server's loop is closed: no one waits any more

        threading.Thread(target=run, name=f"watch-{container_id[:12]}", daemon=True).start()

    def _wait_end(self, container_id: str) -> dict[str, Any]:
        with Engine(self.paths) as engine:
            record = engine.find(container_id)
            claim = lifecycle.claim_exit(engine, record)
            # A start that waits for its attach client is "created" until then: not yet a
            # run that ended.
            while st.creating(engine.paths.monitor_dir(record.id)) and not self.stopping:
                time.sleep(0.02)
            # the run's end, as dockerd's: a restart policy's next run is not this one's
            restarts = lifecycle.restarts(engine, record)
            while not self.stopping and \
                    lifecycle.wait_run_end(engine, record, restarts, 0.5) is None:
                pass
            if self.stopping:  # without done(): the monitor's exit command cleans up
                if claim is not None:
                    claim.close()
                return {"ExitCode": -1, "Error": "barque serve stopped"}
            return lifecycle.end_attached(engine, record, claim, restarts)

    async def engine_wait(self, container_id: str, condition: str) -> dict[str, Any] | None:
        """lifecycle.wait, for a run of any front end (the barque CLI's too), in a thread of
        its own for as long as it takes (not one of the engine pool's); let go when this
        coroutine is cancelled. None: the container was removed before it was looked at."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[dict[str, Any] | None] = loop.create_future()
        cancel = threading.Event()

        def settle(result: dict[str, Any] | None, error: BaseException | None) -> None:
            if answer.done():
                return
            if error is not None:
                answer.set_exception(error)
            else:
                answer.set_result(result)

        def run() -> None:
            result: dict[str, Any] | None = None
            error: BaseException | None = None
            try:
                with Engine(self.paths) as engine:
                    result = lifecycle.wait(engine, container_id, condition, cancel)
            except EngineError as e:
                if e.status != 404:
                    error = e
            except Exception as e:  # noqa: BLE001 (the waiter must not hang on it)
                error = e
            try:
                loop.call_soon_threadsafe(settle, result, error)
            except RuntimeError:
                pass  # the server's loop is closed: no one waits any more

        threading.Thread(target=run, name=f"wait-{container_id[:12]}", daemon=True).start()
        try:
            return await answer
        finally:
            cancel.set()


RUNS: web.AppKey[Runs] = web.AppKey("runs", Runs)
