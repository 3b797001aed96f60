"""Resolving paths inside a root directory as if it were '/' (for bundles, mounts, images)."""

from __future__ import annotations

import errno
import os
import stat


def secure_join(root: str, unsafe: str) -> str:
    """Resolve `unsafe` inside `root`: symlinks (absolute or relative) and `..` can never lead
    outside it. Missing components are kept as named. Raises OSError(ELOOP) on symlink loops."""
    parts = [p for p in unsafe.split("/") if p not in ("", ".")]
    parts.reverse()  # a stack: the next component is at the end
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop()
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if not stat.S_ISLNK(st.st_mode):
            resolved.append(part)
            continue
        hops += 1
        if hops > 255:
            raise OSError(errno.ELOOP, f"too many levels of symbolic links in {unsafe!r}")
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        parts.extend(reversed([p for p in target.split("/") if p not in ("", ".")]))
    return os.path.join(root, *resolved)
