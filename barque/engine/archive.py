"""A container's archive as Docker's API serves it (/containers/{id}/archive) and `cp -`
takes it: a path's stat (Docker's ContainerPathStat), and a tar extracted into a directory
of the container. Both run in a child chrooted into the container's root (engine/chrooted.py)
as copy.py's do: the archive's names and the container's symlinks resolve inside it."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import time

from barque.engine import chrooted, copy
from barque.engine.context import Engine, EngineError
from barque.structs import dataclass

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import IO, Any

# Go's os.FileMode type bits, which Docker's stat carries (the docker CLI tests IsDir()).
_GO_TYPES = ((stat.S_IFDIR, 1 << 31), (stat.S_IFLNK, 1 << 27), (stat.S_IFBLK, 1 << 26),
             (stat.S_IFCHR, (1 << 26) | (1 << 21)), (stat.S_IFIFO, 1 << 25),
             (stat.S_IFSOCK, 1 << 24))
_GO_SETUID, _GO_SETGID, _GO_STICKY = 1 << 23, 1 << 22, 1 << 20


def go_mode(mode: int) -> int:
    value = mode & 0o777
    for kind, bit in _GO_TYPES:
        if stat.S_IFMT(mode) == kind:
            value |= bit
    for unix, go in ((stat.S_ISUID, _GO_SETUID), (stat.S_ISGID, _GO_SETGID),
                     (stat.S_ISVTX, _GO_STICKY)):
        if mode & unix:
            value |= go
    return value


def rfc3339_nano(ns: int) -> str:
    seconds, frac = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return text + (f".{frac:09d}".rstrip("0") if frac else "") + "Z"


@dataclass
class PathStat:
    name: str
    size: int
    mode: int           # Go's os.FileMode
    mtime: str
    link_target: str

    def header(self) -> str:
        """X-Docker-Container-Path-Stat: base64 of the JSON."""
        data = {"name": self.name, "size": self.size, "mode": self.mode,
                "mtime": self.mtime, "linkTarget": self.link_target}
        return base64.b64encode(json.dumps(data).encode()).decode()


def path_stat(path: str, fields: dict[str, Any]) -> PathStat:
    """The stat of container path `path` from the child's report (copy.stat_fields)."""
    return PathStat(_base(path), int(fields["size"]), go_mode(int(fields["mode"])),
                    rfc3339_nano(int(fields["mtime_ns"])), str(fields.get("link") or ""))


def _base(path: str) -> str:
    """Docker's filepath.Base of the path, its trailing `/.` kept."""
    norm = copy._absolute(path)
    if path.endswith("/.") or path == ".":
        return "."
    return norm if norm == "/" else os.path.basename(norm)


def _not_found(path: str, ref: str) -> EngineError:
    return EngineError(f"Could not find the file {path} in container {ref}", 1, 404)


def stat_path(engine: Engine, ref: str, path: str) -> PathStat:
    """HEAD /containers/{id}/archive: the entry at `path` (a last symlink not followed)."""
    record = engine.find(ref)
    with copy._rootfs(engine, record) as rootfs:
        root_fd, inner, _ = copy._source_root(engine, record, rootfs, path)
        try:
            pid, data_fd, status_fd = chrooted.spawn(
                root_fd, lambda data, status: _stat_child(inner, status), chrooted.READ_CAPS)
        finally:
            os.close(root_fd)
        os.close(data_fd)
        status = chrooted.Status(status_fd)
        try:
            fields = status.next() or {}
            chrooted.finish(pid, status)
        except chrooted.ChildError as e:
            copy._reap(pid, status)
            if e.kind in ("FileNotFoundError", "NotADirectoryError"):
                raise _not_found(path, ref) from None
            raise EngineError(str(e), 1) from None
    return path_stat(path, fields)


def _stat_child(path: str, status_fd: int) -> None:
    dir_fd, name, _ = copy._resolve_source(path, ".", False)
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    chrooted.report(status_fd, copy.stat_fields(st, path))


class _NoDestination(Exception):
    pass


class _NotADirectory(Exception):
    pass


class _Refused(Exception):
    """An entry the archive may not make: Docker's words."""


def extract_to(engine: Engine, ref: str, path: str, source: IO[bytes], *,
               preserve_owner: bool = False, no_overwrite_dir_non_dir: bool = False) -> None:
    """PUT /containers/{id}/archive, `cp - CONTAINER:DIR`: the tar (plain, gzip, bzip2 or
    xz) read from `source` is extracted into the directory `path`. Entries are owned by
    the container's root, or as the archive says with `preserve_owner` (copyUIDGID)."""
    import bz2  # noqa: F401 (the child decompresses; after its chroot it imports nothing)
    import lzma  # noqa: F401
    import tarfile  # noqa: F401
    import zlib  # noqa: F401

    record = engine.find(ref)
    with copy._rootfs(engine, record) as rootfs:
        root, inner = copy._root_of(engine, record, rootfs, path)
        _check_writable(record, root, rootfs, path)
        try:
            root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise EngineError(f"{root}: {e.strerror}", 1) from None
        tar_r, tar_w = os.pipe()
        try:
            pid, data_fd, status_fd = chrooted.spawn(
                root_fd, lambda data, status: _extract_child(
                    inner, tar_r, preserve_owner, no_overwrite_dir_non_dir),
                chrooted.WRITE_CAPS, keep_fds=(tar_r,))
        finally:
            os.close(root_fd)
            os.close(tar_r)
        os.close(data_fd)
        _feed(pid, tar_w, source, chrooted.Status(status_fd), path, ref)


