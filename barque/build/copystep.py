"""A COPY or ADD step: where its files come from (the context, an earlier stage's result, an
image, here-documents), its cache key (the content checksum of the matched files, never
their mtimes; for another stage's or an image's files, the content-addressed chain ID of
their layers) and its work (the copy itself: fileops.py, into the step's snapshot)."""

from __future__ import annotations

import os
import tempfile

from barque.build import cache as cache_mod
from barque.build import imageconfig as ic

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

    from barque.build.builder import Builder, StageRun
    from barque.build.dockerfile.instructions import Instruction
    from barque.build.events import Vertex
    from barque.build.layers import StepFS
    from barque.image.store import LayerRef

_FLAGS = {"from", "chown", "chmod", "link", "parents", "exclude", "checksum", "keep-git-dir",
          "unpack"}
_BOOLS = ("link", "parents", "keep-git-dir", "unpack")


def _flag(instr: Instruction, name: str) -> str | None:
    values = instr.flags.get(name)
    return values[-1] if values else None


def _bool(instr: Instruction, name: str) -> bool | None:
    value = _flag(instr, name)
    if value is None:
        return None
    if value.lower() in ("", "true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise ic.ConfigError(f'expecting boolean value for flag {name}, not: {value}')


class CopyStep:
    def __init__(self, builder: Builder, run: StageRun, instr: Instruction) -> None:
        self.b, self.run, self.instr = builder, run, instr
        state = run.state
        for name in instr.flags:
            if name not in _FLAGS:
                raise ic.ConfigError(f"unknown flag: {name}")
        words = list(instr.args) if instr.json_form else [state.word(a) for a in instr.args]
        if len(words) < 2:
            raise ic.ConfigError(f"{instr.keyword} requires at least two arguments")
        self.patterns, self.dest = words[:-1], words[-1]
        self.is_add = instr.keyword == "ADD"
        self.chown = _flag(instr, "chown")
        self.chown = state.word(self.chown) if self.chown else None
        self.chmod = _flag(instr, "chmod")  # octal or symbolic: fileops reads it
        self.link = bool(_bool(instr, "link"))
        self.parents = bool(_bool(instr, "parents"))
        unpack = _bool(instr, "unpack")
        self.unpack = self.is_add if unpack is None else unpack
        self.excludes = [state.word(e) for e in instr.flags.get("exclude", [])]
        self.workdir = state.workdir
        self.src_key: Any = None
        self.src_layers: list[LayerRef] | None = None  # another stage's or image's files
        self.heredoc_dir: str | None = None
        self.downloads: list[Any] = []
        from_word = _flag(instr, "from")
        if from_word:
            self._from(state.word(from_word))
        elif instr.heredocs:
            self._heredocs()
        elif any(p.startswith(("http://", "https://")) for p in self.patterns):
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
        from barque.build import fetch  # type: ignore[attr-defined,unused-ignore]

        if not self.is_add:
            raise ic.ConfigError("source can't be a URL for COPY")
        if not all(fetch.is_url(p) for p in self.patterns):
            raise ic.ConfigError("ADD of URLs mixed with local files is not supported yet")
        checksum = _flag(self.instr, "checksum")
        self.downloads = []
        try:
            for url in self.patterns:
                self.downloads.append(fetch.download(url, self.b.workspace().dir,
                                                     dest=self.dest, checksum=checksum))
        except fetch.FetchError as e:
            raise ic.ConfigError(str(e)) from None
        self.src_key = ("urls", [(d.name, d.digest, d.mtime) for d in self.downloads])

    def _heredocs(self) -> None:
        names = {h.name for h in self.instr.heredocs}
        self.heredoc_dir = tempfile.mkdtemp(prefix=".heredoc-", dir=self.b.workspace().dir)
        contents = []
        for h in self.instr.heredocs:
            content = self.run.state.word(h.content) if h.expand else h.content
            with open(os.path.join(self.heredoc_dir, h.name), "w") as f:
                f.write(content)
            contents.append((h.name, content))
        self.patterns = [p.removeprefix("<<-").removeprefix("<<").strip("\"'")
                         if p.startswith("<<") else p for p in self.patterns]
        missing = [p for p in self.patterns if p not in names]
        if missing:
            raise ic.ConfigError(f"{self.instr.keyword} mixes here-documents and files")
        self.src_key = ("heredoc", contents)

    def _matcher(self, context: bool) -> Any:
        return self.b.ignore if context else None

    def _checksum(self, root: str, context: bool) -> str:
        from barque.build import sources

        errors = (ValueError, getattr(sources, "SourceError", ValueError))
        try:
            found = sources.match_sources(root, self.patterns, ignore=self._matcher(context),  # type: ignore[attr-defined,unused-ignore]
                                          excludes=self.excludes)
            return str(sources.checksum(root, found, ignore=self._matcher(context),  # type: ignore[attr-defined,unused-ignore]
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

    def created_by(self) -> str:
        flags = "".join(f"--{k}={v} " for k in ("chown", "chmod") if (v := _flag(self.instr, k)))
        return f"{self.instr.keyword} {flags}{' '.join(self.patterns)} {self.dest} # buildkit"

    def work(self, fs: StepFS, v: Vertex) -> None:
        if self.src_layers is not None:
            from barque.build.layers import StepFS as Fs

            src = Fs(self.b.store, self.b.workspace(), self.src_layers)
            try:
                self._copy(src.mount(), fs.rootfs, context=False)
            finally:
                src.close()
        elif self.downloads:
            from barque.build import fetch  # type: ignore[attr-defined,unused-ignore]

            chown = self._chown(fs.rootfs)
            unpack = bool(_bool(self.instr, "unpack"))  # a URL unpacks only when asked
            for dl in self.downloads:
                fetch.add(dl, fs.rootfs, self.dest, workdir=self.workdir, chown=chown,
                          chmod=self.chmod, unpack=unpack)
        elif self.heredoc_dir is not None:
            self._copy(self.heredoc_dir, fs.rootfs, context=False)
        else:
            self._copy(self.b.options.context_dir, fs.rootfs, context=True)

    def _chown(self, dst_root: str) -> tuple[int, int] | None:
        from barque.build import fileops  # type: ignore[attr-defined,unused-ignore]

        return fileops.resolve_chown(dst_root, self.chown) if self.chown else None

    def _copy(self, src_root: str, dst_root: str, *, context: bool) -> None:
        from barque.build import fileops, sources  # type: ignore[attr-defined,unused-ignore]

        try:
            found = sources.match_sources(src_root, self.patterns,  # type: ignore[attr-defined]
                                          ignore=self._matcher(context), excludes=self.excludes)
            chown = self._chown(dst_root)
            fileops.copy(src_root, found, dst_root, self.dest, workdir=self.workdir,
                         chown=chown, chmod=self.chmod, parents=self.parents,
                         excludes=self.excludes, ignore=self._matcher(context),
                         unpack=self.unpack, link=self.link,
                         keep_owners=self.src_layers is not None,
                         command=self.instr.keyword)
        except (ValueError, getattr(fileops, "CopyError", ValueError),
                getattr(sources, "SourceError", ValueError)) as e:
            raise ic.ConfigError(str(e)) from None
