"""COPY writes exactly what its cache key covers: for random small trees, .dockerignore and
--exclude patterns, the entries fileops.copy writes are the entries sources.walk lists (and
sources.checksum hashes), and a change to any entry of the source tree changes the checksum
exactly when it changes what the copy writes (hard links included; times aside: neither
BuildKit's key nor ours holds mtimes). A cache hit can so never stand for a different copy,
nor a change the copy does not see miss the cache. Deterministic (a fixed seed) and bounded
(trees of at most 14 entries, a fixed number of cases)."""

from __future__ import annotations

import os
import random
import shutil
import stat

import pytest

from barque.build import sources
from barque.build.fileops import CopyError, copy
from barque.build.ignore import Matcher
from barque.build.sources import SourceNotFound, checksum, match_sources

pytestmark = pytest.mark.root

_SEED = 20261205
_CASES = 120
_MAX_ENTRIES = 14
_MUTATIONS = 3

_NAMES = ["a", "b.txt", "c.md", "k.keep", "sub"]
# Patterns that hit the trees' names: plain, wildcards, `**`, parent dirs, and exceptions
# (prefix ones and wildcard ones, which make the walk go into excluded directories).
_IGNORE_POOL = ["*.txt", "a", "a/*", "*/a", "**/*.md", "!a/b.txt", "!**/*.keep", "a/**",
                "!a", "sub", "!sub/k.keep", "c.md", "a/a", "*/*/b.txt", "!*/sub"]
_EXCLUDE_POOL = ["*.txt", "*/a", "a", "**/*.md", "!a/k.keep", "!**/b.txt", "a/*", "k.keep",
                 "sub", "!sub/*.keep", "*/*"]


def _make_tree(rng: random.Random, root: str) -> None:
    """A random tree of files, directories and symlinks (relative, maybe dangling)."""
    count = 0
    files: list[str] = []

    def fill(d: str, depth: int) -> None:
        nonlocal count
        for name in rng.sample(_NAMES, rng.randint(1, 4)):
            if count >= _MAX_ENTRIES:
                return
            count += 1
            path = os.path.join(d, name)
            kind = rng.choices(["file", "dir", "link", "hard"],
                               [5, 3 if depth < 3 else 0, 1, 1 if files else 0])[0]
            if kind == "hard":  # a second name of a file made before
                os.link(rng.choice(files), path)
            elif kind == "dir":
                os.mkdir(path)
                os.chmod(path, rng.choice([0o755, 0o750, 0o700]))
                fill(path, depth + 1)
            elif kind == "link":
                os.symlink(rng.choice(_NAMES + ["../a", "sub/b.txt"]), path)
            else:
                with open(path, "wb") as f:
                    f.write(rng.randbytes(rng.randint(0, 40)))
                os.chmod(path, rng.choice([0o644, 0o600, 0o755]))
                files.append(path)

    fill(root, 0)


def _entries(root: str) -> list[str]:
    """Every path below `root` (relative, "" for root itself), links not followed."""
    out = [""]
    for base, dirs, files in os.walk(root):
        rel = os.path.relpath(base, root)
        for name in dirs + files:
            out.append(os.path.normpath(os.path.join(rel, name)))
    return sorted(out)


Snapshot = dict[str, tuple[int, int, bytes, str]]


def _snapshot(path: str) -> Snapshot:
    """What a copy wrote at `path`: each entry's type, mode, content or link target, and
    for a file the first of its names that are hard links of one inode."""
    out = {}
    if not os.path.lexists(path):
        return out
    inodes: dict[int, str] = {}
    for rel in _entries(path) if os.path.isdir(path) and not os.path.islink(path) else [""]:
        full = os.path.join(path, rel) if rel else path
        st = os.lstat(full)
        first = ""
        if stat.S_ISLNK(st.st_mode):
            data = os.fsencode(os.readlink(full))
        elif stat.S_ISREG(st.st_mode):
            with open(full, "rb") as f:
                data = f.read()
            first = inodes.setdefault(st.st_ino, rel)
        else:
            data = b""
        out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), data, first)
    return out


