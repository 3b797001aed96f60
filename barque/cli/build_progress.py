"""`barque build`'s progress, fed by the builder's Events as BuildKit's progressui shows a
solve: `plain` (the text printer's lines: `#5 [2/3] RUN make`, `#5 0.215 output`, `#5 DONE
1.2s`, `#5 CACHED`, `#5 ERROR: ...`, then the failed steps' last lines in a `------` block),
`tty` (the live `[+] Building 1.2s (8/8) FINISHED` view, drawn with rich, which only that
view imports) and `quiet` (nothing).

The builder may report from several threads (independent stages build in parallel), so
every display serialises its events with one lock. Times are time.monotonic() values.
"""

from __future__ import annotations

import os
import sys
import threading
import time

from barque.build.events import Vertex

TYPE_CHECKING = False  # not typing's: its import costs every command's start
if TYPE_CHECKING:
    from typing import Any, TextIO

LOG_TAIL = 10            # a failed step's last output lines, repeated in the error block
MIN_STATUS_DELTA = 0.05  # an unfinished status line is printed again after 5% more...
MIN_STATUS_TIME = 5.0    # ...or 5 s later (BuildKit's minProgressDelta / minTimeDelta)
EXPORT_VERTEX = "exporting to image"
CANCELED = "context canceled"
DESCRIPTION = 'building with "default" instance using barque driver'


def format_bytes(size: int) -> str:
    """tonistiigi/units' `%.2f` of a byte count, as BuildKit prints transfer sizes: whole
    bytes below 1 kB (`87B`), else two decimals of powers of 1000 (`16.50kB`)."""
    units = ("B", "kB", "MB", "GB", "TB", "PB", "EB")
    if abs(size) < 1000:
        return f"{size}B"
    value, i = float(size), 0
    while abs(value) >= 1000 and i < len(units) - 1:
        value /= 1000
        i += 1
    # units.Bytes divides by the unit's size once (not step by step): same digits here
    return f"{size / 1000 ** i:.2f}{units[i]}"


def log_stamp(seconds: float) -> str:
    """The time a log line carries, since its step started: 3 decimals under 10 s, 2 under
    100 s, 1 beyond (`0.215`, `12.34`, `123.4`)."""
    precision = 3 if seconds < 10 else 2 if seconds < 100 else 1
    return f"{seconds:.{precision}f}"


class _Status:
    """A sub-task line of a step (`transferring context: 30B done`, `writing image ...`)."""

    def __init__(self, ident: str) -> None:
        self.ident = ident
        self.current = 0
        self.total = 0
        self.started: float | None = None
        self.completed: float | None = None
        self.printed_at: tuple[int, float] | None = None   # (current, time) last printed


