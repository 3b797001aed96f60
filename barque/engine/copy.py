"""`docker cp`: files between a container (running or not) and the host, with Docker's path
rules. Container paths resolve inside the container's root (symlinks cannot lead out) or the
volume or bind mount covering them; a stopped container's snapshot is mounted for the copy."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from barque.engine.context import Engine, EngineError
from barque.engine.create import lowers_of, mount_from_record
from barque.engine.records import ContainerRecord
from barque.engine.users import RootfsError, secure_join
from barque.image.store import ImageError
from barque.storage import snapshot


@contextmanager
def _rootfs(engine: Engine, record: ContainerRecord) -> Iterator[str]:
    snap = snapshot.Snapshot(engine.paths.snapshot_dir(record.id))
    was_mounted = os.path.ismount(snap.merged)
    try:
        rootfs = snap.prepare(lowers_of(engine, record.id, engine.store.get(record.image_id)))
    except (ImageError, snapshot.SnapshotError) as e:
        raise EngineError(str(e), 1) from None
    try:
        yield rootfs
    finally:
        if not was_mounted and not engine.state(record)["Running"]:
            snap.unmount()


def _copy(src: str, dst: str, contents_only: bool, owner: tuple[int, int] | None) -> None:
    """Docker's rules: a dir into an existing dir lands inside it (or its contents, for
    "SRC/."); a file onto an existing dir lands inside it; else dst is the new name."""
    if not os.path.lexists(src):
        raise EngineError(f"Could not find the file {src} in container", 1, 404)
    if os.path.isdir(src) and not os.path.islink(src):
        if os.path.isdir(dst) and not contents_only:
            dst = os.path.join(dst, os.path.basename(src.rstrip("/")))
        shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
    else:
        if os.path.isdir(dst):
            dst = os.path.join(dst, os.path.basename(src))
        elif not os.path.isdir(os.path.dirname(dst) or "."):
            raise EngineError(f"no such directory: {os.path.dirname(dst)}", 1, 404)
        shutil.copy2(src, dst, follow_symlinks=False)
    if owner is not None:
        _chown_tree(dst, owner)


def _chown_tree(path: str, owner: tuple[int, int]) -> None:
    os.lchown(path, *owner)
    if os.path.isdir(path) and not os.path.islink(path):
        for base, dirs, files in os.walk(path):
            for name in dirs + files:
                os.lchown(os.path.join(base, name), *owner)


def copy_from(engine: Engine, ref: str, path: str, dest: str, *, archive: bool = False,
              follow: bool = False) -> None:
    record = engine.find(ref)
    with _rootfs(engine, record) as rootfs:
        root, inner = _root_of(engine, record, rootfs, path)
        try:
            # secure_join resolves symlinks as the container would (within root); without
            # -L a final symlink is copied as a link.
            src = secure_join(root, inner) if follow else os.path.join(
                secure_join(root, os.path.dirname(inner)), os.path.basename(inner))
        except RootfsError as e:
            raise EngineError(str(e), 1) from None
        if not os.path.lexists(src):
            raise EngineError(f"Could not find the file {path} in container {ref}", 1, 404)
        owner = None if archive else (os.getuid(), os.getgid())
        _copy(src, dest, path.endswith("/."), owner)


def copy_to(engine: Engine, ref: str, source: str, path: str, *, archive: bool = False,
            follow: bool = False) -> None:
    record = engine.find(ref)
    if follow:
        source = os.path.realpath(source)
    if not os.path.lexists(source):
        raise EngineError(f"could not find the file {source} on the host", 1, 404)
    with _rootfs(engine, record) as rootfs:
        root, inner = _root_of(engine, record, rootfs, path)
        owner = None if archive else (0, 0)
        _copy_into(root, inner, source, source.endswith("/."), owner)


def _root_of(engine: Engine, record: ContainerRecord, rootfs: str, path: str) -> tuple[str, str]:
    """(the host dir that is `/` for the copy, the path below it): the rootfs, or the volume
    or bind mount covering `path`."""
    norm = os.path.normpath("/" + path)
    best = None
    for entry in record.mounts:
        mount = mount_from_record(entry)
        target = os.path.normpath(mount.target)
        if (norm == target or norm.startswith(target.rstrip("/") + "/")) and mount.type != \
                "tmpfs" and (best is None or len(target) > len(best[0])):
            source = os.path.join(engine.volumes.dir, mount.source, "_data") \
                if mount.type == "volume" else mount.source
            best = (target, source)
    if best is None:
        return rootfs, norm + ("/" if path.endswith("/") else "")
    return best[1], "/" + os.path.relpath(norm, best[0])


def _copy_into(root: str, dest: str, source: str, contents_only: bool,
               owner: tuple[int, int] | None) -> None:
    """Copy host `source` to `dest` as seen from `root`, in a child chrooted there: whatever
    symlinks the container planted resolve inside it, never onto the host."""
    import json

    read_end, write_end = os.pipe()
    src_fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        code = 0
        try:
            os.chroot(root)
            os.chdir("/")
            _copy_from_fd(src_fd, os.path.basename(source.rstrip("/.")) or "source", dest,
                          contents_only, owner)
        except BaseException as e:  # noqa: BLE001 (reported to the parent)
            message = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            where = getattr(e, "filename", None)
            os.write(write_end, json.dumps(f"{where}: {message}" if where else message)
                     .encode())
            code = 1
        os._exit(code)
    os.close(write_end)
    os.close(src_fd)
    with os.fdopen(read_end, "rb") as f:
        error = f.read()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise EngineError(json.loads(error) if error else "copy failed", 1)


def _copy_from_fd(src_fd: int, name: str, dest: str, contents_only: bool,
                  owner: tuple[int, int] | None) -> None:
    import stat

    st = os.fstat(src_fd)
    if not stat.S_ISDIR(st.st_mode):
        if os.path.isdir(dest):
            dest = os.path.join(dest, name)
        elif not os.path.isdir(os.path.dirname(dest.rstrip("/")) or "/"):
            raise FileNotFoundError(2, "no such directory", os.path.dirname(dest))
        _copy_file(src_fd, dest, st, owner)
        return
    if os.path.isdir(dest) and not contents_only:
        dest = os.path.join(dest, name)
    os.makedirs(dest, exist_ok=True)
    _copy_meta(dest, st, owner)
    for base, dirs, files, dir_fd in os.fwalk(".", dir_fd=src_fd):
        target_dir = os.path.normpath(os.path.join(dest, base))
        for entry in dirs + files:
            est = os.stat(entry, dir_fd=dir_fd, follow_symlinks=False)
            target = os.path.join(target_dir, entry)
            if stat.S_ISDIR(est.st_mode):
                os.makedirs(target, exist_ok=True)
                _copy_meta(target, est, owner)
            elif stat.S_ISLNK(est.st_mode):
                if os.path.lexists(target):
                    os.unlink(target)
                os.symlink(os.readlink(entry, dir_fd=dir_fd), target)
                os.lchown(target, *(owner or (est.st_uid, est.st_gid)))
            elif stat.S_ISREG(est.st_mode):
                fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
                try:
                    _copy_file(fd, target, est, owner)
                finally:
                    os.close(fd)


def _copy_file(src_fd: int, dest: str, st: os.stat_result,
               owner: tuple[int, int] | None) -> None:
    if os.path.islink(dest):
        os.unlink(dest)
    out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.lseek(src_fd, 0, os.SEEK_SET)
        while True:
            chunk = os.read(src_fd, 1 << 20)
            if not chunk:
                break
            os.write(out, chunk)
    finally:
        os.close(out)
    _copy_meta(dest, st, owner)


def _copy_meta(path: str, st: os.stat_result, owner: tuple[int, int] | None) -> None:
    os.chown(path, *(owner or (st.st_uid, st.st_gid)))
    os.chmod(path, st.st_mode & 0o7777)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
