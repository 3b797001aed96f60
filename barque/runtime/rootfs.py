"""The container's filesystem view, built inside its new mount namespace by the init process.

Order follows runc: make / a slave, bind the rootfs onto itself, mount config.mounts in order,
populate /dev, pivot_root (or chroot), then readonly root, masked and read-only paths.
"""

from __future__ import annotations

import errno
import os
import stat

from barque.linux import mount as m
from barque.linux import paths
from barque.runtime import proc_mounts
from barque.runtime.errors import RuntimeFailure

TYPE_CHECKING = False  # not typing's: see barque/linux/libc.py
if TYPE_CHECKING:
    from collections.abc import Callable

    from barque.cgroups.base import CgroupMount


def _resolve(root_fd: int, rootfs: str, dest: str, is_dir: bool | None) -> int:
    """An O_PATH fd of `dest` inside the root (made as a dir or file if missing and `is_dir`
    is not None), checked to lie inside it: what is mounted on is what was checked."""
    try:
        if is_dir is None:
            fd = paths.open_in_root(root_fd, dest)
        else:
            fd = paths.ensure(root_fd, dest, is_dir)
    except OSError as e:
        raise RuntimeFailure(f"resolving {dest!r} in {rootfs}: {e.strerror}") from None
    where = paths.fd_path(fd)
    if where != rootfs and not where.startswith(rootfs.rstrip("/") + "/"):
        os.close(fd)
        raise RuntimeFailure(f"{dest!r} resolves outside the root ({where}): refusing to mount")
    return fd


def _reopen(root_fd: int, rootfs: str, dest: str, where: str) -> int:
    """`dest` opened again after a mount on it (so that the fd is the new mount's root), and
    checked to be the same place: a swap meanwhile is refused, not followed."""
    fd = _resolve(root_fd, rootfs, dest, None)
    if paths.fd_path(fd) != where:
        os.close(fd)
        raise RuntimeFailure(f"{dest!r} changed while being mounted: possible attack, refusing")
    return fd


def prepare_root(rootfs: str, propagation: str | None) -> None:
    flag = m.PROPAGATION.get(propagation or "", m.MS_SLAVE | m.MS_REC)
    m.mount(None, "/", None, flag)
    # A root asked to be a slave must stay a slave of the host's mounts; any other (the
    # default included) starts private (an unbindable parent could not even be bound) and
    # gets its propagation after pivot_root (runc 1.2's rootfsParentMountPropagation).
    slave = bool(propagation) and flag & m.MS_SLAVE
    _make_parent_private(rootfs, m.MS_SLAVE if slave else m.MS_PRIVATE)
    m.mount(rootfs, rootfs, "bind", m.MS_BIND | m.MS_REC)


def root_propagation(propagation: str | None) -> None:
    """After pivot_root: rootfsPropagation on the container's own / (runc since 1.2; 1.1
    set it only on the host's / before binding the rootfs, so / ended up private, and
    unbindable failed). Private and slave hold already (prepare_root)."""
    flag = m.PROPAGATION.get(propagation or "", 0)
    if flag and not flag & (m.MS_PRIVATE | m.MS_SLAVE):
        m.mount(None, "/", None, flag)


def _make_parent_private(rootfs: str, flag: int = m.MS_PRIVATE) -> None:
    """pivot_root refuses a new root whose parent mount is shared: make that mount private
    (or a slave)."""
    best, best_len = "/", 0
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4]
            if (rootfs == point or rootfs.startswith(point.rstrip("/") + "/")) and len(
                point
            ) > best_len:
                best, best_len = point, len(point)
    try:
        m.mount(None, best, None, flag)
    except OSError:
        pass


def is_bind(mnt: dict) -> bool:
    opts = mnt.get("options") or []
    return mnt.get("type") == "bind" or "bind" in opts or "rbind" in opts


