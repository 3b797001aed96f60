"""barque/build/gitsource.py and git contexts (build/context.py): moby's git URL rule, the
fragment `#ref:subdir`, checkouts of a branch, a tag, a commit and a subdir from repositories
the test makes and serves on 127.0.0.1 (git daemon, smart HTTP), BuildKit's errors, and
nothing left behind."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from barque.build import gitsource
from barque.build.context import ContextError, open_context
from tests.support import gitrepos


@pytest.mark.parametrize(("url", "expected"), [
    ("https://host/repo.git", True),
    ("https://host/repo.git#main:sub", True),
    ("http://host/repo", False),
    ("https://host/ctx.tar.gz", False),
    ("git://host/repo", True),
    ("git@github.com:org/repo.git", True),
    ("github.com/org/repo", True),
    ("file:///srv/repo.git", False),
    ("./repo.git", False),
])
def test_moby_git_url_rule(url: str, expected: bool) -> None:
    assert gitsource.is_git_url(url) is expected


@pytest.mark.parametrize(("url", "remote", "ref", "subdir"), [
    ("https://h/r.git", "https://h/r.git", "", ""),
    ("https://h/r.git#v1", "https://h/r.git", "v1", ""),
    ("https://h/r.git#v1:a/b", "https://h/r.git", "v1", "a/b"),
    ("https://h/r.git#:a", "https://h/r.git", "", "a"),
    ("git@h:o/r.git#dev", "git@h:o/r.git", "dev", ""),
    ("github.com/o/r", "https://github.com/o/r", "", ""),
])
def test_fragment(url: str, remote: str, ref: str, subdir: str) -> None:
    assert gitsource.parse(url) == gitsource.GitRef(remote, ref, subdir)


def test_ref_that_looks_like_an_option_is_refused() -> None:
    with pytest.raises(gitsource.GitError, match="invalid refspec: --upload-pack=x"):
        gitsource.parse("https://h/r.git#--upload-pack=x")


class Repo:
    def __init__(self, base: str) -> None:
        self.path = os.path.join(base, "app.git")
        self.c1 = gitrepos.make_repo(self.path, {
            "Dockerfile": "FROM scratch\nCOPY . /\n", "hello.txt": "v1\n",
            "sub/Dockerfile": "FROM scratch\nCOPY inner.txt /\n", "sub/inner.txt": "in\n",
            ".dockerignore": "ignored.txt\n", "ignored.txt": "no\n"})
        gitrepos.git(self.path, "tag", "-a", "-m", "v1", "v1")
        self.c2 = gitrepos.commit(self.path, {"hello.txt": "v2\n"}, "second")
        gitrepos.git(self.path, "checkout", "-q", "-b", "other")
        self.c3 = gitrepos.commit(self.path, {"other.txt": "o\n"}, "other")
        gitrepos.git(self.path, "checkout", "-q", "main")


@pytest.fixture
def served(tmp_path: str) -> Iterator[tuple[Repo, str, str]]:
    """(the repository, its git:// URL, a tmp dir for checkouts)."""
    base = os.path.join(tmp_path, "srv")
    os.makedirs(base)
    repo = Repo(base)
    tmp = os.path.join(tmp_path, "tmp")
    with gitrepos.git_daemon(base) as prefix:
        yield repo, prefix + "app.git", tmp


def _read(directory: str, name: str) -> str:
    with open(os.path.join(directory, name)) as f:
        return f.read()


def _left(tmp: str) -> list[str]:
    return sorted(os.listdir(tmp)) if os.path.isdir(tmp) else []


def test_default_branch_without_git_dir_and_removed_on_close(
        served: tuple[Repo, str, str]) -> None:
    repo, url, tmp = served
    with open_context(url, tmp_dir=tmp) as ctx:
        assert _read(ctx.dir, "hello.txt") == "v2\n"
        assert not os.path.exists(os.path.join(ctx.dir, ".git"))
        assert not os.path.exists(os.path.join(ctx.dir, "other.txt"))
        assert ctx.dockerfile == b"FROM scratch\nCOPY . /\n"
        assert ctx.ignore_name == ".dockerignore" and ctx.ignore.matches("ignored.txt")
        assert _left(tmp)  # the claimed checkout and its lock
    assert _left(tmp) == []


@pytest.mark.parametrize(("fragment", "present", "hello"), [
    ("#v1", "hello.txt", "v1\n"),
    ("#main", "hello.txt", "v2\n"),
    ("#other", "other.txt", "v2\n"),
    ("#refs/heads/other", "other.txt", "v2\n"),
])
def test_branch_and_tag(served: tuple[Repo, str, str], fragment: str, present: str,
                        hello: str) -> None:
    _, url, tmp = served
    with open_context(url + fragment, tmp_dir=tmp) as ctx:
        assert os.path.exists(os.path.join(ctx.dir, present))
        assert _read(ctx.dir, "hello.txt") == hello
    assert _left(tmp) == []


def test_commit(served: tuple[Repo, str, str]) -> None:
    repo, url, tmp = served
    with open_context(f"{url}#{repo.c1}", tmp_dir=tmp) as ctx:
        assert _read(ctx.dir, "hello.txt") == "v1\n"
    assert gitsource.resolve(gitsource.parse(url + "#v1")) == repo.c1  # the tag, peeled
    assert gitsource.resolve(gitsource.parse(url)) == repo.c2


def test_subdir_is_the_context(served: tuple[Repo, str, str]) -> None:
    _, url, tmp = served
    with open_context(url + "#main:sub", tmp_dir=tmp) as ctx:
        assert ctx.dockerfile == b"FROM scratch\nCOPY inner.txt /\n"
        assert sorted(os.listdir(ctx.dir)) == ["Dockerfile", "inner.txt"]
    assert _left(tmp) == []


def test_smart_http(served: tuple[Repo, str, str]) -> None:
    repo, _, tmp = served
    with gitrepos.git_http(os.path.dirname(repo.path)) as prefix, \
            open_context(prefix + "app.git#v1:sub", tmp_dir=tmp) as ctx:
        assert _read(ctx.dir, "inner.txt") == "in\n"
    assert _left(tmp) == []


def test_missing_ref_in_buildkit_words_leaves_nothing(served: tuple[Repo, str, str]) -> None:
    _, url, tmp = served
    with pytest.raises(ContextError, match="repository does not contain ref nosuch"):
        open_context(url + "#nosuch", tmp_dir=tmp)
    assert _left(tmp) == []


def test_missing_repository_leaves_nothing(served: tuple[Repo, str, str]) -> None:
    _, url, tmp = served
    with pytest.raises(ContextError, match="failed to fetch remote .*nosuch.git"):
        open_context(url.replace("app.git", "nosuch.git"), tmp_dir=tmp)
    assert _left(tmp) == []


def test_missing_subdir_and_dockerfile(served: tuple[Repo, str, str]) -> None:
    _, url, tmp = served
    with pytest.raises(ContextError, match="not a directory: nodir"):
        open_context(url + "#main:nodir", tmp_dir=tmp)
    with pytest.raises(ContextError, match="Cannot locate specified Dockerfile: Nope"):
        open_context(url, dockerfile="Nope", tmp_dir=tmp)
    assert _left(tmp) == []


def test_hostile_symlinks_stay_inside_the_checkout(tmp_path: str) -> None:
    """A subdir and a Dockerfile that are symlinks out of the repository resolve inside the
    checkout: the host's files are never read."""
    base = os.path.join(tmp_path, "srv")
    path = os.path.join(base, "evil.git")
    gitrepos.make_repo(path, {"x": ""})
    marker = os.path.join(tmp_path, "host-secret")
    with open(marker, "w") as f:
        f.write("HOST\n")
    os.mkdir(os.path.join(tmp_path, "hostdir"))
    os.symlink(marker, os.path.join(path, "Dockerfile"))
    os.symlink(os.path.join(tmp_path, "hostdir"), os.path.join(path, "sub"))
    gitrepos.commit(path, {}, "links")
    tmp = os.path.join(tmp_path, "tmp")
    with gitrepos.git_daemon(base) as prefix:
        with pytest.raises(ContextError, match="Cannot locate specified Dockerfile"):
            open_context(prefix + "evil.git", tmp_dir=tmp)
        with pytest.raises(ContextError, match="not a directory: sub"):
            open_context(prefix + "evil.git#main:sub", tmp_dir=tmp)
    assert _left(tmp) == []


def test_submodules_are_checked_out(tmp_path: str) -> None:
    base = os.path.join(tmp_path, "srv")
    gitrepos.make_repo(os.path.join(base, "lib.git"), {"lib.txt": "lib\n"})
    app = os.path.join(base, "app.git")
    gitrepos.make_repo(app, {"Dockerfile": "FROM scratch\n"})
    tmp = os.path.join(tmp_path, "tmp")
    with gitrepos.git_daemon(base) as prefix:
        gitrepos.git(app, "submodule", "add", "-q", prefix + "lib.git", "vendor/lib")
        gitrepos.commit(app, {}, "submodule")
        with open_context(prefix + "app.git", tmp_dir=tmp) as ctx:
            assert _read(ctx.dir, "vendor/lib/lib.txt") == "lib\n"
    assert _left(tmp) == []


def test_submodule_with_a_local_path_is_refused(tmp_path: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A repository's .gitmodules naming a host path (file://) must not copy the host's
    repositories into the context, even where the user's git config allows file://."""
    base = os.path.join(tmp_path, "srv")
    host_repo = os.path.join(tmp_path, "host-private")
    gitrepos.make_repo(host_repo, {"secret.txt": "HOST\n"})
    app = os.path.join(base, "app.git")
    gitrepos.make_repo(app, {"Dockerfile": "FROM scratch\n"})
    gitrepos.git(app, "-c", "protocol.file.allow=always", "submodule", "add", "-q",
                 "file://" + host_repo, "vendor")
    gitrepos.commit(app, {}, "submodule")
    user_config = os.path.join(tmp_path, "gitconfig")
    with open(user_config, "w") as f:
        f.write("[protocol \"file\"]\n\tallow = always\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", user_config)
    tmp = os.path.join(tmp_path, "tmp")
    with gitrepos.git_daemon(base) as prefix, \
            pytest.raises(ContextError, match="transport 'file' not allowed"):
        open_context(prefix + "app.git", tmp_dir=tmp)
    assert _left(tmp) == []


def test_keep_git_dir_build_arg(served: tuple[Repo, str, str]) -> None:
    """BUILDKIT_CONTEXT_KEEP_GIT_DIR=1 keeps the context's .git, at the commit asked for."""
    from barque.build.context import keep_git_dir

    repo, url, tmp = served
    assert keep_git_dir({"BUILDKIT_CONTEXT_KEEP_GIT_DIR": "true"})
    assert not keep_git_dir({"BUILDKIT_CONTEXT_KEEP_GIT_DIR": "no"})
    with open_context(url + "#v1", tmp_dir=tmp, keep_git=True) as ctx:
        assert gitrepos.git(ctx.dir, "rev-parse", "HEAD") == repo.c1
    assert _left(tmp) == []


def test_scp_style_url_over_ssh(served: tuple[Repo, str, str], tmp_path: str,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """`git@host:repo.git`: git's ssh transport, here a stand-in for ssh that runs the
    remote command in the served directory (no network at all); its protocol v0 gives only
    advertised commits, so a commit is fetched by the full fetch."""
    repo, _, tmp = served
    fake = os.path.join(tmp_path, "fake-ssh")
    with open(fake, "w") as f:
        f.write(f'#!/bin/sh\nfor last; do :; done\ncd {os.path.dirname(repo.path)} && '
                'exec sh -c "$last"\n')
    os.chmod(fake, 0o755)
    monkeypatch.setenv("GIT_SSH_COMMAND", fake)
    with open_context("git@127.0.0.1:app.git#other", tmp_dir=tmp) as ctx:
        assert _read(ctx.dir, "other.txt") == "o\n"
    with open_context(f"git@127.0.0.1:app.git#{repo.c1}", tmp_dir=tmp) as ctx:
        assert _read(ctx.dir, "hello.txt") == "v1\n"
    assert _left(tmp) == []


def test_reclaim_removes_a_killed_builds_checkout_only(served: tuple[Repo, str, str]) -> None:
    from barque.build import context

    _, url, tmp = served
    live = open_context(url, tmp_dir=tmp)
    killed = os.path.join(tmp, gitsource.TEMP_PREFIX + "killed")
    gitrepos.write_files(killed, {"tree/a/b": "x"})
    with open(killed + ".lock", "w"):
        pass  # a claim whose process died: nobody holds its lock
    assert context.reclaim(tmp) == 1
    assert not os.path.exists(killed) and not os.path.exists(killed + ".lock")
    assert os.path.isfile(os.path.join(live.dir, "hello.txt"))
    live.close()
    assert _left(tmp) == []
