"""Mount and unmount overlayfs, and find out whether a directory's file system can host one.

Mount data is limited to one page, and a long image has many layers with 64-hex-digit
directory names. When the plain paths do not fit (or need escaping), every directory is
named by an O_PATH fd instead, as `/proc/self/fd/N` (the kernel follows the magic link at
mount time), which fits about 200 layers in a page and needs no chdir (this process may have
threads). Overlay's optional features that would put data a layer tar cannot express in an
upper dir (redirect_dir, metacopy) or that bind a lower to one upper (index) are turned off.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import threading

from barque.linux import mount as mnt
from barque.linux.mountinfo import unescape


class OverlayError(Exception):
    """An overlay mount or unmount failed."""


# Tried in order: the first set the kernel accepts is kept (older kernels lack metacopy).
_OPTION_SETS = ("index=off,redirect_dir=off,metacopy=off", "index=off,redirect_dir=off",
                "index=off", "")
_SPECIAL = (",", ":", "\\", "=")  # would need escaping in the mount data
_lock = threading.Lock()
_options: str | None = None  # the accepted set, once a mount worked
_supported: dict[str, bool] = {}


def _page_limit() -> int:
    return os.sysconf("SC_PAGE_SIZE") - 1  # the data is copied as one NUL-terminated page


def _data(lowers: list[str], upper: str, work: str, extra: str) -> str:
    data = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"
    return f"{data},{extra}" if extra else data


def _mount_with(lowers: list[str], upper: str, work: str, target: str, extra: str) -> None:
    paths = [*lowers, upper, work]
    data = _data(lowers, upper, work, extra)
    if len(data.encode()) <= _page_limit() and not any(c in p for p in paths for c in _SPECIAL):
        mnt.mount("overlay", target, "overlay", 0, data)
        return
    fds: list[int] = []
    try:
        for path in paths:
            fds.append(os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
        names = [f"/proc/self/fd/{fd}" for fd in fds]
        data = _data(names[:-2], names[-2], names[-1], extra)
        if len(data.encode()) > _page_limit():
            raise OverlayError(f"too many layers ({len(lowers)}) for one overlay mount")
        mnt.mount("overlay", target, "overlay", 0, data)
    finally:
        for fd in fds:
            os.close(fd)


def mount_overlay(lowers: list[str], upper: str, work: str, target: str,
                  users_fd: int | None = None) -> None:
    """Mount an overlay of `lowers` (top-most first) and `upper` (with its `work` dir, on the
    same file system) on `target`. `users_fd`: a user namespace whose id maps each lower is
    seen through (idmapped detached clones of them, held only while the overlay is made: it
    keeps its own references)."""
    if not lowers:
        raise OverlayError("an overlay mount needs at least one lower dir")
    lowers = [os.path.abspath(p) for p in lowers]
    if users_fd is None:
        _mount_overlay(lowers, upper, work, target)
        return
    from barque.linux import idmap

    clones: list[int] = []
    try:
        try:
            for lower in lowers:
                clones.append(idmap.idmapped_clone(lower, users_fd))
        except OSError as e:
            raise OverlayError(f"idmapping the layers of {target}: {e}") from None
        _mount_overlay([f"/proc/self/fd/{fd}" for fd in clones], upper, work, target)
    finally:
        for fd in clones:
            os.close(fd)


def _mount_overlay(lowers: list[str], upper: str, work: str, target: str) -> None:
    global _options
    upper, work, target = (os.path.abspath(p) for p in (upper, work, target))
    candidates = (_options,) if _options is not None else _OPTION_SETS
    last: OSError | None = None
    for extra in candidates:
        try:
            _mount_with(lowers, upper, work, target, extra)
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise OverlayError(f"mounting overlay on {target}: {e}") from None
            last = e
            continue
        _options = extra
        return
    raise OverlayError(f"mounting overlay on {target}: {last} (see dmesg)")


def is_mounted(target: str) -> bool:
    """Something is mounted on `target` (as /proc/self/mountinfo lists it)."""
    path = os.path.realpath(target)
    with open("/proc/self/mountinfo") as f:
        return any(unescape(line.split(" ", 5)[4]) == path for line in f)


def unmount(target: str) -> None:
    """Unmount `target`; lazily if it is busy. Nothing mounted there is not an error."""
    try:
        mnt.umount(target)
        return
    except OSError as e:
        if e.errno == errno.EINVAL and not is_mounted(target):
            return
        if e.errno == errno.ENOENT:
            return
        if e.errno != errno.EBUSY:
            raise OverlayError(f"unmounting {target}: {e}") from None
    try:
        mnt.umount(target, mnt.MNT_DETACH)  # still open somewhere: detach, as Docker does
    except OSError as e:
        raise OverlayError(f"unmounting {target}: {e}") from None


def _probe(base_dir: str) -> bool:
    import tempfile  # here: `create` remembers a probe (engine/create.py), few commands probe

    probe = tempfile.mkdtemp(prefix=".overlay-probe-", dir=base_dir)
    try:
        for name in ("lower1", "lower2", "upper", "work", "merged"):
            os.mkdir(os.path.join(probe, name))
        lower1, lower2 = os.path.join(probe, "lower1"), os.path.join(probe, "lower2")
        for path in (os.path.join(lower1, "hidden"), os.path.join(lower1, "kept")):
            open(path, "w").close()
        os.mknod(os.path.join(lower2, "hidden"), stat.S_IFCHR, 0)  # a whiteout
        merged = os.path.join(probe, "merged")
        mount_overlay([lower2, lower1], os.path.join(probe, "upper"),
                      os.path.join(probe, "work"), merged)
        try:
            open(os.path.join(merged, "new"), "w").close()
            return sorted(os.listdir(merged)) == ["kept", "new"]
        finally:
            unmount(merged)
    except (OSError, OverlayError):
        return False
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def overlay_supported(base_dir: str) -> bool:
    """Whether overlay mounts work for layers and snapshots under `base_dir` (probed once by
    a real mount in it: the kernel, the file system and our privileges all matter)."""
    key = os.path.realpath(base_dir)
    with _lock:
        if key not in _supported:
            _supported[key] = _probe(key)
        return _supported[key]
