"""RUN --mount=type=cache dirs as build-cache records of their own (BuildKit's
`exec.cachemount` records): each one's dir under <root>/build/cache-mounts, a small JSON
record beside it (its id, description, creation, last use, use count) and a lock file.

A RUN holds the lock shared while it uses the dir; `builder prune` removes a record only
when it takes the lock exclusively (never one a running build uses), and `usage` reports a
record whose lock is held as in use. The lock file is removed with its record; a user that
opened it just before checks after locking that it is still the one on disk.
"""

from __future__ import annotations

import json
import os
import shutil
import time

from barque.linux import locks
from barque.sha256 import hexdigest
from barque.structs import dataclass

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

TYPE = "exec.cachemount"


def base_dir(root: str) -> str:
    return os.path.join(root, "build", "cache-mounts")


def name_of(cache_id: str) -> str:
    return hexdigest(cache_id.encode())[:32]


def mount_dir(root: str, cache_id: str) -> str:
    return os.path.join(base_dir(root), name_of(cache_id))


def description(target: str, cache_id: str, argv: list[str]) -> str:
    """As BuildKit describes the record."""
    text = f"cached mount {target} from exec {' '.join(argv)}"
    return text if cache_id == target else f'{text} with id "{cache_id}"'


class Held:
    """A cache mount in use by a RUN: its dir exists and its lock is held shared."""

    def __init__(self, root: str, cache_id: str, desc: str) -> None:
        base = base_dir(root)
        os.makedirs(base, mode=0o700, exist_ok=True)
        self.path = mount_dir(root, cache_id)
        lock_path = self.path + ".lock"
        while True:  # (prune may remove the lock file between our open and our lock)
            fd = locks.open_file(lock_path, nofollow=True)
            locks.lock(fd, shared=True)
            try:
                if os.stat(lock_path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        self._fd = fd
        try:
            os.makedirs(self.path, mode=0o755, exist_ok=True)
            _touch(self.path + ".json", cache_id, desc)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _touch(meta_path: str, cache_id: str, desc: str) -> None:
    now = time.time()
    record = _read(meta_path) or {"id": cache_id, "created_at": now, "usage_count": 0}
    record.update(description=desc, last_used=now,
                  usage_count=int(record.get("usage_count", 0)) + 1)
    tmp = f"{meta_path}.{os.getpid()}.{time.monotonic_ns()}.tmp"
    with open(tmp, "w") as f:
        json.dump(record, f)
    os.replace(tmp, meta_path)


def _read(meta_path: str) -> dict[str, Any] | None:
    try:
        with open(meta_path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass
class Record:
    name: str           # the dir's name under base_dir
    cache_id: str
    description: str
    size: int
    created_at: float
    last_used: float
    usage_count: int
    in_use: bool


def records(root: str) -> list[Record]:
    base = base_dir(root)
    try:
        names = sorted(n for n in os.listdir(base) if "." not in n)
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        path = os.path.join(base, name)
        if not os.path.isdir(path):
            continue
        meta = _read(path + ".json") or {}
        st = os.stat(path)
        out.append(Record(name, str(meta.get("id", "")),
                          str(meta.get("description") or "cached mount"), _size(path),
                          float(meta.get("created_at", st.st_mtime)),
                          float(meta.get("last_used", st.st_mtime)),
                          int(meta.get("usage_count", 0)), _in_use(path + ".lock")))
    return out


def _in_use(lock_path: str) -> bool:
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return False
    try:
        return not locks.try_lock(fd)
    finally:
        os.close(fd)  # (releases the lock if we took it)


def _size(path: str) -> int:
    """Disk usage of the dir's files (each inode once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def remove(root: str, name: str) -> bool:
    """Remove the record `name` unless a build uses it now; whether it was removed."""
    path = os.path.join(base_dir(root), name)
    fd = locks.open_file(path + ".lock", nofollow=True)
    try:
        if not locks.try_lock(fd):
            return False
        shutil.rmtree(path, ignore_errors=True)
        for leftover in (path + ".json", path + ".lock"):
            try:
                os.unlink(leftover)
            except FileNotFoundError:
                pass
        return True
    finally:
        os.close(fd)
