"""The classic builder's JSON stream (what dockerd's /build sends with Builder-Version 1, and
the docker CLI prints without BuildKit), made from barque's build Events:

    {"stream": "Step 2/3 : RUN echo hi"} {"stream": "\\n"} {"stream": "hi\\n"}
    {"aux": {"ID": "sha256:..."}} {"stream": "Successfully built 0123456789ab\\n"}
    {"stream": "Successfully tagged x:latest\\n"}
    {"errorDetail": {"code": 3, "message": "..."}, "error": "..."}

Barque's builder is BuildKit-like (no intermediate images or containers kept), so the lines
dockerd prints about those (" ---> 0123456789ab", " ---> Running in ...") have nothing to
name and are left out; a cached step says " ---> Using cache" as dockerd's."""

from __future__ import annotations

import codecs
import json
import re
import threading
from collections.abc import Callable
from typing import Any

from barque.build.events import Vertex

_STEP = re.compile(r"^\[(?:[^\]]* )?\d+/\d+\] (?P<text>.*)$", re.S)
_RUN_FAILED = re.compile(r'^process "(?P<cmd>.*)" did not complete successfully: exit code: '
                         r"(?P<code>\d+)$", re.S)
_RED, _RESET = "\x1b[91m", "\x1b[0m"  # dockerd's stderr in a classic build's stream


def step_count(dockerfile: bytes, name: str) -> int:
    """dockerd's N of "Step i/N": every instruction of every stage, FROMs included."""
    try:
        from barque.build.dockerfile import parser

        parsed = parser.parse(dockerfile, name)
    except Exception:  # noqa: BLE001 (the build itself reports a bad Dockerfile)
        return 0
    return sum(1 + len(stage.instructions) for stage in parsed.stages)


class ClassicStream:
    """Events (barque/build/events.py) written as the classic stream through `send` (one
    JSON object a call); thread-safe, as stages may build in threads of their own."""

    def __init__(self, send: Callable[[bytes], object], total: int, quiet: bool) -> None:
        self._send, self._total, self._quiet = send, total, quiet
        self._lock = threading.Lock()
        self._steps = 0
        self._decoders: dict[tuple[int, int], Any] = {}
        self._from: set[int] = set()

    def message(self, **fields: Any) -> None:
        with self._lock:
            self._send(json.dumps(fields).encode() + b"\r\n")

    def _stream(self, text: str) -> None:
        if text and not self._quiet:
            self.message(stream=text)

    def vertex(self, vertex: Vertex) -> None:
        match = _STEP.match(vertex.name)
        if match is None:
            return  # "[internal] load build definition ...": BuildKit's, not a step
        if vertex.completed is None:
            self._steps += 1
            total = max(self._total, self._steps)
            text = match["text"]
            if text.startswith("FROM "):
                self._from.add(vertex.number)
            self._stream(f"Step {self._steps}/{total} : {text}")
            self._stream("\n")
        elif vertex.cached and vertex.error is None and vertex.number not in self._from:
            self._stream(" ---> Using cache\n")

    def log(self, vertex: Vertex, stream: int, data: bytes) -> None:
        key = (vertex.number, stream)
        decoder = self._decoders.get(key)
        if decoder is None:
            decoder = self._decoders[key] = codecs.getincrementaldecoder("utf-8")("replace")
        text = decoder.decode(data)
        if text:
            self._stream(text if stream != 2 else _RED + text + _RESET)

    def status(self, vertex: Vertex, ident: str, current: int = 0, total: int = 0,
               started: float | None = None, completed: float | None = None) -> None:
        pass  # BuildKit's sub-task lines: the classic stream has none

    def built(self, image_id: str, tags: list[str]) -> None:
        from barque.image import reference

        self.message(aux={"ID": image_id})
        short = image_id.removeprefix("sha256:")[:12]
        if self._quiet:
            self.message(stream=image_id + "\n")
            return
        self._stream(f"Successfully built {short}\n")
        for tag in tags:
            self._stream(f"Successfully tagged {reference.parse(tag).familiar}\n")

    def error(self, message: str) -> None:
        """A failure once the stream is under way, as dockerd's errorDetail; a RUN's exit
        code is the code the docker CLI exits with."""
        code = 1
        match = _RUN_FAILED.match(message)
        if match is not None:
            code = int(match["code"])
            message = (f"The command '{match['cmd']}' returned a non-zero code: "
                       f"{match['code']}")
        self.message(errorDetail={"code": code, "message": message}, error=message)
