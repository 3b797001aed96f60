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
from barque.structs import dataclass

_STEP = re.compile(r"^\[(?P<prefix>[^\]]*? )?\s*\d+/\d+\] (?P<text>.*)$", re.S)
_RUN_FAILED = re.compile(r'^process "(?P<cmd>.*)" did not complete successfully: exit code: '
                         r"(?P<code>\d+)$", re.S)
_RED, _RESET = "\x1b[91m", "\x1b[0m"  # dockerd's stderr in a classic build's stream


@dataclass
class _Stage:
    name: str                       # `AS name`, else "stage-N": BuildKit's vertex prefix
    steps: list[tuple[str, str]]    # (keyword, the line as written), FROM first
    first: int                      # the number of its FROM's step
    cursor: int = 0                 # its steps shown so far


def stages_of(dockerfile: bytes, name: str) -> list[_Stage]:
    """The Dockerfile's stages with dockerd's numbers of their steps: "Step i/N" counts every
    instruction of every stage, FROMs included."""
    try:
        from barque.build.dockerfile import parser

        parsed = parser.parse(dockerfile, name)
    except Exception:  # noqa: BLE001 (the build itself reports a bad Dockerfile)
        return []
    found, first = [], 1
    for stage in parsed.stages:
        steps = [("FROM", stage.original.strip())] + [
            (i.keyword, i.original.strip()) for i in stage.instructions]
        found.append(_Stage(stage.name or f"stage-{stage.index}", steps, first))
        first += len(steps)
    return found


class ClassicStream:
    """Events (barque/build/events.py) written as the classic stream through `send` (one
    JSON object a call); thread-safe, as stages may build in threads of their own.

    BuildKit's vertices name only the steps that do work (FROM, RUN, COPY...); the steps
    between them (ENV, LABEL...) are shown as dockerd shows them, when the next vertex of
    their stage starts, or at the end."""

    def __init__(self, send: Callable[[bytes], object], stages: list[_Stage],
                 target: str | None, quiet: bool) -> None:
        self._send, self._stages, self._quiet = send, stages, quiet
        self._total = sum(len(stage.steps) for stage in stages)
        self._default = next((s for s in stages if target and s.name == target.lower()),
                             stages[-1] if stages else None)
        self._lock = threading.RLock()
        self._decoders: dict[tuple[int, int], Any] = {}
        self._from: set[int] = set()
        self._extra = 0  # steps no stage has (ONBUILD triggers)

    def message(self, **fields: Any) -> None:
        with self._lock:
            self._send(json.dumps(fields).encode() + b"\r\n")

    def _stream(self, text: str) -> None:
        if text and not self._quiet:
            self.message(stream=text)

    def _show(self, stage: _Stage, upto: int) -> None:
        """The stage's steps from its cursor to `upto` (an index in it), inclusive."""
        while stage.cursor <= upto:
            self._stream(f"Step {stage.first + stage.cursor}/{self._total} : "
                         f"{stage.steps[stage.cursor][1]}")
            self._stream("\n")
            stage.cursor += 1

    def _stage(self, prefix: str) -> _Stage | None:
        prefix = prefix.strip()
        if not prefix:
            return self._default
        return next((s for s in self._stages if s.name == prefix), None)

    def _start(self, prefix: str, text: str) -> None:
        stage = self._stage(prefix)
        keyword = text.split(" ", 1)[0]
        if stage is not None:
            for index in range(max(stage.cursor, 0 if keyword == "FROM" else 1),
                               len(stage.steps)):
                if stage.steps[index][0] == keyword:
                    self._show(stage, index)
                    return
        self._extra += 1  # a trigger, or a step this stream cannot place: as BuildKit says
        self._stream(f"Step {self._extra}/{self._total} : {text}")
        self._stream("\n")

    def vertex(self, vertex: Vertex) -> None:
        match = _STEP.match(vertex.name)
        if match is None:
            return  # "[internal] load build definition ...": BuildKit's, not a step
        with self._lock:
            if vertex.completed is None:
                if match["text"].startswith("FROM "):
                    self._from.add(vertex.number)
                self._start(match["prefix"] or "", match["text"])
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

        with self._lock:
            for stage in self._stages:
                if stage.cursor:  # built: its last steps (LABEL, CMD...) too
                    self._show(stage, len(stage.steps) - 1)
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
