"""Run a build: a parsed Dockerfile and a context to an image (or a directory, a tar).

Each stage starts from its base (an image, `scratch`, or an earlier stage's result); each
instruction is a step whose cache key (cache.py) is computed first: a hit takes the step's
recorded result (its layer chain and history time) without touching a file, a miss runs it
on a snapshot of the parent's layers (layers.py) and records what it made. Metadata
instructions only change the config (imageconfig.py). Only the stages the target needs run,
each in this thread while its steps are cache hits and, from its first step with work to
do, in a thread of its own, so independent stages build in parallel (see _run_stages and
_layer_step) while a cached rebuild starts no thread. The final stage's
config and layers become an image of the store (its ID the config's digest: a rebuild with
nothing changed gives the same ID), or are exported (`-o type=local|tar`).
"""

from __future__ import annotations

import os
import threading
import time

from barque.build import cache as cache_mod
from barque.build import imageconfig as ic
from barque.build.events import Events, Vertex
from barque.build.executor import ExecutorError, RunMount, RunRequest
from barque.build.options import BuildOptions, BuildResult
from barque.build.stages import Plan, StageError, find_stage, meta_scope, plan, platform_args
from barque.structs import dataclass, field

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from barque.build.dockerfile.instructions import Dockerfile, Instruction
    from barque.build.executor import Executor
    from barque.build.layers import StepFS, Workspace
    from barque.build.options import CacheExport
    from barque.image.store import Image, ImageStore, LayerRef

METADATA = ("ENV", "LABEL", "ARG", "EXPOSE", "VOLUME", "USER", "CMD", "ENTRYPOINT", "SHELL",
            "STOPSIGNAL", "HEALTHCHECK", "ONBUILD", "MAINTAINER")


class BuildError(Exception):
    """A build that failed: BuildKit's message; the step's vertex and Dockerfile lines."""

    def __init__(self, message: str, *, vertex: Vertex | None = None,
                 instr: Instruction | None = None, filename: str = "Dockerfile",
                 exit_code: int | None = None) -> None:
        super().__init__(message)
        self.vertex = vertex
        self.filename = filename
        self.line = instr.line if instr is not None else 0
        self.end_line = instr.end_line if instr is not None else 0
        self.exit_code = exit_code


def rfc3339(ts: float) -> str:
    t = time.gmtime(int(ts))
    frac = f"{ts - int(ts):.9f}"[1:].rstrip("0").rstrip(".")
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + frac + "Z"


class Display:
    """Vertex numbers in start order, shared by the stage threads."""

    def __init__(self, events: Events, numbered: int = 0) -> None:
        self.events = events
        self._lock = threading.Lock()
        self._n = numbered  # the vertices the caller showed before the build's own

    def start(self, name: str) -> Vertex:
        with self._lock:
            self._n += 1
            v = Vertex(self._n, name, started=time.monotonic())
        self.events.vertex(v)
        return v

    def done(self, v: Vertex, *, cached: bool = False, error: str | None = None) -> None:
        v.completed = time.monotonic()
        v.cached = cached
        v.error = error
        self.events.vertex(v)

    def log(self, v: Vertex, stream: int, data: bytes) -> None:
        self.events.log(v, stream, data)


@dataclass
class StageResult:
    layers: list[LayerRef]
    key: str
    state: ic.StageState
    records: list[list[Any]] = field(default_factory=list)  # cache.CONFIG_FIELD's
    platform: str = ""              # os/arch[/variant] its RUNs need


@dataclass
class StageRun:
    plan: Plan
    state: ic.StageState
    layers: list[LayerRef] = field(default_factory=list)
    key: str = ""                   # the filesystem's key: the last step with a layer's
    last: str = ""                  # the last step's key, metadata steps included
    index: int = 0                  # the display's k of k/n
    inline: bool = False            # run by _run_stages' own thread (see _layer_step)
    pending: list[Instruction] = field(default_factory=list)  # the steps still to run
    records: list[list[Any]] = field(default_factory=list)   # each step's, cache.records
    platform: str = ""              # os/arch[/variant] its RUNs need (see _check_platform)


class _HandedOff(Exception):
    """The rest of a stage went on in a thread of its own (Builder._layer_step)."""


