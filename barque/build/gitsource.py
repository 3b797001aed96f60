"""Git repositories as build sources: a build context given as a git URL
(`barque build https://host/repo.git#ref:subdir`) and `ADD <git URL> <dest>`.

What counts as a git URL is moby's rule (urlutil.IsGitURL, which buildx applies before
BuildKit parses it): an http(s) URL whose path ends in `.git` (a `#fragment` may follow), or
one starting with `git://`, `git@` or `github.com/` (then https). A `file://` URL is none:
Docker takes a local path for that. The fragment is `REF[:SUBDIR]`; without a REF, the
remote's HEAD (its default branch), as BuildKit.

The ref is resolved to a commit first (`git ls-remote`, as BuildKit's git source): that
commit keys the cache, so a moved branch rebuilds and an unmoved one needs no fetch. The
checkout is a shallow fetch of that one commit (`--depth 1`; a full fetch when the server
will not give an unadvertised commit), then submodules (`--init --recursive --depth=1`, as
BuildKit), into a private directory claimed (storage/claimed.py) while in use. Everything
the repository holds is hostile: the subdir is resolved inside the checkout (openat2
RESOLVE_IN_ROOT); no URL may use `file://` or `ext::` (protocol.*.allow=never, over the
user's git config; GIT_PROTOCOL_FROM_USER=0 for the rest); git never prompts (no
terminal, GIT_TERMINAL_PROMPT=0).
"""

from __future__ import annotations

import os
import re
import subprocess

from barque.structs import dataclass

TEMP_PREFIX = ".build-git-"
GIT_TIMEOUT = 600.0  # seconds for one git command (a big fetch)
_SHA1 = re.compile(r"[0-9a-f]{40}")
_GIT_PATH = re.compile(r"\.git(?:#.+)?$")
# A repository's submodules may name host paths or commands: never, whatever the user's
# git config allows (git's own default lets `file` through for what the user typed).
_LOCAL_NEVER = ("-c", "protocol.file.allow=never", "-c", "protocol.ext.allow=never")


class GitError(Exception):
    """A repository or ref that cannot be used; BuildKit's words."""


@dataclass
class GitRef:
    remote: str          # what git fetches from (the fragment removed)
    ref: str             # "" for the remote's HEAD
    subdir: str          # "" for the repository's root


def is_git_url(text: str) -> bool:
    """moby's urlutil.IsGitURL."""
    if text.startswith(("http://", "https://")) and _GIT_PATH.search(text):
        return True
    return text.startswith(("git://", "github.com/", "git@"))


def parse(url: str) -> GitRef:
    """The remote, ref and subdir of a git URL (moby's parseRemoteURL; the default ref is
    the remote's HEAD, as BuildKit's)."""
    if url.startswith("github.com/"):
        url = "https://" + url
    remote, _, fragment = url.partition("#")
    ref, _, subdir = fragment.partition(":")
    if ref.startswith("-"):
        raise GitError(f"invalid refspec: {ref}")
    if not remote or remote.startswith("-"):
        raise GitError(f"invalid git URL: {url}")
    return GitRef(remote, ref, subdir)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(GIT_TERMINAL_PROMPT="0", GIT_PROTOCOL_FROM_USER="0", LC_ALL="C",
               GIT_ASKPASS="true", SSH_ASKPASS="true")
    return env


def _git(cwd: str | None, *args: str) -> str:
    """Run git; its stdout, or GitError with its stderr."""
    try:
        done = subprocess.run(["git", *_LOCAL_NEVER, *args], cwd=cwd, env=_env(),
                              stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=GIT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]}: timed out after {GIT_TIMEOUT:g}s") from None
    except FileNotFoundError:
        raise GitError("failed to find git binary: exec: \"git\": executable file not found "
                       "in $PATH") from None
    if done.returncode != 0:
        raise GitError(done.stderr.decode(errors="replace").strip() or
                       f"git {args[0]} exited {done.returncode}")
    return done.stdout.decode(errors="replace")


