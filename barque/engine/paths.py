"""Where a root's and a runroot's containers live: `<root>/containers/<id>/` holds the
bundle (config.json), the snapshot, the container's /etc files and its json-file log;
`<runroot>/containers/<id>/` is its monitor's directory; `<runroot>/runtime` is the OCI
runtime's --root. Imports only os: the monitor's exit command reads it before the CLI."""

from __future__ import annotations

import os

from barque.structs import dataclass

DEFAULT_ROOT = "/var/lib/barque"
DEFAULT_RUNROOT = "/run/barque"


@dataclass(frozen=True)
class Paths:
    root: str = DEFAULT_ROOT
    runroot: str = DEFAULT_RUNROOT

    @property
    def containers(self) -> str:
        return os.path.join(self.root, "containers")

    @property
    def runtime_root(self) -> str:
        return os.path.join(self.runroot, "runtime")

    def container_dir(self, container_id: str) -> str:
        return os.path.join(self.containers, container_id)

    def monitor_dir(self, container_id: str) -> str:
        return os.path.join(self.runroot, "containers", container_id)

    def run_id_file(self, container_id: str) -> str:
        """Which start the monitor's files belong to (lifecycle: the exit command's
        --run-id)."""
        return os.path.join(self.monitor_dir(container_id), "run-id")

    def log_file(self, container_id: str) -> str:
        return os.path.join(self.container_dir(container_id), f"{container_id}-json.log")

    def snapshot_dir(self, container_id: str) -> str:
        return os.path.join(self.container_dir(container_id), "snapshot")
