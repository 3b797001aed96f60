"""`docker cp`: files between a container (running or not) and the host, with Docker's path
rules. Container paths resolve inside the container's root (symlinks cannot lead out) or the
volume or bind mount covering them; a stopped container's snapshot is mounted for the copy."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager

from barque.engine import chrooted, userns
from barque.engine.context import Engine, EngineError
from barque.engine.create import lowers_of, mount_from_record
from barque.engine.records import ContainerRecord
from barque.image.store import ImageError
from barque.storage import snapshot
from barque.storage.rootfs_export import export_entry

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import IO


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


def copy_from(engine: Engine, ref: str, path: str, dest: str, *, archive: bool = False,
              follow: bool = False, out: IO[bytes] | None = None,
              on_stat: Callable[[dict[str, object]], None] | None = None) -> None:
    """`docker cp CONTAINER:PATH DEST`; with `out`, the archive itself is written there
    (DEST `-`), after on_stat(the source's stat: engine/archive.py's fields) if given.
    The container's side is read by a child chrooted into its root (see
    engine/chrooted.py): the host only ever sees the archive that child makes."""
    from barque.storage import copy_archive

    record = engine.find(ref)
    with _rootfs(engine, record) as rootfs:
        root_fd, inner, pseudo = _source_root(engine, record, rootfs, path)
        # A volume's own mount point is the child's "/": its archive keeps the name.
        top = (os.path.basename(_absolute(path)) or ".") if _absolute(inner) == "/" else "."
        # a remapped container's files in its own ids, as it sees them
        owners = snapshot.Snapshot(engine.paths.snapshot_dir(record.id)).owners_inside()
        try:
            pid, data_fd, status_fd = chrooted.spawn(
                root_fd, lambda data, status: _archive(inner, top, follow, pseudo, data,
                                                       status, owners),
                chrooted.READ_CAPS)
        finally:
            os.close(root_fd)
        status = chrooted.Status(status_fd)
        with os.fdopen(data_fd, "rb") as data:
            try:
                head = status.next() or {}
                if on_stat is not None:
                    on_stat(head)
                if out is not None:
                    shutil.copyfileobj(data, out, 1 << 20)
                else:
                    into, rename = copy_archive.plan(dest, bool(head.get("dir")))
                    copy_archive.extract(data, into, str(head.get("name")), rename, archive)
                chrooted.finish(pid, status)
            except chrooted.ChildError as e:
                _reap(pid, status)
                if e.kind == "FileNotFoundError":
                    raise EngineError(f"Could not find the file {path} in container {ref}",
                                      1, 404) from None
                raise EngineError(str(e), 1) from None
            except copy_archive.CopyError as e:
                message = _child_error(pid, status) or str(e)  # a cut archive: say why
                raise EngineError(message, 1) from None
            except BaseException:  # the reader went away (a client that hung up)
                _reap(pid, status)
                raise


def _child_error(pid: int, status: chrooted.Status) -> str | None:
    """The child's own error, if it reported one, once it is ended and reaped."""
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
    try:
        chrooted.finish(pid, status)
    except chrooted.ChildError as e:
        return str(e) if e.kind else None
    return None


def _reap(pid: int, status: chrooted.Status) -> None:
    """The child after a failure on either side: ended, waited for, its pipe closed."""
    try:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
    status.close()


def _source_root(engine: Engine, record: ContainerRecord, rootfs: str,
                 path: str) -> tuple[int, str, tuple[str, ...]]:
    """(an fd of the dir the child chroots into, `path` below it, the container's pseudo
    filesystems a directory copy does not descend into). A running container's root is
    its init's, as its own processes see it (volumes, /etc/hosts); that it is the
    container's is checked against its rootfs, so a pid reused meanwhile is never taken."""
    state = engine.state(record)
    if state["Running"] and state["Pid"]:
        pid = int(state["Pid"])
        try:
            fd = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            fd = -1
        if fd >= 0:
            st, want = os.fstat(fd), os.stat(rootfs)
            if (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino):
                return fd, path, _pseudo_mounts(pid)
            os.close(fd)
    root, inner = _root_of(engine, record, rootfs, path)
    try:
        return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), inner, ()
    except OSError as e:
        raise EngineError(f"{root}: {e.strerror}", 1) from None


_PSEUDO = ("proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "securityfs", "debugfs",
           "tracefs", "bpf", "fusectl", "configfs")


