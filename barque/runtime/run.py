"""`run` (create + start + wait + delete) and `exec`, attached or detached."""

from __future__ import annotations

import os

from barque.runtime.args import Parsed
from barque.runtime.create import CreateOptions, create
from barque.runtime.errors import RuntimeFailure
from barque.runtime.state import Container


def _console_pair() -> tuple[int, int]:
    """A socketpair standing in for --console-socket when we proxy the terminal ourselves."""
    import socket

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return ours.detach(), theirs.detach()


def run_container(opts: CreateOptions, detach: bool, keep: bool) -> int:
    from barque.runtime import lifecycle
    from barque.runtime.hooks import run_hooks  # noqa: F401  (loaded before fork)

    forwarder = None
    proxy_fd = None
    if not detach:
        # Before the fork, as every import (see create._spawn); a detached run needs none.
        from barque.runtime.foreground import Forwarder, TtyProxy, reap

        # The init is our grandchild: stage 1 stays to wait for it and mirrors its status.
        opts.stay = True
        forwarder = Forwarder()
        forwarder.install()
        if not opts.console_socket and _wants_terminal(opts.bundle):
            proxy_fd, opts.console_fd = _console_pair()
    try:
        container = create(opts)
    finally:
        if opts.console_fd is not None:
            os.close(opts.console_fd)
    proxy = None
    if proxy_fd is not None:
        from barque.linux.terminal import recv_fd

        proxy = TtyProxy(recv_fd(proxy_fd))
        os.close(proxy_fd)
    try:
        lifecycle.start(container)
    except BaseException:
        lifecycle.delete(container, force=True)
        raise
    if detach:
        return 0
    assert forwarder is not None
    forwarder.target(container.pid)
    if proxy is not None:
        proxy.start()
        try:
            code = proxy.pump(opts.stage1_pid)
        finally:
            proxy.stop()
    else:
        code = reap(opts.stage1_pid)
    if not keep:
        lifecycle.delete(container, force=True)
    return code


def _wants_terminal(bundle: str) -> bool:
    from barque.runtime import fastjson as json

    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            return bool(json.loads(f.read()).get("process", {}).get("terminal"))
    except (OSError, ValueError, AttributeError):
        return False


def _process_from_flags(container: Container, opts: Parsed) -> dict:
    import copy

    from barque.runtime import fastjson as json

    if opts.process:
        try:
            with open(str(opts.process), "rb") as f:
                process = json.loads(f.read())
        except (OSError, ValueError) as e:
            raise RuntimeFailure(f"cannot read process file {opts.process}: {e}") from None
        if not isinstance(process, dict):
            raise RuntimeFailure(f"process file {opts.process}: not a JSON object")
        return process
    if not opts.args[1:]:
        raise RuntimeFailure("exec: a process file (--process) or a command is required")
    process = copy.deepcopy(container.config["process"])
    process["args"] = opts.args[1:]
    process["terminal"] = bool(opts.tty)
    process.pop("consoleSize", None)
    process["env"] = list(process.get("env") or []) + list(opts.env)
    if opts.cwd:
        process["cwd"] = opts.cwd
    if opts.user:
        uid, _, gid = str(opts.user).partition(":")
        process["user"] = {"uid": int(uid), "gid": int(gid or 0)}
    if opts.additional_gids:
        process.setdefault("user", {})["additionalGids"] = [int(g) for g in opts.additional_gids]
    if opts.no_new_privs:
        process["noNewPrivileges"] = True
    if opts.cap:
        caps = process.setdefault("capabilities", {})
        for key in ("bounding", "effective", "permitted", "ambient"):
            caps[key] = list(caps.get(key) or []) + list(opts.cap)
    if opts.apparmor:
        process["apparmorProfile"] = opts.apparmor
    return process


def exec_command(container: Container, opts: Parsed) -> int:
    from barque.linux import prctl
    from barque.runtime import subcgroup
    from barque.runtime.exec import exec_process
    from barque.runtime.foreground import Forwarder, TtyProxy, reap

    process = _process_from_flags(container, opts)
    detach = bool(opts.detach)
    console_fd: int | None = None
    proxy_fd: int | None = None
    if process.get("terminal"):
        if opts.console_socket:
            from barque.runtime.create import _connect

            console_fd = _connect(str(opts.console_socket))
        elif detach:
            raise RuntimeFailure("cannot allocate tty if runc will detach without setting "
                                 "console socket")
        else:
            proxy_fd, console_fd = _console_pair()
    forwarder = None
    if not detach:
        prctl.set_child_subreaper()
        forwarder = Forwarder()
        forwarder.install()
    pid_file = os.path.abspath(str(opts.pid_file)) if opts.pid_file else None
    try:
        pid = exec_process(container, process, console_fd, int(str(opts.preserve_fds)),
                           pid_file, ignore_paused=bool(opts.ignore_paused),
                           sub_cgroups=subcgroup.parse(list(opts.cgroup)))
    except RuntimeFailure as e:
        # runc: every failure to set the process up is "exec failed: ...", exit status 255
        message = str(e)
        if not message.startswith("exec failed: "):
            message = "exec failed: " + message
        raise RuntimeFailure(message, 255) from None
    finally:
        if console_fd is not None:
            os.close(console_fd)
    if detach:
        return 0
    assert forwarder is not None
    forwarder.target(pid)
    if proxy_fd is not None:
        from barque.linux.terminal import recv_fd

        proxy = TtyProxy(recv_fd(proxy_fd))
        os.close(proxy_fd)
        proxy.start()
        try:
            return proxy.pump(pid)
        finally:
            proxy.stop()
    return reap(pid)