def _pick(lines: list[tuple[str, str]], ref: str) -> str | None:
    """The commit `ref` names in ls-remote's output: the peeled line of an annotated tag
    first, then a branch, a tag, the name as written."""
    names = dict((name, sha) for sha, name in lines)
    candidates = [f"refs/tags/{ref}^{{}}", f"refs/heads/{ref}", f"refs/tags/{ref}",
                  f"{ref}^{{}}", ref]
    for name in candidates:
        if name in names:
            return names[name]
    return lines[0][0] if lines else None


def resolve(ref: GitRef) -> str:
    """The commit `ref.ref` names on the remote (no fetch)."""
    if _SHA1.fullmatch(ref.ref):
        return ref.ref
    name = ref.ref or "HEAD"
    try:
        out = _git(None, "ls-remote", "--", ref.remote, name, name + "^{}")
    except GitError as e:
        raise GitError(f"failed to fetch remote {ref.remote}: {e}") from None
    lines = [tuple(line.split("\t", 1)) for line in out.splitlines() if "\t" in line]
    sha = _pick([(a, b) for a, b in lines], name)
    if sha is None:
        import json  # Go's %q for the output, as BuildKit prints it

        raise GitError(f"repository does not contain ref {name}, output: {json.dumps(out)}")
    return sha


class Checkout:
    """A repository checked out at one commit in a claimed private directory: `root` the
    work tree, `dir` the subdir asked for (resolved inside it). close() removes it all."""

    def __init__(self, parent: str, ref: GitRef, commit: str | None = None, *,
                 keep_git_dir: bool = False) -> None:
        from barque.storage.claimed import ClaimedDir

        self.ref = ref
        self._claim: ClaimedDir | None = ClaimedDir(parent, TEMP_PREFIX + os.urandom(8).hex())
        self.root = os.path.join(self._claim.path, "tree")
        try:
            self.commit = commit or resolve(ref)
            self._fetch()
            if not keep_git_dir:
                from barque.storage.blobs import remove_tree

                remove_tree(os.path.join(self.root, ".git"))
            self.dir = self._subdir()
        except BaseException:
            self.close()
            raise

    def _fetch(self) -> None:
        os.mkdir(self.root, 0o755)
        _git(self.root, "init", "-q")
        _git(self.root, "remote", "add", "origin", self.ref.remote)
        try:
            _git(self.root, "fetch", "-q", "--depth", "1", "--no-tags", "origin", self.commit)
        except GitError:  # a server that gives only advertised commits: fetch them all
            try:
                _git(self.root, "fetch", "-q", "--tags", "origin")
            except GitError as e:
                raise GitError(f"failed to fetch remote {self.ref.remote}: {e}") from None
        try:
            _git(self.root, "checkout", "-q", "--detach", self.commit)
        except GitError as e:
            raise GitError(f"failed to checkout remote {self.ref.remote}: {e}") from None
        if os.path.exists(os.path.join(self.root, ".gitmodules")):
            _git(self.root, "submodule", "update", "--init", "--recursive", "--depth=1")

    def _subdir(self) -> str:
        """The subdir's real path, symlinks followed inside the checkout (moby's
        FollowSymlinkInScope); it must be a directory."""
        if not self.ref.subdir:
            return self.root
        from barque.linux import paths

        with paths.rooted(self.root) as root_fd:
            try:
                fd = paths.open_in_root(root_fd, self.ref.subdir,
                                        os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                raise GitError(f"error setting git context, not a directory: "
                               f"{self.ref.subdir}") from None
        try:
            return paths.fd_path(fd)
        finally:
            os.close(fd)

    def remove(self) -> None:  # as the context's other temporaries
        self.close()

    def close(self) -> None:
        if self._claim is None:
            return
        from barque.storage.blobs import remove_tree

        claim, self._claim = self._claim, None
        removed = False
        try:
            remove_tree(claim.path)
            removed = True
        finally:
            claim.release(keep_lock=not removed)


def reclaim(tmp_dir: str) -> int:
    """Remove checkouts that killed builds left in `tmp_dir`."""
    from barque.storage import claimed
    from barque.storage.blobs import remove_tree

    return claimed.reclaim(tmp_dir, remove_tree, prefix=TEMP_PREFIX)
