"""Git repositories a test makes itself, served only on 127.0.0.1: by `git daemon`
(git://) and by `git http-backend` behind a tiny HTTP server (smart HTTP, http://...git)."""

from __future__ import annotations

import contextlib
import http.server
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}


def git(cwd: str, *args: str) -> str:
    env = dict(os.environ)
    env.update(_ENV)
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True, timeout=60).stdout.strip()


def write_files(root: str, files: dict[str, str]) -> None:
    for name, content in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(content)


def make_repo(path: str, files: dict[str, str], branch: str = "main") -> str:
    """A repository at `path` with one commit of `files` on `branch`; the commit."""
    os.makedirs(path)
    git(path, "init", "-q", "-b", branch)
    return commit(path, files, "first")


def commit(path: str, files: dict[str, str], message: str) -> str:
    write_files(path, files)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", message)
    return git(path, "rev-parse", "HEAD")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("git daemon exited")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError("git daemon did not listen")


@contextlib.contextmanager
def git_daemon(base: str) -> Iterator[str]:
    """`git daemon` serving every repository under `base` on 127.0.0.1; the URL prefix
    (git://127.0.0.1:PORT/)."""
    for _ in range(5):  # the port is free when chosen; another process may take it first
        port = _free_port()
        proc = subprocess.Popen(
            ["git", "daemon", "--export-all", f"--base-path={base}", "--reuseaddr",
             "--listen=127.0.0.1", f"--port={port}", "--informative-errors", base],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_port(port, proc)
        except RuntimeError:
            proc.kill()
            proc.wait()
            continue
        try:
            yield f"git://127.0.0.1:{port}/"
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        return
    raise RuntimeError("could not start git daemon")


def _backend() -> str:
    out = subprocess.run(["git", "--exec-path"], capture_output=True, text=True, check=True)
    return os.path.join(out.stdout.strip(), "git-http-backend")


class _Handler(http.server.BaseHTTPRequestHandler):
    base = ""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def _cgi(self) -> None:
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        env = {"GIT_PROJECT_ROOT": self.base, "GIT_HTTP_EXPORT_ALL": "1",
               "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command,
               "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1",
               "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
               "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
               "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        out = subprocess.run([_backend()], input=body, env=env, capture_output=True,
                             timeout=60).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode().split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@contextlib.contextmanager
def git_http(base: str) -> Iterator[str]:
    """Smart HTTP (`git http-backend`) for the repositories under `base`, on 127.0.0.1;
    the URL prefix (http://127.0.0.1:PORT/)."""
    handler = type("Handler", (_Handler,), {"base": base})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
