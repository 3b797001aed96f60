"""runc's logging conventions: --log FILE, --log-format text|json, --debug.

containerd's shim reads the last error from the JSON log when a command fails, so the error
line must be there in exactly runc's shape (logrus's JSON, compact):
{"level":"error","msg":"...","time":"..."}.
"""

from __future__ import annotations

import os
import sys
import time

from barque.runtime import fastjson as json

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


class Logger:
    def __init__(self, path: str | None = None, fmt: str = "text", debug: bool = False) -> None:
        self.path = path
        self.fmt = fmt
        self.threshold = _LEVELS["debug" if debug else "info"]
        self._fd = -1

    def _line(self, level: str, msg: str) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
        if self.fmt == "json":
            return json.go_dumps({"level": level, "msg": msg, "time": stamp}) + "\n"
        return f'time="{stamp}" level={level} msg={_quote(msg)}\n'

    def log(self, level: str, msg: str) -> None:
        if _LEVELS[level] < self.threshold:
            return
        line = self._line(level, msg)
        if self.path:
            if self._fd < 0:
                # Kept open: the container init logs after pivot_root, where the path is gone.
                self._fd = os.open(
                    self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
                )
            os.write(self._fd, line.encode())
        elif level != "error":
            # Without --log, runc sends its log to stderr; errors are printed there anyway.
            sys.stderr.write(line)

    def debug(self, msg: str) -> None:
        self.log("debug", msg)

    def warning(self, msg: str) -> None:
        self.log("warning", msg)

    def error(self, msg: str) -> None:
        self.log("error", msg)


def _quote(text: str) -> str:
    """logrus's text format quotes a value as Go's %q: backslash, quote and controls escaped."""
    for char, escape in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\t", "\\t"),
                         ("\r", "\\r")):
        text = text.replace(char, escape)
    return f'"{text}"'


LOG = Logger()


def configure(path: str | None, fmt: str, debug: bool) -> None:
    LOG.path, LOG.fmt = path, fmt
    LOG.threshold = _LEVELS["debug" if debug else "info"]
    if path:
        LOG._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
