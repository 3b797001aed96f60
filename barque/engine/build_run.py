"""A build's RUN steps, run by the engine (barque.build.executor.Executor): one process in
the step's mounted root filesystem, in a container made the way `barque run` makes one
(engine/spec.py: Docker's capabilities, seccomp profile, masked and read-only paths, /dev,
/dev/shm), on the build's network, through `barque-runtime run` in the foreground.

Lighter than a container: no record in the state DB, no monitor; the runtime's state, the
cgroup, the network namespace and veth (and its address), the /etc files and secrets live
for the run alone. They are kept under <runroot>/build-runs/<id>/, whose lock the run holds
while it lives: a build killed with -9 leaves a directory whose lock is free, and the next
executor reclaims what it names (build_reclaim.py)."""

from __future__ import annotations

import os
import subprocess

from barque.build.executor import ExecutorError, RunMount

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    import threading
    from collections.abc import Callable
    from typing import Any

    from barque.build.executor import RunRequest
    from barque.engine.context import Engine
    from barque.engine.records import ContainerRecord

RUNS_DIR = "build-runs"
ID_PREFIX = "build-"
NETWORKS = ("default", "none", "host")
_LOCK = "lock"
_CHUNK = 65536
_RUNTIME_PREFIX = b"barque-runtime: "  # how the runtime's errors start on its stderr


def runs_dir(engine: Engine) -> str:
    return os.path.join(engine.paths.runroot, RUNS_DIR)


class EngineExecutor:
    """The engine's Executor; one per build. The builder may run steps from several threads:
    the network's bookkeeping (the state DB's endpoints) is done one run at a time, on a
    connection of the executor's own (a sqlite3 connection is one transaction at a time)."""

    def __init__(self, engine: Engine) -> None:
        import threading

        self.engine = engine
        self._net_lock = threading.Lock()
        self._net_engine: Engine | None = None
        from barque.engine import build_reclaim

        build_reclaim.reclaim(engine)

    def run(self, request: RunRequest, output: Callable[[int, bytes], None]) -> int:
        run = _Run(self, request)
        try:
            run.prepare()
            code = run.execute(output)
        except BaseException:
            run.close(quiet=True)  # the first error is the one to report
            raise
        run.close()
        return code

    def close(self) -> None:
        """The executor's own DB connection, if it made one (optional: it also goes with the
        process)."""
        with self._net_lock:
            if self._net_engine is not None:
                self._net_engine.close()
                self._net_engine = None

    def __enter__(self) -> EngineExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def network_engine(self) -> Engine:
        """The Engine for network set-up and tear-down; call with network_lock held."""
        if self._net_engine is None:
            from barque.engine.context import Engine

            self._net_engine = Engine(self.engine.paths, create=False)
        return self._net_engine

    @property
    def network_lock(self) -> threading.Lock:
        return self._net_lock


