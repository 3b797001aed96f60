"""How the builder runs a RUN step: it prepares the step's root filesystem (a mounted
snapshot) and asks an Executor to run one process in it; the engine supplies the Executor
(barque/engine/build_run.py: the OCI spec with Docker's defaults, the build's network, the
runtime), so this package never reaches up into the engine."""

from __future__ import annotations

from barque.structs import dataclass, field

TYPE_CHECKING = False  # not typing's: importing typing costs a cached rebuild ~2 ms
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol
else:
    Protocol = object


@dataclass
class RunMount:
    kind: str                        # "bind", "cache", "tmpfs", "secret"
    target: str                      # the path in the container (absolute, unresolved)
    source: str | None = None        # the host path (bind: a directory or file the builder
    #                                  prepared; cache: the cache's directory; secret: a file)
    readonly: bool = False
    options: dict[str, str] = field(default_factory=dict)  # mode, uid, gid, size, sharing


@dataclass
class RunRequest:
    rootfs: str                      # the step's mounted root filesystem, changed in place
    args: list[str]                  # the process (shell form already wrapped in SHELL)
    env: list[str]                   # KEY=value, the stage's ENV plus the ARGs in use
    cwd: str                         # WORKDIR, absolute ("/" by default)
    user: str = ""                   # USER as written: "", "name", "uid:gid", ...
    network: str = "default"         # "default" (the default bridge), "none", "host"
    mounts: list[RunMount] = field(default_factory=list)
    hostname: str = "buildkitsandbox"
    security: str = "sandbox"        # "sandbox" or "insecure" (RUN --security)


class Executor(Protocol):
    def run(self, request: RunRequest, output: Callable[[int, bytes], None]) -> int:
        """Run the request's process to its end, sending its stdout (1) and stderr (2) to
        `output` as they come; its exit code (128+N for a signal). Whatever the run made
        outside `request.rootfs` (namespaces, cgroup, mounts, veth) is gone on return, also
        when it raises (an OSError or ExecutorError: the run could not be started)."""
        ...


class ExecutorError(Exception):
    """The process could not be started (bad user, no such network, runtime failure)."""
