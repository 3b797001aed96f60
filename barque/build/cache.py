"""The build cache: what each build step made, keyed as BuildKit keys it, in the state DB.

A step's key is a digest of its parent's key and everything that decides its result: the
instruction after variable expansion, the environment and build args it runs with, the
content checksums of the files it copies (never their mtimes), the platform. Its value is
the layer chain after the step and the time its history entry carries, so a fully cached
rebuild gives the same image config, hence the same image ID, without touching a file.

The image store's collector keeps every layer an entry names (store.collect_garbage);
`prune` drops entries (oldest first, by filters, down to a size) and then collects.

Every built image carries its steps' keys (BuildKit's inline cache, read in place): its
config has a top-level field CONFIG_FIELD, a list with one record per step of the final
stage's chain, in order, `[key, layers, created]`: the step's key (for a COPY --from
another stage, its content key: the one that stays when the source stage is rebuilt into
the same files), how many of the image's layers its result is (a prefix of
rootfs.diff_ids), and the time of its history entry.
A build given `--cache-from IMAGE` looks a key it misses up in those records
(`imported`) and takes the image's layers instead of running the step. The records hold
nothing that differs between a build and its cached rebuild, so both give one image ID.
"""

from __future__ import annotations

import json
import threading
import time

from barque.sha256 import hexdigest
from barque.storage import db
from barque.structs import dataclass

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    import sqlite3
    from typing import Any

# A layer as the cache keeps it: [chain_id, diff_id, blob_digest, media_type, blob_size].
LayerRow = list  # (untyped items: str and int)


@dataclass
class Entry:
    key: str
    layers: list[list[Any]]
    size: int              # bytes of the step's own layer (0: it made none)
    description: str
    created: str           # RFC 3339, for the history entry
    next_key: str = ""     # the key later steps build on, when not this one


@dataclass
class Usage:
    """`system df`'s Build Cache row and `-v` section (Docker's BuildCache records)."""

    key: str
    description: str
    size: int
    created_at: float
    last_used: float
    usage_count: int
    shared: bool           # its layer is also an image's
    in_use: bool = False

    @property
    def id(self) -> str:
        """As BuildKit shows a record's ID: 25 characters."""
        return self.key.split(":", 1)[1][:25]


CONFIG_FIELD = "barque.build.cache.v0"


@dataclass
class Imported:
    """A step's result as a --cache-from image recorded it."""

    layers: list[Any]      # the image's LayerRefs, the step's result their first `count`
    count: int
    created: str
    source: str            # the image's name, for the entry's description


def records(config: dict[str, Any], layers: list[Any], source: str) -> dict[str, Imported]:
    """An image config's CONFIG_FIELD records by key; malformed ones skipped (an image
    from a registry is hostile: a record only ever names a prefix of its own layers)."""
    out: dict[str, Imported] = {}
    field = config.get(CONFIG_FIELD)
    for rec in field if isinstance(field, list) else []:
        if (isinstance(rec, list) and len(rec) == 3 and isinstance(rec[0], str)
                and rec[0].startswith("sha256:") and type(rec[1]) is int
                and 0 <= rec[1] <= len(layers) and isinstance(rec[2], str)):
            out.setdefault(rec[0], Imported(layers, rec[1], rec[2], source))
    return out


def step_key(parent: str, *parts: object) -> str:
    """The key of a step below `parent` (a key, or the base's "from:<image id>")."""
    text = json.dumps([parent, *parts], separators=(",", ":"), sort_keys=True)
    return "sha256:" + hexdigest(text.encode())


