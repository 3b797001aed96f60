"""barque/build/sources.py: COPY/ADD sources matched inside a root as BuildKit matches them
(on a small layout of our own), never outside the root, the
.dockerignore and --exclude applied, and the content checksum that keys the cache."""

from __future__ import annotations

import os
import time

import pytest

from barque.build import sources
from barque.build.ignore import Matcher
from barque.build.sources import Source, SourceError, SourceNotFound, checksum, match_sources


def _tree(root: str, files: dict[str, str | bytes | None]) -> str:
    """Make `files` under `root`: a value is the content, None a directory, and a
    "->target" string a symlink."""
    os.makedirs(root, exist_ok=True)
    for name, content in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if content is None:
            os.makedirs(path, exist_ok=True)
        elif isinstance(content, str) and content.startswith("->"):
            os.symlink(content[2:], path)
        else:
            with open(path, "wb") as f:
                f.write(content.encode() if isinstance(content, str) else content)
    return root


@pytest.fixture
def ctx(tmp_path: os.PathLike[str]) -> str:
    return _tree(os.path.join(str(tmp_path), "ctx"), {
        "Dockerfile": "FROM scratch\n", "main.py": "main-source", "util.py": "util-source",
        "pkg/mod1/mod2/data": "main-source",
    })


def _paths(root: str, *patterns: str, **kw: object) -> list[list[str]]:
    return [s.paths for s in match_sources(root, list(patterns), **kw)]  # type: ignore[arg-type]


def test_literal_and_wildcard_matches(ctx: str) -> None:
    assert _paths(ctx, "*.py") == [["main.py", "util.py"]]
    assert _paths(ctx, "m*.py") == [["main.py"]]
    assert _paths(ctx, "pkg/*") == [["pkg/mod1"]]
    assert _paths(ctx, "pkg/*/mod2/data") == [["pkg/mod1/mod2/data"]]
    assert _paths(ctx, ".") == [[""]]
    assert _paths(ctx, "/") == [[""]]
    assert _paths(ctx, "pkg/mod1/") == [["pkg/mod1"]]
    assert _paths(ctx, "pkg/mod1/.") == [["pkg/mod1"]]
    assert _paths(ctx, "./pkg/../main.py") == [["main.py"]]
    assert _paths(ctx, "../../main.py") == [["main.py"]]  # cleaned as /../../main.py is /main.py
    assert _paths(ctx, "pkg/mod?/mod[0-9]") == [["pkg/mod1/mod2"]]
    srcs = match_sources(ctx, ["main.py", "*.py"])
    assert srcs == [Source("main.py", ["main.py"]), Source("*.py", ["main.py", "util.py"])]


def test_a_wildcard_matching_nothing_is_empty_not_an_error(ctx: str) -> None:
    # As BuildKit: `COPY main.py absent* /` copies main.py; the wildcard adds nothing.
    assert _paths(ctx, "main.py", "absent*") == [["main.py"], []]
    assert _paths(ctx, "nodir/*.py") == [[]]


def test_missing_path_is_buildkits_error(ctx: str) -> None:
    with pytest.raises(SourceNotFound) as e:
        match_sources(ctx, ["main.py", "nope"], ref="ref1")
    assert str(e.value) == ('failed to compute cache key: failed to calculate checksum of '
                            'ref ref1: "/nope": not found')
    with pytest.raises(SourceNotFound, match='"/pkg/nope/x": not found'):
        match_sources(ctx, ["pkg/nope/x"])
    with pytest.raises(SourceNotFound, match='"/main.py/x": not found'):
        match_sources(ctx, ["main.py/x"])  # through a file
    # Escaped wildcards are literal names.
    with pytest.raises(SourceNotFound, match=r'"/a\\\*b": not found'):
        match_sources(ctx, ["a\\*b"])
    with pytest.raises(SourceError, match="syntax error in pattern"):
        match_sources(ctx, ["pkg/[a-"])


def test_allow_wildcards_false_takes_names_literally(ctx: str) -> None:
    _tree(ctx, {"we*rd": "x"})
    assert _paths(ctx, "we*rd", allow_wildcards=False) == [["we*rd"]]
    with pytest.raises(SourceNotFound):
        match_sources(ctx, ["*.py"], allow_wildcards=False)


