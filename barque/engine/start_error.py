"""Docker's words for a container its OCI runtime could not start.

dockerd shows the runtime's last --log error as containerd's runc shim wraps it ("failed to
create shim task: OCI runtime create failed: runc create failed: unable to start container
process: exec: ...") and gRPC ends it with its code (": unknown"). Barque's monitor plays the
shim's part (one per container: it runs the runtime's create, holds the stdio, reaps), so
Barque says the same around barque-runtime's own words ("barque-runtime run failed: ...":
the monitor creates and starts in one `run --detach`)."""

from __future__ import annotations

SHIM = "failed to create shim task: OCI runtime create failed: "


def docker_words(error: str) -> str:
    """The runtime's (or the monitor's) error in Docker's shape; already shaped ones and
    empty ones as they are."""
    if not error or error.startswith(SHIM):
        return error
    return f"{SHIM}{error}: unknown"
