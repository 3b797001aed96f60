"""COPY and ADD's file operations: Docker's source/destination rules, owners, modes, links,
xattrs, --parents, --exclude, ADD's tar extraction, and hostile roots on either side (a
destination symlink to /etc or ../../.. stays inside the step's root)."""

from __future__ import annotations

import bz2
import lzma
import os
import shutil
import stat

import pytest
import zstandard

from barque.build import fileops
from barque.build.fileops import CopyError, copy, resolve_chown
from barque.build.ignore import Matcher
from barque.build.sources import Source
from tests.storage.util import short_tar

pytestmark = pytest.mark.root


@pytest.fixture
def roots(tmp_path: os.PathLike) -> tuple[str, str, str]:
    """(the source root, the destination root, a host dir outside both: the attack target)."""
    base = str(tmp_path)
    src, dst, host = (os.path.join(base, n) for n in ("src", "dst", "host"))
    for d in (src, dst, host):
        os.mkdir(d)
    return src, dst, host


def write(root: str, rel: str, data: str = "x", mode: int = 0o644) -> str:
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


def read(root: str, rel: str) -> str:
    with open(os.path.join(root, rel)) as f:
        return f.read()


def S(pattern: str, *paths: str) -> Source:  # noqa: N802 - reads like the instruction
    return Source(pattern, list(paths) if paths else [pattern])


# --- Docker's rules ------------------------------------------------------------------------

def test_file_into_dir_keeps_mode_and_mtime_owner_root(roots: tuple[str, str, str]) -> None:
    src, dst, _ = roots
    p = write(src, "a.sh", "hi")
    os.chown(p, 1000, 1000)
    os.chmod(p, 0o4751)
    os.utime(p, ns=(1_000_000_000, 1_500_000_000))
    copy(src, [S("a.sh")], dst, "/app/")
    st = os.lstat(os.path.join(dst, "app/a.sh"))
    assert read(dst, "app/a.sh") == "hi"
    assert stat.S_IMODE(st.st_mode) == 0o4751 and (st.st_uid, st.st_gid) == (0, 0)
    assert st.st_mtime_ns == 1_500_000_000
    assert stat.S_IMODE(os.stat(os.path.join(dst, "app")).st_mode) == 0o755


def test_trailing_slash_decides_file_or_dir(roots: tuple[str, str, str]) -> None:
    src, dst, _ = roots
    write(src, "a.txt", "A")
    copy(src, [S("a.txt")], dst, "/abs")
    assert os.path.isfile(os.path.join(dst, "abs")) and read(dst, "abs") == "A"
    copy(src, [S("a.txt")], dst, "/abs2/")
    assert read(dst, "abs2/a.txt") == "A"
    os.mkdir(os.path.join(dst, "existing"))
    copy(src, [S("a.txt")], dst, "/existing")  # an existing dir: into it
    assert read(dst, "existing/a.txt") == "A"
    write(dst, "old", "old")
    copy(src, [S("a.txt")], dst, "/old")  # an existing file: replaced
    assert read(dst, "old") == "A"


def test_relative_dest_is_below_workdir(roots: tuple[str, str, str]) -> None:
    src, dst, _ = roots
    write(src, "t.txt", "T")
    copy(src, [S("t.txt")], dst, "rel/", workdir="/usr/src/app")
    assert read(dst, "usr/src/app/rel/t.txt") == "T"
    copy(src, [S("t.txt")], dst, ".", workdir="/w")
    assert read(dst, "w/t.txt") == "T"


def test_directory_contents_are_copied_not_the_directory(roots: tuple[str, str, str]) -> None:
    src, dst, _ = roots
    write(src, "dir/x", "X")
    write(src, "dir/sub/y", "Y")
    os.chmod(os.path.join(src, "dir"), 0o750)
    os.chmod(os.path.join(src, "dir/sub"), 0o711)
    copy(src, [S("dir")], dst, "/out")
    assert sorted(os.listdir(os.path.join(dst, "out"))) == ["sub", "x"]
    assert read(dst, "out/sub/y") == "Y"
    # Made by the copy: the source dir's metadata; nested dirs always.
    assert stat.S_IMODE(os.stat(os.path.join(dst, "out")).st_mode) == 0o750
    assert stat.S_IMODE(os.stat(os.path.join(dst, "out/sub")).st_mode) == 0o711
    copy(src, [S("dir/")], dst, "/out2/")  # made beforehand for the `/`: 0755
    assert stat.S_IMODE(os.stat(os.path.join(dst, "out2")).st_mode) == 0o755
    assert read(dst, "out2/x") == "X"


