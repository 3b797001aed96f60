"""The container's first process (stage 2 of `create`): from a forked runtime to execve.

Runs as PID 1 of the new PID namespace. Every failure before the exec fifo is opened goes
back to the runtime as an "error" message, so `create` fails cleanly with the reason.
"""

from __future__ import annotations

import _signal as signal  # signal.py would import enum: ~2 ms
import os

from barque.linux import keyring
from barque.linux import namespaces as ns
from barque.runtime import process as proc
from barque.runtime import rootfs as fs
from barque.runtime.errors import RuntimeFailure
from barque.runtime.hooks import run_hooks
from barque.runtime.state import Container
from barque.runtime.sync import Channel

TYPE_CHECKING = False  # not typing's: see barque/linux/libc.py
if TYPE_CHECKING:
    from barque.runtime.create import CreateOptions

# Python ignores these at start-up; an ignored disposition would survive execve.
_RESET = ("SIGPIPE", "SIGXFSZ", "SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1",
          "SIGUSR2", "SIGWINCH", "SIGCHLD", "SIGTTIN", "SIGTTOU", "SIGTSTP")


def reset_signals() -> None:
    for name in _RESET:
        try:
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        except (OSError, ValueError, AttributeError):
            pass


def container_init(opts: CreateOptions, container: Container, flags: int, from_parent: Channel,
                   to_parent: Channel, fifo_fd: int, console_fd: int | None) -> None:
    """Never returns: execs the container process or exits."""
    try:
        _run_init(opts, container, flags, from_parent, to_parent, fifo_fd, console_fd)
    finally:
        os._exit(1)


def preload(config: dict, terminal: bool | None = None, process: dict | None = None) -> None:
    """Import now what the children need later: after entering a user namespace the host's
    Python library may be unreadable, and after pivot_root it is gone. `process`: the one to
    run, when it is not the config's (exec)."""
    if (process if process is not None else config.get("process") or {}).get("rlimits"):
        import resource  # noqa: F401  (a shared library: ~0.5 ms, for rlimits only)

    from barque.linux import capabilities, fds, keyring, lsm, mount, netdev, prctl, sched  # noqa: F401

    if terminal if terminal is not None else (config.get("process") or {}).get("terminal"):
        import array  # noqa: F401
        import socket  # noqa: F401

        from barque.runtime import console  # noqa: F401

    if any("tmpcopyup" in (m.get("options") or []) for m in config.get("mounts") or []):
        import tempfile  # noqa: F401

        from barque.linux import fdtree  # noqa: F401
    hooks = config.get("hooks") or {}
    if hooks.get("startContainer") or hooks.get("createContainer"):
        import subprocess  # noqa: F401


def _where(e: BaseException) -> str:
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return ""
    code = tb.tb_frame.f_code
    return f" (at {os.path.basename(code.co_filename)}:{tb.tb_lineno} {code.co_name})"


def _run_init(opts: CreateOptions, container: Container, flags: int, from_parent: Channel,
              to_parent: Channel, fifo_fd: int, console_fd: int | None) -> None:
    reset_signals()
    ready = False
    try:
        preload(container.config)
        exe = _setup(opts, container, flags, from_parent, to_parent, console_fd)
        to_parent.send(op="ready")
        ready = True
        to_parent.close()
        from_parent.close()
        _wait_for_start(fifo_fd)
        config = container.config
        hooks = (config.get("hooks") or {}).get("startContainer") or []
        if hooks:
            run_hooks(hooks, container.hook_state("created"), "startContainer")
        proc.exec_process(exe, config["process"])
    except RuntimeFailure as e:
        _fail(to_parent, ready, str(e), e.code)
    except BaseException as e:  # anything unexpected must still reach the caller
        _fail(to_parent, ready, f"container init: {type(e).__name__}: {e}{_where(e)}", 1)


def _fail(to_parent: Channel, ready: bool, message: str, code: int) -> None:
    if not ready:
        try:
            to_parent.send(op="error", message=message, code=code)
            return
        except OSError:
            pass
    os.write(2, f"barque-runtime: {message}\n".encode())
    os._exit(code if code in (126, 127) else 1)


