"""A build's RUN steps, run by the engine (barque.build.executor.Executor): one process in
the step's mounted root filesystem, in a container made the way `barque run` makes one
(engine/spec.py: Docker's capabilities, seccomp profile, masked and read-only paths, /dev,
/dev/shm), on the build's network, with the RUN's mounts (build_mounts.py), through
`barque-runtime run` in the foreground.

Lighter than a container: no record in the state DB, no monitor; the runtime's state, the
cgroup, the network namespace and veth (and its address), the /etc files and secrets live
for the run alone. They are kept under <runroot>/build-runs/<id>/, which the run claims
(storage/claimed.py) while it lives: a build killed with -9 leaves a claim nobody holds, and
the next executor reclaims what it names (build_reclaim.py)."""

from __future__ import annotations

import os
import subprocess

from barque.build.executor import ExecutorError

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    import threading
    from collections.abc import Callable
    from typing import Any

    from barque.build.executor import RunRequest
    from barque.engine.build_mounts import Stubs
    from barque.engine.context import Engine
    from barque.engine.records import ContainerRecord
    from barque.storage.claimed import ClaimedDir

RUNS_DIR = "build-runs"
ID_PREFIX = "build-"
NETWORKS = ("default", "none", "host")
_CHUNK = 65536
# how the runtime's errors start on its stderr ("barque-runtime: ", "barque-runtime run failed: ")
_RUNTIME_PREFIX = b"barque-runtime"


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
        self.claim: ClaimedDir | None = None
        self.record: ContainerRecord | None = None  # a transient one, for the default bridge
        self.stubs: Stubs | None = None
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
            from barque.engine.build_mounts import Stubs

            self.stubs = Stubs(request.rootfs, made["mounts"])
        except (spec.SpecError, RootfsError, SecurityError) as e:
            raise ExecutorError(str(e)) from None
        made["process"]["terminal"] = False
        from barque.runtime import fastjson

        with open(os.path.join(self.dir, "config.json"), "w") as f:
            f.write(fastjson.dumps(made))

    def _make_dir(self) -> None:
        from barque.storage.claimed import ClaimedDir

        self.claim = ClaimedDir(runs_dir(self.engine), self.id)

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
        from barque.engine import build_mounts

        mounts, env = [], []
        for mount in self.request.mounts:
            if mount.kind == "secret":
                name = mount.options.get("id") or os.path.basename(mount.target)
                if not mount.source:
                    if mount.options.get("required", "false").lower() in ("true", "1"):
                        raise ExecutorError(f"secret {name}: not found")
                    continue  # an optional secret not given: no file, no variable
                if mount.options.get("env"):
                    env.append(f"{mount.options['env']}={build_mounts.read_secret(mount.source)}")
                if not mount.target:
                    continue
            if mount.kind == "cache" and mount.source:
                mount, lock_fd, private = build_mounts.hold_cache(mount)
                if lock_fd >= 0:
                    self.cache_locks.append(lock_fd)
                if private:
                    self.private_dirs.append(private)
            mounts.append(build_mounts.oci_mount(self.dir, mount, self.request.cwd or "/"))
        return mounts, env

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
            # BuildKit's words, with the runtime's name: "runc run failed: ...", which the
            # runtime says itself, as runc, for whatever stops its run
            named = "barque-runtime run failed: "
            if not error.startswith(named):
                started = "unable to start container process: "
                error = named + (error if error.startswith(started) else started + error)
            raise ExecutorError(error)
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

        if self.claim is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.claim.release()
            self.claim = None


def _hosts(hostname: str) -> str:
    """BuildKit's /etc/hosts for a RUN, whatever its network: its hostname on loopback."""
    return f"127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n"


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
