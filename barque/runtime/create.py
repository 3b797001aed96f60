"""`create`: from a bundle to a container whose init waits on the exec fifo.

The runtime checks the config, makes the state dir and the cgroup (with its limits), and
starts the init; while the init works it moves it into the cgroup, runs the
prestart/createRuntime hooks, records the state and exits. The init (init.py) builds the root
filesystem, taking its cgroup namespace once the runtime says it is in its cgroup, prepares
the process, and blocks opening the exec fifo until `start` opens the other end.

The init is started one of two ways:
  direct   — the common case (new namespaces, or an IPC, UTS or network namespace joined by
             path; no user or time namespace): the runtime unshares a PID namespace for its
             next child only, forks the init into it as PID 1 and takes its own PID namespace
             back; the init joins and unshares the rest itself.
             The runtime knows the init's pid at once and can put it in its cgroup while the
             init is still importing: the first cgroup.procs write after a quiet spell costs
             a grace period unless it falls soon after the launcher's warm-up write.
  stage 1  — as in runc's nsexec, when other namespaces are joined by path or a user or time
             namespace is new: a first child joins or unshares the namespaces (the user
             namespace first, so the runtime can map it), then forks the init — the first
             process of the new PID namespace — reports its pid and exits.
"""

from __future__ import annotations

import os
import time

from barque.linux import namespaces as ns
from barque.runtime import state as st
from barque.runtime.config import load_bundle
from barque.runtime.errors import RuntimeFailure
from barque.runtime.hooks import run_hooks
from barque.runtime.log import LOG
from barque.runtime.resources import effective_resources
from barque.runtime.sync import Channel, pipe_pair

TYPE_CHECKING = False  # not typing's: see barque/linux/libc.py
if TYPE_CHECKING:
    from barque.cgroups.base import CgroupMount, Manager
    from barque.linux.seccomp import Program


class CreateOptions:
    __slots__ = ("root", "id", "bundle", "pid_file", "console_socket", "no_pivot",
                 "preserve_fds", "listen_fds", "console_fd", "seccomp_filter",
                 "cgroup_mounts", "stay", "stage1_pid", "no_new_keyring", "mount_fds")

    def __init__(self, root: str, container_id: str, bundle: str) -> None:
        self.root = root
        self.id = container_id
        self.bundle = os.path.abspath(bundle)
        self.pid_file: str | None = None
        self.console_socket: str | None = None
        self.no_pivot = False
        self.preserve_fds = 0
        self.listen_fds = 0  # systemd's sockets (LISTEN_FDS), kept before the preserved fds
        self.console_fd: int | None = None  # a connected socket to send the pty master to
        self.seccomp_filter: Program | None = None
        self.cgroup_mounts: list[CgroupMount] = []
        # `run` in the foreground: stage 1 stays as the init's parent and exits with its
        # status, so the runtime can wait for it without becoming a subreaper.
        self.stay = False
        # The child `run` waits for: stage 1, or the init itself when started directly.
        self.stage1_pid = 0
        self.no_new_keyring = False
        # mount index -> an O_PATH fd of its bind source, opened before a user namespace
        self.mount_fds: dict[int, int] = {}


def _timestamp() -> str:
    now = time.time()
    frac = f"{now % 1:.9f}"[1:]
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + frac + "Z"


def _owner() -> str:
    uid = os.geteuid()
    return "root" if uid == 0 else str(uid)


def create(opts: CreateOptions) -> st.Container:
    import gc

    # No collection while processes share pages with us: it would write to every object's
    # header and make both sides copy most of the heap.
    gc.disable()
    try:
        return _create(opts)
    finally:
        gc.enable()