def test_symlinks_resolve_inside_the_root(tmp_path: os.PathLike[str]) -> None:
    """The attack: a stage's rootfs (or a context) holds symlinks to host paths. Resolved on
    the host they would find (and COPY would read) the host's files; inside the root they
    find the root's own or nothing."""
    outside = _tree(os.path.join(str(tmp_path), "host"), {"secret": "HOST-SECRET"})
    root = _tree(os.path.join(str(tmp_path), "rootfs"), {
        "abs": "->" + os.path.join(outside, "secret"),
        "rel": "->../../../../../../" + outside.lstrip("/") + "/secret",
        "dirlink": "->" + outside,
        "etc/shadow": "ROOT-SHADOW",
        "shadow": "->/etc/shadow",
        "up": "->../../../../etc/shadow",
    })
    for name in ("abs", "rel", "dirlink/secret"):
        with pytest.raises(SourceNotFound):
            match_sources(root, [name])
    assert _paths(root, "shadow", "up") == [["shadow"], ["up"]]
    # The wildcard names the link itself; what is copied (and checksummed) is in the root.
    assert _paths(root, "dirlink*") == [["dirlink"]]
    with pytest.raises(SourceNotFound):
        checksum(root, match_sources(root, ["dirlink*"]))
    for found in sources.walk(root, "shadow"):  # what a copy would read
        fd = os.open(found.name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=found.dir_fd)
        with os.fdopen(fd, "rb") as f:
            assert f.read() == b"ROOT-SHADOW"
    same = _tree(os.path.join(str(tmp_path), "plain"), {"shadow": "ROOT-SHADOW"})
    assert (checksum(root, match_sources(root, ["shadow"]))
            == checksum(same, match_sources(same, ["shadow"])))


def test_symlinks_in_the_wildcard_part_are_not_walked(ctx: str) -> None:
    _tree(ctx, {"pkg/link": "->mod1"})
    assert _paths(ctx, "pkg/*/mod2/data") == [["pkg/mod1/mod2/data"]]
    assert _paths(ctx, "pkg/l*") == [["pkg/link"]]
    # ... but the part before the first wildcard is followed, as BuildKit does.
    _tree(ctx, {"sl": "->pkg"})
    assert _paths(ctx, "sl/*/mod2/data") == [["sl/mod1/mod2/data"]]


def test_dockerignore_hides_paths(ctx: str) -> None:
    _tree(ctx, {"build/out.bin": "x", "build/keep.txt": "k", "logs/a.log": "l",
                "logs/b.txt": "t", "lnk": "->logs/a.log"})
    ign = Matcher(["*.py", "!main.py", "build", "!build/keep.txt", "logs/*.log", "Dockerfile"])
    assert _paths(ctx, "main.py", ignore=ign) == [["main.py"]]
    for hidden in ("util.py", "build/out.bin", "logs/a.log", "Dockerfile", "lnk"):
        with pytest.raises(SourceNotFound):
            match_sources(ctx, [hidden], ignore=ign)
    assert _paths(ctx, "*.py", "build", "logs/*", ignore=ign) == [
        ["main.py"], ["build"], ["logs/b.txt"]]
    # An excluded directory holding nothing re-included is not there at all.
    ign2 = Matcher(["build", "!build/nothing-here"])
    with pytest.raises(SourceNotFound):
        match_sources(ctx, ["build"], ignore=ign2)
    assert _paths(ctx, "u*", ignore=ign2) == [["util.py"]]


def _walked(root: str, path: str, **kw: object) -> list[str]:
    return [f.path for f in sources.walk(root, path, **kw)]  # type: ignore[arg-type]


def test_walk_lists_sorted_parents_first(ctx: str) -> None:
    _tree(ctx, {"pkg/a": "a", "pkg/mod1/z": "z", "pkg/lnk": "->mod1"})
    assert _walked(ctx, "pkg") == ["", "a", "lnk", "mod1", "mod1/mod2", "mod1/mod2/data",
                                   "mod1/z"]
    assert _walked(ctx, "main.py") == [""]
    top = next(iter(sources.walk(ctx, "pkg/lnk")))
    assert top.st.st_mode & 0o170000 == 0o040000  # followed
    walking = sources.walk(ctx, "pkg/lnk", follow_links=False)
    top = next(walking)  # its dir_fd is open while the walk is
    assert top.st.st_mode & 0o170000 == 0o120000
    assert os.readlink(top.name, dir_fd=top.dir_fd) == "mod1"
    walking.close()