def _mutate(rng: random.Random, src: str) -> str:
    """One change to a random entry of the source tree (kept or not); what it did."""
    rel = rng.choice(_entries(src))
    full = os.path.join(src, rel) if rel else src
    st = os.lstat(full)
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(full)
        os.unlink(full)
        os.symlink(target + "x", full)
        return f"relink {rel}"
    if stat.S_ISDIR(st.st_mode):
        new = os.path.join(full, rng.choice(_NAMES))
        if rng.random() < 0.5 and not os.path.lexists(new):
            with open(new, "wb") as f:
                f.write(b"new")
            return f"add {os.path.relpath(new, src)}"
        os.chmod(full, stat.S_IMODE(st.st_mode) ^ 0o005)
        return f"chmod dir {rel!r}"
    roll = rng.random()
    if st.st_nlink > 1 and roll < 0.5:  # the same content and mode, no longer one inode
        with open(full, "rb") as f:
            data = f.read()
        os.unlink(full)
        with open(full, "wb") as f:
            f.write(data)
        os.chmod(full, stat.S_IMODE(st.st_mode))
        return f"unshare {rel}"
    if roll < 0.4:
        os.chmod(full, stat.S_IMODE(st.st_mode) ^ 0o010)
        return f"chmod {rel}"
    if roll < 0.6:
        new = os.path.join(os.path.dirname(full), rng.choice(_NAMES))
        if not os.path.lexists(new):
            os.link(full, new)
            return f"link {rel} as {os.path.relpath(new, src)}"
    with open(full, "ab") as f:
        f.write(b"!")
    return f"append {rel}"


def _copied(src: str, srcs: list[sources.Source], work: str, **kw: object) -> Snapshot:
    dst = os.path.join(work, "dst")
    shutil.rmtree(dst, ignore_errors=True)
    os.mkdir(dst)
    copy(src, srcs, dst, "/out", **kw)  # type: ignore[arg-type]
    return _snapshot(os.path.join(dst, "out"))


def _case(rng: random.Random, work: str) -> bool:
    """One random case; False if its source turned out unusable (ignored, dangling)."""
    src = os.path.join(work, "src")
    shutil.rmtree(src, ignore_errors=True)
    os.mkdir(src)
    _make_tree(rng, src)
    ignore = Matcher(rng.sample(_IGNORE_POOL, rng.randint(0, 3)))
    excludes = rng.sample(_EXCLUDE_POOL, rng.randint(0, 2))
    pattern = rng.choice(["."] + _entries(src)[1:])
    try:
        srcs = match_sources(src, [pattern], ignore=ignore, excludes=excludes)
    except SourceNotFound:
        return False
    kw = {"ignore": ignore, "excludes": excludes}
    where = f"tree {_entries(src)}, ignore {[p for p in ignore.patterns]}, " \
            f"excludes {excludes}, source {pattern!r}"
    walked = {f.path for f in sources.walk(src, srcs[0].paths[0], ignore, excludes)}
    snap = _copied(src, srcs, work, **kw)
    assert set(snap) == walked, where
    digest = checksum(src, srcs, **kw)  # type: ignore[arg-type]
    for _ in range(_MUTATIONS):
        what = _mutate(rng, src)
        try:
            new_digest = checksum(src, srcs, **kw)  # type: ignore[arg-type]
        except SourceNotFound:  # the source is gone (a relinked symlink): no copy either
            with pytest.raises(CopyError, match="not found"):
                _copied(src, srcs, work, **kw)
            return True
        new_snap = _copied(src, srcs, work, **kw)
        assert (new_snap != snap) == (new_digest != digest), f"{where}, after {what}"
        walked = {f.path for f in sources.walk(src, srcs[0].paths[0], ignore, excludes)}
        assert set(new_snap) == walked, f"{where}, after {what}"
        snap, digest = new_snap, new_digest
    return True


def test_copy_writes_what_the_checksum_covers(tmp_path: os.PathLike[str]) -> None:
    rng = random.Random(_SEED)
    work = str(tmp_path)
    used = sum(_case(rng, work) for _ in range(_CASES))
    assert used >= _CASES // 2  # most cases had a usable source: the test tests something