def test_merges_with_existing_dirs_and_refuses_dir_over_file(
        roots: tuple[str, str, str]) -> None:
    src, dst, _ = roots
    write(src, "d/keep/new", "N")
    write(dst, "app/keep/old", "O")
    copy(src, [S("d")], dst, "/app/")
    assert read(dst, "app/keep/old") == "O" and read(dst, "app/keep/new") == "N"
    write(dst, "file", "F")
    with pytest.raises(CopyError, match="cannot copy to non-directory"):
        copy(src, [S("d")], dst, "/file")
    write(src, "keep", "file")
    with pytest.raises(CopyError, match="cannot replace to directory"):
        copy(src, [S("keep")], dst, "/app/")


def test_several_sources_need_a_slash(roots: tuple[str, str, str]) -> None:
    src, dst, _ = roots
    write(src, "f1")
    write(src, "f2")
    with pytest.raises(CopyError, match="When using COPY with more than one source file, the "
                                        "destination must be a directory and end with a /"):
        copy(src, [S("f1"), S("f2")], dst, "/test")
    with pytest.raises(CopyError, match="When using ADD with more"):
        copy(src, [S("f*", "f1", "f2")], dst, "/test", command="ADD")
    assert os.listdir(dst) == []  # refused before anything was written
    copy(src, [S("f*", "f1", "f2")], dst, "/test/")
    assert sorted(os.listdir(os.path.join(dst, "test"))) == ["f1", "f2"]


def test_chown_owns_files_and_only_the_dirs_it_makes(roots: tuple[str, str, str]) -> None:
    src, dst, _ = roots
    write(src, "d/f")
    os.mkdir(os.path.join(dst, "pre"))
    copy(src, [S("d")], dst, "/pre/made/", chown=(55, 66))
    for rel in ("pre/made", "pre/made/f"):
        st = os.lstat(os.path.join(dst, rel))
        assert (st.st_uid, st.st_gid) == (55, 66), rel
    assert os.lstat(os.path.join(dst, "pre")).st_uid == 0


def test_keep_owners_for_copies_from_a_stage(roots: tuple[str, str, str]) -> None:
    src, dst, _ = roots
    p = write(src, "f")
    os.chown(p, 7, 8)
    copy(src, [S("f")], dst, "/k/", keep_owners=True)
    st = os.lstat(os.path.join(dst, "k/f"))
    assert (st.st_uid, st.st_gid) == (7, 8)


def test_chmod_octal_and_symbolic(roots: tuple[str, str, str]) -> None:
    src, dst, _ = roots
    write(src, "d/plain", mode=0o600)
    write(src, "d/exe", mode=0o700)
    copy(src, [S("d")], dst, "/oct/", chmod=0o640)
    assert stat.S_IMODE(os.stat(os.path.join(dst, "oct/exe")).st_mode) == 0o640
    copy(src, [S("d")], dst, "/sym/", chmod="u=rwX,go=rX")
    assert stat.S_IMODE(os.stat(os.path.join(dst, "sym/plain")).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(os.path.join(dst, "sym/exe")).st_mode) == 0o755
    copy(src, [S("d/plain")], dst, "/x/", chmod="+x")
    assert stat.S_IMODE(os.stat(os.path.join(dst, "x/plain")).st_mode) == 0o711
    with pytest.raises(CopyError, match="invalid chmod"):
        copy(src, [S("d/plain")], dst, "/y/", chmod="u=bogus")


def test_symlinks_copied_as_symlinks_hard_links_kept(roots: tuple[str, str, str]) -> None:
    src, dst, _ = roots
    write(src, "d/target", "T")
    os.symlink("/etc/passwd", os.path.join(src, "d/abs"))
    os.symlink("target", os.path.join(src, "d/rel"))
    os.link(os.path.join(src, "d/target"), os.path.join(src, "d/hard"))
    copy(src, [S("d")], dst, "/o/")
    assert os.readlink(os.path.join(dst, "o/abs")) == "/etc/passwd"
    assert os.readlink(os.path.join(dst, "o/rel")) == "target"
    a, b = os.stat(os.path.join(dst, "o/target")), os.stat(os.path.join(dst, "o/hard"))
    assert a.st_ino == b.st_ino and a.st_nlink == 2


