"""`exec`: start another process inside a running container.

As in create: a first child joins the container's namespaces (setns) after the runtime has put
it in the container's cgroup, then forks the real process so it lands in the PID namespace.
"""

from __future__ import annotations

import os

from barque.linux import namespaces as ns
from barque.runtime import process as proc
from barque.runtime import rootfs as fs
from barque.runtime import state as st
from barque.runtime.config import validate_process
from barque.runtime.console import attach_new_pty
from barque.runtime.create import join_namespaces, next_message
from barque.runtime.errors import RuntimeFailure
from barque.runtime.init import _setgroups_allowed, apply_labels, preload, reset_signals
from barque.runtime.log import LOG
from barque.runtime.sync import Channel, pipe_pair

TYPE_CHECKING = False  # not typing's: see barque/linux/libc.py
if TYPE_CHECKING:
    from barque.linux.seccomp import Program


def _namespaces_of(container: st.Container) -> list[tuple[str, str]]:
    """The init's namespaces that differ from ours, in joining order."""
    out = []
    kinds = {n["type"] for n in (container.config.get("linux") or {}).get("namespaces") or []}
    for kind in ns.JOIN_ORDER:
        if kind not in kinds:
            continue
        name = ns.NAMESPACES[kind][1]
        theirs = f"/proc/{container.pid}/ns/{name}"
        if kind == "time":
            theirs = f"/proc/{container.pid}/ns/time_for_children"
        try:
            if os.stat(theirs).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
                continue
        except FileNotFoundError:
            continue
        out.append((kind, theirs))
    return out


def exec_process(container: st.Container, process: dict, console_fd: int | None,
                 preserve_fds: int = 0, pid_file: str | None = None,
                 ignore_paused: bool = False, sub_cgroups: dict[str, str] | None = None
                 ) -> int:
    """Start the process; return its host pid once it is about to execve. The pid file (if
    any) is written before the process may execve: whoever kills through it (the monitor's
    health-check timeout) cannot miss a process that runs, and if we die before, the process
    never runs."""
    status = container.status()
    if status == "paused" and not ignore_paused:
        raise RuntimeFailure("cannot exec in a paused container (use --ignore-paused to "
                             "override)")
    if status == "paused":
        status = "running"
    if status not in ("running", "created"):
        raise RuntimeFailure(f"cannot exec in a {status} container")
    validate_process(process)
    from barque.runtime import subcgroup
    from barque.runtime.lifecycle import cgroup_of

    cgroup_dirs = subcgroup.targets(cgroup_of(container), sub_cgroups or {})
    if process.get("terminal") and console_fd is None:
        raise RuntimeFailure("cannot allocate tty if runc will detach without setting "
                             "console socket")
    joins = _namespaces_of(container)
    affinity = process.get("execCPUAffinity") or {}
    if affinity.get("initial"):
        from barque.linux.sched import parse_cpus

        # Ours, inherited by the children until they move into the container's cgroup.
        os.sched_setaffinity(0, parse_cpus(affinity["initial"]))
    seccomp_filter = proc.build_seccomp(container.config.get("linux") or {}, container.root)
    # After setns into the container's mount namespace the host's Python library is gone.
    preload(container.config, terminal=bool(process.get("terminal")), process=process)
    root_fd = _root_of(container, joins)
    to_child_r, to_child_w = pipe_pair()
    from_child_r, from_child_w = pipe_pair()
    LOG.debug(f"exec[{os.getpid()}]: spawn stage-1 to join {[kind for kind, _ in joins]}")
    stage1 = os.fork()
    if stage1 == 0:
        to_child_w.close()
        from_child_r.close()
        _stage1(container, process, joins, root_fd, to_child_r, from_child_w, console_fd,
                preserve_fds, seccomp_filter)
    if root_fd is not None:
        os.close(root_fd)
    to_child_r.close()
    from_child_w.close()
    try:
        return _drive(container, stage1, to_child_w, from_child_r, pid_file, cgroup_dirs)
    finally:
        to_child_w.close()
        from_child_r.close()


