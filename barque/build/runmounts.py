"""RUN --mount: the mounts a RUN step asks for (read by dockerfile/mounts.py, BuildKit's
defaults filled in), prepared for the executor: a cache mount's persistent dir under the
root, a secret's host file, a bind's source resolved inside the context (or, with `from=`,
inside a stage's or image's files: mounted only when the step runs, see Builder._run)."""

from __future__ import annotations

import os

from barque.build import imageconfig as ic
from barque.build.executor import RunMount
from barque.sha256 import hexdigest

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from barque.build.builder import Builder, StageRun
    from barque.build.dockerfile.instructions import Instruction
    from barque.build.dockerfile.mounts import MountSpec


def cache_mount_dir(root: str, cache_id: str) -> str:
    return os.path.join(root, "build", "cache-mounts", hexdigest(cache_id.encode())[:32])


def _ids(m: MountSpec) -> dict[str, str]:
    out = {}
    if m.mode is not None:
        out["mode"] = format(m.mode, "o")
    if m.uid is not None:
        out["uid"] = str(m.uid)
    if m.gid is not None:
        out["gid"] = str(m.gid)
    return out


def run_mounts(builder: Builder, run: StageRun, instr: Instruction) -> list[RunMount]:
    from barque.build.dockerfile.mounts import run_mounts as read

    state = run.state
    try:
        specs = read(instr.flags, state.scope(), state.escape, state.workdir)
    except ValueError as e:
        raise ic.ConfigError(str(e)) from None
    return [_mount(builder, run, m) for m in specs]


def _mount(builder: Builder, run: StageRun, m: MountSpec) -> RunMount:
    if m.type == "cache":
        if m.from_:
            raise ic.ConfigError("RUN --mount=type=cache,from= is not supported yet")
        path = cache_mount_dir(builder.store.root, m.id)
        os.makedirs(path, mode=0o755, exist_ok=True)
        # The cache's content is never part of the key (BuildKit's rule).
        return RunMount("cache", m.target, path, m.readonly,
                        {"sharing": m.sharing, "id": m.id, **_ids(m)})
    if m.type == "tmpfs":
        return RunMount("tmpfs", m.target, None, False,
                        {"size": str(m.size)} if m.size else {})
    if m.type == "secret":
        # A secret not given stays unset (the executor refuses it when required); its
        # content is never part of the key either.
        options = {"id": m.id, "required": "true" if m.required else "false", **_ids(m)}
        if m.env is not None:
            options["env"] = m.env
        return RunMount("secret", m.target, builder.options.secrets.get(m.id), True, options)
    if m.type == "bind":
        return _bind(builder, run, m)
    raise ic.ConfigError(f"RUN --mount=type={m.type} is not supported")


def _bind(builder: Builder, run: StageRun, m: MountSpec) -> RunMount:
    source = m.source or "/"
    # A `from=` source, or a writable (rw) one, is mounted only when the step runs, each a
    # snapshot of its own: BuildKit throws writes to a bind mount away, and they must never
    # reach a layer of the store or the context (Builder._mount_sources).
    if m.from_:
        result = builder.stage_result(m.from_, run.plan.stage.index)
        layers = result.layers if result is not None else builder.image(m.from_).layers
        chain = layers[-1].chain_id if layers else "empty"
        return RunMount("bind", m.target, None, m.readonly,
                        {"key": f"layers:{chain}:{source}", "source": source,
                         "from": m.from_})
    from barque.build import sources

    context = builder.options.context_dir
    try:
        # Keyed by the content it shows, as a COPY of it would be.
        found = sources.match_sources(context, [source], ignore=builder.ignore,
                                      allow_wildcards=False)
        digest = sources.checksum(context, found, ignore=builder.ignore)
        if not m.readonly:
            return RunMount("bind", m.target, None, False,
                            {"key": f"context:{source}:{digest}", "source": source,
                             "context": context})
        return RunMount("bind", m.target, resolve_in(context, source), True,
                        {"key": f"context:{source}:{digest}"})
    except sources.SourceError as e:
        raise ic.ConfigError(str(e)) from None


def resolve_in(root: str, source: str) -> str:
    """The host path of `source` inside `root` (symlinks resolved inside it)."""
    from barque.linux import paths

    with paths.rooted(root) as root_fd:
        fd = paths.open_in_root(root_fd, source)
    try:
        return paths.fd_path(fd)
    finally:
        os.close(fd)
