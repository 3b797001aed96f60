"""barque/build/context.py: contexts from a directory, a tarball (file or stdin, each
compression), a Dockerfile on stdin; Docker's errors; hostile archives refused with nothing
written outside; temporaries removed."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import signal
import tarfile

import pytest
import zstandard

from barque.build import context
from barque.build.context import ContextError, open_context


def _write(path: str, data: str | bytes) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return path


def _tar(members: list[tuple[str, str | bytes | None, str]]) -> bytes:
    """A tar of (name, content or None, kind) with kind "f" file, "d" dir, "l" symlink (the
    content its target), "h" hard link (the content its target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content, kind in members:
            info = tarfile.TarInfo(name)
            data = content.encode() if isinstance(content, str) else (content or b"")
            if kind == "d":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "l":
                info.type, info.linkname = tarfile.SYMTYPE, data.decode()
                tar.addfile(info)
            elif kind == "h":
                info.type, info.linkname = tarfile.LNKTYPE, data.decode()
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


COMPRESS = {
    "plain": lambda b: b,
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
}

CONTEXT_TAR = [("Dockerfile", "FROM scratch\nCOPY a /\n", "f"), ("a", "A", "f"),
               ("sub/", None, "d"), ("sub/b.Dockerfile", "FROM busybox\n", "f"),
               ("sub/b.Dockerfile.dockerignore", "*.log\n", "f"), (".dockerignore", "a\n", "f")]


@pytest.fixture
def tmp(tmp_path: os.PathLike[str]) -> str:
    os.makedirs(os.path.join(str(tmp_path), "tmp"))
    return os.path.join(str(tmp_path), "tmp")


def test_directory_context(tmp_path: os.PathLike[str], tmp: str) -> None:
    ctx = os.path.join(str(tmp_path), "ctx")
    _write(os.path.join(ctx, "Dockerfile"), "FROM scratch\n")
    _write(os.path.join(ctx, ".dockerignore"), "*.tmp\n")
    with open_context(ctx, tmp_dir=tmp) as c:
        assert c.dir == os.path.realpath(ctx)
        assert c.dockerfile == b"FROM scratch\n"
        assert c.dockerfile_name == "Dockerfile"
        assert c.ignore.matches("x.tmp")
        assert (c.ignore_name, c.ignore_size) == (".dockerignore", 6)
    assert os.path.exists(os.path.join(ctx, "Dockerfile"))  # a directory is used, not copied
    assert os.listdir(tmp) == []


def test_bad_ignore_file(tmp_path: os.PathLike[str], tmp: str) -> None:
    ctx = os.path.join(str(tmp_path), "ctx")
    _write(os.path.join(ctx, "Dockerfile"), "FROM scratch\n")
    _write(os.path.join(ctx, ".dockerignore"), "!\n")
    with pytest.raises(ContextError, match='illegal exclusion pattern: "!"'):
        open_context(ctx)
    data = _tar([("Dockerfile", "FROM x\n", "f"), (".dockerignore", "a[\n", "f")])
    with pytest.raises(ContextError, match="syntax error in pattern"):
        open_context("-", stdin=io.BytesIO(data), tmp_dir=tmp)
    assert os.listdir(tmp) == []


def test_lowercase_dockerfile_and_missing(tmp_path: os.PathLike[str], tmp: str) -> None:
    ctx = os.path.join(str(tmp_path), "ctx")
    _write(os.path.join(ctx, "dockerfile"), "FROM lower\n")
    with open_context(ctx) as c:
        assert (c.dockerfile, c.dockerfile_name) == (b"FROM lower\n", "dockerfile")
    os.unlink(os.path.join(ctx, "dockerfile"))
    with pytest.raises(ContextError, match="^Cannot locate specified Dockerfile: Dockerfile$"):
        open_context(ctx)
    with pytest.raises(ContextError, match="^Cannot locate specified Dockerfile: nope$"):
        open_context(ctx, dockerfile="nope")


def test_dockerfile_flag_is_relative_to_cwd(tmp_path: os.PathLike[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    base = str(tmp_path)
    ctx = os.path.join(base, "ctx")
    _write(os.path.join(ctx, "sub", "app.Dockerfile"), "FROM inside\n")
    _write(os.path.join(ctx, "sub", "app.Dockerfile.dockerignore"), "*.log\n")
    _write(os.path.join(ctx, ".dockerignore"), "*.tmp\n")
    _write(os.path.join(base, "elsewhere", "Dockerfile"), "FROM outside\n")
    monkeypatch.chdir(ctx)
    with open_context(".", dockerfile="sub/app.Dockerfile") as c:
        assert c.dockerfile == b"FROM inside\n"
        assert c.dockerfile_name == "sub/app.Dockerfile"
        assert c.ignore.matches("a.log") and not c.ignore.matches("a.tmp")
        assert c.ignore_name == "sub/app.Dockerfile.dockerignore"
    monkeypatch.chdir(base)
    with open_context("ctx", dockerfile="elsewhere/Dockerfile") as c:
        assert c.dockerfile == b"FROM outside\n"
        assert c.dockerfile_name == os.path.join(os.path.realpath(base), "elsewhere",
                                                 "Dockerfile")
        assert c.ignore.matches("a.tmp")
    with pytest.raises(ContextError, match="Cannot locate specified Dockerfile: sub/app"):
        open_context("ctx", dockerfile="sub/app.Dockerfile")  # not relative to the context


def test_dockerfile_from_stdin_with_a_directory(tmp_path: os.PathLike[str]) -> None:
    ctx = os.path.join(str(tmp_path), "ctx")
    os.makedirs(ctx)
    with open_context(ctx, dockerfile="-", stdin=io.BytesIO(b"FROM stdin\n")) as c:
        assert (c.dir, c.dockerfile, c.dockerfile_name) == (
            os.path.realpath(ctx), b"FROM stdin\n", "Dockerfile")


def test_dockerfile_on_stdin_is_an_empty_context(tmp: str) -> None:
    c = open_context("-", stdin=io.BytesIO(b"FROM busybox\nRUN true\n"), tmp_dir=tmp)
    assert c.dockerfile == b"FROM busybox\nRUN true\n"
    assert os.listdir(c.dir) == []
    assert (c.ignore_name, c.ignore_size, bool(c.ignore)) == (None, 0, False)
    assert os.path.dirname(c.dir) == tmp
    assert os.stat(c.dir).st_mode & 0o777 == 0o700
    c.close()
    assert os.listdir(tmp) == []
    with pytest.raises(ContextError, match="ambiguous Dockerfile source"):
        open_context("-", dockerfile="Dockerfile", stdin=io.BytesIO(b"FROM x\n"), tmp_dir=tmp)
    with pytest.raises(ContextError, match="can't use stdin for both build context and "
                                           "dockerfile"):
        open_context("-", dockerfile="-", stdin=io.BytesIO(b""), tmp_dir=tmp)
    assert os.listdir(tmp) == []


@pytest.mark.parametrize("kind", sorted(COMPRESS))
@pytest.mark.parametrize("via", ["stdin", "file"])
def test_tarball_contexts(tmp_path: os.PathLike[str], tmp: str, kind: str, via: str) -> None:
    data = COMPRESS[kind](_tar(CONTEXT_TAR))
    if via == "stdin":
        c = open_context("-", stdin=io.BytesIO(data), tmp_dir=tmp)
    else:
        c = open_context(_write(os.path.join(str(tmp_path), f"ctx.{kind}"), data), tmp_dir=tmp)
    with c:
        assert c.dockerfile == b"FROM scratch\nCOPY a /\n"
        assert c.dockerfile_name == "Dockerfile"
        assert c.ignore.matches("a")
        with open(os.path.join(c.dir, "a"), "rb") as f:
            assert f.read() == b"A"
    assert os.listdir(tmp) == []
    with open_context("-", dockerfile="sub/b.Dockerfile", stdin=io.BytesIO(data),
                      tmp_dir=tmp) as c:
        assert c.dockerfile == b"FROM busybox\n"
        assert c.ignore.matches("x.log") and not c.ignore.matches("a")
        assert (c.ignore_name, c.ignore_size) == ("sub/b.Dockerfile.dockerignore", 6)
    with pytest.raises(ContextError, match="Cannot locate specified Dockerfile: nope"):
        open_context("-", dockerfile="nope", stdin=io.BytesIO(data), tmp_dir=tmp)
    assert os.listdir(tmp) == []


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz", "zstd"])
def test_corrupt_or_truncated_archives(tmp: str, kind: str) -> None:
    data = COMPRESS[kind](_tar(CONTEXT_TAR))
    for bad in (data[: len(data) // 2], data[:12] + b"garbage" * 40):
        with pytest.raises(ContextError, match="unable to prepare context: invalid archive"):
            open_context("-", stdin=io.BytesIO(bad), tmp_dir=tmp)
    assert os.listdir(tmp) == []


def test_a_tar_without_its_footer(tmp: str) -> None:
    """The docker CLI's context for `-f` outside it ends at the last member's data: no
    zero padding, no end-of-archive blocks (dockerd takes it). A member cut short still
    fails."""
    data = _tar([("a", "aa", "f"), ("Dockerfile", "FROM scratch\n", "f")])
    end = data.rindex(b"FROM scratch\n") + len("FROM scratch\n")
    with open_context("-", stdin=io.BytesIO(data[:end]), tmp_dir=tmp) as c:
        assert c.dockerfile == b"FROM scratch\n"
        assert open(os.path.join(c.dir, "a")).read() == "aa"
    big = _tar([("Dockerfile", "FROM scratch\n", "f"), ("big", "x" * 3000, "f")])
    with pytest.raises(ContextError, match="invalid archive"):
        open_context("-", stdin=io.BytesIO(big[:big.index(b"x" * 3000) + 1200]), tmp_dir=tmp)
    assert os.listdir(tmp) == []


def test_names_that_look_like_magic(tmp: str) -> None:
    # "BZh" alone is not bzip2: a Dockerfile or a tar's first name may begin with it.
    with open_context("-", stdin=io.BytesIO(b"BZh9 is not a compressor\n"), tmp_dir=tmp) as c:
        assert c.dockerfile == b"BZh9 is not a compressor\n"
    data = _tar([("BZh9-notes", "x", "f"), ("Dockerfile", "FROM scratch\n", "f")])
    with open_context("-", stdin=io.BytesIO(data), tmp_dir=tmp) as c:
        assert c.dockerfile == b"FROM scratch\n"


def test_missing_and_unsupported_contexts(tmp_path: os.PathLike[str]) -> None:
    with pytest.raises(ContextError, match='^unable to prepare context: path "nope" not found$'):
        open_context("nope")
    not_tar = _write(os.path.join(str(tmp_path), "Dockerfile"), "FROM scratch\n")
    with pytest.raises(ContextError, match="context must be a directory"):
        open_context(not_tar)


@pytest.mark.parametrize("members", [
    [("../escaped", "x", "f")],
    [("/abs-escaped", "x", "f")],
    [("sub/../../escaped", "x", "f")],
    [("link", "{outside}", "l"), ("link/escaped", "x", "f")],
    [("hard", "{outside}/victim", "h")],
    [("hard", "../outside/victim", "h")],
], ids=["dotdot", "absolute", "nested-dotdot", "through-symlink", "hardlink-abs",
        "hardlink-dotdot"])
def test_hostile_archives_are_refused(tmp_path: os.PathLike[str], tmp: str,
                                      members: list[tuple[str, str, str]]) -> None:
    """The attack: a context archive whose entries point outside the extraction directory.
    Nothing may be written (or linked) outside it, and the temporary goes."""
    outside = os.path.join(str(tmp_path), "outside")
    victim = _write(os.path.join(outside, "victim"), "HOST")
    data = _tar([("Dockerfile", "FROM scratch\n", "f")]
                + [(n, c.format(outside=outside), k) for n, c, k in members])
    with pytest.raises(ContextError, match="invalid archive"):
        open_context("-", stdin=io.BytesIO(data), tmp_dir=tmp)
    assert os.listdir(tmp) == []
    assert os.listdir(outside) == ["victim"]
    assert os.stat(victim).st_nlink == 1
    assert not os.path.exists(os.path.join(str(tmp_path), "escaped"))
    assert not os.path.exists("/abs-escaped")


def test_archive_dockerfile_symlink_is_read_inside(tmp_path: os.PathLike[str],
                                                    tmp: str) -> None:
    """The attack: an archive's Dockerfile and .dockerignore are symlinks to host files. They
    are read inside the unpacked archive (where they are missing), not on the host."""
    host = _write(os.path.join(str(tmp_path), "host", "secret"), "FROM host-secret\n")
    data = _tar([("Dockerfile", host, "l"), ("real.Dockerfile", "FROM real\n", "f"),
                 ("real.Dockerfile.dockerignore", host, "l"),
                 (".dockerignore", host, "l")])
    with pytest.raises(ContextError, match="Cannot locate specified Dockerfile: Dockerfile"):
        open_context("-", stdin=io.BytesIO(data), tmp_dir=tmp)
    with open_context("-", dockerfile="real.Dockerfile", stdin=io.BytesIO(data),
                      tmp_dir=tmp) as c:
        assert c.dockerfile == b"FROM real\n"
        assert not c.ignore  # both ignore files dangle inside the archive
    assert os.listdir(tmp) == []


def test_archive_dockerfile_fifo_does_not_block(tmp: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("Dockerfile", ".dockerignore"):
            info = tarfile.TarInfo(name)
            info.type = tarfile.FIFOTYPE
            tar.addfile(info)
    def timeout(*_: object) -> None:
        raise TimeoutError("reading the archive's Dockerfile blocked")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(10)  # bounded: a blocking open would otherwise hang the run
    try:
        with pytest.raises(ContextError, match="Cannot locate specified Dockerfile"):
            open_context("-", stdin=io.BytesIO(buf.getvalue()), tmp_dir=tmp)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert os.listdir(tmp) == []


def test_reclaim_removes_only_abandoned_contexts(tmp: str) -> None:
    live = open_context("-", stdin=io.BytesIO(b"FROM x\n"), tmp_dir=tmp)
    leftover = os.path.join(tmp, context.TEMP_PREFIX + "killed")
    _write(os.path.join(leftover, "sub", "f"), "x")
    _write(leftover + ".lock", "")  # a claim whose process died: nobody holds its lock
    _write(os.path.join(tmp, "unrelated"), "keep")
    assert context.reclaim(tmp) == 1
    assert sorted(os.listdir(tmp)) == sorted([os.path.basename(live.dir),
                                              os.path.basename(live.dir) + ".lock",
                                              "unrelated"])
    live.close()
    assert os.listdir(tmp) == ["unrelated"]
    assert context.reclaim(os.path.join(tmp, "missing")) == 0
