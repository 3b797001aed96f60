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


def secure_join(root: str, unsafe: str) -> str:
    try:
        return paths.secure_join(root, unsafe)
    except OSError as e:
        raise RuntimeFailure(f"resolving {unsafe!r} in {root}: {e.strerror}") from None


def _ensure(dest: str, as_file: bool) -> None:
    if os.path.lexists(dest):
        return
    os.makedirs(os.path.dirname(dest), mode=0o755, exist_ok=True)
    if as_file:
        os.close(os.open(dest, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o755))
    else:
        os.makedirs(dest, mode=0o755, exist_ok=True)


def prepare_root(rootfs: str, propagation: str | None) -> None:
    flag = m.PROPAGATION.get(propagation or "", m.MS_SLAVE | m.MS_REC)
    m.mount(None, "/", None, flag)
    _make_parent_private(rootfs)
    m.mount(rootfs, rootfs, "bind", m.MS_BIND | m.MS_REC)


def _make_parent_private(rootfs: str) -> None:
    """pivot_root refuses a new root whose parent mount is shared: make that mount private."""
    best, best_len = "/", 0
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4]
            if (rootfs == point or rootfs.startswith(point.rstrip("/") + "/")) and len(
                point
            ) > best_len:
                best, best_len = point, len(point)
    try:
        m.mount(None, best, None, m.MS_PRIVATE)
    except OSError:
        pass


def is_bind(mnt: dict) -> bool:
    opts = mnt.get("options") or []
    return mnt.get("type") == "bind" or "bind" in opts or "rbind" in opts


def mount_all(rootfs: str, mounts: list[dict], cgroup_mounts: list[CgroupMount], cgroupns: bool,
              before_cgroup: Callable[[], None] | None = None) -> None:
    for mnt in mounts:
        dest = secure_join(rootfs, mnt["destination"])
        proc_mounts.check(rootfs, dest, mnt, is_bind(mnt))
        opts = m.parse_options(mnt.get("options") or [])
        kind = mnt.get("type") or ("bind" if is_bind(mnt) else "")
        try:
            if is_bind(mnt):
                _bind(mnt, dest, opts)
            elif kind == "cgroup":
                if before_cgroup is not None:
                    before_cgroup()
                _mount_cgroup(rootfs, dest, opts, cgroup_mounts, cgroupns)
            else:
                _ensure(dest, as_file=False)
                _mount_fs(mnt, dest, kind, opts)
            for prop in opts.propagation:
                m.mount(None, dest, None, prop)
        except OSError as e:
            raise RuntimeFailure(
                f"error mounting {mnt.get('source')!r} to rootfs at {mnt['destination']!r}: {e}"
            ) from None


def _bind(mnt: dict, dest: str, opts: m.MountOptions) -> None:
    source = mnt.get("source") or ""
    if not os.path.exists(source):
        raise RuntimeFailure(f"bind mount source {source!r} does not exist")
    _ensure(dest, as_file=not os.path.isdir(source))
    m.mount(source, dest, "bind", opts.flags & (m.MS_BIND | m.MS_REC))
    extra = opts.flags & ~(m.MS_BIND | m.MS_REC | m.MS_REMOUNT)
    if extra:
        # Flags on a bind mount only take effect through a remount; keep the flags the kernel
        # locked on the source (nosuid etc. from a user namespace's owner) or it refuses.
        locked = _statvfs_flags(dest)
        m.mount(source, dest, None, extra | locked | m.MS_BIND | m.MS_REMOUNT)


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


def _mount_fs(mnt: dict, dest: str, kind: str, opts: m.MountOptions) -> None:
    data = ",".join(opts.data)
    if kind == "tmpfs" and "tmpcopyup" in opts.extensions and os.listdir(dest):
        _tmpfs_copyup(mnt, dest, opts.flags, data)
        return
    m.mount(mnt.get("source") or kind, dest, kind, opts.flags, data or None)


def _tmpfs_copyup(mnt: dict, dest: str, flags: int, data: str) -> None:
    import shutil
    import tempfile

    staging = tempfile.mkdtemp(prefix="barque-copyup-")
    try:
        m.mount(mnt.get("source") or "tmpfs", staging, "tmpfs", flags & ~m.MS_RDONLY, data or None)
        shutil.copytree(dest, staging, symlinks=True, dirs_exist_ok=True)
        m.mount(staging, dest, None, m.MS_MOVE)
        if flags & m.MS_RDONLY:
            m.mount(None, dest, None, flags | m.MS_REMOUNT)
    finally:
        os.rmdir(staging)


