"""The engine's error: what the CLI prints after "Error response from daemon:" and the
Engine API returns with its HTTP status."""

from __future__ import annotations


class EngineError(Exception):
    """A failure of Barque rather than of the container. `exit_code` is what `docker run`
    exits with (125; 126/127 when the container's command could not be invoked or found);
    `status` is the Engine API's HTTP status."""

    def __init__(self, message: str, exit_code: int = 125, status: int = 500) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.status = status

    # True for what dockerd finds only when it starts the container (a missing network or
    # device, an unknown user, the runtime's failure), even where Barque checks it earlier:
    # `docker run` prints a start's error without "See 'docker run --help'." and exits 125,
    # 126 or 127 by its words.
    at_start = False
