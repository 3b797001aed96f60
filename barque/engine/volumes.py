"""Named volumes (Docker's "local" driver): a directory per volume under the root dir,
`<root>/volumes/<name>/_data` as Docker lays them out, recorded in the state database."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import stat
import time

from barque.engine import events
from barque.engine.errors import EngineError
from barque.engine.mounts import VOLUME_NAME_RE
from barque.storage import db
from barque.structs import dataclass

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

    from barque.engine.context import Engine


class VolumeError(EngineError):
    """A volume could not be found, made or removed. Outside `run` and `create` the CLI
    exits 1 on it, as on any daemon error."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message, 1, status)


@dataclass
class Volume:
    name: str
    created: str
    labels: dict[str, str]
    options: dict[str, str]
    anonymous: bool
    mountpoint: str
    # Made by `volume create` (its maps given, if empty): dockerd shows its Labels and Options
    # as `{}`; a volume a mount made has `null` ones.
    declared: bool = True

    def api(self) -> dict[str, Any]:
        """The Engine API's Volume object (`volume inspect`)."""
        empty: dict[str, str] | None = {} if self.declared else None
        return {"CreatedAt": self.created, "Driver": "local", "Labels": self.labels or empty,
                "Mountpoint": self.mountpoint, "Name": self.name,
                "Options": self.options or empty, "Scope": "local"}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Volumes:
    def __init__(self, root: str, conn: sqlite3.Connection) -> None:
        self.dir = os.path.join(root, "volumes")
        self.conn = conn

    def _volume(self, row: sqlite3.Row) -> Volume:
        labels = json.loads(row["labels"])  # null: made by a mount, not `volume create`
        return Volume(row["name"], row["created"], labels or {},
                      json.loads(row["options"]) or {}, bool(row["anonymous"]),
                      os.path.join(self.dir, row["name"], "_data"), labels is not None)

    def get(self, name: str) -> Volume:
        row = self.conn.execute("SELECT * FROM volumes WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise VolumeError(f"get {name}: no such volume", 404)
        return self._volume(row)

    def all(self) -> list[Volume]:
        rows = self.conn.execute("SELECT * FROM volumes ORDER BY name").fetchall()
        return [self._volume(r) for r in rows]

    def create(self, name: str = "", labels: dict[str, str] | None = None,
               options: dict[str, str] | None = None) -> tuple[Volume, bool]:
        """(the volume, whether it is new). Creating an existing volume returns it, as
        Docker does; an empty name makes an anonymous volume with a random name. Labels and
        options None: a mount's volume (see Volume.declared)."""
        if options:
            raise VolumeError(f"options are not supported by the local driver here: "
                              f"{', '.join(sorted(options))}", 400)
        anonymous = not name
        name = name or os.urandom(32).hex()
        if not re.match(VOLUME_NAME_RE, name):
            raise VolumeError(f"create {name}: \"{name}\" includes invalid characters for a "
                              "local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are "
                              "allowed. If you intended to pass a host directory, use absolute "
                              "path", 400)
        data = os.path.join(self.dir, name, "_data")
        with db.transaction(self.conn):
            row = self.conn.execute("SELECT * FROM volumes WHERE name = ?", (name,)).fetchone()
            if row is not None:
                return self._volume(row), False
            os.makedirs(data, mode=0o755, exist_ok=True)
            os.chmod(os.path.dirname(data), 0o701)
            self.conn.execute(
                "INSERT INTO volumes (name, created, labels, options, anonymous) "
                "VALUES (?, ?, ?, ?, ?)",
                (name, _now(), json.dumps(labels), json.dumps(options), anonymous),
            )
        events.volume(os.path.dirname(self.dir), name, "create")
        return self.get(name), True

    def remove(self, name: str, users: list[str], force: bool = False) -> None:
        """Remove a volume no container uses (`users`: the IDs of those that do)."""
        volume = self.get(name) if not force else None
        if users:
            raise VolumeError(f"remove {name}: volume is in use - [{', '.join(users)}]", 409)
        with db.transaction(self.conn):
            deleted = self.conn.execute("DELETE FROM volumes WHERE name = ?", (name,)).rowcount
        if not deleted and volume is None:
            return  # --force on a volume that does not exist: nothing to do, as Docker
        shutil.rmtree(os.path.join(self.dir, name), ignore_errors=True)
        events.volume(os.path.dirname(self.dir), name, "destroy")


# --- the operations behind `docker volume` and /volumes -------------------------------------

VOLUME_FILTERS = ("dangling", "name", "label", "driver")


def create_volume(engine: Engine, name: str = "", driver: str = "local",
                  labels: dict[str, str] | None = None,
                  options: dict[str, str] | None = None) -> tuple[Volume, bool]:
    """(the volume, whether it is new): see Volumes.create."""
    if driver != "local":
        raise EngineError(f"create {name}: error looking up volume plugin {driver}: plugin "
                          f"\"{driver}\" not found", 1, 404)
    return engine.volumes.create(name, labels or {}, options or {})


def remove_volume(engine: Engine, name: str, force: bool = False) -> None:
    engine.volumes.remove(name, engine.users_of_volume(name), force)


def list_volumes(engine: Engine, filters: dict[str, list[str]] | None = None) -> list[Volume]:
    """The volumes, by name, filtered as the daemon does: any value of a key matches, except
    `label`, where all must; every key must match."""
    from barque.engine.filters import validate

    filters = filters or {}
    validate(filters, VOLUME_FILTERS)
    return [v for v in engine.volumes.all() if _volume_matches(engine, filters, v)]


def _volume_matches(engine: Engine, filters: dict[str, list[str]], volume: Volume) -> bool:
    from barque.engine.filters import match_labels
    for key, values in filters.items():
        if key == "dangling":
            dangling = not engine.users_of_volume(volume.name)
            if not all(dangling == (v.lower() in ("true", "1")) for v in values):
                return False
        elif key == "name" and not any(v in volume.name for v in values):
            return False
        elif key == "label" and not match_labels(values, volume.labels):
            return False
        elif key == "driver" and "local" not in values:
            return False
    return True


def copy_up(rootfs: str, target: str, volume_data: str) -> None:
    """Docker's copy of an image's files at a volume's mount point `target` into a new, empty
    volume, owners and modes kept. `target` is opened inside the container's root and the
    tree copied through fds: a symlink in the image or one the container swaps in later is
    copied as a symlink, never followed to the host."""
    from barque.linux import fdtree, paths

    try:
        with paths.rooted(rootfs) as root_fd:
            found = paths.open_in_root(root_fd, target)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        if not stat.S_ISDIR(os.fstat(found).st_mode):
            return
        src = fdtree.open_dir(found)
    finally:
        os.close(found)
    try:
        dst = os.open(volume_data, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            if os.listdir(dst):
                return
            fdtree.copy_tree(src, dst)
            st = os.fstat(src)
            os.fchown(dst, st.st_uid, st.st_gid)
            os.fchmod(dst, stat.S_IMODE(st.st_mode))
        finally:
            os.close(dst)
    finally:
        os.close(src)