def _pseudo_mounts(pid: int) -> tuple[str, ...]:
    """Mount points (as the container names them) of the kernel's pseudo filesystems and
    of /dev: what `docker cp` of a directory leaves out, as Docker's own mount has none."""
    from barque.linux.mountinfo import unescape

    try:
        with open(f"/proc/{pid}/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return ()
    found = []
    for line in lines:
        fields, _, tail = line.partition(" - ")
        parts = fields.split(" ")
        if not tail or len(parts) < 5:
            continue
        point = unescape(parts[4])
        if tail.split(" ")[0] in _PSEUDO or point == "/dev":
            found.append(point)
    return tuple(found)


def _absolute(path: str) -> str:
    """`path` made absolute and clean (normpath keeps a leading "//": not here)."""
    return os.path.normpath("/" + path.lstrip("/"))


def _archive(path: str, top: str, follow: bool, pseudo: tuple[str, ...], data_fd: int,
             status_fd: int, owners: Callable[[int, int], tuple[int, int]] | None = None
             ) -> None:
    """(In the chrooted child) `path` as Docker's archive of it, to `data_fd`; `top` is
    the name "/" itself gets."""
    dir_fd, name, tar_name = _resolve_source(path, top, follow)
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    skip = set()
    for point in pseudo:
        try:
            skip.add(os.stat(point, follow_symlinks=False).st_dev)
        except OSError:
            pass
    skip.discard(os.stat("/").st_dev)
    chrooted.report(status_fd, {"dir": stat.S_ISDIR(st.st_mode), "name": tar_name,
                                **stat_fields(st, path)})
    with os.fdopen(data_fd, "wb") as out:
        export_entry(dir_fd, name, tar_name, out, frozenset(skip), owners)


def stat_fields(st: os.stat_result, path: str) -> dict[str, object]:
    """(In the chrooted child) what Docker's path stat tells of the entry `st` at `path`
    besides its name: a symlink's target is resolved in this root, as Docker's linkTarget."""
    link = os.path.realpath(_absolute(path)) if stat.S_ISLNK(st.st_mode) else ""
    return {"size": st.st_size, "mode": st.st_mode, "mtime_ns": st.st_mtime_ns,
            "link": link}


def _resolve_source(path: str, top: str, follow: bool) -> tuple[int, str, str]:
    """(In the chrooted child) (the dir holding the source, its name there, the name its
    archive gives it), as Docker's ResolvePath: symlinks are followed (inside this root)
    but for the last component, which only -L follows; `DIR/.` is DIR's contents."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    norm = _absolute(path)
    if path.endswith("/.") or path == ".":
        return os.open(norm, flags), ".", "."
    if norm == "/":
        return os.open(norm, flags), ".", top
    if path.endswith("/"):  # asserted to be a directory: a symlink to one is followed
        return os.open(norm, flags), ".", os.path.basename(norm)
    parent, base = os.path.split(norm)
    dir_fd = os.open(parent, flags)
    st = os.stat(base, dir_fd=dir_fd, follow_symlinks=False)
    if follow and stat.S_ISLNK(st.st_mode):
        os.close(dir_fd)
        target = os.path.realpath(norm)  # resolved in this root: it is the chroot's /
        if target == "/":
            return os.open("/", flags), ".", base
        parent, name = os.path.split(target)
        return os.open(parent, flags), name, base
    return dir_fd, base, base

def copy_to(engine: Engine, ref: str, source: str, path: str, *, archive: bool = False,
            follow: bool = False) -> None:
    record = engine.find(ref)
    if follow:
        source = os.path.realpath(source)
    if not os.path.lexists(source):
        raise EngineError(f"could not find the file {source} on the host", 1, 404)
    with _rootfs(engine, record) as rootfs:
        root, inner = _root_of(engine, record, rootfs, path)
        # the container's root: a remapped one's is its mapped uid on the host
        mapped = userns.root_of(snapshot.Snapshot(engine.paths.snapshot_dir(record.id)).idmap)
        owner = None if archive else mapped or (0, 0)
        _copy_into(root, inner, source, source.endswith("/."), owner)


def _root_of(engine: Engine, record: ContainerRecord, rootfs: str, path: str) -> tuple[str, str]:
    """(the host dir that is `/` for the copy, the path below it): the rootfs, or the volume
    or bind mount covering `path`."""
    norm = _absolute(path)
    best = None
    for entry in record.mounts:
        mount = mount_from_record(entry)
        target = os.path.normpath(mount.target)
        if (norm == target or norm.startswith(target.rstrip("/") + "/")) and mount.type != \
                "tmpfs" and (best is None or len(target) > len(best[0])):
            source = os.path.join(engine.volumes.dir, mount.source, "_data") \
                if mount.type == "volume" else mount.source
            best = (target, source)
    # Docker's trailing "/." (contents) and "/" (must be a dir) are kept.
    suffix = "/." if path.endswith("/.") else "/" if path.endswith("/") else ""
    if best is None:
        return rootfs, norm.rstrip("/") + suffix if suffix else norm
    return best[1], os.path.normpath("/" + os.path.relpath(norm, best[0])).rstrip("/") + suffix


def _copy_into(root: str, dest: str, source: str, contents_only: bool,
               owner: tuple[int, int] | None) -> None:
    """Copy host `source` to `dest` as seen from `root`, in a child chrooted there: whatever
    symlinks the container planted resolve inside it, never onto the host."""
    src_fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        os.close(src_fd)
        raise EngineError(f"{root}: {e.strerror}", 1) from None
    name = os.path.basename(source.rstrip("/.")) or "source"
    try:
        pid, data_fd, status_fd = chrooted.spawn(
            root_fd, lambda data, status: _copy_from_fd(src_fd, name, dest, contents_only,
                                                        owner),
            chrooted.WRITE_CAPS, keep_fds=(src_fd,))
    finally:
        os.close(root_fd)
        os.close(src_fd)
    os.close(data_fd)
    try:
        chrooted.finish(pid, chrooted.Status(status_fd))
    except chrooted.ChildError as e:
        # a missing directory to extract into: dockerd's 404, as for a missing container
        raise EngineError(str(e), 1, 404 if e.kind == "FileNotFoundError" else 500) from None


def _copy_from_fd(src_fd: int, name: str, dest: str, contents_only: bool,
                  owner: tuple[int, int] | None) -> None:
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