def test_hard_links_landing_on_one_name(roots: tuple[str, str, str]) -> None:
    """Two sources bring one inode to the same destination name (or one source twice):
    written once more, not linked to the name the copy has just cleared."""
    src, dst, _ = roots
    write(src, "p/f", "F")
    os.makedirs(os.path.join(src, "q"))
    os.link(os.path.join(src, "p/f"), os.path.join(src, "q/f"))
    os.link(os.path.join(src, "p/f"), os.path.join(src, "p/g"))
    copy(src, [S("p"), S("q")], dst, "/x/")
    assert sorted(os.listdir(os.path.join(dst, "x"))) == ["f", "g"] and read(dst, "x/f") == "F"
    copy(src, [S("p/f"), S("p/f")], dst, "/y/")
    assert read(dst, "y/f") == "F"


def test_xattrs_copied(roots: tuple[str, str, str]) -> None:
    src, dst, _ = roots
    p = write(src, "f")
    os.setxattr(p, "trusted.barque-test", b"v1")
    os.setxattr(p, "trusted.overlay.opaque", b"y")  # overlay's own: never copied
    copy(src, [S("f")], dst, "/")
    out = os.path.join(dst, "f")
    assert os.getxattr(out, "trusted.barque-test") == b"v1"
    assert "trusted.overlay.opaque" not in os.listxattr(out)


def _files(root: str) -> list[str]:
    """Every entry below `root` (directories too, with a trailing `/`), sorted."""
    out = []
    for base, dirs, files in os.walk(root):
        rel = os.path.relpath(base, root)
        out += [os.path.normpath(os.path.join(rel, d)) + "/" for d in dirs]
        out += [os.path.normpath(os.path.join(rel, f)) for f in files]
    return sorted(out)


def test_exclude_and_ignore(roots: tuple[str, str, str]) -> None:
    src, dst, _ = roots
    for rel in ("d/a.txt", "d/b.md", "d/sub/c.txt", "d/sub/d.go", "d/skipdir/e.go",
                "d/skipdir/keep.go"):
        write(src, rel)
    ignore = Matcher(["d/skipdir", "!d/skipdir/keep.go"])
    # --exclude matches below each copied source, never from the root; `*` never crosses
    # a `/`; the ignore file matches from the context's root.
    copy(src, [S("d")], dst, "/o/", excludes=["*.txt", "**/*.md", "d/sub/*.go"],
         ignore=ignore)
    assert _files(os.path.join(dst, "o")) == [
        "skipdir/", "skipdir/keep.go", "sub/", "sub/c.txt", "sub/d.go"]


def test_exclude_is_relative_to_each_source_not_the_root(roots: tuple[str, str, str]) -> None:
    """BuildKit (fsutil's copier) matches --exclude on paths below the matched source:
    `*/a.txt` drops d/x/a.txt when copying d, but not d/a.txt."""
    src, dst, _ = roots
    for rel in ("d/a.txt", "d/x/a.txt", "d/x/b.txt", "a.txt"):
        write(src, rel)
    copy(src, [S("d")], dst, "/o/", excludes=["*/a.txt"])
    assert _files(os.path.join(dst, "o")) == ["a.txt", "x/", "x/b.txt"]
    copy(src, [S(".", "")], dst, "/all/", excludes=["*/a.txt"])
    assert _files(os.path.join(dst, "all")) == ["a.txt", "d/", "d/x/", "d/x/a.txt",
                                                "d/x/b.txt"]


def test_an_ignored_dir_with_nothing_kept_is_not_made(roots: tuple[str, str, str]) -> None:
    """A directory the .dockerignore (or --exclude) leaves out is walked when an exception
    might keep something in it; if nothing is kept, BuildKit does not send it: no copy."""
    src, dst, _ = roots
    for rel in ("d/skip/x.txt", "d/skip/deeper/y.txt", "d/keep/z.keep", "d/f"):
        write(src, rel)
    ignore = Matcher(["d/skip", "d/keep", "!d/*/*.keep"])  # a wildcard exception: walked
    copy(src, [S("d")], dst, "/o/", ignore=ignore)
    assert _files(os.path.join(dst, "o")) == ["f", "keep/", "keep/z.keep"]
    copy(src, [S("d")], dst, "/e/", excludes=["skip", "keep", "!*/*.keep"])
    assert _files(os.path.join(dst, "e")) == ["f", "keep/", "keep/z.keep"]


