"""What every container operation works with: the paths, the state database (container
records and volumes), the image store, the runtime and the monitor.

The layout of a root and a runroot: paths.py.
"""

from __future__ import annotations

import os
import sqlite3

from barque.engine import events
from barque.engine import state as st
from barque.engine.errors import EngineError
from barque.engine.paths import Paths
from barque.engine.records import ContainerRecord, Records
from barque.engine.volumes import Volumes
from barque.storage.db import DB_NAME

TYPE_CHECKING = False  # not typing's: its import costs every command's start
if TYPE_CHECKING:
    from typing import Any

    from barque.image.store import ImageStore

RUNTIME_NAME = "barque-runtime"


def find_runtime() -> str:
    """BARQUE_RUNTIME (a path or a name on PATH), else barque-runtime beside this Python's
    scripts, else barque-runtime on PATH."""
    from barque.engine.programs import find

    try:
        return find(RUNTIME_NAME, "BARQUE_RUNTIME")
    except LookupError as e:
        raise EngineError(f"OCI runtime: {e}") from None


class Engine:
    """One process's handle on the engine's state; close() it when done."""

    def __init__(self, paths: Paths, create: bool = True) -> None:
        """`create` False: a root dir without a state database is an error, not made."""
        self.paths = paths
        events.register(paths)
        if not create and not os.path.exists(os.path.join(paths.root, DB_NAME)):
            raise EngineError(f"no Barque state in {paths.root}", 1, 404)
        if create:
            os.makedirs(paths.root, mode=0o700, exist_ok=True)
        try:
            self.records = Records(paths.root, create)
        except sqlite3.OperationalError:
            if create or os.path.exists(os.path.join(paths.root, DB_NAME)):
                raise  # not "no state": a real error, in its own words
            raise EngineError(f"no Barque state in {paths.root}", 1, 404) from None
        self.volumes = Volumes(paths.root, self.records.conn)
        self._store: ImageStore | None = None

    @property
    def store(self) -> ImageStore:
        if self._store is None:
            from barque.image.store import ImageStore  # only commands that need images

            # One connection for the records and the images: opening the DB again costs a
            # file open and four statements; no transaction of one spans one of the other.
            self._store = ImageStore(self.paths.root, self.records.conn)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        self.records.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def find(self, ref: str) -> ContainerRecord:
        return self.records.find(ref)

    def state(self, record: ContainerRecord, memo: dict[str, Any] | None = None
              ) -> dict[str, Any]:
        """The container's Docker state now; a finished run is folded into its record.
        `memo`: a caller's between calls, see monitor.read_state."""
        state = st.current(record, self.paths.monitor_dir(record.id), memo)
        saved = record.state
        if state["Status"] in ("exited", "dead") and (
                saved.get("Status") != state["Status"] or
                saved.get("FinishedAt") != state["FinishedAt"]):
            record.state = st.settled(record, state)
            try:
                self.records.save_state(record.id, record.state)
            except Exception:  # a reader that cannot write (a read-only root) still reads
                pass
        return state

    def users_of_volume(self, name: str) -> list[str]:
        return [r.id for r in self.records.all()
                if any(m.get("type") == "volume" and m.get("source") == name for m in r.mounts)]