def _wait_for_start(fifo_fd: int) -> None:
    # Opening our own O_PATH fd for writing blocks until `start` opens the fifo to read.
    fd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    os.write(fd, b"0")
    os.close(fd)
    os.close(fifo_fd)


def _setup(opts: CreateOptions, container: Container, flags: int, from_parent: Channel,
           to_parent: Channel, console_fd: int | None) -> str:
    config: dict = container.config
    linux: dict = config.get("linux") or {}
    process: dict = config["process"]
    rootfs: str = container.data["rootfs"]
    in_userns = _in_user_namespace(linux)
    # After the pty is attached stderr is the container's terminal: debug lines only to --log
    quiet = bool(process.get("terminal"))
    _debug("new session and session keyring")
    proc.own_session()
    if not opts.no_new_keyring:
        # Do not inherit the caller's session keyring (runc names it the same way).
        keyring.join_session_keyring(f"_ses.{container.id}")
    _preserve_fds(opts.listen_fds + opts.preserve_fds)
    if opts.listen_fds:  # our copy of the config: the state keeps the bundle's
        process["env"] = list(process.get("env") or []) + [
            f"LISTEN_FDS={opts.listen_fds}", "LISTEN_PID=1"]
    if flags & ns.CLONE_NEWNET:
        from barque.linux.netdev import link_up

        link_up("lo")
    _debug(f"setting up the root filesystem {rootfs}")
    own_mounts = bool(flags & ns.CLONE_NEWNS)
    readonly = _build_rootfs(opts, container, config, linux, rootfs, flags, in_userns,
                             from_parent)
    hooks = config.get("hooks") or {}
    if hooks.get("prestart") or hooks.get("createRuntime") or hooks.get("createContainer"):
        to_parent.send(op="hooks")
        if (from_parent.recv() or {}).get("op") != "hooks-done":
            raise RuntimeFailure("runtime went away while running hooks")
        _debug("running the createContainer hooks")
        os.chdir(rootfs)  # runc runs them from the container's root (before pivot_root)
        run_hooks(hooks.get("createContainer") or [], container.hook_state("created"),
                  "createContainer")
    if not own_mounts:
        # No mount namespace of its own (runc: chroot, and nothing of finalizeRootfs)
        _debug("chroot (no mount namespace)")
        os.chdir(rootfs)
        os.chroot(".")
    else:
        _debug("chroot" if opts.no_pivot else "pivot_root")
        fs.pivot(rootfs, opts.no_pivot)
        fs.root_propagation(linux.get("rootfsPropagation"))
    if process.get("terminal"):
        from barque.runtime.console import attach_new_pty

        attach_new_pty(process, console_fd, bind_dev_console=True)
    if own_mounts:
        # Only now, every mount under them made (devpts in a read-only /dev): runc's order
        fs.remount_readonly(readonly)
        if (config.get("root") or {}).get("readonly"):
            fs.readonly_root()
    if _has_namespace(linux, "uts"):  # new or joined by path: runc sets it either way
        if config.get("hostname"):
            ns.sethostname(config["hostname"])
        if config.get("domainname"):
            ns.setdomainname(config["domainname"])
    elif config.get("hostname"):
        raise RuntimeFailure("unable to set hostname without a private UTS namespace")
    _debug("hostname, labels, sysctls, read-only and masked paths", quiet)
    apply_labels(process, linux)
    fs.write_sysctls(linux.get("sysctl") or {})
    if linux.get("personality"):
        from barque.linux.prctl import set_personality

        set_personality(linux["personality"]["domain"])
    fs.readonly_paths(linux.get("readonlyPaths") or [])
    fs.mask_paths(linux.get("maskedPaths") or [])
    cwd = process.get("cwd", "/")
    env = proc.env_dict(process.get("env") or [])
    _debug("user, capabilities, no_new_privs, seccomp", quiet)
    # As runc: the chdir is root's (a user who may not read its cwd still starts there,
    # `docker run -u 1000 -w /root`), after a filter that needs CAP_SYS_ADMIN; only where
    # root was refused (a user namespace, a root-squashing mount) is it tried again as the
    # user. The program is looked up from there, as the user, before no_new_privs' filter.
    proc.finalize(process, opts.seccomp_filter,
                  userns_setgroups=_setgroups_allowed(in_userns),
                  preserve_fds=opts.listen_fds + opts.preserve_fds,
                  chdir=lambda as_root: _chdir(cwd, process, as_root) is not None)
    exe = proc.lookup_executable(process["args"][0], env, cwd)
    proc.seal(process, opts.seccomp_filter)
    return exe


