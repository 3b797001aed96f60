"""Containers in the state database: what `create` decided, and what outlives a run.

A record holds the Engine API's `Config` and `HostConfig` as given at create time (the OCI
spec is made from them at each start, as Docker does) and the persistent part of the state;
the live part (running, pid) is the monitor's (engine/state.py merges the two).
"""

from __future__ import annotations

import json
import sqlite3

from barque.engine.errors import EngineError
from barque.storage import db
from barque.structs import dataclass, field

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any


class RecordError(EngineError):
    """A record could not be found or written. Outside `run` and `create` the CLI exits 1 on it,
    as on any daemon error."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message, 1, status)


@dataclass
class ContainerRecord:
    id: str
    name: str  # without the leading "/"
    created: str
    image: str  # as the user named it
    image_id: str
    config: dict[str, Any]
    host_config: dict[str, Any]
    mounts: list[dict[str, Any]] = field(default_factory=list)  # mounts.Mount fields
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def short_id(self) -> str:
        return self.id[:12]


COLUMNS = ("id", "name", "created", "image", "image_id", "config", "host_config", "mounts",
           "state")


def from_texts(row: tuple[str, ...]) -> ContainerRecord:
    """A record from its row's texts in COLUMNS' order (Records.texts)."""
    return ContainerRecord(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]),
                           json.loads(row[6]), json.loads(row[7]), json.loads(row[8]))


def _from_row(row: sqlite3.Row) -> ContainerRecord:
    return ContainerRecord(
        id=row["id"], name=row["name"], created=row["created"], image=row["image"],
        image_id=row["image_id"], config=json.loads(row["config"]),
        host_config=json.loads(row["host_config"]), mounts=json.loads(row["mounts"]),
        state=json.loads(row["state"]),
    )  # fmt: skip


class Records:
    """The containers table of the state database (one connection; several processes may
    use the database at once: SQLite's locks keep every write whole)."""

    def __init__(self, root: str, create: bool = True) -> None:
        self.conn = db.connect(root, create)

    def close(self) -> None:
        self.conn.close()

    def insert(self, record: ContainerRecord) -> None:
        try:
            with db.transaction(self.conn):
                self.conn.execute(
                    "INSERT INTO containers (id, name, created, image, image_id, config, "
                    "host_config, mounts, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (record.id, record.name, record.created, record.image, record.image_id,
                     json.dumps(record.config), json.dumps(record.host_config),
                     json.dumps(record.mounts), json.dumps(record.state)),
                )  # fmt: skip
        except sqlite3.IntegrityError:
            other = self.conn.execute(
                "SELECT id FROM containers WHERE name = ?", (record.name,)
            ).fetchone()
            raise RecordError(
                f'Conflict. The container name "/{record.name}" is already in use by container '
                f'"{other["id"] if other else "?"}". You have to remove (or rename) that '
                "container to be able to reuse that name.", 409) from None

    def get(self, container_id: str) -> ContainerRecord | None:
        row = self.conn.execute("SELECT * FROM containers WHERE id = ?",
                                (container_id,)).fetchone()
        return _from_row(row) if row else None

    def find(self, text: str) -> ContainerRecord:
        """By full ID, name (with or without "/") or unique ID prefix, as Docker looks up."""
        row = self.conn.execute(
            "SELECT * FROM containers WHERE id = ? OR name = ?", (text, text.removeprefix("/"))
        ).fetchone()
        if row is None and text and all(c in "0123456789abcdef" for c in text):
            rows = self.conn.execute(
                "SELECT * FROM containers WHERE substr(id, 1, ?) = ?", (len(text), text)
            ).fetchall()
            if len(rows) > 1:
                raise RecordError(f"multiple IDs found with provided prefix: {text}", 400)
            row = rows[0] if rows else None
        if row is None:
            raise RecordError(f"No such container: {text}", 404)
        return _from_row(row)

    def all(self) -> list[ContainerRecord]:
        rows = self.conn.execute("SELECT * FROM containers ORDER BY created DESC").fetchall()
        return [_from_row(r) for r in rows]

    def texts(self) -> list[tuple[str, ...]]:
        """Every container's row as stored (COLUMNS' texts), newest first: for a caller that
        parses only the rows that changed since it last looked (listing.py)."""
        cursor = self.conn.cursor()
        cursor.row_factory = None  # plain tuples: compared whole, cheaply
        return cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM containers "
                              "ORDER BY created DESC").fetchall()

    def save_state(self, container_id: str, state: dict[str, Any]) -> None:
        with db.transaction(self.conn):
            self.conn.execute("UPDATE containers SET state = ? WHERE id = ?",
                              (json.dumps(state), container_id))

    def rename(self, container_id: str, name: str) -> None:
        try:
            with db.transaction(self.conn):
                self.conn.execute("UPDATE containers SET name = ? WHERE id = ?",
                                  (name, container_id))
        except sqlite3.IntegrityError:
            other = self.conn.execute("SELECT id FROM containers WHERE name = ?",
                                      (name,)).fetchone()
            raise RecordError(f'Error when allocating new name: Conflict. The container name '
                              f'"/{name}" is already in use by container '
                              f'"{other["id"] if other else "?"}". You have to remove (or rename) '
                              "that container to be able to reuse that name.", 409) from None

    def update(self, record: ContainerRecord) -> None:
        """Write back a record's config, host config, mounts and state."""
        with db.transaction(self.conn):
            self.conn.execute(
                "UPDATE containers SET config = ?, host_config = ?, mounts = ?, state = ? "
                "WHERE id = ?",
                (json.dumps(record.config), json.dumps(record.host_config),
                 json.dumps(record.mounts), json.dumps(record.state), record.id),
            )  # fmt: skip

    def delete(self, container_id: str) -> None:
        with db.transaction(self.conn):
            self.conn.execute("DELETE FROM containers WHERE id = ?", (container_id,))