def _create(opts: CreateOptions) -> st.Container:
    if not st.valid_id(opts.id):
        raise RuntimeFailure(f"invalid container id format: {opts.id}")
    LOG.debug(f"create[{os.getpid()}]: loading the bundle {opts.bundle}")
    config, rootfs = load_bundle(opts.bundle)
    process = config["process"]
    if process.get("terminal") and opts.console_fd is None and not opts.console_socket:
        raise RuntimeFailure(
            "cannot allocate tty if runc will detach without setting console socket"
        )
    from barque.runtime.process import build_seccomp

    opts.seccomp_filter = build_seccomp(config.get("linux") or {}, opts.root)
    os.makedirs(opts.root, mode=0o711, exist_ok=True)
    cdir = os.path.join(opts.root, opts.id)
    try:
        os.mkdir(cdir, 0o711)
    except FileExistsError:
        raise RuntimeFailure(f"container with id exists: {opts.id}") from None
    linux = config.get("linux") or {}
    container = st.Container(opts.root, opts.id, {
        "status": "creating", "pid": 0, "bundle": opts.bundle, "rootfs": rootfs,
        "created": _timestamp(), "owner": _owner(), "config": config,
        "cgroupPath": linux.get("cgroupsPath") or "", "noNewKeyring": opts.no_new_keyring,
    })
    cgroup = None
    init_pid = 0
    try:
        container.save()
        os.mkfifo(container.fifo, 0o622)
        os.chmod(container.fifo, 0o622)  # past the umask: a non-root init must open it
        from barque.cgroups import open_manager
        from barque.cgroups.base import CgroupError

        LOG.debug(f"create[{os.getpid()}]: opening the cgroup "
                  f"{linux.get('cgroupsPath') or opts.id}")
        manager = open_manager(linux.get("cgroupsPath"), opts.id)
        _check_existing_cgroup(manager)  # before `cgroup` is set: _undo must not remove it
        # Limits the host cannot apply are refused before the cgroup is made.
        try:
            manager.prepare_resources(effective_resources(linux))
        except CgroupError as e:
            raise RuntimeFailure(str(e)) from None
        cgroup = manager
        container.data["cgroupPath"] = cgroup.path
        container.data["cgroupPaths"] = cgroup.resolved_paths()
        container._cgroup = cgroup
        if any(m.get("type") == "cgroup" for m in config.get("mounts") or []):
            opts.cgroup_mounts = cgroup.mounts()
        init_pid = _spawn(opts, container, cgroup)
        LOG.debug(f"create[{os.getpid()}]: init {init_pid} ready, writing the state")
        container.data.pop("status")
        container.data["pid"] = init_pid
        container.data["pidStart"] = st.process_start_time(init_pid)
        container.save()
        container.save_fastpath()
        if opts.pid_file:
            st.write_pid_file(opts.pid_file, init_pid)
        return container
    except BaseException:
        _undo(container, cgroup, init_pid)
        raise


def _check_existing_cgroup(cgroup: Manager) -> None:
    """runc's checks of a cgroup that exists already: a frozen one would freeze the init in
    the middle of its set-up (and us, waiting for it), so it is refused; one with processes
    in it only gets runc's warning."""
    from barque.cgroups.base import CgroupError

    try:
        frozen = cgroup.is_frozen()
    except (CgroupError, OSError):  # no such cgroup (yet), or no freezer: not frozen
        frozen = False
    if frozen:
        raise RuntimeFailure("container's cgroup unexpectedly frozen")
    try:
        count = len(cgroup.pids()) if cgroup.exists() else 0
    except (CgroupError, OSError):
        count = 0
    if count:
        LOG.warning(f"container's cgroup is not empty: {count} process(es) found")
        LOG.warning("DEPRECATED: running container in a non-empty cgroup won't be supported "
                    "in runc 1.2; https://github.com/opencontainers/runc/issues/3132")


