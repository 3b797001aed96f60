"""RUN --mount: the mounts a RUN step asks for, prepared for the executor (BuildKit's
defaults: cache's id is its target, bind is read-only from the context unless `from=`,
secret at /run/secrets/<id>)."""

from __future__ import annotations

import os

from barque.build import imageconfig as ic
from barque.build.executor import RunMount
from barque.sha256 import hexdigest

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from barque.build.builder import Builder, StageRun

_TRUE = ("", "true", "1")


def _fields(spec: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in spec.split(","):
        key, sep, value = part.strip().partition("=")
        key = key.lower()
        if key in ("ro", "readonly", "rw", "readwrite", "required") and not sep:
            value = "true"
        out[{"dst": "target", "destination": "target", "src": "source",
             "readonly": "ro", "readwrite": "rw"}.get(key, key)] = value
    return out


def run_mounts(builder: Builder, run: StageRun, specs: list[str]) -> list[RunMount]:
    mounts = []
    for spec in specs:
        f = _fields(run.state.word(spec))
        kind = f.pop("type", "bind")
        target = f.pop("target", "")
        if kind == "cache":
            if not target:
                raise ic.ConfigError("mount target is required for cache mounts")
            cache_id = f.pop("id", target)
            path = os.path.join(builder.store.root, "build", "cache-mounts",
                                hexdigest(cache_id.encode())[:32])
            os.makedirs(path, mode=0o755, exist_ok=True)
            readonly = f.pop("ro", "false") in _TRUE
            mounts.append(RunMount("cache", target, path, readonly,
                                   {k: v for k, v in f.items() if k in ("sharing", "mode",
                                                                          "uid", "gid")}
                                   | {"key": "cache:" + cache_id}))
        elif kind == "tmpfs":
            if not target:
                raise ic.ConfigError("mount target is required for tmpfs mounts")
            mounts.append(RunMount("tmpfs", target, None, False,
                                   {k: v for k, v in f.items() if k == "size"}))
        elif kind == "secret":
            secret_id = f.pop("id", "") or os.path.basename(target)
            target = target or f"/run/secrets/{secret_id}"
            # A secret not given stays unset (the executor refuses it when required);
            # its content is never part of the key (BuildKit's rule: secrets do not bust
            # the cache).
            mounts.append(RunMount("secret", target, builder.options.secrets.get(secret_id),
                                   True, {k: v for k, v in f.items()
                                          if k in ("mode", "uid", "gid", "required", "env")}
                                   | {"id": secret_id}))
        elif kind == "bind":
            if not target:
                raise ic.ConfigError("mount target is required for bind mounts")
            mounts.append(_bind(builder, run, target, f))
        else:
            raise ic.ConfigError(f"unsupported mount type {kind!r}")
    return mounts


def _bind(builder: Builder, run: StageRun, target: str, f: dict[str, str]) -> RunMount:
    """A bind mount of the context (or, with from=, of a stage's or image's layers: the top
    layer's unpacked dir when the source is a single layer's; else refused for now)."""
    source = f.get("source", "/")
    readonly = f.get("rw", "false") not in _TRUE
    origin = f.get("from")
    if not readonly:  # BuildKit throws such writes away; they must never reach the source
        raise ic.ConfigError("RUN --mount=type=bind,rw is not supported yet")
    if origin:
        result = builder.stage_result(origin, run.plan.stage.index)
        layers = result.layers if result is not None else builder.image(origin).layers
        chain = layers[-1].chain_id if layers else "empty"
        # Mounted only when the step runs (a cached step needs no mount): see Builder._run.
        return RunMount("bind", target, None, True,
                        {"key": f"layers:{chain}:{source}", "source": source,
                         "from": origin})
    return RunMount("bind", target, resolve_in(builder.options.context_dir, source), True,
                    {"key": f"context:{source}"})


def resolve_in(root: str, source: str) -> str:
    """The host path of `source` inside `root` (symlinks resolved inside it)."""
    from barque.linux import paths

    with paths.rooted(root) as root_fd:
        fd = paths.open_in_root(root_fd, source)
    try:
        return paths.fd_path(fd)
    finally:
        os.close(fd)