class Builder:
    def __init__(self, store: ImageStore, dockerfile: Dockerfile, options: BuildOptions,
                 executor: Executor, events: Events, *,
                 resolve_image: Callable[[str, str | None], Image],
                 ignore: Any = None, platform: dict[str, str] | None = None,
                 numbered: int = 0,
                 cache_image: Callable[[str], Image] | None = None,
                 cache_registry: Any = None) -> None:
        from barque.image.oci_layout import host_platform

        self.store = store
        self.df = dockerfile
        self.options = options
        self.executor = executor
        self.display = Display(events, numbered)
        self.resolve_image = resolve_image
        self.ignore = ignore
        self.host = platform or host_platform()
        self.cache = cache_mod.BuildCache(store.conn, root=store.root)
        self.lock = self.cache.lock      # the DB connection's, for every store call
        self.epoch = options.source_date_epoch
        self._workspace: Workspace | None = None
        self._results: dict[int, StageResult] = {}
        self._images: dict[str, Image] = {}
        self._no_cache_stages = {s.lower() for s in options.no_cache_filter}
        # --cache-from: its images (local or pulled: `cache_image`) read on the first miss
        self.cache_image = cache_image or store.resolve
        # --cache-from/--cache-to type=registry: engine/build_cache's load(store, ref) and
        # push(store, ref, config, manifest, layers) (the builder talks to no registry)
        self.cache_registry = cache_registry
        self._imports: dict[str, cache_mod.Imported] | None = None
        self._context_lowers_: list[str] | None = None
        self._context_view_: str | None = None

    # --- the whole build ---------------------------------------------------------------
    def run(self) -> BuildResult:
        from barque.image.store import ImageError, tag_name

        try:
            # Bad tags fail before any work (the export would refuse them at the end).
            self.tags = [tag_name(t) for t in self.options.tags]
        except ImageError as e:
            raise BuildError(str(e)) from None
        try:
            auto = platform_args(self.options.platform, self.host)
            self.scope = meta_scope(self.df, self.options.build_args, auto)
            plans = plan(self.df, self.options.target, self.scope)
        except (StageError, ic.ConfigError) as e:
            raise BuildError(str(e), filename=self.df.filename) from None
        try:
            self._load_metadata(plans)
            if any(i.keyword in ("COPY", "ADD") and not i.flags.get("from") and not i.heredocs
                   for p in plans for i in p.stage.instructions):
                # Nothing is transferred (the context is read in place), but BuildKit's
                # display has this step, and scripts look for it.
                self.display.done(self.display.start("[internal] load build context"))
            self._run_stages(plans)
            final = self._results[plans[-1].stage.index]
            result = self._export(final, plans[-1])
            for to in self.options.cache_to:
                self._export_cache(final, to)
            self.cache.touch()
            return result
        finally:
            self.cache.end_use()
            if self._workspace is not None:
                self._workspace.close()

    def workspace(self) -> Workspace:
        with self.lock:
            if self._workspace is None:
                from barque.build.layers import Workspace

                self._workspace = Workspace(self.store.root)
                # From now on (a build with work to do) the cache records it uses show as
                # in use (cache.usage).
                self.cache.record_use(os.path.join(self._workspace.dir, "keys"))
            return self._workspace

    def _load_metadata(self, plans: list[Plan]) -> None:
        """Resolve every base image first (BuildKit's `[internal] load metadata`)."""
        for p in plans:
            if p.base_stage is not None or p.base == "scratch" or p.base in self._images:
                continue
            v = self.display.start(f"[internal] load metadata for {_display_ref(p.base)}")
            try:
                with self.lock:
                    self._images[p.base] = self.resolve_image(p.base, p.platform)
            except Exception as e:
                self.display.done(v, error=str(e))
                raise
            self.display.done(v)

    def _run_stages(self, plans: list[Plan]) -> None:
        """Each stage runs in this thread while its steps are cache hits (a cached rebuild
        starts no thread); at its first step with work to do, the rest of it goes on in a
        thread of its own, and the next stage starts. A stage whose stages are not all done
        waits for them in a thread of its own."""
        self._done = {p.stage.index: threading.Event() for p in plans}
        self._errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        try:
            for p in plans:
                if self._errors:
                    break
                if all(self._done[d].is_set() for d in p.deps):
                    try:
                        self._run_stage(p, inline=True)
                    except _HandedOff:
                        pass
                else:
                    self._spawn(self._waiting_stage(p), p)
        except BaseException as e:
            self._errors.append(e)
        finally:
            for t in self._threads:
                t.join()
        if self._errors:
            raise self._errors[0]

    def _waiting_stage(self, p: Plan) -> Callable[[], None]:
        return lambda: self._run_stage(p, inline=False)

    def _spawn(self, work: Callable[[], None], p: Plan) -> None:
        def target() -> None:
            try:
                work()
            except BaseException as e:  # noqa: BLE001 — raised again by _run_stages
                self._errors.append(e)
            finally:
                self._done[p.stage.index].set()

        t = threading.Thread(target=target, daemon=True)
        self._threads.append(t)
        t.start()

    # --- a stage -------------------------------------------------------------------------
    def _run_stage(self, p: Plan, *, inline: bool) -> None:
        if not inline:
            for dep in p.deps:
                self._done[dep].wait()
            if self._errors:
                return
        run = self._start_stage(p)
        triggers = self._triggers(run)
        # BuildKit counts every trigger in the stage's total (whatever its instruction).
        p.total += len(triggers)
        run.index = 0
        if p.base_stage is None and p.base != "scratch":  # (BuildKit shows no other FROM)
            from_name = f"[{p.prefix}{_index(1, p.total)}] FROM {_display_ref(p.base)}"
            self.display.done(self.display.start(from_name), cached=True)
            run.index = 1
        run.inline = inline
        run.pending = [*triggers, *p.stage.instructions]
        self._continue(run)
        if inline:
            self._done[p.stage.index].set()

    def _continue(self, run: StageRun) -> None:
        while run.pending:
            self._step(run, run.pending.pop(0))
        self._results[run.plan.stage.index] = StageResult(run.layers, run.key, run.state,
                                                          run.records, run.platform)

    def _start_stage(self, p: Plan) -> StageRun:
        from barque.image.oci_layout import host_platform

        base_config: dict[str, Any]
        if p.base_stage is not None:
            parent = self._results[p.base_stage]
            import copy

            base_config = copy.deepcopy(parent.state.config)
            layers, key = list(parent.layers), parent.key
            records = list(parent.records)
        elif p.base == "scratch":
            plat = host_platform() if not p.platform else _platform_obj(p.platform)
            base_config = {**plat, "config": {"Env": [ic.DEFAULT_PATH]},
                           "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
            layers, key, records = [], "from:scratch", []
        else:
            image = self._images[p.base]
            with self.lock:
                base_config = self.store.config(image)
            base_config.pop(cache_mod.CONFIG_FIELD, None)  # its own build's keys
            layers, key, records = list(image.layers), f"from:{image.id}", []
        base_config.setdefault("config", {})
        if not base_config["config"].get("Env") and p.base != "scratch":
            base_config["config"]["Env"] = [ic.DEFAULT_PATH]
        state = ic.StageState(base_config, build_args=dict(self.options.build_args),
                              meta_args=dict(self.scope), escape=self.df.escape)
        # SOURCE_DATE_EPOCH changes the layers made (their clamped mtimes): part of the key.
        key = cache_mod.step_key(key, "platform", self.options.platform or "", self.epoch)
        run = StageRun(p, state, layers, key, records=records)
        # As BuildKit's: FROM --platform, else the build's --platform, else the base's own.
        run.platform = (p.platform or self.options.platform
                        or (self._results[p.base_stage].platform if p.base_stage is not None
                            else "") or _platform_text(base_config) or "")
        return run

    def _triggers(self, run: StageRun) -> list[Instruction]:
        """A base image's ONBUILD triggers, or those of the stage FROM names (as BuildKit),
        run right after FROM (and dropped from the new image, as Docker)."""
        triggers = run.state.cfg.pop("OnBuild", None) or []
        if not triggers:
            return []
        from barque.build.dockerfile import parser

        out = []
        for text in triggers:
            try:
                out.append(parser.parse_instruction(text, escape=self.df.escape,
                                                    line=run.plan.stage.line))
            except ValueError as e:
                raise BuildError(f"failed to process ONBUILD trigger {text!r}: {e}",
                                 filename=self.df.filename) from None
        return out

    def _step(self, run: StageRun, instr: Instruction) -> None:
        kw = instr.keyword
        try:
            if kw in METADATA:
                self._metadata(run, instr)
            elif kw == "RUN":
                self._run(run, instr)
            elif kw in ("COPY", "ADD"):
                self._copy(run, instr)
            elif kw == "WORKDIR":
                self._workdir(run, instr)
            else:
                raise ic.ConfigError(f"unknown instruction: {kw}")
        except ic.ConfigError as e:
            raise BuildError(str(e), instr=instr, filename=self.df.filename) from None

    def _name(self, run: StageRun, instr: Instruction) -> str:
        """BuildKit's vertex name: `[stage k/n] INSTR args`, the build args in scope
        replaced (processCmdEnv), the rest as written."""
        from barque.build.dockerfile import commands

        run.index += 1
        text = instr.original.strip()
        rest = text.split(None, 1)[1] if " " in text or "\t" in text else ""
        rest = commands.display(rest, run.state.arg_values(), run.state.escape)
        return f"[{run.plan.prefix}{_index(run.index, run.plan.total)}] {instr.keyword} {rest}"

    def _now(self) -> str:
        return rfc3339(self.epoch if self.epoch is not None else time.time())

    def _no_cache(self, run: StageRun) -> bool:
        return self.options.no_cache or (run.plan.stage.name or "") in self._no_cache_stages

    def _lookup(self, run: StageRun, key: str) -> cache_mod.Entry | None:
        if self._no_cache(run):
            return None
        entry = self.cache.get(key)
        if ((self.options.cache_from or self.options.cache_from_local)
                and (entry is None or not self._intact(entry))):
            entry = self._imported(run, key) or entry
        return entry

    def _imported(self, run: StageRun, key: str) -> cache_mod.Entry | None:
        """A step's result from a --cache-from image's records (their images are read on
        the first miss only: a build the local cache serves reads and pulls nothing),
        recorded in the local cache as if this build had made it."""
        with self.lock:
            if self._imports is None:
                self._imports = self._load_imports()
            found = self._imports.get(key)
        if found is None or found.count < len(run.layers):
            return None
        mine = found.layers[:len(run.layers)]
        if [la.chain_id for la in mine] != [la.chain_id for la in run.layers]:
            return None  # recorded over other layers than this build's: not this step
        if found.fetch is not None and not self._fetched(found, len(run.layers)):
            return None
        size = found.layers[found.count - 1].blob_size if found.count > len(run.layers) else 0
        entry = cache_mod.Entry(key, _rows(found.layers[:found.count]), size,
                                f"imported from {found.source}", found.created)
        if not self._intact(entry):
            return None
        self.cache.put(entry)
        return entry

    def _fetched(self, found: cache_mod.Imported, have: int) -> bool:
        """The layers a cache's record adds to the `have` this build has, brought into the
        store; False (the step runs) when the cache cannot give them."""
        try:
            with self.lock:
                found.fetch(self.store, found.layers[have:found.count])
        except Exception:  # noqa: BLE001 — the directory's, the store's, the registry's
            return False
        return True

    def _image_or_cache_records(self, ref: str) -> dict[str, cache_mod.Imported]:
        """The records of the image `ref` (its inline cache), else of the cache manifest
        `ref` names in a registry (a --cache-to type=registry's), else the image's error."""
        try:
            image = self.cache_image(ref)
        except Exception as e:
            if self.cache_registry is None:
                raise
            try:
                with self.lock:
                    return dict(self.cache_registry.load(self.store, ref))
            except Exception:  # noqa: BLE001 — not a cache either: the image's error tells
                raise e from None
        return cache_mod.records(self.store.config(image), list(image.layers), ref)

    def _load_imports(self) -> dict[str, cache_mod.Imported]:
        """Every --cache-from image's records by key (the first image naming a key wins);
        one that cannot be had is shown as an error and skipped, as BuildKit goes on
        without a cache it cannot import."""
        out: dict[str, cache_mod.Imported] = {}
        for ref in self.options.cache_from:
            v = self.display.start(f"importing cache manifest from {ref}")
            try:
                found = self._image_or_cache_records(ref)
            except Exception as e:  # the store's and the registry's errors
                self.display.done(v, error=str(e))
                continue
            for key, imported in found.items():
                out.setdefault(key, imported)
            self.display.done(v)
        from barque.build import cache_local

        for src in self.options.cache_from_local:
            v = self.display.start(f"importing cache manifest from local:{src}")
            try:
                found = cache_local.load(src)
            except Exception as e:  # noqa: BLE001 — a missing or broken dir: BuildKit goes on
                self.display.done(v, error=str(e))
                continue
            for key, imported in found.items():
                out.setdefault(key, imported)
            self.display.done(v)
        return out

    # --- metadata ------------------------------------------------------------------------
    def _metadata(self, run: StageRun, instr: Instruction) -> None:
        # Metadata changes no file: it keys only its history time (chained to every step
        # before it). What a later step runs with (ENV, ARGs, USER, WORKDIR, SHELL) is part
        # of that step's own key, so a new LABEL or CMD never reruns a RUN below it.
        created_by = ic.apply(run.state, instr)
        key = cache_mod.step_key(run.last or run.key, instr.keyword, created_by or "",
                                 instr.args, instr.flags)
        entry = self._lookup(run, key)
        if entry is None:
            entry = cache_mod.Entry(key, _rows(run.layers), 0, created_by or "", self._now())
            self.cache.put(entry)
        run.last = key
        run.records.append([key, len(run.layers), entry.created])
        if created_by is not None:
            ic.history(run.state, created_by, entry.created, empty=True)

    # --- steps with a filesystem -------------------------------------------------------
    def _layer_step(self, run: StageRun, instr: Instruction, key: str, created_by: str,
                    work: Callable[[StepFS, Vertex], None], vertex: Vertex | None = None,
                    content_key: Callable[[], str] | None = None,
                    cleanup: Callable[[], None] | None = None,
                    link_key: str | None = None) -> None:
        """Take a step's result from the cache, or run `work` on a fresh snapshot of the
        parent's layers and record what it made.

        `content_key` (COPY --from another stage): a second key, by the content of the
        files copied, computed only when `key` (by the source's layers) misses; a source
        stage that ran again but made the same files then still hits, and what follows
        builds on that content key."""
        v = vertex or self.display.start(self._name(run, instr))
        entry = self._lookup(run, key)
        if entry is not None and not self._intact(entry):
            entry = None  # its layer went missing (a crash, a hand): make it again
        if entry is None and run.inline and len(self._done) > 1:
            # Work to do: the rest of this stage goes on in a thread, from this very step
            # (its state so far is kept), and the caller starts the next stage.
            run.inline = False

            def rest() -> None:
                self._layer_step(run, instr, key, created_by, work, v, content_key, cleanup,
                                 link_key)
                self._continue(run)

            self._spawn(rest, run.plan)
            raise _HandedOff
        cached = entry is not None
        if entry is None:
            try:
                entry, cached = self._miss(run, key, created_by, work, v, content_key,
                                           link_key)
            except BuildError as e:
                e.vertex = e.vertex or v
                e.line, e.end_line = instr.line, instr.end_line
                self.display.done(v, error=str(e))
                raise
            except Exception as e:
                self.display.done(v, error=str(e))
                raise BuildError(str(e), vertex=v, instr=instr,
                                 filename=self.df.filename) from None
            finally:
                if cleanup is not None:
                    cleanup()
        self.display.done(v, cached=cached)
        from barque.image.store import LayerRef

        empty = len(entry.layers) == len(run.layers)
        # (COPY --from's content key: the first one changes with the source stage's layers)
        run.records.append([entry.next_key or key, len(entry.layers), entry.created])
        run.layers = [LayerRef(*row) for row in entry.layers]
        run.key = run.last = entry.next_key or key
        ic.history(run.state, created_by, entry.created, empty=empty)
        diff_ids = [layer.diff_id for layer in run.layers]
        run.state.config["rootfs"] = {"type": "layers", "diff_ids": diff_ids}

    def _miss(self, run: StageRun, key: str, created_by: str,
              work: Callable[[StepFS, Vertex], None], v: Vertex,
              content_key: Callable[[], str] | None,
              link_key: str | None) -> tuple[cache_mod.Entry, bool]:
        """(the entry, whether it came from the cache by its content key)."""
        if content_key is None or self._no_cache(run):  # (no lookup: no second key)
            return self._execute(run, key, created_by, work, v, link_key), False
        second = content_key()
        entry = self._lookup(run, second)
        cached = entry is not None and self._intact(entry)
        if entry is None or not cached:
            entry = self._execute(run, second, created_by, work, v, link_key)
        # `key` leads to the same result from now on.
        self.cache.put(cache_mod.Entry(key, entry.layers, 0, created_by, entry.created,
                                       next_key=second))
        return cache_mod.Entry(key, entry.layers, entry.size, created_by, entry.created,
                               next_key=second), cached

    def _execute(self, run: StageRun, key: str, created_by: str,
                 work: Callable[[StepFS, Vertex], None], v: Vertex,
                 link_key: str | None = None) -> cache_mod.Entry:
        if link_key is not None:
            return self._execute_linked(run, key, link_key, created_by, work, v)
        made = self._step_layer(run.layers, work, v)
        layers, size = list(run.layers), 0
        if made is not None:
            layers.append(made[0])
            size = made[1]
        entry = cache_mod.Entry(key, _rows(layers), size, created_by, self._now())
        self.cache.put(entry)
        return entry

    def _execute_linked(self, run: StageRun, key: str, link_key: str, created_by: str,
                        work: Callable[[StepFS, Vertex], None], v: Vertex) -> cache_mod.Entry:
        """COPY --link: the files copied onto nothing (no earlier layer is seen, or
        followed), that layer keyed without its parent (`link_key`), so it is made once
        and put on top of any parent (BuildKit's --link)."""
        from barque.build.layers import chain_of
        from barque.image.store import LayerRef

        alone = self._lookup(run, link_key)
        if alone is None or not self._intact(alone):
            made = self._step_layer([], work, v)
            alone = cache_mod.Entry(link_key, _rows([made[0]]) if made else [],
                                    made[1] if made else 0, created_by, self._now())
            self.cache.put(alone)
        layers = list(run.layers)
        if alone.layers:
            _, diff_id, blob, media_type, blob_size = alone.layers[0]
            parent = layers[-1].chain_id if layers else None
            layer = LayerRef(chain_of(parent, diff_id), diff_id, blob, media_type, blob_size)
            try:
                with self.lock:
                    self.store._ensure_layer(layer)  # the layer's dir over this parent
            except Exception as e:  # the store's ImageError
                raise BuildError(str(e)) from None
            layers.append(layer)
        entry = cache_mod.Entry(key, _rows(layers), alone.size, created_by, alone.created)
        self.cache.put(entry)
        return entry

    def _step_layer(self, parents: list[LayerRef], work: Callable[[StepFS, Vertex], None],
                    v: Vertex) -> tuple[LayerRef, int] | None:
        """`work` done on a step's file system over `parents`: the layer it made and its
        size (None: no change)."""
        from barque.build.layers import LayerError, StepFS

        fs = StepFS(self.store, self.workspace(), parents)
        try:
            fs.mount()
            work(fs, v)
            return fs.commit(self.epoch, self.lock)
        except LayerError as e:
            raise BuildError(str(e)) from None
        finally:
            fs.close()

    def _intact(self, entry: cache_mod.Entry) -> bool:
        if not entry.layers:
            return True
        chain, _, blob = entry.layers[-1][:3]
        return (os.path.isdir(self.store.layer_path(chain))
                and os.path.exists(self.store.blobs.path(blob)))

    # --- RUN -----------------------------------------------------------------------------
    def _run(self, run: StageRun, instr: Instruction) -> None:
        state = run.state
        from barque.build.dockerfile import commands

        argv, scripts = self._run_command(run, instr)
        env = state.run_env()
        try:
            network = commands.run_network(instr.flags) if instr.flags.get("network") \
                else self.options.network
            security = commands.run_security(instr.flags)
        except ValueError as e:
            raise ic.ConfigError(str(e)) from None
        mounts = self._run_mounts(run, instr) + scripts
        created_by = ic.run_created_by(state, argv, instr.json_form)
        key = cache_mod.step_key(run.key, "RUN", argv, env, state.cfg.get("User") or "",
                                 state.workdir, network, security,
                                 [(m.kind, m.target, m.readonly,
                                   {k: v for k, v in m.options.items() if k != "context"})
                                  for m in mounts])

        def work(fs: StepFS, v: Vertex) -> None:
            self._check_platform(run, argv, v)
            sources: list[StepFS] = []
            held = []
            try:
                held = self._hold_caches(mounts, argv)
                request = RunRequest(fs.rootfs, argv, env, state.workdir,
                                     user=str(state.cfg.get("User") or ""), network=network,
                                     mounts=self._mount_sources(run, mounts, sources),
                                     security=security)
                code = self.executor.run(request,
                                         lambda stream, data: self.display.log(v, stream, data))
            except (ExecutorError, OSError) as e:
                raise BuildError(str(e)) from None
            finally:
                for src in sources:
                    src.close()
                for h in held:
                    h.release()
            if code != 0:
                raise BuildError(f'process "{" ".join(argv)}" did not complete successfully: '
                                 f"exit code: {code}", exit_code=code)

        self._layer_step(run, instr, key, created_by, work)

    def _hold_caches(self, mounts: list[RunMount], argv: list[str]) -> list[Any]:
        """The RUN's cache mounts, made and held as in use (a prune leaves them alone)."""
        from barque.build import cachemounts

        held: list[Any] = []
        try:
            for m in mounts:
                if m.kind == "cache":
                    cache_id = m.options.get("id") or m.target
                    held.append(cachemounts.Held(self.store.root, cache_id,
                                                 cachemounts.description(m.target, cache_id,
                                                                         argv)))
        except BaseException:
            for h in held:
                h.release()
            raise
        return held

    def _check_platform(self, run: StageRun, argv: list[str], v: Vertex) -> None:
        """A stage of another platform than this host's cannot RUN here (no emulation):
        fail as BuildKit does when no emulator is found (the kernel refuses the binary, runc
        says so, the process exits 1) instead of running the host's binaries natively."""
        if not run.platform or runs_natively(run.platform, self.host):
            return
        host = _platform_text(self.host)
        self.display.log(v, 2, f"exec {argv[0]}: exec format error\n".encode())
        self.display.log(v, 2, f"(the stage's platform is {run.platform}, this host's is "
                               f"{host}, and no emulator is available)\n".encode())
        raise BuildError(f'process "{" ".join(argv)}" did not complete successfully: '
                         "exit code: 1", exit_code=1)

    def _mount_sources(self, run: StageRun, mounts: list[RunMount],
                       opened: list[StepFS]) -> list[RunMount]:
        """The mounts with their `from=` sources (a stage's or an image's files) and their
        writable (`rw`) views of the context mounted (each a snapshot with an upper of its
        own, thrown away after: BuildKit keeps no write to a bind mount; closed by the
        caller), the source resolved inside them."""
        from barque.build.layers import StepFS
        from barque.build.runmounts import resolve_in

        out = []
        for m in mounts:
            origin = m.options.get("from")
            if m.source is None and (origin is not None or "context" in m.options):
                if origin is not None:
                    result = self.stage_result(origin, run.plan.stage.index)
                    layers = result.layers if result is not None else self.image(origin).layers
                    src = StepFS(self.store, self.workspace(), list(layers))
                elif m.readonly:  # the context without what .dockerignore leaves out
                    root = self._context_view()
                    m = RunMount(m.kind, m.target, resolve_in(root, m.options["source"]),
                                 True, {k: v for k, v in m.options.items()
                                        if k not in ("source", "key", "context")})
                    out.append(m)
                    continue
                else:  # a writable view of the context: its writes are thrown away
                    src = StepFS(self.store, self.workspace(), [],
                                 lowers=self._context_lowers())
                opened.append(src)
                root = src.mount()
                m = RunMount(m.kind, m.target, resolve_in(root, m.options.get("source", "/")),
                             m.readonly, {k: v for k, v in m.options.items()
                                          if k not in ("from", "source", "key", "context")})
            out.append(m)
        return out

    def _context_lowers(self) -> list[str]:
        """The context as overlay lower dirs: under a dir of whiteouts for what
        .dockerignore leaves out, if it leaves anything out (made once per build)."""
        with self.lock:
            if self._context_lowers_ is None:
                from barque.build.runmounts import hide_ignored

                context = self.options.context_dir
                hidden = self.workspace().new_dir()
                self._context_lowers_ = [context]
                if self.ignore and hide_ignored(context, self.ignore, hidden):
                    self._context_lowers_ = [hidden, context]
            return self._context_lowers_

    def _context_view(self) -> str:
        """The context as read-only RUN bind mounts show it (see _context_lowers): the
        context itself when nothing is left out, else one overlay for the whole build
        (unmounted with the workspace)."""
        lowers = self._context_lowers()
        if len(lowers) == 1:
            return lowers[0]
        with self.lock:
            if self._context_view_ is None:
                from barque.build.layers import StepFS

                self._context_view_ = StepFS(self.store, self.workspace(), [],
                                             lowers=lowers).mount()
            return self._context_view_

    def _run_command(self, run: StageRun, instr: Instruction) -> tuple[list[str],
                                                                       list[RunMount]]:
        """RUN's argv (heredocs as BuildKit runs them) and the script files it needs: a
        `#!` heredoc is a read-only file at /dev/pipes/<name>."""
        from barque.build.dockerfile import commands

        try:
            cmd = commands.run_command(instr, run.state.shell)
        except ValueError as e:
            raise ic.ConfigError(str(e)) from None
        files = []
        for inline in cmd.files:
            directory = self.workspace().new_dir()
            os.makedirs(directory)
            path = os.path.join(directory, os.path.basename(inline.path))
            with open(path, "w") as f:
                f.write(inline.data)
            os.chmod(path, inline.mode)
            files.append(RunMount("bind", inline.path, path, True,
                                  {"key": "script:" + inline.data}))
        return cmd.args, files

    def _run_mounts(self, run: StageRun, instr: Instruction) -> list[RunMount]:
        if not instr.flags.get("mount"):
            return []
        from barque.build.runmounts import run_mounts

        return run_mounts(self, run, instr)

    # --- WORKDIR -------------------------------------------------------------------------
    def _workdir(self, run: StageRun, instr: Instruction) -> None:
        created_by = ic.apply(run.state, instr)
        assert created_by is not None
        path = run.state.workdir
        key = cache_mod.step_key(run.key, "WORKDIR", path)

        user = str(run.state.cfg.get("User") or "")

        def work(fs: StepFS, v: Vertex) -> None:
            make_workdir(fs.rootfs, path, user)

        self._layer_step(run, instr, key, created_by, work)

    # --- COPY / ADD ----------------------------------------------------------------------
    def _copy(self, run: StageRun, instr: Instruction) -> None:
        from barque.build.copystep import CopyStep

        step = CopyStep(self, run, instr)
        self._layer_step(run, instr, step.key(), step.created_by(), step.work,
                         content_key=step.content_key if step.src_layers is not None else None,
                         cleanup=step.close, link_key=step.link_key() if step.link else None)

    def stage_result(self, word: str, before: int) -> StageResult | None:
        index = find_stage(self.df.stages, word, before)
        return self._results.get(index) if index is not None else None

    def image(self, ref: str, platform: str | None = None) -> Image:
        with self.lock:
            if ref not in self._images:
                self._images[ref] = self.resolve_image(ref, platform)
            return self._images[ref]

    # --- the result ----------------------------------------------------------------------
    def _export(self, final: StageResult, p: Plan) -> BuildResult:
        outputs = self.options.outputs or []
        v = self.display.start("exporting to image" if not outputs or any(
            o.type == "image" for o in outputs) else
            "exporting to client " + {"local": "directory"}.get(outputs[0].type, "tarball"))
        try:
            result = BuildResult(None)
            if not outputs or any(o.type == "image" for o in outputs):
                result = self._export_image(final)
            for out in outputs:
                if out.type in ("local", "tar"):
                    self._export_files(final, out.type, out.dest)
                elif out.type != "image":
                    raise BuildError(f"unsupported output type {out.type!r}")
        except Exception as e:
            self.display.done(v, error=str(e))
            raise
        self.display.done(v)
        return result

    def image_config(self, final: StageResult) -> dict[str, Any]:
        config = dict(final.state.config)
        cfg = {k: v for k, v in (config.get("config") or {}).items()
               if v is not None and v != ""}
        if self.options.labels:
            cfg["Labels"] = {**(cfg.get("Labels") or {}), **self.options.labels}
        config["config"] = cfg
        history = list(config.get("history") or [])
        if self.epoch is not None:
            stamp = rfc3339(self.epoch)
            history = [{**h, "created": min(h.get("created") or stamp, stamp)}
                       if h.get("comment") == ic.COMMENT else h for h in history]
        config["history"] = history
        if self.epoch is not None:  # BuildKit: the image's time is SOURCE_DATE_EPOCH
            config["created"] = rfc3339(self.epoch)
        else:  # the last step's (from the cache when cached: the same config again)
            config["created"] = str((history[-1] if history else {}).get("created")
                                    or config.get("created") or rfc3339(0))
        config["rootfs"] = {"type": "layers", "diff_ids": [la.diff_id for la in final.layers]}
        if final.records:  # what a build with --cache-from this image reads
            config[cache_mod.CONFIG_FIELD] = final.records
        return config

    def _export_cache(self, final: StageResult, to: CacheExport) -> None:
        """--cache-to: the final stage's step records (mode=min) or every stage's
        (mode=max), with their layers, in a directory (cache_local.py) or a registry."""
        from barque.build import cache_local

        stages = [(final.records, final.layers)]
        if to.mode == "max":
            stages += [(r.records, r.layers) for r in self._results.values() if r is not final]
        registry = to.type == "registry"
        v = self.display.start("exporting cache to registry" if registry else
                               "exporting cache to client directory")
        try:
            with self.lock:
                if registry:
                    if self.cache_registry is None:
                        raise cache_local.CacheError("no registry to export the cache to")
                    self.cache_registry.push(self.store, to.dest,
                                             *cache_local.cache_manifest(stages))
                else:
                    cache_local.export(self.store, to.dest, stages)
        except Exception as e:  # noqa: BLE001 — the directory's, the registry's
            message = f"failed to export cache: {e}"
            self.display.done(v, error=message)
            if not to.ignore_error:
                raise BuildError(message) from None
            return
        self.display.done(v)

    def _export_image(self, final: StageResult) -> BuildResult:
        from barque.image import oci_layout as ol
        from barque.sha256 import hexdigest

        config_bytes = ol.canonical_json(self.image_config(final))
        config_digest = "sha256:" + hexdigest(config_bytes)
        manifest = ol.canonical_json({
            "schemaVersion": 2, "mediaType": ol.MEDIA_MANIFEST,
            "config": {"mediaType": ol.MEDIA_CONFIG, "digest": config_digest,
                       "size": len(config_bytes)},
            "layers": [{"mediaType": la.media_type, "digest": la.blob_digest,
                        "size": la.blob_size} for la in final.layers]})
        manifest_digest = "sha256:" + hexdigest(manifest)
        tags = self.tags
        with self.lock:
            image = self.store.lookup(config_digest)
            if image is not None and image.manifest_digest == manifest_digest:
                # A rebuild of the same image: only its tags may be new.
                for tag in tags:
                    if tag not in image.tags:
                        self.store.tag(image, tag)
                return BuildResult(image.id, tags)
            self.store.blobs.put(config_bytes, config_digest)
            self.store.blobs.put(manifest, manifest_digest)
            image = self.store.register(manifest_digest, tags=tags)
        return BuildResult(image.id, tags)

    def _export_files(self, final: StageResult, kind: str, dest: str | None) -> None:
        from barque.build.layers import StepFS

        if not dest:
            raise BuildError(f"output type {kind} needs a dest")
        fs = StepFS(self.store, self.workspace(), final.layers)
        try:
            rootfs = fs.mount()
            if kind == "tar":
                _export_tar(rootfs, dest)
            else:
                _export_local(rootfs, dest)
        finally:
            fs.close()


def make_workdir(rootfs: str, path: str, user: str) -> None:
    """`mkdir -p` of WORKDIR inside the rootfs; the directories it makes are owned by USER
    (as BuildKit's mkdir WithUser), resolved against the rootfs's /etc/passwd."""
    from barque.linux import paths

    with paths.rooted(rootfs) as root_fd:
        missing = []
        parts = [p for p in path.split("/") if p]
        for i in range(len(parts), 0, -1):
            prefix = "/" + "/".join(parts[:i])
            try:
                os.close(paths.open_in_root(root_fd, prefix))
                break
            except FileNotFoundError:
                missing.append(prefix)
        os.close(paths.mkdir_all(root_fd, path))
        if not user or not missing:
            return
        from barque.build import fileops

        uid, gid = fileops.resolve_chown(rootfs, user)
        for made in missing:
            fd = paths.open_in_root(root_fd, made, os.O_PATH | os.O_NOFOLLOW)
            try:
                os.chown(paths.proc_path(fd), uid, gid)
            finally:
                os.close(fd)


def _export_tar(rootfs: str, dest: str) -> None:
    import sys

    from barque.storage.rootfs_export import export_rootfs

    if dest == "-":
        export_rootfs(rootfs, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    with open(dest, "wb") as out:
        export_rootfs(rootfs, out)


def _export_local(rootfs: str, dest: str) -> None:
    """The rootfs copied into `dest` (made if missing; what it holds is kept, except what
    the export replaces, as Docker's local exporter). The copy never follows a symlink of
    the image (fdtree); it is made beside `dest` first, then moved in."""
    import shutil
    import tempfile

    from barque.linux import fdtree

    dest = os.path.abspath(dest)
    os.makedirs(dest, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=os.path.dirname(dest))
    try:
        src = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            dst = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                fdtree.copy_tree(src, dst)
            finally:
                os.close(dst)
        finally:
            os.close(src)
        _merge(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _merge(src: str, dest: str) -> None:
    """Move `src`'s entries into the directory `dest`, replacing what is in the way."""
    import shutil
    import stat

    for name in os.listdir(src):
        s, d = os.path.join(src, name), os.path.join(dest, name)
        try:
            dst = os.lstat(d)
        except FileNotFoundError:
            os.rename(s, d)
            continue
        if stat.S_ISDIR(dst.st_mode) and stat.S_ISDIR(os.lstat(s).st_mode):
            _merge(s, d)
            continue
        if stat.S_ISDIR(dst.st_mode):
            shutil.rmtree(d)
        else:
            os.unlink(d)
        os.rename(s, d)


def _rows(layers: list[LayerRef]) -> list[list[Any]]:
    return [[la.chain_id, la.diff_id, la.blob_digest, la.media_type, la.blob_size]
            for la in layers]


def _index(k: int, total: int) -> str:
    width = len(str(total))
    return f"{k:>{width}}/{total}"


def _display_ref(ref: str) -> str:
    """As BuildKit names an image in its vertices: fully qualified."""
    if ref == "scratch":
        return ref
    from barque.image import reference as refs

    try:
        return str(refs.parse(ref))
    except refs.ReferenceError:
        return ref


def _platform_obj(text: str) -> dict[str, str]:
    parts = text.split("/")
    out = {"os": parts[0], "architecture": parts[1] if len(parts) > 1 else ""}
    if len(parts) > 2:
        out["variant"] = parts[2]
    return out


_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm",
                 "armel": "arm", "i386": "386", "i686": "386"}


def _platform_text(p: dict[str, Any]) -> str:
    if not p.get("os") or not p.get("architecture"):
        return ""
    return f"{p['os']}/{p['architecture']}" + (f"/{p['variant']}" if p.get("variant") else "")


def runs_natively(platform: str, host: dict[str, str]) -> bool:
    """Whether binaries of `platform` (os/arch[/variant]) run on this host without an
    emulator: the same OS and architecture (the variant aside: arm64's v8 is the only one
    an arm64 host has)."""
    parts = platform.lower().split("/")
    os_name, arch = parts[0], parts[1] if len(parts) > 1 else host.get("architecture", "")
    arch = _ARCH_ALIASES.get(arch, arch)
    host_arch = _ARCH_ALIASES.get(host.get("architecture", ""), host.get("architecture", ""))
    return os_name == host.get("os", "linux") and arch == host_arch
