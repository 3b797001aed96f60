"""`docker build`: the one entry point the CLI and `barque serve`'s /build call.

It parses the Dockerfile, reads the context's .dockerignore, resolves (or pulls) the base
images, gives the builder the engine's RUN executor, and turns the builder's failures into
EngineErrors with Docker's exit codes. The build holds the image store's writer lock, so the
collector never removes a layer the build is about to use. (`system df`'s and `builder
prune`'s side of the cache: barque/engine/system.py.)
"""

from __future__ import annotations

import time

from barque.build.events import Events, NoEvents, Vertex
from barque.build.options import BuildOptions, BuildResult
from barque.engine.errors import EngineError

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

    from barque.build.dockerfile.instructions import Dockerfile
    from barque.build.executor import RunRequest
    from barque.engine.context import Engine
    from barque.image.store import Image


class BuildFailed(EngineError):
    """A build that stopped: the message is BuildKit's (`process "/bin/sh -c exit 3" did not
    complete successfully: exit code: 3`); `vertex` the failing step, `filename`, `line`
    and `end_line` the Dockerfile lines to show."""

    def __init__(self, message: str, *, vertex: Vertex | None = None,
                 filename: str = "Dockerfile", line: int = 0, end_line: int = 0) -> None:
        super().__init__(message, 1, 400 if line and vertex is None else 500)
        self.vertex = vertex
        self.filename = filename
        self.line = line
        self.end_line = end_line