def _check_writable(record: Any, root: str, rootfs: str, path: str) -> None:
    """dockerd's refusals (400): the rootfs of a --read-only container (a tmpfs on it does
    not help: it is no volume), a read-only volume or bind mount."""
    from barque.engine.create import mount_from_record

    if root == rootfs:
        if record.host_config.get("ReadonlyRootfs"):
            raise EngineError("container rootfs is marked read-only", 1, 400)
        return
    norm = copy._absolute(path)
    covering = [m for m in map(mount_from_record, record.mounts) if m.type != "tmpfs" and (
        norm == m.target.rstrip("/") or norm.startswith(m.target.rstrip("/") + "/"))]
    if covering and max(covering, key=lambda m: len(m.target)).read_only:
        raise EngineError("mounted volume is marked read-only", 1, 400)


def _feed(pid: int, tar_w: int, source: IO[bytes], status: chrooted.Status, path: str,
          ref: str) -> None:
    """The archive into the child's pipe, then its verdict."""
    try:
        with os.fdopen(tar_w, "wb") as pipe:
            shutil.copyfileobj(source, pipe, 1 << 20)
    except BrokenPipeError:
        pass  # the child stopped reading: its report says why
    except BaseException:
        copy._reap(pid, status)
        raise
    try:
        chrooted.finish(pid, status)
    except chrooted.ChildError as e:
        if e.kind == "_NoDestination":
            raise _not_found(path, ref) from None
        if e.kind in ("_NotADirectory", "_Refused"):
            raise EngineError(str(e), 1, 400) from None
        from barque.image.archive_io import docker_tar_error

        raise EngineError(docker_tar_error(str(e)) or f"Error processing tar file({e})", 1,
                          500) from None


def _extract_child(dest: str, tar_fd: int, preserve_owner: bool, no_overwrite: bool) -> None:
    """(In the chrooted child) the tar on `tar_fd` extracted into `dest`."""
    import tarfile

    target = copy._absolute(dest)
    try:
        st = os.stat(target)
    except (FileNotFoundError, NotADirectoryError):
        raise _NoDestination(target) from None
    if not stat.S_ISDIR(st.st_mode):
        raise _NotADirectory("extraction point is not a directory")

    def accept(member: tarfile.TarInfo, into: str) -> tarfile.TarInfo:
        return _member(member, into, preserve_owner, no_overwrite)

    with os.fdopen(tar_fd, "rb") as f:
        try:
            tar = tarfile.open(fileobj=f, mode="r|*")
        except tarfile.ReadError as e:
            if str(e) == "empty file":  # no bytes: an empty archive, as Go's reader takes it
                return
            raise
        with tar:
            tar.extractall(target, numeric_owner=True, filter=accept)
            while f.read(1 << 16):  # the archive's padding: the writer is not cut off
                pass


def _within(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def _member(member: Any, into: str, preserve_owner: bool, no_overwrite: bool) -> Any:
    """Docker's untar rules for one entry: names below `into` (a leading / is dropped), no
    `..` out of it, not even through a link's target; the owner the container's root unless
    kept."""
    name = member.name.lstrip("/")
    path = os.path.normpath(os.path.join(into, name))
    if not _within(path, into):
        raise _Refused(f'"{member.name}" is outside of "{into}"')
    changes: dict[str, Any] = {"name": name}
    if member.islnk():
        changes["linkname"] = member.linkname.lstrip("/")
        if not _within(os.path.normpath(os.path.join(into, changes["linkname"])), into):
            raise _Refused(f'invalid hardlink "{member.linkname}" -> "{member.name}"')
    elif member.issym() and not member.linkname.startswith("/") and not _within(
            os.path.normpath(os.path.join(os.path.dirname(path), member.linkname)), into):
        raise _Refused(f'invalid symlink "{member.name}" -> "{member.linkname}"')
    if no_overwrite and os.path.lexists(path) and path != into:
        is_dir = os.path.isdir(path) and not os.path.islink(path)
        if is_dir and not member.isdir():
            raise _Refused(f'cannot overwrite directory "{path}" with non-directory '
                           f'"{member.name}"')
        if not is_dir and member.isdir():
            raise _Refused(f'cannot overwrite non-directory "{path}" with directory '
                           f'"{member.name}"')
    if not preserve_owner:
        changes.update(uid=0, gid=0, uname="", gname="")
    return member.replace(**changes, deep=False)
