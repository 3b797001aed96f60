"""RUN --mount: the mounts a RUN step asks for (read by dockerfile/mounts.py, BuildKit's
defaults filled in), prepared for the executor: a cache mount's persistent dir under the
root, a secret's host file, a bind's source resolved inside the context (or, with `from=`,
inside a stage's or image's files: mounted only when the step runs, see Builder._run)."""

from __future__ import annotations

import os
import stat

from barque.build import imageconfig as ic
from barque.build.executor import RunMount

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

    from barque.build.builder import Builder, StageRun
    from barque.build.dockerfile.instructions import Instruction
    from barque.build.dockerfile.mounts import MountSpec
    from barque.build.ignore import Matcher


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
        from barque.build import cachemounts

        # Made (and locked as in use) only when the step runs (Builder._hold_caches). The
        # cache's content is never part of the key (BuildKit's rule).
        path = cachemounts.mount_dir(builder.store.root, m.id)
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
        if not m.readonly or builder.ignore:
            # Mounted when the step runs: writable, or a view without what .dockerignore
            # leaves out (BuildKit's context never holds it; Builder._mount_sources).
            return RunMount("bind", m.target, None, m.readonly,
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


def hide_ignored(context: str, ignore: Matcher, dest: str) -> bool:
    """Make `dest` an overlay lower dir that, above `context`, hides what `ignore` leaves
    out of it: a whiteout for each excluded entry (one for a whole excluded directory
    unless an exception may re-include something below it), its directories with the
    context's modes, owners and times. False (and `dest` not made) when nothing is left
    out. One walk of the context and no copy of a file: made once per build."""
    hidden = _excluded(context, ignore)
    if not hidden:
        return False
    os.mkdir(dest, 0o755)
    _same_attrs(context, dest)
    made = {""}
    for rel in hidden:
        parts = rel.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d not in made:
                os.mkdir(os.path.join(dest, d), 0o755)
                _same_attrs(os.path.join(context, d), os.path.join(dest, d))
                made.add(d)
        os.mknod(os.path.join(dest, rel), stat.S_IFCHR, 0)  # an overlay whiteout
    for d in sorted(made, reverse=True):  # the mtimes the mknods changed
        _same_attrs(os.path.join(context, d), os.path.join(dest, d))
    return True


def _same_attrs(src: str, dst: str) -> None:
    st = os.lstat(src)
    os.chown(dst, st.st_uid, st.st_gid)
    os.chmod(dst, stat.S_IMODE(st.st_mode))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


def _excluded(context: str, ignore: Matcher) -> list[str]:
    """The context's entries `ignore` leaves out, an excluded directory as one entry
    when nothing below it is re-included (never following a symlink)."""
    root = os.open(context, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _scan(root, "", None, ignore)[0]
    except RecursionError:
        raise ic.ConfigError(f"{context}: too many levels of directories") from None


def _scan(fd: int, rel: str, info: Any, ignore: Matcher) -> tuple[list[str], bool]:
    """(what to hide below the open dir `fd`, whether anything below it stays); closes
    `fd`."""
    try:
        with os.scandir(fd) as it:
            entries = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in it)
        hidden: list[str] = []
        kept = False
        for name, is_dir in entries:
            path = f"{rel}/{name}" if rel else name
            excluded, child_info = ignore.check(path, info)
            if excluded and not (is_dir and ignore.may_match_children(path)):
                hidden.append(path)
                continue
            kept = kept or not excluded
            if not is_dir:
                continue
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                          dir_fd=fd)
            below, below_kept = _scan(sub, path, child_info, ignore)
            if excluded and not below_kept:
                hidden.append(path)  # nothing re-included: hidden whole
            else:
                kept = True
                hidden.extend(below)
        return hidden, kept
    finally:
        os.close(fd)