def _debug(message: str, quiet: bool = False) -> None:
    from barque.runtime.log import LOG

    if not quiet or LOG.path:
        LOG.debug(f"init[{os.getpid()}]: {message}")


def _build_rootfs(opts: CreateOptions, container: Container, config: dict, linux: dict, rootfs: str,
                  flags: int, in_userns: bool, from_parent: Channel) -> list[str]:
    """Mount everything; return the destinations to make read-only once all is mounted."""
    mounts = config.get("mounts") or []
    if flags & ns.CLONE_NEWNS:
        fs.prepare_root(rootfs, linux.get("rootfsPropagation"))
    # else: runc 1.1 would make the host's / rslave here; its propagation is left alone
    ready: list[bool] = []

    def await_cgroup() -> None:
        """Block until the runtime has put us in our cgroup; then take the cgroup namespace,
        whose root is the cgroup we are in at that moment."""
        if ready:
            return
        if (from_parent.recv() or {}).get("op") != "cgroup-ready":
            raise RuntimeFailure("runtime went away while setting up cgroups")
        if flags & ns.CLONE_NEWCGROUP:
            ns.unshare(ns.CLONE_NEWCGROUP)
        ready.append(True)

    readonly = fs.mount_all(rootfs, mounts, opts.cgroup_mounts,
                            bool(flags & ns.CLONE_NEWCGROUP), before_cgroup=await_cgroup,
                            source_fds=opts.mount_fds)
    await_cgroup()
    if fs.needs_dev(mounts):
        fs.create_devices(rootfs, linux.get("devices") or [], in_userns)
    return readonly


def _has_namespace(linux: dict, kind: str) -> bool:
    return any(n.get("type") == kind for n in linux.get("namespaces") or [])


def _in_user_namespace(linux: dict) -> bool:
    return any(n.get("type") == "user" for n in linux.get("namespaces") or [])


def _setgroups_allowed(in_userns: bool) -> bool:
    if not in_userns:
        return True
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() == "allow"
    except OSError:
        return True


def _chdir(cwd: str, process: dict, as_root: bool = True) -> os.stat_result | None:
    """Into the cwd, resolved inside the root, made by root if missing whatever the user (as
    runc's prepareRootfs). Refused as root (`as_root`): None, for the caller to try again as
    the user, as runc does."""
    try:
        return fs.chdir_in_root(cwd, as_root)
    except FileNotFoundError:
        raise RuntimeFailure(f'chdir to cwd ("{cwd}") set in config.json failed: '
                             "no such file or directory") from None
    except PermissionError:
        if as_root:
            return None
        raise RuntimeFailure(f'chdir to cwd ("{cwd}") set in config.json failed: '
                             "permission denied") from None
    except OSError as e:
        raise RuntimeFailure(f'chdir to cwd ("{cwd}") set in config.json failed: '
                             f"{(e.strerror or '').lower()}") from None


def _preserve_fds(count: int) -> None:
    for fd in range(3, 3 + count):
        try:
            os.set_inheritable(fd, True)
        except OSError:
            pass


def apply_labels(process: dict, linux: dict) -> None:
    """Set the AppArmor profile and SELinux label for the execve. A host without the module
    was refused by config.validate_process; "unconfined" asks for no profile."""
    from barque.linux import lsm
    from barque.runtime.log import LOG

    profile = process.get("apparmorProfile")
    if profile and not (profile == "unconfined" and not lsm.apparmor_enabled()):
        try:
            lsm.set_apparmor_exec(profile)
        except OSError as e:
            raise RuntimeFailure(f"apparmor failed to apply profile: {e}") from None
    label = process.get("selinuxLabel")
    if label:
        try:
            lsm.set_selinux_exec(label)
        except OSError as e:
            raise RuntimeFailure(f"cannot apply SELinux label {label!r}: {e}") from None
    if linux.get("mountLabel") and not lsm.selinux_enabled():
        LOG.warning("SELinux is not enabled on this host; ignoring linux.mountLabel")
