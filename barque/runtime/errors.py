"""The one exception type runtime commands raise for the user to read."""

from __future__ import annotations


class RuntimeFailure(Exception):
    """A failure reported to the caller on stderr and in the --log file, exit status `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code