def test_walk_applies_ignore_and_excludes(ctx: str) -> None:
    _tree(ctx, {"app/a.py": "", "app/a.pyc": "", "app/cache/x.pyc": "",
                "app/cache/keep.py": "", "app/docs/r.md": "", "app/docs/i.txt": ""})
    ign = Matcher(["**/*.pyc", "app/cache", "!app/cache/keep.py"])
    assert _walked(ctx, "app", ignore=ign) == [
        "", "a.py", "cache", "cache/keep.py", "docs", "docs/i.txt", "docs/r.md"]
    # --exclude is relative to the source; an excluded directory is given only when
    # something below it is re-included.
    assert _walked(ctx, "app", ignore=ign, excludes=["docs/*.md", "cache"]) == [
        "", "a.py", "docs", "docs/i.txt"]
    assert _walked(ctx, "app", excludes=["*"]) == [""]
    assert _walked(ctx, "app", excludes=["docs", "!docs/i.txt"]) == [
        "", "a.py", "a.pyc", "cache", "cache/keep.py", "cache/x.pyc", "docs", "docs/i.txt"]
    # The ignore file is matched on paths from the context's top, whatever is walked.
    assert _walked(ctx, "app/cache", ignore=ign) == ["", "keep.py"]


def _sum(root: str, *patterns: str, **kw: object) -> str:
    ign = kw.pop("ignore", None)
    srcs = match_sources(root, list(patterns), ignore=ign)  # type: ignore[arg-type]
    return checksum(root, srcs, ignore=ign, **kw)  # type: ignore[arg-type]


def test_checksum_follows_content_not_times(ctx: str) -> None:
    base = _sum(ctx, "*.py", "pkg")
    assert base.startswith("sha256:") and len(base) == 71
    assert _sum(ctx, "*.py", "pkg") == base
    path = os.path.join(ctx, "pkg/mod1/mod2/data")
    os.utime(path, (1, 1))
    os.utime(os.path.join(ctx, "pkg"), (2, 2))
    assert _sum(ctx, "*.py", "pkg") == base  # times never count
    with open(path, "r+b") as f:
        f.write(b"M")
    changed = _sum(ctx, "*.py", "pkg")
    assert changed != base
    with open(path, "r+b") as f:
        f.write(b"m")
    assert _sum(ctx, "*.py", "pkg") == base
    os.chmod(path, 0o600)
    assert _sum(ctx, "*.py", "pkg") != base
    os.chmod(path, 0o644)
    os.chown(path, 1000, 1000)
    assert _sum(ctx, "*.py", "pkg") != base
    os.chown(path, 0, 0)
    assert _sum(ctx, "*.py", "pkg") == base
    os.rename(path, path + "2")
    assert _sum(ctx, "*.py", "pkg") != base
    os.rename(path + "2", path)
    os.setxattr(path, "user.note", b"1")
    assert _sum(ctx, "*.py", "pkg") != base
    os.removexattr(path, "user.note")
    assert _sum(ctx, "*.py", "pkg") == base
    os.mkdir(os.path.join(ctx, "pkg/empty"))
    assert _sum(ctx, "*.py", "pkg") != base


def test_checksum_of_symlinks_and_names(ctx: str) -> None:
    _tree(ctx, {"d/l": "->a", "d/a": "A", "d/b": "A"})
    base = _sum(ctx, "d")
    os.unlink(os.path.join(ctx, "d/l"))
    os.symlink("b", os.path.join(ctx, "d/l"))
    assert _sum(ctx, "d") != base  # the target is content; a and b are alike
    # The same files under another pattern are another key.
    assert _sum(ctx, "d/a") != _sum(ctx, "d/b")
    assert _sum(ctx, "d/*") != _sum(ctx, "d")


def test_checksum_keys_hard_links_a_copy_keeps(ctx: str) -> None:
    """Two names of one inode are copied as hard links: not the key of two alike files."""
    _tree(ctx, {"d/a": "A", "d/b": "A"})
    separate = _sum(ctx, "d"), _sum(ctx, "d/a"), _sum(ctx, "d", excludes=["b"])
    os.unlink(os.path.join(ctx, "d/b"))
    os.link(os.path.join(ctx, "d/a"), os.path.join(ctx, "d/b"))
    assert _sum(ctx, "d") != separate[0]
    # One name of the two copied: nothing to link, the same copy and key.
    assert (_sum(ctx, "d/a"), _sum(ctx, "d", excludes=["b"])) == separate[1:]