class BuildCache:
    """The cache table on a connection to the state DB; safe to share between a build's
    stage threads (one lock around the connection)."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock | None = None) -> None:
        self.conn = conn
        self.lock = lock or threading.RLock()
        self._hits: list[str] = []

    def get(self, key: str) -> Entry | None:
        with self.lock:
            row = self.conn.execute(
                "SELECT layers, size, description, created, next_key FROM build_cache "
                "WHERE key = ?",
                (key,)).fetchone()
        if row is None:
            return None
        self._hits.append(key)
        return Entry(key, json.loads(row[0]), int(row[1]), row[2], row[3], row[4])

    def put(self, entry: Entry) -> None:
        now = time.time()
        with self.lock, db.transaction(self.conn):
            self.conn.execute(
                "INSERT OR REPLACE INTO build_cache VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (entry.key, json.dumps(entry.layers, separators=(",", ":")), entry.size,
                 entry.description, entry.created, now, now, 1, entry.next_key))

    def touch(self) -> None:
        """Record the use of every entry `get` found (one write for the whole build)."""
        hits, self._hits = self._hits, []
        if not hits:
            return
        with self.lock, db.transaction(self.conn):
            self.conn.executemany(
                "UPDATE build_cache SET last_used = ?, usage_count = usage_count + 1 "
                "WHERE key = ?", [(time.time(), k) for k in sorted(set(hits))])

    # --- builder prune, system df ----------------------------------------------------------
    def usage(self) -> list[Usage]:
        """Every entry that holds a layer of its own, newest use first."""
        with self.lock:
            image_chains = {r[0] for r in self.conn.execute(
                "SELECT DISTINCT chain_id FROM image_layers")}
            rows = self.conn.execute(
                "SELECT key, layers, size, description, created_at, last_used, usage_count "
                "FROM build_cache WHERE size > 0 ORDER BY last_used DESC").fetchall()
        out = []
        for key, layers, size, description, created_at, last_used, count in rows:
            chain = json.loads(layers)[-1][0] if layers != "[]" else ""
            out.append(Usage(key, description, int(size),
                             float(created_at), float(last_used), int(count),
                             chain in image_chains))
        return out

    def prune(self, *, all_entries: bool = False, until: float | None = None,
              keep_storage: int = 0) -> list[Usage]:
        """Drop entries last used before `until` (unix time; None: any), keeping the most
        recently used ones while they fit in `keep_storage` bytes; without `all_entries`
        only those whose layer no image shares (BuildKit's prune without --all). Returns
        what was dropped (their layers are freed by the store's collector, which the caller
        runs)."""
        entries = [e for e in self.usage() if all_entries or not e.shared]
        empties: list[str] = []
        if all_entries:  # the metadata steps' records (no layer): with the rest
            with self.lock:
                empties = [r[0] for r in self.conn.execute(
                    "SELECT key FROM build_cache WHERE size = 0"
                    + (" AND last_used < ?" if until is not None else ""),
                    (until,) if until is not None else ()).fetchall()]
        kept, dropped = 0, []
        for entry in entries:  # newest use first: those are the ones kept under the limit
            old_enough = until is None or entry.last_used < until
            if old_enough and not (keep_storage and kept + entry.size <= keep_storage):
                dropped.append(entry)
            else:
                kept += entry.size
        with self.lock, db.transaction(self.conn):
            doomed = [d.key for d in dropped] + empties
            self.conn.executemany("DELETE FROM build_cache WHERE key = ?",
                                  [(k,) for k in doomed])
        if all_entries and until is None and not keep_storage:
            self._prune_cache_mounts()
        return dropped

    def _prune_cache_mounts(self) -> None:
        """RUN --mount=type=cache dirs go with a full prune, as Docker's exec.cachemount
        records do; not while a build runs (it may be using them)."""
        import os
        import shutil

        from barque.linux import locks

        row = self.conn.execute("PRAGMA database_list").fetchone()
        if not row or not row[2]:
            return
        build_dir = os.path.join(os.path.dirname(row[2]), "build")
        tmp = os.path.join(build_dir, "tmp")
        for name in os.listdir(tmp) if os.path.isdir(tmp) else []:
            if not name.endswith(".lock"):
                continue
            fd = os.open(os.path.join(tmp, name), os.O_RDWR | os.O_CLOEXEC)
            try:
                if not locks.try_lock(fd):
                    return  # a live build's
            finally:
                os.close(fd)
        shutil.rmtree(os.path.join(build_dir, "cache-mounts"), ignore_errors=True)
