"""The network services' error: Docker's words, and the Engine API's HTTP status."""

from __future__ import annotations


class NetworkError(Exception):
    """A network, endpoint or address request that cannot be met. `status` is the HTTP code
    Docker answers with (400 bad input, 403 forbidden, 404 not found, 409 conflict, 500);
    the engine turns it into an EngineError (exit 1 for `network *`, 125 for run/create)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
