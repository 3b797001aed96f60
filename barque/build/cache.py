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
    in_use: bool = False   # used by a build running now
    type: str = "regular"  # BuildKit's record types: regular, exec.cachemount

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
    fetch: Any = None      # (store, layers): brings them in from a cache (cache_local.py);
    #                        None: the image's layers are in the store already


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

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock | None = None,
                 root: str | None = None) -> None:
        self.conn = conn
        self.lock = lock or threading.RLock()
        self._hits: list[str] = []
        self._root = root
        self._used: set[str] = set()      # the keys this build uses (see record_use)
        self._keys_file: Any = None

    def root(self) -> str | None:
        """The barque root (the state DB's dir)."""
        if self._root is None:
            import os

            with self.lock:
                row = self.conn.execute("PRAGMA database_list").fetchone()
            if not row or not row[2]:
                return None
            self._root = os.path.dirname(row[2])
        return self._root

    # --- in use: the keys a running build uses, in a file of its workspace ----------------
    def record_use(self, path: str) -> None:
        """From now on, write each key this build uses to `path` (in the build's locked
        workspace: `usage` of another process reads it while the build's lock is held)."""
        with self.lock:
            self._keys_file = open(path, "a", buffering=1)  # noqa: SIM115 — closed by end_use
            for key in sorted(self._used):
                self._keys_file.write(key + "\n")

    def end_use(self) -> None:
        with self.lock:
            if self._keys_file is not None:
                self._keys_file.close()
                self._keys_file = None

    def _use(self, key: str) -> None:
        with self.lock:
            if key in self._used:
                return
            self._used.add(key)
            if self._keys_file is not None:
                self._keys_file.write(key + "\n")

    def _in_use(self) -> set[str]:
        """The keys the builds running now (their workspace locked) use."""
        import os

        from barque.linux import locks

        root = self.root()
        tmp = os.path.join(root, "build", "tmp") if root else ""
        keys: set[str] = set()
        for name in os.listdir(tmp) if tmp and os.path.isdir(tmp) else []:
            if not name.endswith(".lock"):
                continue
            try:
                fd = os.open(os.path.join(tmp, name), os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                if locks.try_lock(fd):
                    continue  # no build holds it (ours released when fd closes)
            finally:
                os.close(fd)
            try:
                with open(os.path.join(tmp, name.removesuffix(".lock"), "keys")) as f:
                    keys.update(line.strip() for line in f)
            except FileNotFoundError:
                pass
        return keys

    def get(self, key: str) -> Entry | None:
        with self.lock:
            row = self.conn.execute(
                "SELECT layers, size, description, created, next_key FROM build_cache "
                "WHERE key = ?",
                (key,)).fetchone()
        if row is None:
            return None
        self._hits.append(key)
        self._use(key)
        return Entry(key, json.loads(row[0]), int(row[1]), row[2], row[3], row[4])

    def put(self, entry: Entry) -> None:
        now = time.time()
        self._use(entry.key)
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
        """Every entry that holds a layer of its own, and every cache mount (BuildKit's
        exec.cachemount records), newest use first."""
        with self.lock:
            image_chains = {r[0] for r in self.conn.execute(
                "SELECT DISTINCT chain_id FROM image_layers")}
            rows = self.conn.execute(
                "SELECT key, layers, size, description, created_at, last_used, usage_count "
                "FROM build_cache WHERE size > 0 ORDER BY last_used DESC").fetchall()
        in_use = self._in_use()
        out = []
        for key, layers, size, description, created_at, last_used, count in rows:
            chain = json.loads(layers)[-1][0] if layers != "[]" else ""
            out.append(Usage(key, description, int(size),
                             float(created_at), float(last_used), int(count),
                             chain in image_chains, key in in_use))
        root = self.root()
        if root is not None:
            from barque.build import cachemounts

            out.extend(Usage(f"{cachemounts.TYPE}:{r.name}", r.description, r.size,
                             r.created_at, r.last_used, r.usage_count, False, r.in_use,
                             cachemounts.TYPE)
                       for r in cachemounts.records(root))
        out.sort(key=lambda u: u.last_used, reverse=True)
        return out

    def prune(self, *, all_entries: bool = False, until: float | None = None,
              keep_storage: int = 0) -> list[Usage]:
        """Drop entries last used before `until` (unix time; None: any), keeping the most
        recently used ones while they fit in `keep_storage` bytes; without `all_entries`
        only those whose layer no image shares (BuildKit's prune without --all: cache
        mounts are never shared, so they go too). Never what a running build uses.
        Returns what was dropped (their layers are freed by the store's collector, which
        the caller runs)."""
        entries = [e for e in self.usage() if all_entries or not e.shared]
        empties: list[str] = []
        if all_entries:  # the metadata steps' records (no layer): with the rest
            in_use = self._in_use()
            with self.lock:
                empties = [r[0] for r in self.conn.execute(
                    "SELECT key FROM build_cache WHERE size = 0"
                    + (" AND last_used < ?" if until is not None else ""),
                    (until,) if until is not None else ()).fetchall()
                    if r[0] not in in_use]
        kept, dropped = 0, []
        for entry in entries:  # newest use first: those are the ones kept under the limit
            old_enough = until is None or entry.last_used < until
            if (old_enough and not entry.in_use
                    and not (keep_storage and kept + entry.size <= keep_storage)):
                dropped.append(entry)
            else:
                kept += entry.size
        mounts = [d for d in dropped if d.type != "regular"]
        if mounts:
            from barque.build import cachemounts

            root = self.root()
            gone = {d.key for d in mounts
                    if root is not None and cachemounts.remove(root, d.key.split(":", 1)[1])}
            dropped = [d for d in dropped if d.type == "regular" or d.key in gone]
        with self.lock, db.transaction(self.conn):
            doomed = [d.key for d in dropped if d.type == "regular"] + empties
            self.conn.executemany("DELETE FROM build_cache WHERE key = ?",
                                  [(k,) for k in doomed])
        return dropped