def test_checksum_leaves_out_ignored_and_excluded_files(ctx: str) -> None:
    _tree(ctx, {"app/main.py": "m", "app/tmp.log": "1", "app/docs/x.md": "x"})
    ign = Matcher(["**/*.log"])
    base = _sum(ctx, "app", ignore=ign, excludes=["docs"])
    with open(os.path.join(ctx, "app/tmp.log"), "w") as f:
        f.write("2")
    with open(os.path.join(ctx, "app/docs/x.md"), "w") as f:
        f.write("y")
    assert _sum(ctx, "app", ignore=ign, excludes=["docs"]) == base
    assert _sum(ctx, "app", ignore=ign) != base


def test_checksum_is_the_same_for_the_same_tree_elsewhere(tmp_path: os.PathLike[str]) -> None:
    files: dict[str, str | bytes | None] = {"a/x": "1", "a/y/z": "2", "a/l": "->x", "b": "3"}
    one = _tree(os.path.join(str(tmp_path), "one"), files)
    two = _tree(os.path.join(str(tmp_path), "two"), dict(reversed(list(files.items()))))
    for root in (one, two):
        for dirpath, dirnames, filenames in os.walk(root):
            for n in dirnames + filenames:
                os.chmod(os.path.join(dirpath, n), 0o755, follow_symlinks=False) \
                    if not os.path.islink(os.path.join(dirpath, n)) else None
    assert _sum(one, "a", "b") == _sum(two, "a", "b")


def test_checksum_is_fast(tmp_path: os.PathLike[str]) -> None:
    # The bench's stage: three 5.5 KB files per COPY, four stages: 12 files.
    root = _tree(os.path.join(str(tmp_path), "ctx"),
                 {f"s{s}/f{i}.txt": os.urandom(5632) for s in range(4) for i in range(3)})
    srcs = [match_sources(root, [f"s{s}/f{i}.txt" for i in range(3)]) for s in range(4)]
    sources._file_digests.clear()
    # this thread's CPU time: on a busy machine one wait for a CPU outlasts the bounds below
    start = time.thread_time()
    for s in srcs:
        checksum(root, s)
    cold = time.thread_time() - start
    times = []
    for _ in range(15):
        start = time.thread_time()
        for s in srcs:
            match_sources(root, [p for src in s for p in src.paths])
            checksum(root, s)
        times.append(time.thread_time() - start)
    times.sort()
    assert cold < 0.05
    assert times[len(times) // 2] < 0.01, times


def test_no_descriptor_is_left_open(ctx: str) -> None:
    _tree(ctx, {"app/a/b/c": "x", "app/d": "->a"})
    before = sorted(os.listdir("/proc/self/fd"))
    srcs = match_sources(ctx, ["app", "*.py", "app/*/b"], ignore=Matcher(["x", "!y"]))
    checksum(ctx, srcs)
    walking = sources.walk(ctx, "app")
    next(walking), next(walking), next(walking)
    walking.close()  # abandoned mid-walk
    with pytest.raises(SourceNotFound):
        list(sources.walk(ctx, "nope"))
    with pytest.raises(SourceNotFound):
        match_sources(ctx, ["app", "nope"])
    assert sorted(os.listdir("/proc/self/fd")) == before


def test_deep_trees_are_walked(tmp_path: os.PathLike[str]) -> None:
    # Deeper than Python's recursion limit, built with fds (the path outgrows PATH_MAX).
    root = os.path.join(str(tmp_path), "deep")
    os.mkdir(root)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    depth = 1500
    for _ in range(depth):
        os.mkdir("dddd", dir_fd=fd)
        sub = os.open("dddd", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = sub
    os.close(os.open("f", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    os.close(fd)
    found = list(sources.walk(root, ""))
    assert len(found) == depth + 2
    assert found[-1].path.endswith("/f")
    assert checksum(root, [Source(".", [""])]).startswith("sha256:")
    # rmtree recurses per level: remove it with fds too.
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    fds = [fd]
    for _ in range(depth):
        fds.append(os.open("dddd", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
    os.unlink("f", dir_fd=fds[-1])
    for _ in range(depth):
        os.close(fds.pop())
        os.rmdir("dddd", dir_fd=fds[-1])
    os.close(fds.pop())