def _undo(container: st.Container, cgroup: Manager | None, init_pid: int) -> None:
    import _signal as signal  # signal.py would import enum: ~2 ms

    if init_pid:
        try:
            os.kill(init_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if cgroup is not None:
        try:
            cgroup.kill_all(signal.SIGKILL)
            cgroup.destroy()
        except Exception as e:  # the original error matters more than this one
            LOG.warning(f"cleaning up cgroup of {container.id}: {e}")
    st.remove_dir(container.dir)


def _namespace_plan(linux: dict) -> tuple[int, list[tuple[str, str]]]:
    """(flags to unshare, [(type, path)] to join)."""
    flags, joins = 0, []
    for item in linux.get("namespaces") or []:
        kind = item["type"]
        if item.get("path"):
            joins.append((kind, item["path"]))
        else:
            flags |= ns.NAMESPACES[kind][0]
    joins.sort(key=lambda j: ns.JOIN_ORDER.index(j[0]))
    return flags, joins


# Namespaces the directly started init can join itself, after the fork into its PID
# namespace and before it unshares the others, as stage 1 would have before forking it:
# a PID, user or time namespace must be joined before the init exists, and a mount or cgroup
# namespace joined by path is left to stage 1 as runc orders it. The engine's containers join
# the network namespace it made (--network) and may join another's IPC or UTS namespace.
_DIRECT_JOINS = frozenset({"ipc", "uts", "network"})


def _spawn(opts: CreateOptions, container: st.Container, cgroup: Manager) -> int:
    """Start the init (directly or through stage 1) and drive it through set-up; return its
    host pid."""
    config = container.config
    linux = config.get("linux") or {}
    flags, joins = _namespace_plan(linux)
    direct = (all(kind in _DIRECT_JOINS for kind, _ in joins)
              and not flags & (ns.CLONE_NEWUSER | ns.CLONE_NEWTIME))
    if any(n.get("type") == "user" for n in linux.get("namespaces") or []):
        from barque.runtime.rootfs import open_bind_sources

        opts.mount_fds = open_bind_sources(config.get("mounts") or [])
    fifo_fd = os.open(container.fifo, os.O_PATH | os.O_CLOEXEC)
    console_fd = opts.console_fd
    if console_fd is None and config["process"].get("terminal"):
        console_fd = _connect(opts.console_socket or "")
    to_child_r, to_child_w = pipe_pair()
    from_child_r, from_child_w = pipe_pair()
    try:
        LOG.debug(f"create[{os.getpid()}]: spawn the init "
                  f"({'directly' if direct else 'through stage-1'}); joining "
                  f"{[kind for kind, _ in joins]}")
        if direct:
            # The init's imports, here rather than after the fork: a forked child pays page
            # copies for every object an import touches (~3x the time).
            from barque.runtime.init import preload

            preload(config)
            pid = _fork_into_pid_namespace(flags)
        else:
            pid = os.fork()
        if pid == 0:
            to_child_w.close()
            from_child_r.close()
            if direct:
                _direct_init(opts, container, flags, joins, to_child_r, from_child_w, fifo_fd,
                             console_fd)
            _stage1(opts, container, flags, joins, to_child_r, from_child_w, fifo_fd,
                    console_fd)
        to_child_r.close()
        from_child_w.close()
        os.close(fifo_fd)
        opts.stage1_pid = pid
        if direct:
            return _drive_direct(container, cgroup, pid, to_child_w, from_child_r)
        return _drive(container, cgroup, pid, opts.stay, to_child_w, from_child_r)
    finally:
        to_child_w.close()
        from_child_r.close()
        for fd in opts.mount_fds.values():
            os.close(fd)
        opts.mount_fds = {}
        if console_fd is not None and opts.console_fd is None:
            os.close(console_fd)


def _fork_into_pid_namespace(flags: int) -> int:
    """os.fork(), the child being PID 1 of a new PID namespace if flags ask for one; the
    caller stays in its own and its later children (hooks) are born there too."""
    if not flags & ns.CLONE_NEWPID:
        return os.fork()
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            ns.unshare(ns.CLONE_NEWPID)
        except OSError as e:
            raise RuntimeFailure(f"cannot create a PID namespace: {e.strerror}") from None
        try:
            pid = os.fork()
        except BaseException:
            ns.setns(own, ns.CLONE_NEWPID)
            raise
        if pid:
            ns.setns(own, ns.CLONE_NEWPID)
        return pid
    finally:
        os.close(own)


def _direct_init(opts: CreateOptions, container: st.Container, flags: int,
                 joins: list[tuple[str, str]], from_parent: Channel, to_parent: Channel,
                 fifo_fd: int, console_fd: int | None) -> None:
    """The directly started init (already PID 1): the other namespaces, then init.py's work.
    Never returns."""
    try:
        join_namespaces(joins)  # first, as stage 1 does (runc's order)
        # The cgroup namespace waits for the init to be in its cgroup (see _drive_direct).
        rest = flags & ~(ns.CLONE_NEWPID | ns.CLONE_NEWCGROUP)
        if rest:
            ns.unshare(rest)
        from barque.runtime.init import container_init
    except BaseException as e:
        to_parent.send_failure(e, "namespace set-up")
        os._exit(1)
    container_init(opts, container, flags, from_parent, to_parent, fifo_fd, console_fd)


def _drive_direct(container: st.Container, cgroup: Manager, init_pid: int, to_child: Channel,
                  from_child: Channel) -> int:
    try:
        container.data["pid"] = init_pid
        # While the init unshares its namespaces and mounts. Limits land before it joins its
        # cgroup, so before it is charged for anything (a limit below its usage would fail).
        LOG.debug(f"create[{os.getpid()}]: init {init_pid} spawned; creating the cgroup")
        cgroup.create()
        LOG.debug(f"create[{os.getpid()}]: applying the cgroup limits")
        _set_limits(cgroup, container.config.get("linux") or {})
        _join_cgroup(container, cgroup, init_pid)
        _send_cgroup_ready(to_child)
        _await_ready(container, to_child, from_child)
        return init_pid
    except BaseException:
        _kill(init_pid)
        _reap(init_pid)
        raise


def _set_limits(cgroup: Manager, linux: dict) -> None:
    """The limits, or runc's words for a cgroup file that refused one (not a Python trace)."""
    from barque.cgroups.base import CgroupError

    try:
        cgroup.set_resources(effective_resources(linux))
    except CgroupError as e:
        raise RuntimeFailure(f"{_START_FAILED}error during container init: error setting "
                             f"cgroup config for procHooks process: {e}") from None


def _send_cgroup_ready(to_child: Channel) -> None:
    try:
        to_child.send(op="cgroup-ready")
    except BrokenPipeError:
        pass  # the init failed first (a mount before the cgroup one): its error is in the pipe


def _join_cgroup(container: st.Container, cgroup: Manager, init_pid: int) -> None:
    LOG.debug(f"create[{os.getpid()}]: moving init {init_pid} into its cgroup")
    cgroup.add_pid(init_pid)
    adj = container.config["process"].get("oomScoreAdj")
    if adj is not None:
        _write(f"/proc/{init_pid}/oom_score_adj", str(adj), "oom_score_adj")


_START_FAILED = "unable to start container process: "


def next_message(from_child: Channel, who: str = "container init") -> dict:
    """The child's next message; its error, or its end, raised as a RuntimeFailure."""
    msg = from_child.recv()
    if msg is None:
        raise RuntimeFailure(f"{who} exited during set-up")
    if msg.get("op") == "error":
        # runc's words for whatever its init (or exec'd process) reports failing: Docker shows
        # them as "OCI runtime create failed: ... unable to start container process: exec: ..."
        message = str(msg.get("message"))
        if not message.startswith(_START_FAILED):
            message = _START_FAILED + message
        raise RuntimeFailure(message, int(msg.get("code", 1)))
    return msg


def _await_ready(container: st.Container, to_child: Channel, from_child: Channel) -> None:
    """Serve the init's requests (hooks) until it reports ready; raise on its error."""
    hooks = container.config.get("hooks") or {}
    while True:
        op = next_message(from_child).get("op")
        if op == "hooks":
            LOG.debug(f"create[{os.getpid()}]: running the prestart and createRuntime hooks")
            state = container.hook_state("created")
            run_hooks(hooks.get("prestart") or [], state, "prestart")
            run_hooks(hooks.get("createRuntime") or [], state, "createRuntime")
            to_child.send(op="hooks-done")
        elif op == "ready":
            LOG.debug(f"create[{os.getpid()}]: the init is set up and waits on the exec fifo")
            return


def _connect(path: str) -> int:
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise RuntimeFailure(f"cannot connect to console socket {path}: {e.strerror}") from None
    return sock.detach()


def _drive(container: st.Container, cgroup: Manager, stage1: int, stage1_stays: bool,
           to_child: Channel, from_child: Channel) -> int:
    linux = container.config.get("linux") or {}
    init_pid = 0
    try:
        # Cgroup set-up runs while the children set up namespaces and mounts; the init joins
        # its cgroup (stage 1 never does: it must not count against the container's limits)
        # and only then, on "cgroup-ready", takes its cgroup namespace.
        to_child.send(op="go")
        LOG.debug(f"create[{os.getpid()}]: stage-1 {stage1} spawned; creating the cgroup")
        cgroup.create()
        # Limits land before the init joins, so before the container's process can run.
        LOG.debug(f"create[{os.getpid()}]: applying the cgroup limits")
        _set_limits(cgroup, linux)
        while True:
            msg = next_message(from_child)
            op = msg.get("op")
            if op == "userns":
                LOG.debug(f"create[{os.getpid()}]: writing the id maps of stage-1 {stage1}")
                _write_id_maps(stage1, linux)
                to_child.send(op="mapped")
            elif op == "pid":
                init_pid = int(msg["pid"])
                container.data["pid"] = init_pid
                if not stage1_stays:
                    _reap(stage1)
                _join_cgroup(container, cgroup, init_pid)
                _send_cgroup_ready(to_child)
                _await_ready(container, to_child, from_child)
                return init_pid
    except BaseException:
        if init_pid:
            _kill(init_pid)
        _kill(stage1)
        _reap(stage1)
        raise


def _kill(pid: int) -> None:
    import _signal as signal  # signal.py would import enum: ~2 ms

    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _write(path: str, value: str, what: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as e:
        raise RuntimeFailure(f"cannot set {what} to {value}: {e.strerror}") from None


def _write_id_maps(pid: int, linux: dict) -> None:
    def lines(maps: list[dict]) -> str:
        return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps)

    uid_maps = linux.get("uidMappings") or []
    gid_maps = linux.get("gidMappings") or []
    if os.geteuid() != 0:
        # An unprivileged writer may map only itself, and only after denying setgroups.
        _write(f"/proc/{pid}/setgroups", "deny", "setgroups")
    _write(f"/proc/{pid}/uid_map", lines(uid_maps), "uid_map")
    _write(f"/proc/{pid}/gid_map", lines(gid_maps), "gid_map")


def join_namespaces(joins: list[tuple[str, str]]) -> None:
    """In `joins`' order (runc's: the user namespace first, which lets a rootless runtime
    into the others). A runtime that is root joins a user namespace last instead: the others
    may belong to the host's user namespace (a network namespace the engine made), which
    nobody inside another user namespace may enter (EPERM), while the host's root may enter
    any. Inside a joined user namespace it becomes that namespace's root, as runc's stage 1
    (the host's uid 0 is unmapped there: files it made would fail with EOVERFLOW)."""
    if os.geteuid() == 0:
        joins = [j for j in joins if j[0] != "user"] + [j for j in joins if j[0] == "user"]
    # Every one opened first, as runc does: a /proc/PID path read after joining the mount
    # namespace would be the container's /proc.
    opened: list[tuple[str, str, int]] = []
    try:
        for kind, path in joins:
            try:
                opened.append((kind, path, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
            except OSError as e:
                raise RuntimeFailure(f"cannot join {kind} namespace {path}: "
                                     f"{e.strerror}") from None
        for kind, path, fd in opened:
            try:
                ns.setns(fd, ns.NAMESPACES[kind][0])
            except OSError as e:
                raise RuntimeFailure(f"cannot join {kind} namespace {path}: "
                                     f"{e.strerror}") from None
            if kind == "user":
                os.setresgid(0, 0, 0)
                os.setresuid(0, 0, 0)
    finally:
        for _, _, fd in opened:
            os.close(fd)


def _stage1(opts: CreateOptions, container: st.Container, flags: int,
            joins: list[tuple[str, str]], to_parent_r: Channel, to_parent_w: Channel,
            fifo_fd: int, console_fd: int | None) -> None:
    """Runs in the first child; never returns."""
    code = 1
    try:
        from barque.linux import prctl
        from barque.runtime.init import preload

        # Here, in parallel with the runtime's cgroup work, and before any namespace is entered.
        preload(container.config)
        if (to_parent_r.recv() or {}).get("op") != "go":
            os._exit(1)
        join_namespaces(joins)
        if flags & ns.CLONE_NEWUSER:
            # While non-dumpable our /proc files belong to the host's root: neither a rootless
            # runtime (our uid_map) nor our own mapped root (timens_offsets) could write them.
            # As in runc: dumpable for this set-up only, never in the init.
            prctl.set_dumpable(True)
            ns.unshare(ns.CLONE_NEWUSER)
            to_parent_w.send(op="userns")
            if (to_parent_r.recv() or {}).get("op") != "mapped":
                os._exit(1)
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        # The cgroup namespace waits for the init to be in its cgroup (see _drive).
        rest = flags & ~(ns.CLONE_NEWUSER | ns.CLONE_NEWCGROUP)
        if rest:
            ns.unshare(rest)
        if flags & ns.CLONE_NEWTIME:
            _write_time_offsets(container.config.get("linux") or {})
        if flags & ns.CLONE_NEWUSER:
            prctl.set_dumpable(False)
        pid = os.fork()
        if pid == 0:
            from barque.runtime.init import container_init

            container_init(opts, container, flags, to_parent_r, to_parent_w, fifo_fd,
                           console_fd)
        to_parent_w.send(op="pid", pid=pid)
        code = 0
        if opts.stay:
            # Our copies must go: the runtime reads the pipe until every writer is gone.
            to_parent_w.close()
            to_parent_r.close()
            code = _mirror(pid)
    except BaseException as e:
        to_parent_w.send_failure(e, "namespace set-up")
    os._exit(code)


def _mirror(pid: int) -> int:
    """Wait for the init and return its status as a shell reports it."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except InterruptedError:
            continue
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)
        return os.WEXITSTATUS(status)


def _write_time_offsets(linux: dict) -> None:
    offsets = linux.get("timeOffsets") or {}
    lines = []
    for clock in ("monotonic", "boottime"):
        off = offsets.get(clock)
        if off:
            lines.append(f"{clock} {int(off.get('secs', 0))} {int(off.get('nanosecs', 0))}\n")
    if lines:
        _write("/proc/self/timens_offsets", "".join(lines), "time namespace offsets")