class _Step:
    """What a display remembers of one vertex (the builder may hand the same Vertex object,
    changed in place, so its fields are copied)."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.name = ""
        self.started: float | None = None
        self.completed: float | None = None
        self.cached = False
        self.error: str | None = None
        self.partial = False            # the last output line has no newline yet
        self.lines: list[str] = []      # "stamp text" lines (tail for plain, all for tty)
        self.statuses: dict[str, _Status] = {}
        self.held = False               # completion held back for the image's lines
        self.decoder: Any = None        # UTF-8 split across writes stays whole

    @property
    def running(self) -> bool:
        return self.started is not None and self.completed is None


class Display:
    """The Events a build reports to (barque.build.events.Events), plus what the CLI tells it
    at the end. The base class keeps the state; subclasses print it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.steps: dict[int, _Step] = {}
        self.order: list[_Step] = []      # in the order they started
        self.clock = time.monotonic       # the tests' to replace
        self.began = self.clock()

    # --- Events --------------------------------------------------------------------------

    def vertex(self, vertex: Vertex) -> None:
        with self.lock:
            step = self._step(vertex.number)
            step.name = vertex.name
            was_started, was_completed = step.started is not None, step.completed is not None
            if vertex.started is not None and step.started is None:
                self.order.append(step)
            if vertex.started is not None:
                step.started = vertex.started
            step.cached, step.error = vertex.cached, vertex.error
            if vertex.completed is not None:
                if step.started is None:   # a cached step may come completed at once
                    step.started = vertex.completed
                    self.order.append(step)
                step.completed = vertex.completed
            self._changed(step, not was_started and step.started is not None,
                          not was_completed and step.completed is not None)

    def log(self, vertex: Vertex, stream: int, data: bytes) -> None:
        if not data:
            return
        with self.lock:
            step = self._step(vertex.number)
            if not step.name:
                step.name = vertex.name
            started = step.started if step.started is not None else vertex.started
            stamp = log_stamp(max(0.0, self.clock() - started) if started is not None else 0.0)
            if step.decoder is None:
                import codecs

                step.decoder = codecs.getincrementaldecoder("utf-8")("replace")
            text = step.decoder.decode(data)
            if not text:
                return
            pieces = text.split("\n")
            complete = pieces[-1] == ""
            if complete:
                pieces.pop()
            self._output(step, stamp, pieces, complete)

    def status(self, vertex: Vertex, ident: str, current: int = 0, total: int = 0,
               started: float | None = None, completed: float | None = None) -> None:
        """A sub-task of a step (BuildKit's VertexStatus): `transferring context:` with its
        byte count, `exporting layers`, ... (`ident` is the line's text)."""
        with self.lock:
            step = self._step(vertex.number)
            status = step.statuses.get(ident)
            if status is None:
                status = step.statuses[ident] = _Status(ident)
            status.current, status.total = current, total
            status.started = started if started is not None else status.started
            status.completed = completed
            self._status(step, status)

    # --- the CLI's calls -------------------------------------------------------------------

    def exported(self, image_id: str | None, names: list[str]) -> None:
        """After the build: the image's lines of the `exporting to image` step (`writing
        image sha256:... done`, `naming to docker.io/library/x:latest done`) when the
        builder did not report them itself, then that step's end."""
        with self.lock:
            step = next((s for s in self.order if s.held), None)
            if step is None:
                return
            step.held = False
            end = step.completed or self.clock()
            start = step.started if step.started is not None else end
            lines = [("exporting layers", start, end)]
            if image_id:
                lines.append((f"writing image {image_id}", end, end))
            lines += [(f"naming to {name}", end, end) for name in names]
            for ident, begun, done in lines:
                status = step.statuses[ident] = _Status(ident)
                status.started, status.completed = begun, done
                self._status(step, status)
            self._changed(step, False, True)

    def close(self, failed: bool = False) -> None:
        """The build ended: draw the last state and, after a failure, each failed step's
        last output lines."""
        with self.lock:
            for step in self.order:
                if step.held:
                    step.held = False
                    self._changed(step, False, True)
            self._finish()
            if failed:
                self._error_logs()

    # --- for subclasses ----------------------------------------------------------------------

    def _step(self, number: int) -> _Step:
        step = self.steps.get(number)
        if step is None:
            step = self.steps[number] = _Step(number)
        return step

    def _changed(self, step: _Step, started: bool, completed: bool) -> None:
        if completed and step.name == EXPORT_VERTEX and not step.statuses and not step.error:
            step.held = True    # its lines come with exported() (or close())

    def _output(self, step: _Step, stamp: str, pieces: list[str], complete: bool) -> None:
        self._remember(step, stamp, pieces, complete, limit=None)

    def _remember(self, step: _Step, stamp: str, pieces: list[str], complete: bool,
                  limit: int | None) -> None:
        for i, piece in enumerate(pieces):
            if i == 0 and step.partial and step.lines:
                step.lines[-1] += piece
            else:
                step.lines.append(f"{stamp} {piece}")
        step.partial = not complete and bool(pieces)
        if limit is not None and len(step.lines) > limit + 1:
            del step.lines[:len(step.lines) - limit - 1]

    def _status(self, step: _Step, status: _Status) -> None:
        pass

    def _finish(self) -> None:
        pass

    def _error_logs(self) -> None:
        out = self._error_out()
        for step in self.order:
            if step.error and not step.error.endswith(CANCELED):
                lines = step.lines
                if isinstance(self, PlainDisplay):
                    lines = lines[-LOG_TAIL:]
                body = "".join(f"{line}\n" for line in lines)
                out.write(f"------\n > {step.name}:\n{body}------\n")
        out.flush()

    def _error_out(self) -> TextIO:
        return sys.stderr


class QuietDisplay(Display):
    """`-q`, `--progress=quiet`: nothing while building, nothing after a failure but the
    error itself (the CLI prints it)."""

    def _error_logs(self) -> None:
        pass


