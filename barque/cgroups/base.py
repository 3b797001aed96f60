"""The driver-independent part of the cgroups API: the error, the mount description, the base class.

Kept free of heavy imports: `barque-runtime` imports this on every start.
"""

from __future__ import annotations

import abc


class CgroupError(Exception):
    """A cgroup operation failed. `errno` is set when the kernel refused a file operation."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class CgroupMount:
    """One filesystem the runtime mounts under the container's /sys/fs/cgroup."""

    __slots__ = ("subdir", "fstype", "options", "host_path", "symlinks")

    def __init__(
        self, subdir: str, fstype: str, options: str, host_path: str, symlinks: list[str]
    ) -> None:
        self.subdir = subdir  # "" for pure v2: mounted at /sys/fs/cgroup itself
        self.fstype = fstype  # "cgroup" or "cgroup2"
        self.options = options  # mount data: "memory", "cpu,cpuacct", "name=systemd", ""
        self.host_path = host_path  # the container's cgroup dir in that hierarchy, on the host
        self.symlinks = symlinks  # co-mounted controllers: "cpu" -> "cpu,cpuacct"

    def __repr__(self) -> str:
        return (
            f"CgroupMount(subdir={self.subdir!r}, fstype={self.fstype!r}, "
            f"options={self.options!r}, host_path={self.host_path!r}, symlinks={self.symlinks!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CgroupMount):
            return NotImplemented
        return all(getattr(self, a) == getattr(other, a) for a in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value


class Manager(abc.ABC):
    """One container's cgroup, in every hierarchy the host mounts."""

    version: int
    path: str  # cgroup path inside the hierarchies, e.g. "/default/abc"

    @abc.abstractmethod
    def create(self) -> None: ...

    @abc.abstractmethod
    def add_pid(self, pid: int) -> None: ...

    @abc.abstractmethod
    def set_resources(self, resources: dict) -> None: ...

    @abc.abstractmethod
    def prepare_resources(self, resources: dict) -> None:
        """Check what set_resources can check without the cgroup, and import the code it
        runs. The runtime calls this before it forks the init: a bad rule then fails before
        any process exists, and the imports are not paid for again in page copies."""

    @abc.abstractmethod
    def freeze(self) -> None: ...

    @abc.abstractmethod
    def thaw(self) -> None: ...

    @abc.abstractmethod
    def is_frozen(self) -> bool: ...

    @abc.abstractmethod
    def pids(self) -> list[int]: ...

    @abc.abstractmethod
    def kill_all(self, sig: int) -> None: ...

    @abc.abstractmethod
    def stats(self) -> dict: ...

    @abc.abstractmethod
    def oom_kill_count(self) -> int: ...

    @abc.abstractmethod
    def oom_event_fd(self) -> int | None: ...

    @abc.abstractmethod
    def exists(self) -> bool: ...

    @abc.abstractmethod
    def destroy(self) -> None: ...

    @abc.abstractmethod
    def mounts(self) -> list[CgroupMount]: ...

    @abc.abstractmethod
    def resolved_paths(self) -> dict[str, str]:
        """What open_manager(..., resolved=) needs to reopen this very cgroup later."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={self.path!r})"