def _mount_cgroup(
    rootfs: str, dest: str, opts: m.MountOptions, cgroup_mounts: list[CgroupMount],
    cgroupns: bool,
) -> None:
    """Mount the container's cgroups read-only at dest (runc: tmpfs + one mount a hierarchy)."""
    hierarchies = cgroup_mounts
    flags = opts.flags & ~m.MS_RDONLY
    _ensure(dest, as_file=False)
    v2_only = len(hierarchies) == 1 and hierarchies[0].subdir == ""
    if not v2_only:
        m.mount("tmpfs", dest, "tmpfs", flags, "mode=755")
    for h in hierarchies:
        target = os.path.join(dest, h.subdir) if h.subdir else dest
        os.makedirs(target, exist_ok=True)
        if cgroupns:
            ro = opts.flags & m.MS_RDONLY
            m.mount("cgroup", target, h.fstype, flags | ro, h.options or None)
        else:
            m.mount(h.host_path, target, "bind", m.MS_BIND | m.MS_REC)
            if opts.flags & m.MS_RDONLY:
                m.mount(h.host_path, target, None, flags | m.MS_RDONLY | m.MS_BIND | m.MS_REMOUNT)
        for link in h.symlinks:
            path = os.path.join(dest, link)
            if not os.path.lexists(path):
                os.symlink(h.subdir, path)
    if not v2_only and opts.flags & m.MS_RDONLY:
        m.mount(None, dest, None, flags | m.MS_RDONLY | m.MS_REMOUNT)


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
    for dev in wanted.values():
        _create_device(rootfs, dev, in_userns)
    dev_dir = secure_join(rootfs, "/dev")
    for target, name in DEV_SYMLINKS:
        link = os.path.join(dev_dir, name)
        if not os.path.lexists(link):
            os.symlink(target, link)
    if os.path.exists("/proc/kcore") and not os.path.lexists(os.path.join(dev_dir, "core")):
        os.symlink("/proc/kcore", os.path.join(dev_dir, "core"))


def _create_device(rootfs: str, dev: dict, in_userns: bool) -> None:
    dest = secure_join(rootfs, dev["path"])
    os.makedirs(os.path.dirname(dest), mode=0o755, exist_ok=True)
    kind = dev.get("type", "c")
    if in_userns:
        # mknod is not allowed in a user namespace: bind the host's node instead.
        _ensure(dest, as_file=True)
        m.mount(dev["path"], dest, "bind", m.MS_BIND)
        return
    fmt = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}.get(kind)
    if fmt is None:
        raise RuntimeFailure(f"device {dev['path']}: unknown type {kind!r}")
    mode = int(dev.get("fileMode", 0o666)) & 0o7777
    if os.path.lexists(dest):
        os.unlink(dest)
    old = os.umask(0)
    try:
        os.mknod(dest, fmt | mode, os.makedev(int(dev.get("major", 0)), int(dev.get("minor", 0))))
    finally:
        os.umask(old)
    os.chown(dest, int(dev.get("uid", 0)), int(dev.get("gid", 0)))


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


def mask_paths(paths: list[str]) -> None:
    for path in paths:
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                m.mount("tmpfs", path, "tmpfs", m.MS_RDONLY)
            else:
                m.mount("/dev/null", path, None, m.MS_BIND)
        except FileNotFoundError:
            continue
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise RuntimeFailure(f"cannot mask {path}: {e}") from None


def readonly_paths(paths: list[str]) -> None:
    for path in paths:
        try:
            m.mount(path, path, None, m.MS_BIND | m.MS_REC)
            flags = _statvfs_flags(path)
            m.mount(path, path, None, flags | m.MS_RDONLY | m.MS_BIND | m.MS_REMOUNT | m.MS_REC)
        except OSError as e:
            if e.errno == errno.ENOENT:
                continue
            raise RuntimeFailure(f"cannot make {path} read-only: {e}") from None


def write_sysctls(sysctl: dict[str, str]) -> None:
    for key, value in sysctl.items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            with open(path, "w") as f:
                f.write(str(value))
        except OSError as e:
            raise RuntimeFailure(f"cannot set sysctl {key}={value}: {e.strerror}") from None