class PlainDisplay(Display):
    """BuildKit's text printer (`--progress=plain`): each step's lines under its `#N name`
    header; when output of another step interrupts, `#N ...` closes the block and the
    other's header opens its own; a finished step ends with DONE, CACHED or ERROR."""

    def __init__(self, out: TextIO | None = None, description: str | None = DESCRIPTION
                 ) -> None:
        super().__init__()
        self.out = out or sys.stderr
        self.current: _Step | None = None
        self.first = True
        self.description = description

    def _error_out(self) -> TextIO:
        return self.out

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def _switch_to(self, step: _Step) -> None:
        if self.current is step:
            return
        old = self.current
        if old is not None:
            self._write(("\n" if old.partial else "") + f"#{old.number} ...\n")
            old.partial = False
        if self.first:
            self.first = False
            if self.description:
                self._write(f"#0 {self.description}\n\n")
        else:
            self._write("\n")
        name = step.name
        if os.environ.get("PROGRESS_NO_TRUNC") == "0" and len(name) > 72:
            name = name[:72] + "..."       # BuildKit's opt-in truncation
        self._write(f"#{step.number} {name}\n")
        self.current = step

    def _changed(self, step: _Step, started: bool, completed: bool) -> None:
        super()._changed(step, started, completed)
        if step.held:
            return
        if completed:
            self._switch_to(step)
            self._write(("\n" if step.partial else "") + self._end_line(step))
            step.partial = False
            self.current = None
            self._activate_open()
        elif started and self.current is None:
            self._switch_to(step)

    @staticmethod
    def _end_line(step: _Step) -> str:
        if step.error:
            if step.error.endswith(CANCELED):
                return f"#{step.number} CANCELED\n"
            return f"#{step.number} ERROR: {step.error}\n"
        if step.cached:
            return f"#{step.number} CACHED\n"
        if step.started is not None and step.completed is not None:
            return f"#{step.number} DONE {step.completed - step.started:.1f}s\n"
        return f"#{step.number} DONE\n"

    def _activate_open(self) -> None:
        """BuildKit shows a step still running once the one it showed has finished."""
        for step in self.order:
            if step.running and not step.held:
                self._switch_to(step)
                return

    def _output(self, step: _Step, stamp: str, pieces: list[str], complete: bool) -> None:
        self._switch_to(step)
        chunks = []
        for i, piece in enumerate(pieces):
            if i == 0 and step.partial:
                chunks.append(piece)
            else:
                chunks.append(f"#{step.number} {stamp} {piece}")
        self._write("\n".join(chunks) + ("\n" if complete and pieces else ""))
        self._remember(step, stamp, pieces, complete, limit=LOG_TAIL)

    def _status(self, step: _Step, status: _Status) -> None:
        now = self.clock()
        if status.completed is None and status.printed_at is not None:
            last_current, last_time = status.printed_at
            delta = (status.current - last_current) / status.total if status.total else 0.0
            if delta < MIN_STATUS_DELTA and now - last_time < MIN_STATUS_TIME:
                return
        status.printed_at = (status.current, now)
        self._switch_to(step)
        if step.partial:
            self._write("\n")
            step.partial = False
        self._write(f"#{step.number} {status_line(status, now)}\n")

    def _finish(self) -> None:
        if self.current is not None and self.current.partial:
            self._write("\n")
            self.current.partial = False


def status_line(status: _Status, now: float) -> str:
    """`transferring context: 30B done`, `sha256:... 1.20MB / 3.40MB 0.5s`."""
    size = ""
    if status.total:
        size = f" {format_bytes(status.current)} / {format_bytes(status.total)}"
    elif status.current:
        size = f" {format_bytes(status.current)}"
    timing = ""
    if status.started is not None:
        spent = (status.completed if status.completed is not None else now) - status.started
        if spent > 0.01:
            timing = f" {spent:.1f}s"
    if status.completed is not None:
        timing += " done"
    return f"{status.ident}{size}{timing}"


class TtyDisplay(Display):
    """BuildKit's terminal view: `[+] Building 1.2s (8/8) FINISHED` over one ` => ` line per
    step (and its sub-tasks), each with its time, redrawn in place; finished steps blue,
    failed ones red."""

    def __init__(self, out: TextIO | None = None, phase: str = "Building") -> None:
        from rich.console import Console
        from rich.live import Live

        super().__init__()
        self.out = out or sys.stderr
        self.phase = phase
        self.final = False
        self.console = Console(file=self.out, highlight=False, markup=False, emoji=False)
        self.live = Live(get_renderable=self._render, console=self.console,
                         refresh_per_second=10, transient=False, auto_refresh=True)
        self.live.start()

    def _error_out(self) -> TextIO:
        return self.out

    def _render(self) -> Any:
        from rich.text import Text

        with self.lock:
            width, height = self.console.size
            return Text("\n").join(
                Text(line, style=style or "")
                for line, style in view_lines(self, width, height, self.final, self.clock()))

    def _finish(self) -> None:
        self.final = True
        self.lock.release()    # the last refresh takes it
        try:
            self.live.stop()
        finally:
            self.lock.acquire()