def _root_of(container: st.Container, joins: list[tuple[str, str]]) -> int | None:
    """The init's root directory, if we are to join its mount namespace. setns puts us at the
    namespace's root mount, which is the container's root only if pivot_root made it so: not
    after --no-pivot (chroot), nor when the runtime itself runs chrooted."""
    if not any(kind == "mount" for kind, _ in joins):
        return None
    try:
        return os.open(f"/proc/{container.pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise RuntimeFailure(f"cannot open the container's root: {e.strerror}") from None


def _drive(container: st.Container, stage1: int, to_child: Channel, from_child: Channel,
           pid_file: str | None, cgroup_dirs: list[str]) -> int:
    from barque.runtime import subcgroup
    from barque.runtime.lifecycle import cgroup_of

    pid = 0
    ready = False
    try:
        LOG.debug(f"exec[{os.getpid()}]: moving stage-1 {stage1} into the container's "
                  f"cgroup {cgroup_dirs or ''}")
        if cgroup_dirs:
            subcgroup.join(cgroup_dirs, stage1)
        else:
            cgroup_of(container).add_pid(stage1)
        to_child.send(op="go")
        # Stage 1 reports the pid and the process reports "ready" on the same pipe, from two
        # processes: "ready" may come first. Both are needed.
        while not (ready and pid):
            msg = next_message(from_child, "exec process")
            if msg.get("op") == "pid":
                pid = int(msg["pid"])
                LOG.debug(f"exec[{os.getpid()}]: stage-1 joined the namespaces and forked {pid}")
                os.waitpid(stage1, 0)
            elif msg.get("op") == "ready":
                ready = True
        if pid_file:
            LOG.debug(f"exec[{os.getpid()}]: writing the pid file {pid_file}")
            _write_pid_file(pid_file, pid)
        to_child.send(op="exec")  # read by the process (stage 1 is gone): now it may execve
        return pid
    except BaseException:
        import _signal as signal  # signal.py would import enum: ~2 ms

        for p in (pid, stage1):
            if p:
                try:
                    os.kill(p, signal.SIGKILL)
                    os.waitpid(p, 0)
                except (ProcessLookupError, ChildProcessError):
                    pass
        raise


def _write_pid_file(path: str, pid: int) -> None:
    # unlike runc's, the process has not run when this fails (it dies with stage 2)
    st.write_pid_file(path, pid)


def _stage1(container: st.Container, process: dict, joins: list[tuple[str, str]],
            root_fd: int | None, from_parent: Channel, to_parent: Channel,
            console_fd: int | None, preserve_fds: int, seccomp_filter: Program | None) -> None:
    code = 1
    try:
        if (from_parent.recv() or {}).get("op") != "go":
            os._exit(1)
        join_namespaces(joins)
        if root_fd is not None:
            os.fchdir(root_fd)
            os.chroot(".")
            os.close(root_fd)
        pid = os.fork()
        if pid == 0:
            _stage2(container, process, from_parent, to_parent, console_fd, preserve_fds,
                    seccomp_filter)
        to_parent.send(op="pid", pid=pid)
        code = 0
    except BaseException as e:
        to_parent.send_failure(e, "exec set-up")
    os._exit(code)


def _stage2(container: st.Container, process: dict, from_parent: Channel, to_parent: Channel,
            console_fd: int | None, preserve_fds: int, seccomp_filter: Program | None
            ) -> None:
    reset_signals()
    ready = False
    try:
        proc.own_session()
        for fd in range(3, 3 + preserve_fds):
            os.set_inheritable(fd, True)
        if not container.data.get("noNewKeyring"):
            from barque.linux import keyring

            keyring.join_session_keyring(f"_ses.{container.id}")
        affinity = process.get("execCPUAffinity") or {}
        if affinity.get("final"):
            from barque.linux.sched import parse_cpus

            os.sched_setaffinity(0, parse_cpus(affinity["final"]))
        if process.get("terminal"):
            attach_new_pty(process, console_fd, bind_dev_console=False)
        cwd = process.get("cwd", "/")
        env = proc.env_dict(process.get("env") or [])
        try:
            fs.chdir_in_root(cwd, create=False)
        except OSError as e:
            # runc's words: the errno's alone (our wrappers add the call and path to strerror)
            reason = os.strerror(e.errno) if e.errno else e.strerror or ""
            raise RuntimeFailure(f'chdir to cwd ("{cwd}") set in config.json failed: '
                                 f"{reason.lower()}") from None
        exe = proc.lookup_executable(process["args"][0], env, cwd)
        linux = container.config.get("linux") or {}
        apply_labels(process, {})
        in_userns = any(n.get("type") == "user" for n in linux.get("namespaces") or [])
        proc.finalize(process, seccomp_filter, userns_setgroups=_setgroups_allowed(in_userns),
                      preserve_fds=preserve_fds)
        proc.seal(process, seccomp_filter)
        to_parent.send(op="ready")
        ready = True
        to_parent.close()
        if (from_parent.recv() or {}).get("op") != "exec":
            os._exit(1)  # the runtime failed or went away: it has not published our pid
        from_parent.close()
        proc.exec_process(exe, process)
    except RuntimeFailure as e:
        if not ready:
            to_parent.send(op="error", message=str(e), code=e.code)
        else:
            os.write(2, f"barque-runtime: {e}\n".encode())
    except BaseException as e:
        msg = f"exec: {type(e).__name__}: {e}"
        if not ready:
            to_parent.send(op="error", message=msg, code=1)
        else:
            os.write(2, f"barque-runtime: {msg}\n".encode())
    os._exit(127 if ready else 1)
