"""The state database: one SQLite file under the root dir, schema versioned by user_version.

Every connection runs in WAL mode (synchronous NORMAL) with a busy timeout, so several
`barque` processes may read and write at once; writers take the write lock up front
(BEGIN IMMEDIATE) so a transaction never fails half-way on lock upgrade.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

DB_NAME = "barque.db"

# Each entry moves the schema from version i to i+1; never edit a released entry.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE images (
        id TEXT PRIMARY KEY,              -- the config digest, as Docker's image ID
        manifest_digest TEXT NOT NULL,
        manifest_media_type TEXT NOT NULL,
        created TEXT NOT NULL,            -- from the image config
        size INTEGER NOT NULL,            -- unpacked bytes of all layers
        added REAL NOT NULL               -- when this store got it (unix time)
    );
    CREATE TABLE image_layers (
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,        -- 0 is the bottom layer
        chain_id TEXT NOT NULL,
        diff_id TEXT NOT NULL,
        blob_digest TEXT NOT NULL,
        media_type TEXT NOT NULL,
        blob_size INTEGER NOT NULL,
        PRIMARY KEY (image_id, position)
    );
    CREATE INDEX image_layers_chain ON image_layers(chain_id);
    -- Blobs an image keeps besides its manifest, config and layers (the index it came from).
    CREATE TABLE image_blobs (
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        digest TEXT NOT NULL,
        PRIMARY KEY (image_id, digest)
    );
    CREATE TABLE tags (
        name TEXT PRIMARY KEY,            -- docker.io/library/busybox:latest
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
    );
    CREATE TABLE repo_digests (
        name TEXT PRIMARY KEY,            -- docker.io/library/busybox@sha256:...
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
    );
    CREATE TABLE layers (
        chain_id TEXT PRIMARY KEY,        -- an unpacked layer dir: layers/<hex>
        diff_id TEXT NOT NULL,
        size INTEGER NOT NULL
    );
    -- Who uses an image (a container): such an image is never deleted, nor its layers.
    CREATE TABLE image_holds (
        holder TEXT PRIMARY KEY,
        image_id TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE containers (
        id TEXT PRIMARY KEY,              -- 64 hex digits
        name TEXT NOT NULL UNIQUE,        -- without Docker's leading "/"
        created TEXT NOT NULL,            -- RFC 3339, UTC, nanoseconds
        image TEXT NOT NULL,              -- as the user named it (Config.Image)
        image_id TEXT NOT NULL,
        config TEXT NOT NULL,             -- the Engine API's container Config, as JSON
        host_config TEXT NOT NULL,        -- the Engine API's HostConfig, as JSON
        mounts TEXT NOT NULL,             -- its mounts, volumes named (engine/mounts.py), JSON
        state TEXT NOT NULL               -- what outlives the monitor, as JSON (engine/state.py)
    );
    CREATE TABLE volumes (
        name TEXT PRIMARY KEY,
        created TEXT NOT NULL,
        labels TEXT NOT NULL,             -- JSON object
        options TEXT NOT NULL,            -- JSON object (driver options)
        anonymous INTEGER NOT NULL        -- made for one container: `rm -v` removes it
    );
    """,
    """
    CREATE TABLE networks (
        id TEXT PRIMARY KEY,              -- 64 hex digits
        name TEXT NOT NULL UNIQUE,
        driver TEXT NOT NULL,             -- "bridge"
        created TEXT NOT NULL,            -- RFC 3339, UTC, nanoseconds
        internal INTEGER NOT NULL,
        ipv6 INTEGER NOT NULL,
        attachable INTEGER NOT NULL,
        labels TEXT NOT NULL,             -- JSON object
        options TEXT NOT NULL,            -- JSON object (driver options)
        ipam TEXT NOT NULL,               -- Docker's IPAM object, JSON
        bridge TEXT NOT NULL UNIQUE       -- the bridge interface
    );
    -- A container's membership of a network, from create/connect on. The runtime columns
    -- (endpoint_id .. veth) are set while it runs and NULL otherwise.
    CREATE TABLE endpoints (
        container_id TEXT NOT NULL,
        network_id TEXT NOT NULL REFERENCES networks(id),
        position INTEGER NOT NULL,        -- connect order: eth<position>
        aliases TEXT NOT NULL,            -- JSON list, as given
        ipam_config TEXT NOT NULL,        -- JSON {"IPv4Address"?, "IPv6Address"?} as given
        mac_config TEXT,                  -- --mac-address as given
        links TEXT NOT NULL,              -- JSON list "name:alias" (default bridge only)
        endpoint_id TEXT,
        ipv4 TEXT,                        -- the plain address, no prefix
        ipv6 TEXT,
        mac TEXT,
        veth TEXT,
        PRIMARY KEY (container_id, network_id)
    );
    CREATE UNIQUE INDEX endpoints_ipv4 ON endpoints(network_id, ipv4) WHERE ipv4 IS NOT NULL;
    CREATE UNIQUE INDEX endpoints_ipv6 ON endpoints(network_id, ipv6) WHERE ipv6 IS NOT NULL;
    CREATE INDEX endpoints_network ON endpoints(network_id);
    -- Host ports a running container holds.
    CREATE TABLE published_ports (
        container_id TEXT NOT NULL,
        proto TEXT NOT NULL,              -- tcp, udp, sctp
        host_ip TEXT NOT NULL,            -- "" = every host address (0.0.0.0 and ::)
        host_port INTEGER NOT NULL,
        container_port INTEGER NOT NULL,
        PRIMARY KEY (proto, host_ip, host_port)
    );
    """,
    """
    -- The build cache (barque/build/cache.py): one row per build step, keyed as BuildKit
    -- keys it (parent key, the instruction after expansion, the build args it uses, the
    -- content checksums of what it copies). `layers` is the whole layer chain after the
    -- step (JSON [[chain_id, diff_id, blob_digest, media_type, blob_size], ...]): the image
    -- store's collector keeps every layer and blob named there.
    CREATE TABLE build_cache (
        key TEXT PRIMARY KEY,
        layers TEXT NOT NULL,
        size INTEGER NOT NULL,            -- bytes of the step's own layer (0: none)
        description TEXT NOT NULL,        -- "[stage 2/3] RUN ...", for `builder du`
        created TEXT NOT NULL,            -- RFC 3339: the history entry's time
        created_at REAL NOT NULL,         -- unix time, for prune's until= filter
        last_used REAL NOT NULL,
        usage_count INTEGER NOT NULL,
        next_key TEXT NOT NULL            -- what later steps build on ("" = this key): a
                                          -- COPY --from's content key, see Builder
    );
    CREATE INDEX build_cache_last_used ON build_cache(last_used);
    """,
]


