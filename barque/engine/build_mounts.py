"""A build RUN's mounts (barque.build.executor.RunMount) as OCI mounts for the runtime: bind,
cache (with BuildKit's sharing modes), tmpfs and secret (a file, or a variable); and the mount
points the runtime would make in the step's rootfs, made here first so that they can be
removed after the run (BuildKit's mount stubs: never part of the layer)."""

from __future__ import annotations

import os

from barque.build.executor import ExecutorError, RunMount

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any


def oci_mount(run_dir: str, mount: RunMount, cwd: str) -> dict[str, Any]:
    """The OCI mount of a RUN --mount (its target resolved in the rootfs by the runtime)."""
    # As BuildKit: a relative target is in the working dir; the path cleaned (filepath.Clean).
    target = os.path.normpath("/" + os.path.join(cwd, mount.target).lstrip("/"))
    if mount.kind == "tmpfs":
        options = ["nosuid"]  # BuildKit's: what a build puts there may be run
        size = mount.options.get("size")
        if size:
            options.append(f"size={size}")
        return {"destination": target, "type": "tmpfs", "source": "tmpfs", "options": options}
    if mount.kind == "secret":
        return _secret_mount(run_dir, mount, target)
    if mount.kind not in ("bind", "cache"):
        raise ExecutorError(f"unsupported mount type {mount.kind!r}")
    if not mount.source:
        raise ExecutorError(f"mount {target}: no source")
    options = ["rbind", "rprivate"]
    if mount.readonly:
        options.append("ro")
    return {"destination": target, "type": "bind", "source": mount.source, "options": options}


def _secret_mount(run_dir: str, mount: RunMount, target: str) -> dict[str, Any]:
    """A copy of the secret in the run's dir (on the runroot, a tmpfs: never in a layer),
    with the mode and owner asked for, bound read-only."""
    if not mount.source:
        raise ExecutorError(f"secret mount {target}: no source")
    secrets = os.path.join(run_dir, "secrets")
    os.makedirs(secrets, mode=0o700, exist_ok=True)
    path = os.path.join(secrets, str(len(os.listdir(secrets))))
    data = _read_secret_bytes(mount.source)
    try:
        uid, gid = int(mount.options.get("uid", "0")), int(mount.options.get("gid", "0"))
        mode = int(mount.options.get("mode", "0400"), 8)
    except ValueError as e:
        raise ExecutorError(f"secret mount {target}: {e}") from None
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode & 0o7777)
    finally:
        os.close(fd)
    return {"destination": target, "type": "bind", "source": path,
            "options": ["rbind", "rprivate", "ro", "nosuid", "nodev", "noexec"]}