def mount_all(rootfs: str, mounts: list[dict], cgroup_mounts: list[CgroupMount], cgroupns: bool,
              before_cgroup: Callable[[], None] | None = None,
              source_fds: dict[int, int] | None = None) -> list[str]:
    """Every config mount, in order. `source_fds`: mount index -> an O_PATH fd of its bind
    source, opened by the runtime before a new user namespace (see open_bind_sources).
    Returns the destinations to remount read-only after pivot_root (runc's finalizeRootfs):
    a read-only tmpfs or /dev is mounted writable, so mounts under it (devpts) can be made."""
    deferred: list[str] = []
    with paths.rooted(rootfs) as root_fd:
        for index, mnt in enumerate(mounts):
            if _defer_readonly(mnt):
                deferred.append(mnt["destination"])
                mnt = dict(mnt, options=[o for o in mnt.get("options") or [] if o != "ro"])
            try:
                _mount_one(root_fd, rootfs, mnt, cgroup_mounts, cgroupns, before_cgroup,
                           (source_fds or {}).get(index))
            except OSError as e:
                raise RuntimeFailure(f"error mounting {mnt.get('source')!r} to rootfs at "
                                     f"{mnt['destination']!r}: {e}") from None
    return deferred


def _defer_readonly(mnt: dict) -> bool:
    opts = mnt.get("options") or []
    return "ro" in opts and "tmpcopyup" not in opts and not is_bind(mnt) and (
        mnt.get("type") == "tmpfs" or os.path.normpath(mnt["destination"]) == "/dev")


def remount_readonly(destinations: list[str]) -> None:
    """After pivot_root: the mounts mount_all left writable, read-only now."""
    for dest in destinations:
        fd = _in_new_root(dest)
        if fd is None:
            continue
        try:
            target = _target(fd, dest)
            m.mount(None, target, None, _statvfs_flags(target) | m.MS_RDONLY | m.MS_REMOUNT)
        except OSError as e:
            raise RuntimeFailure(f"cannot remount {dest} read-only: {e}") from None
        finally:
            os.close(fd)


def open_bind_sources(mounts: list[dict]) -> dict[int, int]:
    """Detached copies (open_tree) of the bind sources, made by the runtime before the init
    enters a new user namespace, where the container's root may not reach them (runc's
    mountFds); the init attaches them with move_mount."""
    fds: dict[int, int] = {}
    try:
        for index, mnt in enumerate(mounts):
            if is_bind(mnt) and mnt.get("source"):
                flags = m.OPEN_TREE_CLONE | os.O_CLOEXEC
                if "rbind" in (mnt.get("options") or []):
                    flags |= m.AT_RECURSIVE
                try:
                    fds[index] = m.open_tree(mnt["source"], flags)
                except FileNotFoundError:
                    pass  # refused by the init in the usual words
    except OSError as e:
        for fd in fds.values():
            os.close(fd)
        raise RuntimeFailure(f"error opening bind mount source {mnt['source']!r}: "
                             f"{e.strerror}") from None
    return fds


def _mount_one(root_fd: int, rootfs: str, mnt: dict, cgroup_mounts: list[CgroupMount],
               cgroupns: bool, before_cgroup: Callable[[], None] | None,
               source_fd: int | None = None) -> None:
    """One config mount, onto /proc/self/fd/N of its destination opened inside the root."""
    dest = mnt["destination"]
    # runc's checkProcMount, first on the destination as written (resolving it may fail on
    # /proc's own links), then on where it resolved to (an image's /data -> /proc).
    proc_mounts.check(rootfs, os.path.join(rootfs, os.path.normpath("/" + dest).lstrip("/")),
                      mnt, is_bind(mnt))
    opts = m.parse_options(mnt.get("options") or [])
    kind = mnt.get("type") or ("bind" if is_bind(mnt) else "")
    if kind == "cgroup" and not is_bind(mnt):
        if before_cgroup is not None:
            before_cgroup()
        _mount_cgroup(root_fd, rootfs, dest, opts, cgroup_mounts, cgroupns)
    else:
        source, is_dir = mnt.get("source") or "", True
        if source_fd is not None:  # cloned before the user namespace: attach that tree
            is_dir = stat.S_ISDIR(os.fstat(source_fd).st_mode)
        elif is_bind(mnt):
            if not os.path.exists(source):
                raise RuntimeFailure(f"bind mount source {source!r} does not exist")
            is_dir = os.path.isdir(source)
        fd = _resolve(root_fd, rootfs, dest, is_dir if is_bind(mnt) else True)
        try:
            where = paths.fd_path(fd)
            proc_mounts.check(rootfs, where, mnt, is_bind(mnt))
            if source_fd is not None:
                m.move_mount(source_fd, fd)
            elif is_bind(mnt):
                m.mount(source, paths.proc_path(fd), "bind", opts.flags & (m.MS_BIND | m.MS_REC))
            else:
                _mount_fs(mnt, fd, kind, opts)
        finally:
            os.close(fd)
        extra = opts.flags & ~(m.MS_BIND | m.MS_REC | m.MS_REMOUNT)
        if (is_bind(mnt) and extra) or opts.propagation:
            fd = _reopen(root_fd, rootfs, dest, where)
            try:
                if is_bind(mnt) and extra:
                    _remount_bind(paths.proc_path(fd), extra)
                for prop in opts.propagation:
                    m.mount(None, paths.proc_path(fd), None, prop)
            finally:
                os.close(fd)
        return
    if opts.propagation:
        fd = _resolve(root_fd, rootfs, dest, None)
        try:
            for prop in opts.propagation:
                m.mount(None, paths.proc_path(fd), None, prop)
        finally:
            os.close(fd)