def test_parents_keep_the_path_after_a_pivot(roots: tuple[str, str, str]) -> None:
    src, dst, _ = roots
    write(src, "x/a.txt", "xa")
    write(src, "y/a.txt", "ya")
    write(src, "p/q/b.txt", "b")
    copy(src, [S("./x/a.txt", "x/a.txt"), S("./y/a.txt", "y/a.txt")], dst, "/parents/",
         parents=True)
    assert read(dst, "parents/x/a.txt") == "xa" and read(dst, "parents/y/a.txt") == "ya"
    copy(src, [S("./p/./q/*.txt", "p/q/b.txt")], dst, "/piv/", parents=True)
    assert read(dst, "piv/q/b.txt") == "b"


def test_resolve_chown(roots: tuple[str, str, str]) -> None:
    _, dst, _ = roots
    write(dst, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n")
    write(dst, "etc/group", "root:x:0:\nstaff:x:50:\n")
    assert resolve_chown(dst, "app") == (1000, 1001)  # its primary group
    assert resolve_chown(dst, "app:staff") == (1000, 50)
    assert resolve_chown(dst, "55:66") == (55, 66)
    assert resolve_chown(dst, "7") == (7, 7)
    assert resolve_chown(dst, "7:staff") == (7, 50)
    with pytest.raises(CopyError, match="can't find uid for user bob: no such user: bob"):
        resolve_chown(dst, "bob")
    with pytest.raises(CopyError, match="can't find gid for group bob: no such group: bob"):
        resolve_chown(dst, "root:bob")
    with pytest.raises(CopyError, match="invalid chown string format: a:b:c"):
        resolve_chown(dst, "a:b:c")


# --- hostile roots -------------------------------------------------------------------------

@pytest.mark.parametrize("link", ["host", "../../../../../../../..{host}"])
def test_destination_symlink_attack_stays_in_root(roots: tuple[str, str, str],
                                                  link: str) -> None:
    """A layer made /app a symlink to a host path (absolute, or climbing with ..): COPY to
    /app/ and to /app/sub/ must write inside the step's root, never into the host dir."""
    src, dst, host = roots
    write(src, "payload", "PWNED")
    write(src, "tree/inner", "PWNED")
    target = host if link == "host" else link.format(host=host)
    os.symlink(target, os.path.join(dst, "app"))
    copy(src, [S("payload")], dst, "/app/")
    copy(src, [S("tree")], dst, "/app/sub/")
    copy(src, [S("payload")], dst, "/app/file")
    assert os.listdir(host) == [], "the copy wrote through the symlink onto the host"
    inside = os.path.join(dst, host.lstrip("/"))  # where the link resolves inside the root
    assert read(inside, "payload") == "PWNED" and read(inside, "sub/inner") == "PWNED"
    assert read(inside, "file") == "PWNED"


def test_destination_file_symlink_is_resolved_in_root(roots: tuple[str, str, str]) -> None:
    """COPY a /etc/x where the layer made /etc/x -> <host file>: the host file is intact."""
    src, dst, host = roots
    victim = write(host, "victim", "ORIGINAL")
    write(src, "a", "PWNED")
    os.makedirs(os.path.join(dst, "etc"))
    os.symlink(victim, os.path.join(dst, "etc/x"))
    copy(src, [S("a")], dst, "/etc/x")
    assert read(host, "victim") == "ORIGINAL"
    assert read(dst, victim.lstrip("/")) == "PWNED"


def test_nested_destination_symlink_is_not_followed(roots: tuple[str, str, str]) -> None:
    """A symlink below the destination where the copy has a directory: an error (as
    BuildKit's), nothing written through it."""
    src, dst, host = roots
    write(src, "d/sub/evil", "PWNED")
    os.makedirs(os.path.join(dst, "app"))
    os.symlink(host, os.path.join(dst, "app/sub"))
    with pytest.raises(CopyError, match="cannot copy to non-directory"):
        copy(src, [S("d")], dst, "/app/")
    assert os.listdir(host) == []


def test_source_symlink_resolves_inside_the_source_root(roots: tuple[str, str, str]) -> None:
    """A stage's rootfs symlink to a host file (absolute or ..): COPY --from copies the
    stage's own file, or finds nothing; never the host's."""
    src, dst, host = roots
    secret = write(host, "secret", "HOST SECRET")
    os.symlink(secret, os.path.join(src, "abs"))
    os.symlink("../../../../../../.." + secret, os.path.join(src, "rel"))
    with pytest.raises(CopyError, match="not found"):
        copy(src, [S("abs")], dst, "/o/")
    write(src, secret.lstrip("/"), "STAGE FILE")
    copy(src, [S("abs")], dst, "/o/")
    copy(src, [S("rel")], dst, "/o/")
    assert read(dst, "o/abs") == "STAGE FILE" and read(dst, "o/rel") == "STAGE FILE"


# --- ADD: local archives -------------------------------------------------------------------

def _tar(members: list[tuple[str, str, str]]) -> bytes:
    return short_tar(members, mode=0o640, dir_mode=0o750, uid=12, gid=34, mtime=1_000_000)


_COMPRESS = {
    "plain": lambda b: b,
    "gz": lambda b: __import__("gzip").compress(b),
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "zst": lambda b: zstandard.ZstdCompressor().compress(b),
}


@pytest.mark.parametrize("kind", sorted(_COMPRESS))
def test_add_extracts_local_archives(roots: tuple[str, str, str], kind: str) -> None:
    src, dst, _ = roots
    data = _tar([("dir", "top", ""), ("file", "top/f", "F"), ("sym", "top/l", "f"),
                 ("hard", "top/h", "top/f")])
    with open(os.path.join(src, "a.tar.x"), "wb") as f:
        f.write(_COMPRESS[kind](data))
    write(dst, "into/existing", "E")
    copy(src, [S("a.tar.x")], dst, "/into", unpack=True, command="ADD")
    assert read(dst, "into/existing") == "E" and read(dst, "into/top/f") == "F"
    st = os.lstat(os.path.join(dst, "into/top/f"))
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (12, 34, 0o640)
    assert os.readlink(os.path.join(dst, "into/top/l")) == "f"
    assert os.stat(os.path.join(dst, "into/top/h")).st_ino == st.st_ino
    assert os.stat(os.path.join(dst, "into/top")).st_mtime == 1_000_000


def test_add_without_unpack_and_non_archives_copy_the_file(
        roots: tuple[str, str, str]) -> None:
    src, dst, _ = roots
    with open(os.path.join(src, "a.tar.gz"), "wb") as f:
        f.write(_tar([("file", "f", "F")]))
    write(src, "empty.tar.gz", "")
    copy(src, [S("a.tar.gz")], dst, "/no/", unpack=False)
    copy(src, [S("empty.tar.gz")], dst, "/no/", unpack=True)
    assert sorted(os.listdir(os.path.join(dst, "no"))) == ["a.tar.gz", "empty.tar.gz"]


@pytest.mark.parametrize("members", [
    [("file", "../escaped", "PWNED")],
    [("dir", "d", ""), ("file", "d/../../escaped", "PWNED")],
    [("hard", "h", "../../escaped")],
])
def test_add_refuses_archive_breakouts(roots: tuple[str, str, str],
                                       members: list[tuple[str, str, str]]) -> None:
    src, dst, _ = roots
    with open(os.path.join(src, "evil.tar"), "wb") as f:
        f.write(_tar(members))
    with pytest.raises(CopyError, match="outside of the destination"):
        copy(src, [S("evil.tar")], dst, "/x/y/", unpack=True)
    assert not os.path.exists(os.path.join(dst, "escaped"))
    assert not os.path.exists(os.path.join(dst, "x/escaped"))


def test_add_archive_symlink_then_entry_through_it_stays_in_dest(
        roots: tuple[str, str, str]) -> None:
    """An archive makes `l -> <host dir>` (and `r -> ../../..`), then writes `l/pwned`: the
    entry resolves with the destination as its root, as BuildKit's chrooted untar."""
    src, dst, host = roots
    with open(os.path.join(src, "evil.tar"), "wb") as f:
        f.write(_tar([("sym", "l", host), ("file", "l/pwned", "PWNED"),
                      ("sym", "r", "../../../../../../.."), ("file", "r/pwned2", "PWNED")]))
    copy(src, [S("evil.tar")], dst, "/x/", unpack=True)
    assert os.listdir(host) == []
    assert read(dst, "x" + host + "/pwned") == "PWNED"
    assert read(dst, "x/pwned2") == "PWNED"


def test_add_archive_into_symlinked_destination_stays_in_root(
        roots: tuple[str, str, str]) -> None:
    src, dst, host = roots
    with open(os.path.join(src, "a.tar"), "wb") as f:
        f.write(_tar([("file", "pwned", "PWNED")]))
    os.symlink(host, os.path.join(dst, "app"))
    copy(src, [S("a.tar")], dst, "/app/", unpack=True)
    assert os.listdir(host) == []
    assert read(dst, host.lstrip("/") + "/pwned") == "PWNED"


def test_truncated_archive_is_an_error(roots: tuple[str, str, str]) -> None:
    src, dst, _ = roots
    data = __import__("gzip").compress(_tar([("file", "f", "F" * 100_000)]))
    with open(os.path.join(src, "cut.tgz"), "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(CopyError):
        copy(src, [S("cut.tgz")], dst, "/x/", unpack=True)


def test_missing_source_is_not_found(roots: tuple[str, str, str]) -> None:
    src, dst, _ = roots
    with pytest.raises(CopyError, match='"/nope": not found'):
        copy(src, [S("nope")], dst, "/x/")
    assert fileops is not None


def test_context_root_and_special_files(roots: tuple[str, str, str]) -> None:
    """`COPY . /app` (the root itself matched: path ""), a fifo and a device node (a stage's
    rootfs may hold them) copied as such; sockets are not."""
    src, dst, _ = roots
    write(src, "top.txt", "T")
    os.mkfifo(os.path.join(src, "fifo"))
    os.mknod(os.path.join(src, "null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    import socket

    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(os.path.join(src, "sock"))
        copy(src, [S(".", "")], dst, "/app")
    finally:
        sock.close()
    app = os.path.join(dst, "app")
    assert sorted(os.listdir(app)) == ["fifo", "null", "top.txt"]
    assert stat.S_ISFIFO(os.lstat(os.path.join(app, "fifo")).st_mode)
    st = os.lstat(os.path.join(app, "null"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(os.stat(app).st_mode) == stat.S_IMODE(os.stat(src).st_mode)


def test_copy_onto_a_real_overlay_step(roots: tuple[str, str, str],
                                       tmp_path: os.PathLike) -> None:
    """As the builder uses it: the destination is a mounted overlay (the parent's layers
    below, a fresh upper). Replaced files and new ones land in the upper; a lower layer's
    `/app -> <host dir>` symlink still resolves inside the merged root."""
    from barque.storage import overlayfs

    src, _, host = roots
    base = str(tmp_path)
    lower, upper, work, merged = (os.path.join(base, n) for n in ("lo", "up", "wk", "mnt"))
    for d in (lower, upper, work, merged):
        os.mkdir(d)
    write(lower, "srv/a.txt", "old")
    os.symlink(host, os.path.join(lower, "app"))
    write(src, "d/a.txt", "new")
    write(src, "d/b.txt", "B")
    overlayfs.mount_overlay([lower], upper, work, merged)
    try:
        copy(src, [S("d")], merged, "/srv/")
        copy(src, [S("d/b.txt")], merged, "/app/")
        assert read(merged, "srv/a.txt") == "new"
    finally:
        overlayfs.unmount(merged)
    assert read(upper, "srv/a.txt") == "new" and read(upper, "srv/b.txt") == "B"
    assert read(lower, "srv/a.txt") == "old"
    assert os.listdir(host) == []
    assert read(upper, host.lstrip("/") + "/b.txt") == "B"


def test_a_very_deep_source_tree_is_copied(roots: tuple[str, str, str]) -> None:
    """Deeper than Python's recursion allows: the walk and the copy are iterative."""
    src, dst, _ = roots
    fd = os.open(src, os.O_RDONLY | os.O_DIRECTORY)
    try:
        # Bounded: shallow enough for shutil.rmtree's recursion (a frame a level).
        for _ in range(600):
            os.mkdir("d", dir_fd=fd)
            nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        os.close(os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd))
    finally:
        os.close(fd)
    before = len(os.listdir("/proc/self/fd"))
    try:
        copy(src, [S("d")], dst, "/x/")
        fd = os.open(os.path.join(dst, "x"), os.O_RDONLY | os.O_DIRECTORY)
        try:
            for _ in range(599):
                nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
                os.close(fd)
                fd = nfd
            assert os.listdir(fd) == ["leaf"]
        finally:
            os.close(fd)
        assert len(os.listdir("/proc/self/fd")) == before
    finally:
        shutil.rmtree(os.path.join(src, "d"))
        shutil.rmtree(os.path.join(dst, "x"), ignore_errors=True)