def view_lines(display: Display, width: int, height: int, final: bool,
               now: float | None = None) -> list[tuple[str, str | None]]:
    """The tty view's lines with their colours (pure: the tests read it)."""
    now = time.monotonic() if now is None else now
    total = len(display.steps)
    done = sum(s.completed is not None and not s.held for s in display.steps.values())
    state = "FINISHED" if final and done and done == total else ""
    started = display.order[0].started if display.order else None
    spent = now - (started if started is not None else display.began)
    header = _align(f"[+] {getattr(display, 'phase', 'Building')} {spent:.1f}s "
                    f"({done}/{total}) {state}", "", width)
    jobs: list[tuple[str, float | None, float | None, str, str | None]] = []
    for step in display.order:
        name = step.name.replace("\t", " ")
        style = None
        if step.error:
            canceled = step.error.endswith(CANCELED)
            name = ("CANCELED " if canceled else "ERROR ") + name
            style = "yellow" if canceled else "red"
        if step.cached:
            name = "CACHED " + name
        completed = None if step.held else step.completed
        if completed is not None and style is None:
            style = "blue"
        jobs.append((name, step.started, completed, "", style))
        for status in step.statuses.values():
            size = ""
            if status.total:
                size = f"{format_bytes(status.current)} / {format_bytes(status.total)}"
            elif status.current:
                size = format_bytes(status.current)
            jobs.append(("=> " + status.ident, status.started, status.completed, size,
                         "blue" if status.completed is not None else None))
    if not final:
        jobs = jobs[-max(0, height - 2):] if height > 2 else []
    lines: list[tuple[str, str | None]] = [(header, None)]
    for name, begun, ended, size, style in jobs:
        if begun is None:
            continue
        seconds = (ended if ended is not None else now) - begun
        timer = f" {0.0 if seconds < 0.05 else seconds:3.1f}s\n"
        left = width - 4 - len(timer) - 1
        show_size = bool(size) and left + len(size) > 20
        if show_size:
            left -= len(size) + 1
        if left < 12:      # too narrow to show anything useful
            continue
        text = " => " + name[:left] + (" " + size if show_size else "")
        lines.append((_align(text, timer, width).rstrip("\n"), style))
    return lines


def _align(left: str, right: str, width: int) -> str:
    """Go's `%-[2]*[1]s %[3]s`: left padded to width-len(right)-1, a space, right."""
    return f"{left:<{max(0, width - len(right) - 1)}} {right}"


def make_display(mode: str, out: TextIO | None = None) -> Display:
    """The display for --progress: auto is tty on a terminal, else plain."""
    out = out or sys.stderr
    if mode == "quiet":
        return QuietDisplay()
    if mode == "tty" or (mode == "auto" and out.isatty()):
        return TtyDisplay(out)
    return PlainDisplay(out)


def source_excerpt(text: bytes | str, filename: str, start: int, end: int | None = None
                   ) -> str:
    """The Dockerfile lines around an error, as BuildKit's errdefs.Source prints them:
    `Dockerfile:3`, a rule, ` %3d | >>> line` for the failing lines and `    ` for the few
    around them, a rule. Empty when the lines are not in the file."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = text.split("\n")
    end = start if end is None or end < start else end
    if start < 1 or start > len(lines):
        return ""
    end = min(end, len(lines))
    first, last = start, end
    pad = 4 if start == end else 2
    done = 0
    while done < pad:          # BuildKit's loop: widen both ways, counting each round too
        if first > 1:
            first -= 1
            done += 1
        if last != len(lines):
            last += 1
            done += 1
        done += 1
    out = [f"{filename}:{start}\n--------------------\n"]
    for number in range(first, last + 1):
        marker = ">>>" if start <= number <= end else "   "
        out.append(f" {number:3d} | {marker} {lines[number - 1]}\n")
    out.append("--------------------\n")
    return "".join(out)
