"""start, kill, delete, pause, resume: moving a container along the OCI lifecycle."""

from __future__ import annotations

import _signal as signal  # signal.py would import enum: ~2 ms
import os
import select
import time

from barque.runtime import state as st
from barque.runtime.errors import RuntimeFailure
from barque.runtime.hooks import run_hooks
from barque.runtime.log import LOG

TYPE_CHECKING = False  # not typing's: see barque/linux/libc.py
if TYPE_CHECKING:
    from barque.cgroups.base import Manager


def cgroup_of(container: st.Container) -> Manager:
    return container.cgroup


def start(container: st.Container) -> None:
    status = container.status()
    if status == "stopped":
        raise RuntimeFailure("cannot start a container that has stopped")
    if status != "created":
        raise RuntimeFailure(f"cannot start an already {status} container")
    LOG.debug(f"start[{os.getpid()}]: opening the exec fifo of init {container.pid}")
    fd = os.open(container.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                break
            if not container.init_alive():
                raise RuntimeFailure("cannot start a container that has stopped")
        if os.read(fd, 1) != b"0":
            raise RuntimeFailure("container init exited before the start signal")
    finally:
        os.close(fd)
    os.unlink(container.fifo)
    LOG.debug(f"start[{os.getpid()}]: the init execs the container process; poststart hooks")
    hooks = (container.config.get("hooks") or {}).get("poststart") or []
    run_hooks(hooks, container.hook_state("running"), "poststart", fatal=False)


def parse_signal(name: str) -> int:
    name = name.strip().upper()
    if name.isdigit():
        return int(name)
    if not name.startswith("SIG"):
        name = "SIG" + name
    sig = getattr(signal, name, None) if name.isidentifier() else None
    if not isinstance(sig, int):
        raise RuntimeFailure(f"unknown signal {name!r}")
    return sig


def kill(container: st.Container, sig: int, all_processes: bool = False) -> None:
    status = container.status()
    if status == "stopped" and not all_processes:
        raise RuntimeFailure("container not running")
    if all_processes:
        cgroup = cgroup_of(container)
        if status == "paused" and sig == signal.SIGKILL:
            cgroup.kill_all(sig)
            cgroup.thaw()
            return
        cgroup.kill_all(sig)
        return
    try:
        os.kill(container.pid, sig)
    except ProcessLookupError:
        raise RuntimeFailure("container not running") from None


def wait_gone(container: st.Container, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while container.init_alive():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def delete(container: st.Container, force: bool = False) -> None:
    status = container.status()
    if status in ("running", "paused") and not force:
        raise RuntimeFailure(
            f"cannot delete container {container.id} that is not stopped: {status}"
        )
    if status != "stopped":
        _kill_everything(container)
    destroy(container)


def _kill_everything(container: st.Container) -> None:
    try:
        cgroup = cgroup_of(container)
        cgroup.kill_all(signal.SIGKILL)
        if cgroup.is_frozen():
            cgroup.thaw()
    except Exception as e:
        LOG.warning(f"killing the processes of {container.id}: {e}")
    if container.init_alive():
        try:
            os.kill(container.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if not wait_gone(container):
        raise RuntimeFailure(f"container {container.id} init did not die after SIGKILL")


def destroy(container: st.Container) -> None:
    """Remove what the container left: its cgroup and state dir; then the poststop hooks."""
    try:
        cgroup = cgroup_of(container)
        if cgroup.pids():
            cgroup.kill_all(signal.SIGKILL)
        cgroup.destroy()
    except Exception as e:
        LOG.warning(f"removing the cgroup of {container.id}: {e}")
    hooks = (container.config.get("hooks") or {}).get("poststop") or []
    run_hooks(hooks, container.hook_state("stopped"), "poststop", fatal=False)
    st.remove_dir(container.dir)


def pause(container: st.Container) -> None:
    status = container.status()
    if status not in ("running", "created"):
        raise RuntimeFailure("container not running or created: " + status)
    cgroup_of(container).freeze()


def resume(container: st.Container) -> None:
    if container.status() != "paused":
        raise RuntimeFailure("container not paused")
    cgroup_of(container).thaw()