def _remount_bind(target: str, extra: int) -> None:
    # Flags on a bind mount only take effect through a remount; keep the flags the kernel
    # locked on the source (nosuid etc. from a user namespace's owner) or it refuses.
    locked = _statvfs_flags(target)
    m.mount(None, target, None, extra | locked | m.MS_BIND | m.MS_REMOUNT)


def _statvfs_flags(path: str) -> int:
    st = os.statvfs(path)
    flags = 0
    for bit, mflag in (
        (os.ST_NOSUID, m.MS_NOSUID),
        (os.ST_NODEV, m.MS_NODEV),
        (os.ST_NOEXEC, m.MS_NOEXEC),
        (os.ST_RDONLY, m.MS_RDONLY),
    ):
        if st.f_flag & bit:
            flags |= mflag
    return flags


def _mount_fs(mnt: dict, fd: int, kind: str, opts: m.MountOptions) -> None:
    data = ",".join(opts.data)
    target = paths.proc_path(fd)
    if kind == "tmpfs" and "tmpcopyup" in opts.extensions and os.listdir(target):
        _tmpfs_copyup(mnt, fd, opts.flags, data)
        return
    m.mount(mnt.get("source") or kind, target, kind, opts.flags, data or None)


def _tmpfs_copyup(mnt: dict, fd: int, flags: int, data: str) -> None:
    import tempfile

    from barque.linux import fdtree

    target = paths.proc_path(fd)
    staging = tempfile.mkdtemp(prefix="barque-copyup-")
    try:
        m.mount(mnt.get("source") or "tmpfs", staging, "tmpfs", flags & ~m.MS_RDONLY, data or None)
        src = fdtree.open_dir(fd)
        dst = os.open(staging, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fdtree.copy_tree(src, dst)
            os.fchmod(dst, os.fstat(src).st_mode & 0o7777)
        finally:
            os.close(src)
            os.close(dst)
        m.mount(staging, target, None, m.MS_MOVE)
        if flags & m.MS_RDONLY:
            m.mount(None, target, None, flags | m.MS_REMOUNT)
    finally:
        os.rmdir(staging)


def _mount_cgroup(
    root_fd: int, rootfs: str, dest: str, opts: m.MountOptions,
    cgroup_mounts: list[CgroupMount], cgroupns: bool,
) -> None:
    """Mount the container's cgroups read-only at dest (runc: tmpfs + one mount a hierarchy)."""
    hierarchies = cgroup_mounts
    flags = opts.flags & ~m.MS_RDONLY
    fd = _resolve(root_fd, rootfs, dest, True)
    where = paths.fd_path(fd)
    v2_only = len(hierarchies) == 1 and hierarchies[0].subdir == ""
    try:
        if not v2_only:
            m.mount("tmpfs", paths.proc_path(fd), "tmpfs", flags, "mode=755")
            os.close(fd)
            fd = -1
            fd = _reopen(root_fd, rootfs, dest, where)
        for h in hierarchies:
            _mount_hierarchy(root_fd, rootfs, os.path.join(dest, h.subdir), h, opts, cgroupns)
            for link in h.symlinks:
                try:
                    os.lstat(link, dir_fd=fd)
                except FileNotFoundError:
                    os.symlink(h.subdir, link, dir_fd=fd)
        if not v2_only and opts.flags & m.MS_RDONLY:
            m.mount(None, paths.proc_path(fd), None, flags | m.MS_RDONLY | m.MS_REMOUNT)
    finally:
        if fd >= 0:
            os.close(fd)


def _mount_hierarchy(root_fd: int, rootfs: str, dest: str, h: CgroupMount,
                     opts: m.MountOptions, cgroupns: bool) -> None:
    flags = opts.flags & ~m.MS_RDONLY
    fd = _resolve(root_fd, rootfs, dest, True)
    try:
        target, where = paths.proc_path(fd), paths.fd_path(fd)
        if cgroupns:
            m.mount("cgroup", target, h.fstype, flags | (opts.flags & m.MS_RDONLY),
                    h.options or None)
            return
        m.mount(h.host_path, target, "bind", m.MS_BIND | m.MS_REC)
    finally:
        os.close(fd)
    if opts.flags & m.MS_RDONLY:
        fd = _reopen(root_fd, rootfs, dest, where)
        try:
            m.mount(h.host_path, paths.proc_path(fd), None,
                    flags | m.MS_RDONLY | m.MS_BIND | m.MS_REMOUNT)
        finally:
            os.close(fd)


DEFAULT_DEVICES = (
    ("/dev/null", "c", 1, 3),
    ("/dev/zero", "c", 1, 5),
    ("/dev/full", "c", 1, 7),
    ("/dev/random", "c", 1, 8),
    ("/dev/urandom", "c", 1, 9),
    ("/dev/tty", "c", 5, 0),
)

DEV_SYMLINKS = (
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
    ("pts/ptmx", "ptmx"),
)


def needs_dev(mounts: list[dict]) -> bool:
    """runc populates /dev unless the config bind-mounts the host's /dev over it."""
    return not any(mnt["destination"] == "/dev" and is_bind(mnt) for mnt in mounts)


def create_devices(rootfs: str, devices: list[dict], in_userns: bool) -> None:
    wanted: dict[str, dict] = {}
    for path, kind, major, minor in DEFAULT_DEVICES:
        wanted[path] = {
            "path": path, "type": kind, "major": major, "minor": minor, "fileMode": 0o666,
            "uid": 0, "gid": 0,
        }
    for dev in devices:
        wanted[dev["path"]] = dev
    with paths.rooted(rootfs) as root_fd:
        for dev in wanted.values():
            _create_device(root_fd, rootfs, dev, in_userns)
        dev_fd = _resolve(root_fd, rootfs, "/dev", True)
        try:
            links = list(DEV_SYMLINKS)
            if os.path.exists("/proc/kcore"):
                links.append(("/proc/kcore", "core"))
            for target, name in links:
                try:
                    os.lstat(name, dir_fd=dev_fd)
                except FileNotFoundError:
                    os.symlink(target, name, dir_fd=dev_fd)
        finally:
            os.close(dev_fd)


def _create_device(root_fd: int, rootfs: str, dev: dict, in_userns: bool) -> None:
    kind = dev.get("type", "c")
    if in_userns:
        # mknod is not allowed in a user namespace: bind the host's node instead.
        fd = _resolve(root_fd, rootfs, dev["path"], False)
        try:
            m.mount(dev["path"], paths.proc_path(fd), "bind", m.MS_BIND)
        finally:
            os.close(fd)
        return
    fmt = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}.get(kind)
    if fmt is None:
        raise RuntimeFailure(f"device {dev['path']}: unknown type {kind!r}")
    mode = int(dev.get("fileMode", 0o666)) & 0o7777
    try:
        parent, name = paths.walk_parent(root_fd, dev["path"])
    except OSError as e:
        raise RuntimeFailure(f"device {dev['path']}: {e.strerror}") from None
    try:
        where = paths.fd_path(parent)
        if where != rootfs and not where.startswith(rootfs.rstrip("/") + "/"):
            raise RuntimeFailure(f"device {dev['path']!r} resolves outside the root ({where})")
        try:
            os.unlink(name, dir_fd=parent)
        except FileNotFoundError:
            pass
        old = os.umask(0)
        try:
            os.mknod(name, fmt | mode, os.makedev(int(dev.get("major", 0)),
                                                  int(dev.get("minor", 0))), dir_fd=parent)
        finally:
            os.umask(old)
        os.chown(name, int(dev.get("uid", 0)), int(dev.get("gid", 0)), dir_fd=parent,
                 follow_symlinks=False)
    finally:
        os.close(parent)


