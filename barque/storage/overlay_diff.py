"""`docker diff`: what a container changed, as (kind, path) with kind A, C or D.

`diff` reads an overlay upper dir, as Docker's overlay2 driver does (moby pkg/archive
OverlayChanges): a whiteout is D, an opaque directory that hid a lower one is D (and its
contents A), anything else is A or, when the lowers show something there, C; a directory the
lowers show unchanged (size, mode, mtime) is left out, and the parent of any change is listed
as C if it is not listed already (as dockerd 20.10 shows it). `diff_dirs` compares a copied
rootfs with its lowers like Docker's naive driver (ChangesDirs). Both list paths in Docker's
walk order: sorted by path component, each directory before what it holds.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator

from barque.storage import tarsafe
from barque.storage.entries import DIR, OPAQUE, OPAQUE_XATTR, WHITEOUT, Path, dir_entries

Change = tuple[str, str]  # (kind, "/abs/path")
Owners = Callable[[int, int], tuple[int, int]]  # host (uid, gid) -> a layer's


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def visible(lowers: list[str], parts: Path) -> os.stat_result | None:
    """What an overlay of `lowers` (top-most first) shows at `parts`, or None.

    Each lower is looked at component by component, so no symlink is ever followed: a
    whiteout or a non-directory on the way hides everything below it, and an opaque
    directory on the way ends the search after its layer.
    """
    if not parts:
        return None
    for layer in lowers:
        path, last, opaque = layer, len(parts) - 1, False
        for i, name in enumerate(parts):
            path = os.path.join(path, name)
            st = _lstat(path)
            if st is None:
                break  # not in this layer: maybe in a lower one
            if tarsafe.is_whiteout(st):
                return None
            if i == last:
                return st
            if not stat.S_ISDIR(st.st_mode):
                return None
            opaque = opaque or _is_opaque(path)
        if opaque:
            return None  # nothing below this layer shows through an opaque dir on the way
    return None


def _same_time(a: int, b: int) -> bool:
    # Docker's sameFsTime: equal, or equal seconds where one side has no nanoseconds.
    sa, na = divmod(a, 1_000_000_000)
    sb, nb = divmod(b, 1_000_000_000)
    return a == b or (sa == sb and (na == 0 or nb == 0))


def _abs(parts: Path) -> str:
    return "/" + "/".join(parts)


def _parent_dirs(changes: list[Change], listed: set[str], path: str) -> None:
    parent = os.path.dirname(path)
    if parent != "/" and parent not in listed:
        changes.append(("C", parent))
        listed.add(parent)


def diff(upper: str, lowers: list[str]) -> list[Change]:
    """The changes an overlay upper dir makes to `lowers` (top-most first)."""
    changes: list[Change] = []
    listed: set[str] = set()  # directories already in `changes`
    for entry in dir_entries(upper):
        if entry.kind == OPAQUE:
            continue
        path = _abs(entry.parts)
        below = visible(lowers, entry.parts)
        if entry.kind == WHITEOUT or (entry.opaque and below is not None):
            kind = "D"
        elif below is None:
            kind = "A"
        else:
            st = entry.st
            assert st is not None
            if (entry.kind == DIR and stat.S_ISDIR(below.st_mode) and st.st_size == below.st_size
                    and st.st_mode == below.st_mode
                    and _same_time(st.st_mtime_ns, below.st_mtime_ns)):
                continue
            kind = "C"
        if entry.kind == DIR:
            listed.add(path)
        # dockerd lists the parent of every change, a changed file's too (`C /etc` above
        # `C /etc/passwd`), even where the directory itself looks unchanged
        _parent_dirs(changes, listed, path)
        changes.append((kind, path))
    return changes


# --- the copy fallback ---------------------------------------------------------------------

def _merged_children(stack: list[str]) -> dict[str, str]:
    """name → path in the top-most layer showing it, for the merged dir of `stack`."""
    found: dict[str, str] = {}
    hidden: set[str] = set()
    for layer_dir in stack:
        for name in os.listdir(layer_dir):
            if name in found or name in hidden:
                continue
            path = os.path.join(layer_dir, name)
            st = _lstat(path)
            if st is None:
                continue
            if tarsafe.is_whiteout(st):
                hidden.add(name)
            else:
                found[name] = path
    return found


def _child_stack(stack: list[str], name: str) -> list[str]:
    """The layer dirs merged at `name` below the merged dir of `stack`."""
    out = []
    for layer_dir in stack:
        path = os.path.join(layer_dir, name)
        st = _lstat(path)
        if st is None:
            continue
        if not stat.S_ISDIR(st.st_mode):
            break  # a file or whiteout hides the layers below
        out.append(path)
        if _is_opaque(path):
            break
    return out


def _capability(path: str) -> bytes | None:
    try:
        return os.getxattr(path, tarsafe.CAPABILITY_XATTR, follow_symlinks=False)
    except OSError:
        return None


def _changed(old: str, new: str, a: os.stat_result, b: os.stat_result,
             owners: Owners | None = None) -> bool:
    # Docker's statDifferent (sizes and times of directories are no measure of change).
    uid, gid = (b.st_uid, b.st_gid) if owners is None else owners(b.st_uid, b.st_gid)
    if (a.st_mode, a.st_uid, a.st_gid, a.st_rdev) != (b.st_mode, uid, gid, b.st_rdev):
        return True
    if not stat.S_ISDIR(a.st_mode) and (a.st_size != b.st_size
                                        or a.st_mtime_ns != b.st_mtime_ns):
        return True
    return _capability(old) != _capability(new)


def _all_added(path: str, parts: Path) -> Iterator[Change]:
    yield ("A", _abs(parts))
    st = _lstat(path)
    if st is not None and stat.S_ISDIR(st.st_mode):
        for name in sorted(os.listdir(path)):
            yield from _all_added(os.path.join(path, name), parts + (name,))


def _compare(new_dir: str, parts: Path, stack: list[str], changes: list[Change],
             self_listed: bool, owners: Owners | None = None) -> None:
    old = _merged_children(stack)
    new = set(os.listdir(new_dir))
    start = len(changes)
    for name in sorted(new | set(old)):
        child = parts + (name,)
        new_path = os.path.join(new_dir, name)
        if name not in old:
            changes.extend(_all_added(new_path, child))
            continue
        if name not in new:
            changes.append(("D", _abs(child)))
            continue
        a, b = _lstat(old[name]), _lstat(new_path)
        if a is None or b is None:
            continue
        listed = _changed(old[name], new_path, a, b, owners)
        if listed:
            changes.append(("C", _abs(child)))
        if stat.S_ISDIR(b.st_mode):
            sub = _child_stack(stack, name) if stat.S_ISDIR(a.st_mode) else []
            _compare(new_path, child, sub, changes, listed, owners)
    if len(changes) > start and parts and not self_listed:
        changes.insert(start, ("C", _abs(parts)))


def diff_dirs(rootfs: str, lowers: list[str], owners: Owners | None = None) -> list[Change]:
    """The changes a plain rootfs (the copy fallback) makes to `lowers` (top-most first).
    `owners`: the rootfs's host ids -> the layers' (a user-namespaced container's copy)."""
    changes: list[Change] = []
    _compare(rootfs, (), list(lowers), changes, True, owners)
    return changes
