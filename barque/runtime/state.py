"""A container's on-disk state under --root: state.json beside the exec fifo.

The status is never stored: it is read off the kernel each time (is the init alive and the
same process, is the fifo still there, is the cgroup frozen), as runc does.
"""

from __future__ import annotations

import os

from barque.runtime import fastjson as json
from barque.runtime.errors import RuntimeFailure

TYPE_CHECKING = False  # not typing's: see barque/linux/libc.py
if TYPE_CHECKING:
    from barque.cgroups.base import Manager

DEFAULT_ROOT = "/run/barque-runtime"
STATE_FILE = "state.json"
EXEC_FIFO = "exec.fifo"
FASTPATH_FILE = "fastpath"  # what barque-runtime-fast (monitor/runtime_fast.c) reads
OCI_VERSION = "1.2.1"


def valid_id(container_id: str) -> bool:
    if not container_id or container_id in (".", "..") or len(container_id) > 1024:
        return False
    return all(c.isalnum() or c in "_+-." for c in container_id)


def write_atomic(path: str, data: bytes, mode: int = 0o600, durable: bool = True) -> None:
    """Write through a temp file and rename, so readers see the old or the new file whole.
    `durable=False` skips the fsync: for state that cannot outlive a reboot anyway."""
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def write_pid_file(path: str, pid: int) -> None:
    """runc's createPidFile: through `.NAME` in the same directory, with runc's error words."""
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, "." + name)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, str(pid).encode())
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError as e:
        where = f"rename {tmp} {path}" if e.filename2 else f"open {e.filename or tmp}"
        raise RuntimeFailure(f"{where}: {(e.strerror or '').lower()}") from None


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat, or None when the process is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


class Container:
    """What the runtime remembers of one container between commands."""

    def __init__(self, root: str, container_id: str, data: dict) -> None:
        self.root = root
        self.id = container_id
        self.data = data
        self._cgroup: Manager | None = None

    @property
    def cgroup(self) -> Manager:
        """The container's cgroup manager, opened once (reading mountinfo is not free)."""
        if self._cgroup is None:
            from barque.cgroups import open_manager

            self._cgroup = open_manager(self.cgroup_path, self.id,
                                        self.data.get("cgroupPaths"))
        return self._cgroup

    @property
    def dir(self) -> str:
        return os.path.join(self.root, self.id)

    @property
    def fifo(self) -> str:
        return os.path.join(self.dir, EXEC_FIFO)

    @property
    def pid(self) -> int:
        return int(self.data.get("pid", 0))

    @property
    def config(self) -> dict:
        return self.data["config"]

    @property
    def cgroup_path(self) -> str:
        return str(self.data.get("cgroupPath", ""))

    def init_alive(self) -> bool:
        pid = self.pid
        return pid > 0 and process_start_time(pid) == self.data.get("pidStart")

    def status(self) -> str:
        if self.data.get("status") == "creating":
            return "creating"
        if not self.init_alive():
            return "stopped"
        if os.path.exists(self.fifo):
            return "created"
        if self.is_paused():
            return "paused"
        return "running"

    def is_paused(self) -> bool:
        try:
            return self.cgroup.is_frozen()
        except Exception:
            return False

    def oci_state(self) -> dict:
        """The OCI runtime spec's state object, with runc's extra fields."""
        status = self.status()
        state = {
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "pid": self.pid if status not in ("stopped",) else 0,
            "status": status,
            "bundle": self.data["bundle"],
            "rootfs": self.data["rootfs"],
            "created": self.data["created"],
        }
        annotations = self.config.get("annotations")
        if annotations:  # runc's order (scripts read its output): annotations before owner,
            state["annotations"] = dict(sorted(annotations.items()))  # a Go map: sorted
        state["owner"] = self.data.get("owner", "")
        return state

    def hook_state(self, status: str | None = None) -> dict:
        """The state handed to hooks on stdin (spec: ociVersion, id, status, pid, bundle)."""
        state = {
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "status": status or self.status(),
            "pid": self.pid,
            "bundle": self.data["bundle"],
        }
        if self.config.get("annotations"):
            state["annotations"] = self.config["annotations"]
        return state

    def save(self) -> None:
        # Like runc's: it describes live processes, which a reboot ends anyway; the root is
        # a tmpfs (/run) on most hosts. Atomic, but not fsync'd (that costs ~0.5 ms a write).
        write_atomic(os.path.join(self.dir, STATE_FILE), json.dumps(self.data).encode(),
                     durable=False)


    def save_fastpath(self) -> None:
        """What `start` and `delete` in C (monitor/runtime_fast.c) need, in lines it reads
        without a JSON parser: the init, whether hooks must run (then it leaves the command
        to Python), and every cgroup directory to remove."""
        hooks = self.config.get("hooks") or {}
        lines = [f"pid {self.pid}", f"start {self.data.get('pidStart')}",
                 f"poststart {int(bool(hooks.get('poststart')))}",
                 f"poststop {int(bool(hooks.get('poststop')))}"]
        lines += [f"cgroup {m.host_path}" for m in self.cgroup.mounts()]
        write_atomic(os.path.join(self.dir, FASTPATH_FILE), ("\n".join(lines) + "\n").encode(),
                     durable=False)


def load(root: str, container_id: str) -> Container:
    if not valid_id(container_id):
        raise RuntimeFailure(f"invalid container id format: {container_id}")
    path = os.path.join(root, container_id, STATE_FILE)
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except FileNotFoundError:
        raise RuntimeFailure(f"container does not exist: {container_id}") from None
    except (OSError, ValueError) as e:
        raise RuntimeFailure(f"container {container_id}: unreadable state: {e}") from None
    return Container(root, container_id, data)


def remove_dir(path: str) -> None:
    """Remove a container's state dir (flat: state file, fifo). shutil would cost ~3 ms of
    imports (it pulls in bz2 and lzma)."""
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return
    for name in names:
        try:
            os.unlink(os.path.join(path, name))
        except IsADirectoryError:
            remove_dir(os.path.join(path, name))
        except FileNotFoundError:
            pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def list_ids(root: str) -> list[str]:
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if os.path.exists(os.path.join(root, n, STATE_FILE)))
