"""Docker's `--format` handling, its tabwriter, and docker/go-units' human-readable units.

format_table() follows docker/cli cli/command/formatter/formatter.go: `table ...` prints a
header (the same template run over the column names) and aligned rows, `json` prints one
JSON object per row, any other template prints one line per row, and no format (or a bare
`table`) prints the command's default table. tabwrite() is the elastic-tabstop algorithm
of Go's text/tabwriter as Docker configures it (minwidth 10, tabwidth 1, padding 3).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from barque.cli import gofmt
from barque.cli.gotemplate import HEADER_FUNCS, Template, TemplateError, compile
from barque.engine.units import bytes_size, human_duration, human_size  # noqa: F401  (the CLI's too)


class FormatError(TemplateError):
    """A --format template Docker would reject; the message is Docker's, and so is the exit
    status (1; 64 for an inspect template that does not parse)."""

    def __init__(self, message: str, partial: str = "", exit_code: int = 1) -> None:
        super().__init__(message, partial)
        self.exit_code = exit_code


# --- tabwriter ---------------------------------------------------------------------------

@dataclass
class _Cell:
    text: str
    width: int
    htab: bool  # terminated by '\t' (rather than '\v' or a line break)


class _TabWriter:
    """A port of Go's text/tabwriter.Writer (with Docker's rune-width cell measure)."""

    def __init__(self, minwidth: int, tabwidth: int, padding: int, padchar: str,
                 align_right: bool) -> None:
        if minwidth < 0 or tabwidth < 0 or padding < 0:
            raise FormatError("tabwriter: negative minwidth, tabwidth, or padding")
        self.minwidth = minwidth
        self.tabwidth = tabwidth
        self.padding = padding
        self.padchar = padchar
        self.align_right = align_right and padchar != "\t"
        self.out: list[str] = []
        self.lines: list[list[_Cell]] = [[]]
        self.cell: list[str] = []
        self.widths: list[int] = []

    def write(self, text: str) -> None:
        for ch in text:
            if ch not in "\t\v\n\f":
                self.cell.append(ch)
                continue
            ncells = self.terminate_cell(ch == "\t")
            if ch in "\n\f":
                self.lines.append([])
                # A line of one cell cannot affect later columns, so Go flushes there.
                if ch == "\f" or ncells == 1:
                    self.flush()

    def terminate_cell(self, htab: bool) -> int:
        text = "".join(self.cell)
        self.lines[-1].append(_Cell(text, gofmt.display_width(text), htab))
        self.cell = []
        return len(self.lines[-1])

    def flush(self) -> None:
        if self.cell:
            self.terminate_cell(False)
        self.format(0, len(self.lines))
        self.lines = [[]]
        self.widths = []

    def format(self, line0: int, line1: int) -> None:
        """Align column len(self.widths) for blocks of consecutive lines that have it."""
        column = len(self.widths)
        this = line0
        while this < line1:
            if column >= len(self.lines[this]) - 1:
                this += 1
                continue
            # The last cell of a line is not tab-terminated, so it belongs to no column.
            self.write_lines(line0, this)
            line0 = this
            width = self.minwidth
            while this < line1 and column < len(self.lines[this]) - 1:
                width = max(width, self.lines[this][column].width + self.padding)
                this += 1
            self.widths.append(width)
            self.format(line0, this)
            self.widths.pop()
            line0 = this
        self.write_lines(line0, line1)

    def padding_for(self, textw: int, cellw: int) -> str:
        if self.padchar == "\t":
            if self.tabwidth == 0:
                return ""
            cellw = (cellw + self.tabwidth - 1) // self.tabwidth * self.tabwidth
            return "\t" * ((cellw - textw + self.tabwidth - 1) // self.tabwidth)
        return self.padchar * (cellw - textw)

    def write_lines(self, line0: int, line1: int) -> None:
        for i in range(line0, line1):
            for j, cell in enumerate(self.lines[i]):
                pad = self.padding_for(cell.width, self.widths[j]) if j < len(self.widths) else ""
                self.out.append(pad + cell.text if self.align_right else cell.text + pad)
            if i + 1 < len(self.lines):
                self.out.append("\n")


def tabwrite(lines: Sequence[str] | str, minwidth: int = 10, tabwidth: int = 1,
             padding: int = 3, padchar: str = " ", align_right: bool = False) -> str:
    """Go's tabwriter over tab-terminated cells; Docker's settings are the defaults.

    A str is written as is (cells end at '\\t', lines at '\\n'); a sequence of lines gets
    a newline after each line."""
    text = lines if isinstance(lines, str) else "".join(line + "\n" for line in lines)
    writer = _TabWriter(minwidth, tabwidth, padding, padchar, align_right)
    writer.write(text)
    writer.flush()
    return "".join(writer.out)


# --- --format ----------------------------------------------------------------------------

def _header_name(field: str) -> str:
    """A column title for a field with no entry in the header map: RunningFor → RUNNING FOR."""
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+|[^A-Za-z0-9]+", field)
    return " ".join(w for w in words if w.strip("_")).upper() or field.upper()


class _HeaderContext(Mapping[str, str]):
    """The map the header template runs over: column titles by field name, any field."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self.headers = headers

    def __getitem__(self, key: str) -> str:
        return self.headers[key] if key in self.headers else _header_name(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str)

    def __iter__(self) -> Iterator[str]:
        return iter(self.headers)

    def __len__(self) -> int:
        return len(self.headers)