def pivot(rootfs: str, no_pivot: bool) -> None:
    if no_pivot:
        os.chdir(rootfs)
        m.mount(rootfs, "/", None, m.MS_MOVE)
        os.chroot(".")
        os.chdir("/")
        return
    old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new_root = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        # runc's trick: pivot onto "." and unmount the old root stacked beneath it.
        os.fchdir(new_root)
        m.pivot_root(".", ".")
        os.fchdir(old_root)
        m.mount(None, ".", None, m.MS_SLAVE | m.MS_REC)
        m.umount(".", m.MNT_DETACH)
        os.chdir("/")
    finally:
        os.close(old_root)
        os.close(new_root)


def readonly_root() -> None:
    flags = _statvfs_flags("/")
    m.mount(None, "/", None, flags | m.MS_RDONLY | m.MS_BIND | m.MS_REMOUNT)


def _in_new_root(path: str) -> int | None:
    """After pivot_root: an fd of `path` in the container's root; None if it is missing."""
    try:
        with paths.rooted("/") as root_fd:
            return paths.open_in_root(root_fd, path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _target(fd: int, path: str) -> str:
    # /proc/self/fd names the fd's exact file; a container without /proc gets the path, which
    # after pivot_root can only lead inside its root anyway.
    return paths.proc_path(fd) if os.path.isdir("/proc/self/fd") else path


def mask_paths(masked: list[str]) -> None:
    for path in masked:
        fd = _in_new_root(path)
        if fd is None:
            continue
        try:
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                m.mount("tmpfs", _target(fd, path), "tmpfs", m.MS_RDONLY)
            else:
                m.mount("/dev/null", _target(fd, path), None, m.MS_BIND)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise RuntimeFailure(f"cannot mask {path}: {e}") from None
        finally:
            os.close(fd)


def readonly_paths(readonly: list[str]) -> None:
    for path in readonly:
        fd = _in_new_root(path)
        if fd is None:
            continue
        try:
            where = paths.fd_path(fd)
            target = _target(fd, path)
            m.mount(target, target, None, m.MS_BIND | m.MS_REC)
        except OSError as e:
            raise RuntimeFailure(f"cannot make {path} read-only: {e}") from None
        finally:
            os.close(fd)
        fd = _in_new_root(path)  # the bind mount just made, checked to be the same place
        if fd is None or paths.fd_path(fd) != where:
            if fd is not None:
                os.close(fd)
            raise RuntimeFailure(f"{path!r} changed while being made read-only: refusing")
        try:
            target = _target(fd, path)
            flags = _statvfs_flags(target)
            m.mount(target, target, None,
                    flags | m.MS_RDONLY | m.MS_BIND | m.MS_REMOUNT | m.MS_REC)
        except OSError as e:
            raise RuntimeFailure(f"cannot make {path} read-only: {e}") from None
        finally:
            os.close(fd)


def write_sysctls(values: dict[str, str]) -> None:
    from barque.runtime import sysctl

    sysctl.write_all(values)


def chdir_in_root(cwd: str, create: bool) -> os.stat_result:
    """chdir to `cwd` resolved inside the current root (after pivot_root or chroot), made if
    missing and `create`; a magic link such as /proc/self/fd/N of a host fd is refused, so
    the cwd is never outside the container (CVE-2024-21626 class). The dir's stat."""
    with paths.rooted("/") as root_fd:
        fd = paths.mkdir_all(root_fd, cwd) if create else paths.open_in_root(root_fd, cwd)
    try:
        os.fchdir(fd)
        return os.fstat(fd)
    finally:
        os.close(fd)
