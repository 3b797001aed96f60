"""A line-of-JSON message pipe between the runtime and the processes it forks."""

from __future__ import annotations

import os

from barque.runtime import fastjson as json
from barque.runtime.errors import RuntimeFailure


class Channel:
    """One direction of a pipe; messages are single JSON lines."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buf = b""

    def send(self, **msg: object) -> None:
        data = (json.dumps(msg) + "\n").encode()
        while data:
            data = data[os.write(self.fd, data) :]

    def recv(self) -> dict | None:
        """The next message, or None when every writer has closed the pipe."""
        while b"\n" not in self._buf:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        msg = json.loads(line)
        return msg if isinstance(msg, dict) else None

    def send_failure(self, e: BaseException, during: str) -> None:
        """Tell the runtime why a forked stage failed: a RuntimeFailure in its own words and
        exit code, anything else as "`during`: e" with code 1."""
        if isinstance(e, RuntimeFailure):
            self.send(op="error", message=str(e), code=e.code)
        else:
            self.send(op="error", message=f"{during}: {e}", code=1)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def pipe_pair() -> tuple[Channel, Channel]:
    r, w = os.pipe()
    return Channel(r), Channel(w)