class Stubs:
    """The mount points the runtime would make in the rootfs, made here first (resolved in
    the root as the runtime resolves them) so that they are known: BuildKit removes such
    stubs after the run, so that they never land in the layer. The directory each was made in
    gets its times back when its entries are as before, so that it does not count as changed
    either."""

    def __init__(self, rootfs: str, mounts: list[dict[str, Any]]) -> None:
        from barque.linux import paths

        self.rootfs = rootfs
        self.made: list[str] = []  # paths in the root, resolved (no symlink on the way)
        self.parents: dict[str, tuple[list[str], int, int]] = {}  # entries, atime, mtime
        covered: list[str] = []  # destinations of the mounts so far: what is below is theirs
        with paths.rooted(rootfs) as root_fd:
            self._root = os.readlink(paths.proc_path(root_fd))
            for mount in mounts:
                destination = os.path.normpath(mount["destination"])
                if not any(destination.startswith(c.rstrip("/") + "/") for c in covered):
                    self._ensure(root_fd, destination, _is_file_mount(mount))
                covered.append(destination)

    def _ensure(self, root_fd: int, destination: str, is_file: bool) -> None:
        from barque.linux import paths

        try:
            os.close(paths.ensure(root_fd, destination, not is_file, 0o755, self._made))
        except OSError:
            pass  # something in the way: the runtime refuses the mount with its own words

    def _made(self, dir_fd: int, name: str) -> None:
        from barque.linux import paths

        parent = os.readlink(paths.proc_path(dir_fd))
        relative = os.path.relpath(parent, self._root)
        inside = "/" if relative == "." else "/" + relative
        if inside not in self.parents:
            fd = os.open(paths.proc_path(dir_fd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                st = os.fstat(fd)
                self.parents[inside] = (sorted(os.listdir(fd)), st.st_atime_ns, st.st_mtime_ns)
            finally:
                os.close(fd)
        self.made.append(os.path.join(inside, name))

    def remove(self) -> None:
        """Each stub still an empty file or empty directory goes, deepest first (the process
        may have written into one: that is its own file then, and stays)."""
        if not self.made:
            return
        from barque.linux import paths

        with paths.rooted(self.rootfs) as root_fd:
            for stub in sorted(self.made, key=lambda p: p.count("/"), reverse=True):
                _remove_stub(root_fd, stub)
            for parent, (entries, atime, mtime) in self.parents.items():
                try:
                    fd = paths.open_in_root(root_fd, parent, os.O_RDONLY | os.O_DIRECTORY)
                except OSError:
                    continue
                try:
                    if sorted(os.listdir(fd)) == entries:
                        os.utime(fd, ns=(atime, mtime))
                finally:
                    os.close(fd)


def _is_file_mount(mount: dict[str, Any]) -> bool:
    """A bind of a file is mounted on a file (runc's rule), anything else on a directory."""
    if mount.get("type") != "bind":
        return False
    try:
        return not os.path.isdir(mount["source"])
    except OSError:
        return False


def _remove_stub(root_fd: int, stub: str) -> None:
    import errno
    import stat

    from barque.linux import paths

    parent, name = os.path.split(stub)
    try:
        dir_fd = paths.open_in_root(root_fd, parent, os.O_PATH | os.O_DIRECTORY)
    except OSError:
        return
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            os.rmdir(name, dir_fd=dir_fd)
        elif stat.S_ISREG(st.st_mode) and st.st_size == 0:
            os.unlink(name, dir_fd=dir_fd)
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.ENOTEMPTY, errno.EEXIST):
            raise
    finally:
        os.close(dir_fd)


_MAX_SECRET = 500 * 1024  # BuildKit's limit for a secret


def _read_secret_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read(_MAX_SECRET + 1)
    if len(data) > _MAX_SECRET:
        raise ExecutorError(f"secret {path}: bigger than {_MAX_SECRET} bytes")
    return data


def read_secret(path: str) -> str:
    return _read_secret_bytes(path).decode("utf-8", errors="replace")


def hold_cache(mount: RunMount) -> tuple[RunMount, int, str | None]:
    """BuildKit's `sharing` of a cache mount: "shared" (the default) lets every run use the
    cache at once; "locked" waits until no other locked or private run holds it; "private"
    takes it if free, else gets a fresh empty cache of its own for this run. (The mount to
    make, the fd of the lock to hold until the run ends or -1, the fresh cache dir to remove
    then or None.)"""
    from barque.linux import locks

    sharing = mount.options.get("sharing", "shared")
    if sharing not in ("shared", "locked", "private"):
        raise ExecutorError(f"unsupported sharing mode {sharing!r}")
    if sharing == "shared" or not mount.source:
        return mount, -1, None
    fd = locks.open_dir(mount.source)
    try:
        if sharing == "private":
            taken = locks.try_lock(fd)
        else:
            locks.lock(fd)
            taken = True
    except BaseException:
        os.close(fd)
        raise
    if not taken:
        os.close(fd)
        import tempfile

        fresh = tempfile.mkdtemp(prefix=".private-", dir=os.path.dirname(mount.source))
        st = os.stat(mount.source)
        os.chown(fresh, st.st_uid, st.st_gid)
        os.chmod(fresh, st.st_mode & 0o7777)
        return RunMount(mount.kind, mount.target, fresh, mount.readonly, mount.options), -1, fresh
    return mount, fd, None
