"""What a build tells its front end while it runs: BuildKit's vertices (one per step,
numbered #1, #2, ... in the order they start) and their output. The CLI prints them as
BuildKit's plain or tty progress; `barque serve` will stream them as /build's JSON."""

from __future__ import annotations

from barque.structs import dataclass

TYPE_CHECKING = False  # not typing's: importing typing costs a cached rebuild ~2 ms
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object


@dataclass
class Vertex:
    number: int                     # the #N of the display, from 1
    name: str                       # "[stage-1 2/3] RUN echo hi", "[internal] load .dockerignore"
    started: float | None = None    # time.monotonic() values
    completed: float | None = None
    cached: bool = False
    error: str | None = None


class Events(Protocol):
    def vertex(self, vertex: Vertex) -> None:
        """A vertex was added or changed state (started, completed, cached, failed)."""

    def log(self, vertex: Vertex, stream: int, data: bytes) -> None:
        """Output of a vertex: stream 1 stdout, 2 stderr (a RUN's output, a download's)."""

    def status(self, vertex: Vertex, ident: str, current: int = 0, total: int = 0,
               started: float | None = None, completed: float | None = None) -> None:
        """A sub-task line of a vertex (BuildKit's VertexStatus), e.g. `transferring
        dockerfile:` with current=87 bytes, `writing image sha256:...`, `naming to
        docker.io/library/x:latest`; plain progress prints `#1 transferring dockerfile: 87B
        done` once `completed` is set. Optional: the CLI adds the image's lines of
        `exporting to image` itself when the builder reports none."""


class NoEvents:
    def vertex(self, vertex: Vertex) -> None:
        pass

    def log(self, vertex: Vertex, stream: int, data: bytes) -> None:
        pass

    def status(self, vertex: Vertex, ident: str, current: int = 0, total: int = 0,
               started: float | None = None, completed: float | None = None) -> None:
        pass
