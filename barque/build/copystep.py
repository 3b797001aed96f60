"""A COPY or ADD step: where its files come from (the context, an earlier stage's result, an
image, here-documents, URLs), its cache key (the content checksum of the matched files,
never their mtimes; for another stage's or an image's files first the content-addressed
chain ID of their layers, then, when that misses, the checksum of the files in them: see
Builder._layer_step) and its work (the copy itself: fileops.py, into the step's snapshot;
with --link onto nothing, see Builder._execute_linked)."""

from __future__ import annotations

import os

from barque.build import cache as cache_mod
from barque.build import imageconfig as ic

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

    from barque.build.builder import Builder, StageRun
    from barque.build.dockerfile.instructions import Heredoc, Instruction
    from barque.build.events import Vertex
    from barque.build.layers import StepFS
    from barque.image.store import LayerRef


def _flag(instr: Instruction, name: str) -> str | None:
    values = instr.flags.get(name)
    return values[-1] if values else None


class CopyStep:
    def __init__(self, builder: Builder, run: StageRun, instr: Instruction) -> None:
        from barque.build.dockerfile import commands

        self.b, self.run, self.instr = builder, run, instr
        state = run.state
        scope = state.scope()
        try:
            flags = commands.copy_flags(instr, scope, state.escape)
            self.patterns, heredocs, self.dest = commands.copy_sources(instr, scope,
                                                                       state.escape)
            commands.check_add_checksum(flags, self.patterns)
        except ValueError as e:
            raise ic.ConfigError(str(e)) from None
        self.is_add = instr.keyword == "ADD"
        self.chown = flags.chown or None
        self.chmod: int | str | None = flags.chmod or None  # octal or symbolic
        # BuildKit copies onto an empty filesystem for --link only without --chmod (with
        # it, the copy is an ordinary one onto the stage).
        self.link, self.parents = flags.link and not self.chmod, flags.parents
        if self.link and self.chown:
            _check_link_chown(self.chown)
        self.unpack = self.is_add if flags.unpack is None else flags.unpack
        self.explicit_unpack = bool(flags.unpack)
        self.checksum = flags.checksum or None
        self.excludes = [state.word(e) for e in flags.excludes]
        self.workdir = state.workdir
        self.src_key: Any = None
        self.src_layers: list[LayerRef] | None = None  # another stage's or image's files
        self.heredoc_dir: str | None = None
        self.downloads: list[Any] = []
        self.git: Any = None  # ADD of a git repository: (its GitRef, the commit, keep .git)
        self._src_fs: StepFS | None = None
        if flags.from_:
            self._from(flags.from_)
        elif heredocs:
            if self.patterns:
                raise ic.ConfigError(f"{instr.keyword} of here-documents and files together "
                                     "is not supported yet")
            self._heredocs(heredocs)
        elif any(commands.is_http_source(p) or commands.is_git_source(p)
                 for p in self.patterns):
            if any(commands.is_git_source(p) for p in self.patterns):
                self._git(flags.keep_git_dir or False)
            else:
                self._downloads()
        else:
            self.src_key = ("context", self._checksum(self.b.options.context_dir, True))

    # --- the sources ---------------------------------------------------------------------
    def _from(self, word: str) -> None:
        result = self.b.stage_result(word, self.run.plan.stage.index)
        if result is not None:
            self.src_layers = result.layers
        else:
            image = self.b.image(word)
            self.src_layers = list(image.layers)
        chain = self.src_layers[-1].chain_id if self.src_layers else "empty"
        self.src_key = ("layers", chain, self.patterns)

    def _downloads(self) -> None:
        """ADD of URLs: each fetched now (as BuildKit, which asks the server every build);
        the bodies' digests key the step."""
        from barque.build import fetch

        if not self.is_add:
            raise ic.ConfigError("source can't be a URL for COPY")
        if not all(fetch.is_url(p) for p in self.patterns):
            raise ic.ConfigError("ADD of URLs mixed with local files is not supported yet")
        checksum = self.checksum
        self.downloads = []
        try:
            for url in self.patterns:
                self.downloads.append(fetch.download(url, self.b.workspace().dir,
                                                     dest=self.dest, checksum=checksum))
        except fetch.FetchError as e:
            raise ic.ConfigError(str(e)) from None
        self.src_key = ("urls", [(d.name, d.digest, d.mtime) for d in self.downloads])

    def _git(self, keep_git_dir: bool) -> None:
        """ADD of a git repository, as BuildKit: its ref resolved to a commit now (without
        a fetch), which keys the step, so a moved branch rebuilds; fetched in work()."""
        from barque.build import gitsource

        if not self.is_add:
            raise ic.ConfigError("source can't be a git ref for COPY")
        if len(self.patterns) != 1:
            raise ic.ConfigError("ADD of a git repository takes one source (BuildKit's "
                                 "rule): split it into one ADD per source")
        try:
            ref = gitsource.parse(self.patterns[0])
            commit = gitsource.resolve(ref)
        except gitsource.GitError as e:
            raise ic.ConfigError(f"failed to load cache key: {e}") from None
        if self.checksum is not None and not commit.startswith(self.checksum):  # BuildKit's
            raise ic.ConfigError(f"expected checksum to match {self.checksum}, got {commit}")
        self.git = (ref, commit, keep_git_dir)
        self.src_key = ("git", ref.remote, commit, ref.subdir, keep_git_dir)

    def _add_git(self, dst_root: str) -> None:
        """The tree at the commit (without .git unless --keep-git-dir) copied to the
        destination as a directory's contents, with --chown/--chmod."""
        from barque.build import fileops, gitsource
        from barque.build.sources import Source

        ref, commit, keep = self.git
        try:
            checkout = gitsource.Checkout(self.b.workspace().dir, ref, commit,
                                          keep_git_dir=keep)
        except gitsource.GitError as e:
            raise ic.ConfigError(str(e)) from None
        try:
            fileops.copy(checkout.dir, [Source(".", [""])], dst_root, self.dest,
                         workdir=self.workdir, chown=self._chown(dst_root), chmod=self.chmod,
                         unpack=False, link=self.link, command="ADD")
        except (ValueError, fileops.CopyError) as e:
            raise ic.ConfigError(str(e)) from None
        finally:
            checkout.close()

    def _heredocs(self, docs: list[Heredoc]) -> None:
        import tempfile

        from barque.build.dockerfile import commands

        self.heredoc_dir = tempfile.mkdtemp(prefix=".heredoc-", dir=self.b.workspace().dir)
        contents = []
        for doc in docs:
            content = commands.heredoc_content(doc, self.run.state.scope())
            with open(os.path.join(self.heredoc_dir, doc.name), "w") as f:
                f.write(content)
            contents.append((doc.name, content))
        self.patterns = [doc.name for doc in docs]
        self.src_key = ("heredoc", contents)

    def _matcher(self, context: bool) -> Any:
        return self.b.ignore if context else None

    def _checksum(self, root: str, context: bool) -> str:
        from barque.build import sources

        errors = (ValueError, sources.SourceError)
        try:
            found = sources.match_sources(root, self.patterns, ignore=self._matcher(context),
                                          excludes=self.excludes)
            return str(sources.checksum(root, found, ignore=self._matcher(context),
                                        excludes=self.excludes))
        except errors as e:
            raise ic.ConfigError(str(e)) from None
        except OSError as e:
            raise ic.ConfigError(f"failed to compute cache key: {e}") from None

    # --- the step ------------------------------------------------------------------------
    def key(self) -> str:
        return cache_mod.step_key(
            self.run.key, self.instr.keyword, self.src_key, self.dest, self.workdir,
            self.chown, self.chmod, self.link, self.parents, self.unpack, self.excludes)

    def link_key(self) -> str:
        """COPY --link's layer alone: its key leaves the parent out."""
        return cache_mod.step_key(
            "link", self.b.epoch, self.instr.keyword, self.src_key, self.dest, self.workdir,
            self.chown, self.chmod, self.parents, self.unpack, self.excludes)

    def created_by(self) -> str:
        flags = "".join(f"--{k}={v} " for k in ("chown", "chmod") if (v := _flag(self.instr, k)))
        return f"{self.instr.keyword} {flags}{' '.join(self.patterns)} {self.dest} # buildkit"

    def _source_root(self) -> str:
        """Another stage's or image's files, mounted (once; `close` unmounts)."""
        if self._src_fs is None:
            from barque.build.layers import StepFS

            assert self.src_layers is not None
            self._src_fs = StepFS(self.b.store, self.b.workspace(), self.src_layers)
            self._src_fs.mount()
        return self._src_fs.rootfs

    def content_key(self) -> str:
        """The key by the content of the files copied from another stage or image."""
        src_key = ("content", self._checksum(self._source_root(), False), self.patterns)
        return cache_mod.step_key(
            self.run.key, self.instr.keyword, src_key, self.dest, self.workdir,
            self.chown, self.chmod, self.link, self.parents, self.unpack, self.excludes)

    def close(self) -> None:
        if self._src_fs is not None:
            fs, self._src_fs = self._src_fs, None
            fs.close()

    def work(self, fs: StepFS, v: Vertex) -> None:
        if self.src_layers is not None:
            self._copy(self._source_root(), fs.rootfs, context=False)
        elif self.git is not None:
            self._add_git(fs.rootfs)
        elif self.downloads:
            from barque.build import fetch

            chown = self._chown(fs.rootfs)
            for dl in self.downloads:  # a URL unpacks only when asked
                fetch.add(dl, fs.rootfs, self.dest, workdir=self.workdir, chown=chown,
                          chmod=self.chmod, unpack=self.explicit_unpack)
        elif self.heredoc_dir is not None:
            self._copy(self.heredoc_dir, fs.rootfs, context=False)
        else:
            self._copy(self.b.options.context_dir, fs.rootfs, context=True)

    def _chown(self, dst_root: str) -> tuple[int, int] | None:
        from barque.build import fileops

        if self.chown and self.link:  # numeric ids or root (checked in __init__)
            user, _, group = self.chown.partition(":")
            uid = _link_id(user)
            return uid, _link_id(group) if group else uid
        return fileops.resolve_chown(dst_root, self.chown) if self.chown else None

    def _copy(self, src_root: str, dst_root: str, *, context: bool) -> None:
        from barque.build import fileops, sources

        try:
            found = sources.match_sources(src_root, self.patterns,
                                          ignore=self._matcher(context), excludes=self.excludes)
            chown = self._chown(dst_root)
            fileops.copy(src_root, found, dst_root, self.dest, workdir=self.workdir,
                         chown=chown, chmod=self.chmod, parents=self.parents,
                         excludes=self.excludes, ignore=self._matcher(context),
                         unpack=self.unpack, link=self.link,
                         keep_owners=self.src_layers is not None,
                         command=self.instr.keyword)
        except (ValueError, fileops.CopyError,
                sources.SourceError) as e:
            raise ic.ConfigError(str(e)) from None


def _link_id(name: str) -> int:
    return 0 if name == "root" else int(name)


def _check_link_chown(spec: str) -> None:
    """COPY --link copies onto nothing, so there is no /etc/passwd to read a name in:
    BuildKit takes only numeric ids and `root` there (a name fails its solver with
    "invalid user index: -1"; newer frontends refuse it when parsing). The same refusal,
    with words that say why."""
    user, _, group = spec.partition(":")
    if not user or ":" in group:
        raise ic.ConfigError(f"invalid chown string format: {spec}")
    names = [n for n in (user, group) if n and not n.isdigit() and n != "root"]
    if names:
        raise ic.ConfigError(
            f"--chown={spec} can not be used with --link: user and group names can not be "
            "resolved when copying onto an empty filesystem (use numeric IDs, or drop "
            "--link)")