def _migrate(conn: sqlite3.Connection) -> None:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > len(MIGRATIONS):
        raise sqlite3.DatabaseError(
            f"state database schema {version} is newer than this Barque knows "
            f"({len(MIGRATIONS)}): upgrade Barque")
    if version == len(MIGRATIONS):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        for i in range(version, len(MIGRATIONS)):
            for statement in MIGRATIONS[i].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {i + 1}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def connect(root: str, create: bool = True) -> sqlite3.Connection:
    """The state DB of `root`; `create` False opens only an existing one (sqlite3's
    OperationalError otherwise), so a root removed meanwhile is never made again."""
    if create:
        os.makedirs(root, mode=0o700, exist_ok=True)
    path = os.path.join(root, DB_NAME)
    if not create:
        from urllib.parse import quote

        path = f"file:{quote(path)}?mode=rw"
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False,
                           uri=not create)
    conn.row_factory = sqlite3.Row
    _use_wal(conn)
    # NORMAL, not FULL: in WAL mode a commit is then appended to the WAL without an fsync
    # (the WAL is synced at each checkpoint). Every transaction stays atomic, and a commit
    # survives any crash of a process (the kernel has the WAL's pages); only a power loss or
    # kernel crash may roll back the last commits, and the database is still consistent then
    # (SQLite's documented WAL guarantee), never half-written. FULL cost an fsync per commit,
    # a dozen per `run --rm`.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    _migrate(conn)
    return conn


def _use_wal(conn: sqlite3.Connection) -> None:
    """WAL mode, which the database file keeps once set: set only while it is not. Setting
    it on every open failed at once with "database is locked", busy timeout or not, when
    another connection wrote at that moment (a server's reader polling while a create
    commits)."""
    conn.execute("PRAGMA user_version").fetchone()  # reads the header: the file's mode
    for attempt in range(_WAL_TRIES):
        if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            return
        try:
            conn.execute("PRAGMA journal_mode = WAL")  # a new database, made by us or beside us
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or attempt == _WAL_TRIES - 1:
                raise
            time.sleep(0.01)


_WAL_TRIES = 1000  # 10 s of another process making the same new database


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction: all or nothing."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