class _LazyExecutor:
    """The engine's RUN executor, imported on the first RUN that is not cached: a cached
    rebuild never loads the runtime and network code."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._executor: Any = None

    def run(self, request: RunRequest, output: Any) -> int:
        if self._executor is None:
            from barque.engine.build_run import EngineExecutor

            self._executor = EngineExecutor(self.engine)
        return int(self._executor.run(request, output))


def _vertex(events: Events, number: int, name: str, size: int | None = None) -> None:
    """One of the steps BuildKit shows before the build's own: `[internal] load build
    definition from Dockerfile` with its `transferring dockerfile: 87B done` line."""
    now = time.monotonic()
    v = Vertex(number, name, started=now)
    events.vertex(v)
    status = getattr(events, "status", None)  # optional for a front end
    if size is not None and status is not None:
        status(v, "transferring dockerfile:", current=size, started=now,
               completed=time.monotonic())
    v.completed = time.monotonic()
    events.vertex(v)


def build(engine: Engine, options: BuildOptions, events: Events | None = None,
          *, executor: Any = None) -> BuildResult:
    """Build `options` (the Dockerfile's text and the context dir); `executor` replaces the
    engine's RUN executor (tests)."""
    from barque.build.dockerfile.instructions import DockerfileError

    events = events or NoEvents()
    try:
        from barque.build.dockerfile import parser

        dockerfile = parser.parse(options.dockerfile, options.dockerfile_name)
    except DockerfileError as e:
        raise BuildFailed(str(e), filename=e.filename, line=e.line) from None
    return build_parsed(engine, dockerfile, options, events, executor=executor)


def build_parsed(engine: Engine, dockerfile: Dockerfile, options: BuildOptions,
                 events: Events | None = None, *, executor: Any = None) -> BuildResult:
    """`build` of an already parsed Dockerfile."""
    from barque.build.builder import Builder, BuildError

    events = events or NoEvents()
    _check_cache_from(options.cache_from)
    _vertex(events, 1, f"[internal] load build definition from {options.dockerfile_name}",
            len(options.dockerfile))
    ignore = _ignore(options)
    _vertex(events, 2, "[internal] load .dockerignore")
    store = engine.store

    def resolve(ref: str, platform: str | None) -> Image:
        return _resolve(store, ref, platform or options.platform, options.pull)

    def cache_image(ref: str) -> Image:
        return _cache_image(store, ref, options.platform)

    builder = Builder(store, dockerfile, options, executor or _LazyExecutor(engine), events,
                      resolve_image=resolve, ignore=ignore, numbered=2,
                      cache_image=cache_image, cache_registry=_CacheRegistry())
    _reclaim(engine)
    try:
        with store.writing():
            return builder.run()
    except BuildError as e:
        raise BuildFailed(str(e), vertex=e.vertex, filename=e.filename, line=e.line,
                          end_line=e.end_line) from None
    except EngineError:
        raise
    except Exception as e:  # the store's and the registry's errors: Docker's exit 1
        from barque.image.store import ImageError

        if isinstance(e, (ImageError, OSError)):
            raise BuildFailed(str(e)) from None
        raise


def _reclaim(engine: Engine) -> None:
    """What killed builds left, unmade before this build, also one with no work to do: their
    RUNs' containers, network and files (build_reclaim; "build-runs" is build_run.RUNS_DIR),
    then their steps' snapshots (build/layers.py). A listdir each when there is nothing."""
    import os

    if _listed(os.path.join(engine.paths.runroot, "build-runs")):
        from barque.engine import build_reclaim

        build_reclaim.reclaim(engine)
    tmp = os.path.join(engine.paths.root, "build", "tmp")  # build/layers.py's build_tmp
    if _listed(tmp):
        from barque.build.layers import reclaim

        reclaim(tmp)


def _listed(path: str) -> bool:
    import os

    try:
        return bool(os.listdir(path))
    except FileNotFoundError:
        return False


def _ignore(options: BuildOptions) -> Any:
    """The context's .dockerignore matcher."""
    from barque.build import ignore

    try:
        return ignore.load(options.context_dir, options.dockerfile_name)
    except ignore.IgnoreError as e:
        raise BuildFailed(f"failed to parse dockerignore: {e}") from None


def _check_cache_from(items: list[str]) -> None:
    """--cache-from names images or registry caches (the CLI reads buildx's
    `type=registry,ref=X` as X, and `type=local,src=DIR` into options.cache_from_local);
    the other cache kinds (gha, s3) are not supported: refused up front."""
    for item in items:
        if "=" in item or "," in item:
            raise BuildFailed(f"unsupported --cache-from {item!r}: only an image or a "
                              "registry cache (NAME[:TAG] or type=registry,ref=NAME[:TAG]) "
                              "or a directory (type=local,src=DIR) can be a cache source")


class _CacheRegistry:
    """engine/build_cache, for --cache-from/--cache-to of cache manifests in a registry
    (imported only when a build uses one)."""

    @staticmethod
    def load(store: Any, ref: str) -> Any:
        from barque.engine import build_cache

        return build_cache.load(store, ref)

    @staticmethod
    def push(store: Any, ref: str, *parts: Any) -> Any:
        from barque.engine import build_cache

        return build_cache.push(store, ref, *parts)


def _cache_image(store: Any, ref: str, platform: str | None) -> Image:
    """A --cache-from image: the local one, else pulled (as `docker pull`: it stays)."""
    from barque.engine import images
    from barque.image.store import ImageError
    from barque.registry.errors import RegistryError

    found = store.lookup(ref)
    if found is not None:
        return found
    try:
        return images.pull(store, ref, platform=platform).image
    except RegistryError as e:
        raise ImageError(str(e)) from None


def _resolve(store: Any, ref: str, platform: str | None, pull: bool) -> Image:
    from barque.engine import images
    from barque.image.store import ImageError

    try:
        if pull and not images.is_default_reference(ref):
            return images.pull(store, ref, platform=platform).image
        return images.find_or_pull(store, ref, platform=platform)
    except ImageError as e:
        raise BuildFailed(f"failed to resolve source metadata for {ref}: {e}") from None


def open_remote_context(engine: Engine, url: str, dockerfile: str | None,
                        build_args: dict[str, str]) -> Any:
    """POST /build?remote=URL (dockerd's remotecontext.Detect): a git repository
    (build/gitsource.py) checked out under the root's tmp, or any other http(s) URL
    downloaded there (build/urlsource.py: dockerd's Content-Type rule, its words and
    statuses); anything else is dockerd's 400."""
    import os

    from barque.build import gitsource, urlsource
    from barque.build.context import ContextError, keep_git_dir, open_context, open_url, reclaim

    is_git = gitsource.is_git_url(url)
    if not is_git and not urlsource.is_url(url):
        raise EngineError(f"remoteURL ({url}) could not be recognized as URL", 1, 400)
    tmp_dir = os.path.join(engine.paths.root, "tmp")
    os.makedirs(tmp_dir, mode=0o700, exist_ok=True)
    reclaim(tmp_dir)
    try:
        if is_git:
            return open_context(url, dockerfile=dockerfile, tmp_dir=tmp_dir,
                                keep_git=keep_git_dir(build_args))
        return open_url(url, dockerfile=dockerfile, tmp_dir=tmp_dir, daemon=True)
    except urlsource.UrlError as e:
        raise EngineError(str(e), 1, e.status) from None
    except (ContextError, OSError) as e:
        raise EngineError(str(e), 1, 400) from None


def open_stream_context(engine: Engine, stream: Any, dockerfile: str | None) -> Any:
    """A context sent as a stream (`barque serve`'s /build body, a tar, maybe compressed),
    unpacked under the root's tmp (after what killed builds left there is removed), as the
    CLI's `-`. Bad input raises EngineError (400) with the context reader's words."""
    import os

    from barque.build.context import ContextError, open_context, reclaim

    tmp_dir = os.path.join(engine.paths.root, "tmp")
    os.makedirs(tmp_dir, mode=0o700, exist_ok=True)
    reclaim(tmp_dir)
    try:
        return open_context("-", dockerfile=dockerfile, stdin=stream, tmp_dir=tmp_dir)
    except (ContextError, OSError) as e:
        raise EngineError(str(e), 1, 400) from None
