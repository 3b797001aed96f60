"""`barque build` from a git repository and `ADD <git URL>`: repositories the test makes,
served by `git daemon` on 127.0.0.1; the results read through `-o type=local`."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from tests.cli.conftest import Barque
from tests.cli.test_build import build, steps, write
from tests.support import gitrepos

pytestmark = [pytest.mark.slow]


class Served:
    def __init__(self, work: str, prefix: str) -> None:
        self.work, self.prefix = work, prefix
        self.repo = os.path.join(work, "srv", "app.git")
        self.url = prefix + "app.git"

    def out(self, name: str) -> str:
        return os.path.join(self.work, name)


@pytest.fixture
def served(run_prefix: str) -> Iterator[Served]:
    work = tempfile.mkdtemp(prefix=f"{run_prefix}-buildgit-")
    try:
        base = os.path.join(work, "srv")
        gitrepos.make_repo(os.path.join(base, "app.git"), {
            "Dockerfile": "FROM scratch\nCOPY . /ctx/\n", "hello.txt": "v1\n",
            "sub/Dockerfile": "FROM scratch\nCOPY inner.txt /\n", "sub/inner.txt": "in\n"})
        gitrepos.git(os.path.join(base, "app.git"), "tag", "v1")
        gitrepos.commit(os.path.join(base, "app.git"), {"hello.txt": "v2\n"}, "second")
        with gitrepos.git_daemon(base) as prefix:
            yield Served(work, prefix)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _read(*parts: str) -> str:
    with open(os.path.join(*parts)) as f:
        return f.read()


def _tmp_left(barque: Barque) -> list[str]:
    tmp = os.path.join(barque.root, "tmp")
    return sorted(os.listdir(tmp)) if os.path.isdir(tmp) else []


def test_context_from_a_tag_and_a_subdir(barque: Barque, served: Served) -> None:
    out = served.out("o1")
    result = build(barque, "-o", f"type=local,dest={out}", served.url + "#v1")
    assert result.returncode == 0, result.stderr
    assert _read(out, "ctx", "hello.txt") == "v1\n"
    assert not os.path.exists(os.path.join(out, "ctx", ".git"))
    out2 = served.out("o2")
    result = build(barque, "-o", f"type=local,dest={out2}", served.url + "#main:sub")
    assert result.returncode == 0, result.stderr
    assert os.listdir(out2) == ["inner.txt"]
    assert _tmp_left(barque) == []


def test_context_missing_ref_in_buildkit_words(barque: Barque, served: Served) -> None:
    result = build(barque, served.url + "#nosuch")
    assert result.returncode == 1
    assert "ERROR:" in result.stderr
    assert "repository does not contain ref nosuch" in result.stderr
    assert _tmp_left(barque) == []


def test_add_git_with_chown_chmod_and_keep_git_dir(barque: Barque, served: Served) -> None:
    ctx = served.out("ctx")
    write(ctx, {"Dockerfile": f"FROM scratch\n"
                              f"ADD --chown=1000:1001 --chmod=700 {served.url}#v1 /src\n"
                              f"ADD --keep-git-dir=true {served.url}#main /full\n"
                              f"ADD --link --chown=7 {served.url}#v1:sub /linked\n"})
    out = served.out("out")
    result = build(barque, "-o", f"type=local,dest={out}", ctx)
    assert result.returncode == 0, result.stderr
    assert _read(out, "src", "hello.txt") == "v1\n"
    assert not os.path.exists(os.path.join(out, "src", ".git"))
    st = os.stat(os.path.join(out, "src", "hello.txt"))
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1000, 1001, 0o700)
    assert _read(out, "full", "sub", "inner.txt") == "in\n"
    assert os.path.isdir(os.path.join(out, "full", ".git"))
    st = os.stat(os.path.join(out, "linked", "inner.txt"))
    assert (st.st_uid, st.st_gid) == (7, 7)


def test_add_git_cache_follows_the_branch(barque: Barque, served: Served) -> None:
    ctx = served.out("ctx")
    write(ctx, {"Dockerfile": f"FROM scratch\nADD {served.url}#main /src\n"})
    out = served.out("a")
    assert build(barque, "-o", f"type=local,dest={out}", ctx).returncode == 0
    assert _read(out, "src", "hello.txt") == "v2\n"
    again = build(barque, "-o", f"type=local,dest={served.out('b')}", ctx)
    step = next(v for k, v in steps(again.stderr).items() if "ADD" in k)
    assert "CACHED" in step, again.stderr
    gitrepos.commit(served.repo, {"hello.txt": "v3\n"}, "moved")
    out = served.out("c")
    moved = build(barque, "-o", f"type=local,dest={out}", ctx)
    assert moved.returncode == 0, moved.stderr
    step = next(v for k, v in steps(moved.stderr).items() if "ADD" in k)
    assert "CACHED" not in step, moved.stderr
    assert _read(out, "src", "hello.txt") == "v3\n"


def test_add_git_errors_in_buildkit_words(barque: Barque, served: Served) -> None:
    ctx = served.out("ctx")
    write(ctx, {"Dockerfile": f"FROM scratch\nADD {served.url}#nosuch /src\n"})
    result = build(barque, ctx)
    assert result.returncode == 1
    assert "repository does not contain ref nosuch" in result.stderr
    write(ctx, {"Dockerfile": f"FROM scratch\nCOPY {served.url} /src\n"})
    result = build(barque, ctx)
    assert result.returncode == 1
    assert "source can't be a git ref for COPY" in result.stderr


def test_add_git_checksum_is_the_commit(barque: Barque, served: Served) -> None:
    commit = gitrepos.git(served.repo, "rev-parse", "v1")
    ctx = served.out("ctx")
    write(ctx, {"Dockerfile": f"FROM scratch\nADD --checksum={commit[:12]} {served.url}#v1 /s\n"})
    assert build(barque, ctx).returncode == 0
    write(ctx, {"Dockerfile": f"FROM scratch\nADD --checksum=0123abcd {served.url}#v1 /s\n"})
    result = build(barque, ctx)
    assert result.returncode == 1
    assert f"expected checksum to match 0123abcd, got {commit}" in result.stderr