class _Run:
    """One RUN: made by prepare(), run by execute(), unmade by close() from any point."""

    def __init__(self, executor: EngineExecutor, request: RunRequest) -> None:
        self.executor = executor
        self.engine = executor.engine
        self.request = request
        self.id = ID_PREFIX + os.urandom(12).hex()
        self.dir = os.path.join(runs_dir(self.engine), self.id)
        self.lock_fd = -1
        self.record: ContainerRecord | None = None  # a transient one, for the default bridge
        self.stubs: _Stubs | None = None
        self.started = False
        self.ended = False  # the runtime ran its course (and deleted its container)
        self.cache_locks: list[int] = []  # fds of the cache dirs held (sharing=locked|private)
        self.private_dirs: list[str] = []  # fresh caches for private mounts found in use

    # --- prepare -------------------------------------------------------------------------------

    def prepare(self) -> None:
        from barque.engine import spec
        from barque.engine.spec_security import SecurityError
        from barque.engine.users import RootfsError

        request = self.request
        if request.network not in NETWORKS:
            raise ExecutorError(f"network mode {request.network!r} not supported by the builder")
        self._make_dir()
        # The mounts first: a locked cache may be waited for, with no address held meanwhile.
        user_mounts, secret_env = self._mounts()
        netns, resolv_conf = self._network()
        hosts = _hosts(request.hostname)
        config = {"Entrypoint": list(request.args), "Env": list(request.env) + secret_env,
                  "WorkingDir": request.cwd or "/", "User": request.user,
                  "Hostname": request.hostname}
        host_config = {"NetworkMode": request.network,
                       "Privileged": request.security == "insecure"}
        try:
            made = spec.make_spec(self.id, config, host_config, request.rootfs, self.dir,
                                  user_mounts, network_path=netns)
            spec.write_etc_files(self.dir, made["hostname"], host_config, hosts, resolv_conf)
            # The working dir first: it stays (BuildKit makes it), a mount point under it not.
            user = made["process"]["user"]
            spec.make_workdir(request.rootfs, made["process"]["cwd"], (user["uid"], user["gid"]))
            self.stubs = _Stubs(request.rootfs, made["mounts"])
        except (spec.SpecError, RootfsError, SecurityError) as e:
            raise ExecutorError(str(e)) from None
        made["process"]["terminal"] = False
        from barque.runtime import fastjson

        with open(os.path.join(self.dir, "config.json"), "w") as f:
            f.write(fastjson.dumps(made))

    def _make_dir(self) -> None:
        import fcntl

        os.makedirs(runs_dir(self.engine), mode=0o700, exist_ok=True)
        os.mkdir(self.dir, 0o700)
        self.lock_fd = os.open(os.path.join(self.dir, _LOCK),
                               os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.lock_fd, fcntl.LOCK_EX)

    def _network(self) -> tuple[str | None, str | None]:
        """(the netns path for the spec, /etc/resolv.conf; None: the engine's)."""
        mode = self.request.network
        if mode == "host":
            # The host's own, loopback servers too: the host's loopback is the run's.
            try:
                with open("/etc/resolv.conf", encoding="utf-8", errors="replace") as f:
                    return None, f.read()
            except OSError:
                return None, ""
        if mode == "none":
            return None, None
        from barque.engine import netsetup
        from barque.engine.errors import EngineError
        from barque.engine.records import ContainerRecord

        # Never saved: netsetup keys the endpoint (its address) and the namespace by its id.
        self.record = ContainerRecord(
            id=self.id, name=self.id, created="", image="", image_id="",
            config={"Hostname": self.request.hostname},
            host_config={"NetworkMode": "default", "AutoRemove": True})
        try:
            with self.executor.network_lock:
                sandbox = netsetup.setup(self.executor.network_engine(), self.record)
        except EngineError as e:
            raise ExecutorError(str(e)) from None
        sandbox.close_fds()  # no published ports: none held
        return sandbox.netns, sandbox.resolv_conf

    def _mounts(self) -> tuple[list[dict[str, Any]], list[str]]:
        """The OCI mounts of the RUN's mounts, and the env entries of secrets asked for as
        environment variables (`env=`)."""
        mounts, env = [], []
        for mount in self.request.mounts:
            if mount.kind == "secret":
                name = mount.options.get("id") or os.path.basename(mount.target)
                if not mount.source:
                    if mount.options.get("required", "false").lower() in ("true", "1"):
                        raise ExecutorError(f"secret {name}: not found")
                    continue  # an optional secret not given: no file, no variable
                if mount.options.get("env"):
                    env.append(f"{mount.options['env']}={_read_secret(mount.source)}")
                if not mount.target:
                    continue
            if mount.kind == "cache" and mount.source:
                mount = self._shared_cache(mount)
            mounts.append(_oci_mount(self.dir, mount, self.request.cwd or "/"))
        return mounts, env

    def _shared_cache(self, mount: RunMount) -> RunMount:
        """BuildKit's `sharing`: "shared" (the default) lets every run use the cache at once;
        "locked" waits until no other locked or private run holds it; "private" takes it if
        free, else gets a fresh empty cache of its own for this run."""
        import fcntl

        sharing = mount.options.get("sharing", "shared")
        if sharing not in ("shared", "locked", "private"):
            raise ExecutorError(f"unsupported sharing mode {sharing!r}")
        if sharing == "shared":
            return mount
        assert mount.source is not None
        fd = os.open(mount.source, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (fcntl.LOCK_NB if sharing == "private" else 0))
        except BlockingIOError:
            os.close(fd)
            import tempfile

            fresh = tempfile.mkdtemp(prefix=".private-", dir=os.path.dirname(mount.source))
            self.private_dirs.append(fresh)
            st = os.stat(mount.source)
            os.chown(fresh, st.st_uid, st.st_gid)
            os.chmod(fresh, st.st_mode & 0o7777)
            return RunMount(mount.kind, mount.target, fresh, mount.readonly, mount.options)
        except BaseException:
            os.close(fd)
            raise
        self.cache_locks.append(fd)
        return mount

    # --- execute -------------------------------------------------------------------------------

    def execute(self, output: Callable[[int, bytes], None]) -> int:
        from barque.engine.context import find_runtime

        runtime = find_runtime()
        log = os.path.join(self.dir, "runtime.log")
        self.started = True
        proc = subprocess.Popen(
            [runtime, "--root", self.engine.paths.runtime_root, "--log", log,
             "--log-format", "json", "run", "--bundle", self.dir, self.id],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            held = _pump(proc, output)
            code = proc.wait()
            self.ended = True
        except BaseException:
            self._kill(proc)
            raise
        error = _runtime_error(log)
        if error is not None:
            # (BuildKit's words, with the runtime's name: "runc run failed: ...")
            raise ExecutorError(f"barque-runtime run failed: unable to start container "
                                f"process: {error}")
        if held:
            output(2, held)
        return code

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        """An interrupted run: its container killed (again until the runtime has made it),
        the runtime given a moment to delete it (close() deletes whatever is left)."""
        import time

        from barque.engine.context import find_runtime

        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            subprocess.run([find_runtime(), "--root", self.engine.paths.runtime_root, "kill",
                            self.id, "KILL"], capture_output=True, timeout=30, check=False)
            try:
                proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # --- close ---------------------------------------------------------------------------------

    def close(self, quiet: bool = False) -> None:
        errors: list[BaseException] = []
        for step in (self._delete_container, self._remove_stubs, self._teardown_network,
                     self._release_caches, self._remove_dir):
            try:
                step()
            except Exception as e:  # every step is tried; the first failure is reported
                errors.append(e)
        if errors and not quiet:
            raise ExecutorError(f"cleaning up after the run: {errors[0]}")

    def _delete_container(self) -> None:
        if self.started:
            from barque.engine import build_reclaim

            build_reclaim.delete_container(self.engine, self.id, thorough=not self.ended)

    def _remove_stubs(self) -> None:
        if self.stubs is not None:
            self.stubs.remove()

    def _release_caches(self) -> None:
        import shutil

        while self.cache_locks:
            os.close(self.cache_locks.pop())
        while self.private_dirs:
            shutil.rmtree(self.private_dirs.pop(), ignore_errors=True)

    def _teardown_network(self) -> None:
        if self.record is not None:
            from barque.engine import netsetup

            with self.executor.network_lock:
                netsetup.remove_container(self.executor.network_engine(), self.record)

    def _remove_dir(self) -> None:
        import shutil

        if self.lock_fd >= 0:
            shutil.rmtree(self.dir, ignore_errors=True)
            os.close(self.lock_fd)
            self.lock_fd = -1


def _hosts(hostname: str) -> str:
    """BuildKit's /etc/hosts for a RUN, whatever its network: its hostname on loopback."""
    return f"127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n"


# --- mounts ------------------------------------------------------------------------------------

def _oci_mount(run_dir: str, mount: RunMount, cwd: str) -> dict[str, Any]:
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
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        os.fchown(fd, int(mount.options.get("uid", "0")), int(mount.options.get("gid", "0")))
        os.fchmod(fd, int(mount.options.get("mode", "0400"), 8))
    finally:
        os.close(fd)
    return {"destination": target, "type": "bind", "source": path,
            "options": ["rbind", "rprivate", "ro", "nosuid", "nodev", "noexec"]}


class _Stubs:
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


def _read_secret(path: str) -> str:
    return _read_secret_bytes(path).decode("utf-8", errors="replace")


# --- output ------------------------------------------------------------------------------------

def _pump(proc: subprocess.Popen[bytes], output: Callable[[int, bytes], None]) -> bytes:
    """The process's stdout and stderr to `output` as they come, until both end. A chunk of
    stderr that looks like the runtime's own error line is held back and returned: it is
    the runtime's (and then part of the error, not of the output) if its log says so."""
    import select

    assert proc.stdout is not None and proc.stderr is not None
    streams = {proc.stdout.fileno(): 1, proc.stderr.fileno(): 2}
    poller = select.poll()
    for fd in streams:
        poller.register(fd, select.POLLIN)
    held = b""
    while streams:
        for fd, _ in poller.poll():
            data = os.read(fd, _CHUNK)
            if not data:
                poller.unregister(fd)
                del streams[fd]
                continue
            if streams[fd] == 2:
                if held:
                    output(2, held)
                held = data if data.startswith(_RUNTIME_PREFIX) else b""
                if held:
                    continue
            output(streams[fd], data)
    proc.stdout.close()
    proc.stderr.close()
    return held


def _runtime_error(log: str) -> str | None:
    """The runtime's own error (it could not start the process), from its JSON log."""
    from barque.runtime import fastjson

    try:
        with open(log, "rb") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        try:
            entry = fastjson.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") == "error":
            return str(entry.get("msg") or "the OCI runtime failed")
    return None
