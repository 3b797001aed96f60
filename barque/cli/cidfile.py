"""`run`/`create --cidfile FILE`, as the docker CLI's cidFile: the file must not exist yet;
it is made (empty) before the container, gets the container's ID once it is made, and is
removed again if the create fails. What the container does later never touches it."""

from __future__ import annotations

import os
from contextlib import contextmanager

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from collections.abc import Iterator


class CidFileError(Exception):
    """The docker CLI's own error (its words): `create` prints it bare and exits 1, `run`
    as its reportError does (exit 125)."""


class CidFile:
    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None
        self.written = False

    def open(self) -> None:
        if not self.path:
            return
        if os.path.lexists(self.path):  # os.Stat in the CLI: a dangling link counts too here
            raise CidFileError("container ID file found, make sure the other container isn't "
                               f"running or delete {self.path}")
        try:
            # O_EXCL: a file that appeared since the check (another `run`) is not taken over
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                              0o666)
        except OSError as e:
            raise CidFileError(f"failed to create the container ID file: open {self.path}: "
                               f"{(e.strerror or str(e)).lower()}") from None

    def write(self, container_id: str) -> None:
        if self.fd is None:
            return
        os.write(self.fd, container_id.encode())
        self.written = True

    def close(self) -> None:
        if self.fd is None:
            return
        os.close(self.fd)
        self.fd = None
        if not self.written:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


@contextmanager
def holding(path: str | None) -> Iterator[CidFile]:
    """The cid file, open while the container is made (a context manager's body)."""
    cid = CidFile(path or "")
    cid.open()
    try:
        yield cid
    finally:
        cid.close()