def _final_format(source: str) -> tuple[str, bool]:
    """Context.preFormat: strip `table`, expand `json`, unescape typed \\t and \\n."""
    is_table = source.startswith("table")
    if is_table:
        source = source[len("table"):]
    elif source == "json":
        source = "{{json .}}"
    source = source.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    return source, is_table


def format_table(rows: Sequence[Any], fmt: str | None, default_table: str,
                 headers: Mapping[str, str] | None = None,
                 quiet_field: str | None = None, go_type: str | None = None) -> str:
    """Render rows as `docker ls`-style commands do for --format fmt.

    fmt None, "" or "table" gives default_table; with quiet_field set those print only
    `{{.<quiet_field>}}` per row (a custom fmt still wins, as for `docker images -q`).
    headers maps field names to column titles (`ID` → `CONTAINER ID`); fields missing
    from it get their name split at capitals and upper-cased. Rows are dicts (maps) or
    objects (structs); with go_type, dict rows are structs of that Go type (Docker's
    formatter contexts: a field they lack is an error). Returns the whole output, each line
    ending in a newline."""
    if fmt in (None, "", "table"):
        source = "{{." + quiet_field + "}}" if quiet_field else default_table
    else:
        source = fmt
    body, is_table = _final_format(source)
    if go_type is not None:
        rows = [gofmt.GoStruct(row, go_type)
                if isinstance(row, Mapping) and not isinstance(row, gofmt.GoStruct) else row
                for row in rows]
    try:
        tmpl = compile(body)
        lines = [tmpl.execute(row) + "\n" for row in rows]
    except TemplateError as e:
        raise FormatError(f"template parsing error: {e}") from None
    if not is_table:
        return "".join(lines)
    return tabwrite(_render_header(tmpl, headers) + "\n" + "".join(lines))


def precheck_format(fmt: str | None, fields: Sequence[str], go_type: str,
                    row_type: type[gofmt.GoStruct] = gofmt.GoStruct) -> None:
    """docker ps's check of --format before it lists anything: the raw template (`table`
    and typed \\t left in) parsed, then run over an empty row of Docker's context type
    (`row_type`, for its methods), so a bad template fails even when there is nothing to
    list, in docker ps's words."""
    if not fmt:
        return
    try:
        tmpl = compile(fmt)
    except TemplateError as e:
        raise FormatError(f"failed to parse template: {e}") from None
    try:
        tmpl.execute(row_type(dict.fromkeys(fields, ""), go_type))
    except TemplateError as e:
        raise FormatError(f"failed to execute template: {e}") from None


def _render_header(tmpl: Template, headers: Mapping[str, str] | None) -> str:
    context = _HeaderContext(headers or {})
    try:
        return tmpl.execute(context, funcs=HEADER_FUNCS)
    except TemplateError as e:
        return e.partial  # Docker ignores header errors and keeps what was written


# --- docker/go-units -----------------------------------------------------------------------

_ISO_RE = re.compile(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(\.\d+)?\s*(Z|[+-]\d\d:?\d\d)?$")


def parse_timestamp(value: str) -> datetime:
    """An RFC 3339 timestamp as Docker and OCI write them (nanoseconds allowed) in UTC."""
    match = _ISO_RE.match(value.strip())
    if not match:
        raise FormatError(f"invalid timestamp {value!r}: expected RFC 3339")
    date, clock, fraction, zone = match.groups()
    micros = (fraction or ".0")[1:7].ljust(6, "0")
    zone = "+00:00" if zone in (None, "Z") else zone
    if ":" not in zone:
        zone = zone[:3] + ":" + zone[3:]
    try:
        parsed = datetime.fromisoformat(f"{date}T{clock}.{micros}{zone}")
    except ValueError as e:
        raise FormatError(f"invalid timestamp {value!r}: {e}") from None
    return parsed.astimezone(UTC)


def _epoch_seconds(ts: datetime | float | int | str) -> float:
    if isinstance(ts, str):
        return parse_timestamp(ts).timestamp()
    if isinstance(ts, datetime):
        return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()
    return float(ts)


def time_ago(ts: datetime | float | int | str, now: float | None = None) -> str:
    """Docker's `units.HumanDuration(time.Now().UTC().Sub(t)) + " ago"`: `5 minutes ago`.

    ts is a datetime (naive means UTC), Unix seconds or an RFC 3339 string."""
    current = time.time() if now is None else now
    return human_duration(current - _epoch_seconds(ts)) + " ago"


def time_ago_iso(ts: str | None, now: float | None = None) -> str:
    """time_ago for an RFC 3339 string; empty or Go's zero time gives "" as Docker does."""
    if not ts or ts.startswith("0001-01-01"):
        return ""
    return time_ago(ts, now)


def go_time(ts: datetime | float | int | str) -> str:
    """Go's Time.String() in local time, as Docker prints CreatedAt:
    `2024-05-01 12:34:56 +0200 CEST` (fractional seconds only when present)."""
    local = datetime.fromtimestamp(_epoch_seconds(ts)).astimezone()
    text = local.strftime("%Y-%m-%d %H:%M:%S")
    if local.microsecond:
        text += ("." + f"{local.microsecond:06d}").rstrip("0")
    return f"{text} {local.strftime('%z')} {local.tzname() or 'UTC'}"


def truncate_id(image_id: str) -> str:
    """stringid.TruncateID: drop an algorithm prefix like sha256:, keep 12 characters."""
    _, sep, rest = image_id.partition(":")
    return (rest if sep else image_id)[:12]
