"""A test's own HTTP server (http.server or socketserver) answering from a thread; `replying`
for one serving canned answers."""

from __future__ import annotations

import http.server
import socketserver
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

S = TypeVar("S", bound=socketserver.BaseServer)


@contextmanager
def serving(server: S) -> Iterator[S]:
    """`server` answering until the block ends; then shut down, its socket closed."""
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@dataclass
class Reply:
    """One canned answer: `content_type` None sends no Content-Type header, `length` False
    no Content-Length (the body ends when the connection closes)."""

    body: bytes = b""
    status: int = 200
    content_type: str | None = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)
    length: bool = True


class _Replying(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.server.hits.append(self.path)
        found = self.server.replies.get(self.path)
        reply = found(self.path) if callable(found) else found
        if reply is None:
            reply = Reply(b"404 page not found\n", 404, "text/plain; charset=utf-8")
        self.send_response(reply.status)
        if reply.content_type is not None:
            self.send_header("Content-Type", reply.content_type)
        if reply.length:
            self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a bound it enforces): what the test wants

    def log_message(self, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, replies: Mapping[str, Reply | Callable[[str], Reply]]) -> None:
        super().__init__(("127.0.0.1", 0), _Replying)
        self.replies = replies
        self.hits: list[str] = []


@contextmanager
def replying(replies: Mapping[str, Reply | Callable[[str], Reply]]
             ) -> Iterator[tuple[str, list[str]]]:
    """A server on 127.0.0.1 answering GET PATH with replies[PATH] (a Reply, or a function
    of the path giving one; a 404 for others): its base URL and the paths asked, in order."""
    with serving(_Server(replies)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.hits
