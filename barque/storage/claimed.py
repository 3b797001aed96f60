"""Working directories a live process claims, and the reclaiming of those a killed one left.

A claimed directory `PARENT/NAME` has a lock file beside it, `PARENT/NAME.lock`, which its
process holds flock'd for as long as it uses the directory. A process killed with -9 leaves a
lock that nobody holds: `reclaim` hands such directories to a remover. The lock file is locked
under a temporary name and only then linked as NAME.lock (a link never replaces: a name is
claimed once), and the directory is made after that, so a reclaimer never sees a live claim
unlocked (no grace period, no age guesses)."""

from __future__ import annotations

import os

from barque.linux import locks

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from collections.abc import Callable

LOCK_SUFFIX = ".lock"
_PENDING = ".pending-"  # a lock file being made: locked, not yet linked as NAME.lock


class ClaimedDir:
    """PARENT/NAME made 0700 (the parent too, if missing) and claimed until release()."""

    def __init__(self, parent: str, name: str) -> None:
        os.makedirs(parent, mode=0o700, exist_ok=True)
        self.path = os.path.join(parent, name)
        pending = os.path.join(parent, _PENDING + name)
        lock_path = self.path + LOCK_SUFFIX
        self._fd = os.open(pending, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            locks.lock(self._fd)
            os.link(pending, lock_path)  # a link never replaces: a name is claimed once
        except BaseException:
            _unlink(pending)
            os.close(self._fd)
            raise
        _unlink(pending)
        try:
            os.mkdir(self.path, 0o700)
        except BaseException:
            _unlink(lock_path)
            os.close(self._fd)
            raise

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def release(self, keep_lock: bool = False) -> None:
        """Give up the claim once the caller has removed the directory; `keep_lock` when it
        could not: the lock file stays, free, and the next reclaim retries."""
        if self._fd < 0:
            return
        try:
            if not keep_lock:
                _unlink(self.path + LOCK_SUFFIX)
        finally:
            os.close(self._fd)
            self._fd = -1


def reclaim(parent: str, remove: Callable[[str], object], prefix: str = "") -> int:
    """Call remove(PATH) for each PARENT/PREFIX* left by a dead process (a directory or only
    its lock), then drop its lock; the number reclaimed. remove() must accept a path that no
    longer exists; if it raises, the claim stays for the next reclaim to retry (a reclaim
    never fails the work that called it)."""
    try:
        names = os.listdir(parent)
    except FileNotFoundError:
        return 0
    done = 0
    for name in names:
        if name.startswith(_PENDING + prefix):  # its maker died before the rename
            _drop_if_dead(os.path.join(parent, name), lambda _: None)
        elif name.startswith(prefix) and name.endswith(LOCK_SUFFIX):
            done += _drop_if_dead(os.path.join(parent, name), remove)
    return done


def _drop_if_dead(lock_path: str, remove: Callable[[str], object]) -> int:
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return 0  # gone: its claim was released meanwhile
    try:
        if not locks.try_lock(fd) or not _still_named(fd, lock_path):
            return 0  # alive, or released (and maybe the name claimed anew) meanwhile
        try:
            remove(lock_path.removesuffix(LOCK_SUFFIX))
        except Exception:  # noqa: BLE001 — see reclaim()
            return 0
        _unlink(lock_path)
        return 1
    finally:
        os.close(fd)


def _still_named(fd: int, path: str) -> bool:
    try:
        return os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
